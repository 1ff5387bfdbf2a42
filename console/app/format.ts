/**
 * The console's data formats: a znode's bytes as text, JSON (formatted,
 * validated) or hex, and back; a line diff for the conflict view; zxids and
 * times for people.
 *
 * Pure (no DOM, no SDK): the unit tests run it in Node. Must not import
 * node:* (it is bundled for browsers).
 */

export type DataFormat = 'text' | 'json' | 'hex'

const decoder = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

/** The bytes as UTF-8 text, or undefined when they are not valid UTF-8. */
export function utf8OrUndefined(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes)
  } catch {
    return undefined
  }
}

export function utf8Bytes(text: string): Uint8Array {
  return encoder.encode(text)
}

/** The result of reading bytes as JSON: the formatted text, or why it is not JSON. */
export type JsonView = { ok: true; formatted: string; value: unknown } | { ok: false; error: string }

export function jsonView(bytes: Uint8Array): JsonView {
  const text = utf8OrUndefined(bytes)
  if (text === undefined) return { ok: false, error: 'not UTF-8 text' }
  return parseJsonText(text)
}

/** Validates JSON text (what an editor is about to save). */
export function parseJsonText(text: string): JsonView {
  if (text.trim() === '') return { ok: false, error: 'empty' }
  try {
    const value = JSON.parse(text) as unknown
    return { ok: true, value, formatted: JSON.stringify(value, null, 2) }
  } catch (err) {
    return { ok: false, error: (err as Error).message }
  }
}

/** Hex dump lines: offset, 16 bytes in hex, the printable ASCII. At most `maxBytes` bytes are shown. */
export function hexDump(bytes: Uint8Array, maxBytes = 64 * 1024): string {
  const lines: string[] = []
  const n = Math.min(bytes.length, maxBytes)
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n))
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ')
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('')
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`)
  }
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes`)
  return lines.join('\n')
}

/** Hex for editing: the bytes as pairs of hex digits, 16 to a line. */
export function toHex(bytes: Uint8Array): string {
  const lines: string[] = []
  for (let off = 0; off < bytes.length; off += 16)
    lines.push([...bytes.subarray(off, off + 16)].map((b) => b.toString(16).padStart(2, '0')).join(' '))
  return lines.join('\n')
}

/** Parses hex digits (whitespace ignored; an optional 0x prefix per byte); throws on anything else. */
export function parseHex(text: string): Uint8Array {
  const digits = text.replace(/0x/gi, '').replace(/\s+/g, '')
  if (!/^[0-9a-fA-F]*$/.test(digits)) throw new Error('hex digits only (0-9, a-f), spaces allowed')
  if (digits.length % 2 !== 0) throw new Error(`an odd number of hex digits (${digits.length})`)
  const out = new Uint8Array(digits.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(digits.slice(2 * i, 2 * i + 2), 16)
  return out
}

/** The bytes as a format shows them (text falls back to hex for bytes that are not UTF-8). */
export function render(bytes: Uint8Array, format: DataFormat): { text: string; note?: string } {
  if (format === 'hex') return { text: hexDump(bytes) }
  const text = utf8OrUndefined(bytes)
  if (text === undefined) return { text: hexDump(bytes), note: 'not UTF-8 text: shown as hex' }
  if (format === 'text') return { text }
  const j = parseJsonText(text)
  return j.ok ? { text: j.formatted } : { text, note: `not valid JSON: ${j.error}` }
}

/** What the editor starts with for a format. */
export function editable(bytes: Uint8Array, format: DataFormat): string {
  if (format === 'hex') return toHex(bytes)
  const text = utf8OrUndefined(bytes)
  if (text === undefined) return toHex(bytes)
  if (format === 'json') {
    const j = parseJsonText(text)
    return j.ok ? j.formatted : text
  }
  return text
}

/** The bytes an editor's text stands for in a format; throws with the reason when it is invalid. */
export function encode(text: string, format: DataFormat): Uint8Array {
  if (format === 'hex') return parseHex(text)
  if (format === 'json') {
    const j = parseJsonText(text)
    if (!j.ok) throw new Error(`not valid JSON: ${j.error}`)
  }
  return utf8Bytes(text)
}

export interface DiffLine {
  op: ' ' | '-' | '+'
  line: string
}

/**
 * A line diff (longest common subsequence) from `a` to `b`. Inputs of more
 * than `maxLines` lines each are compared as a whole (all of a removed, all
 * of b added), which bounds the work at maxLines² steps.
 */
export function lineDiff(a: string, b: string, maxLines = 2000): DiffLine[] {
  const x = a.split('\n')
  const y = b.split('\n')
  if (x.length > maxLines || y.length > maxLines)
    return [
      ...x.map((line) => ({ op: '-' as const, line })),
      ...y.map((line) => ({ op: '+' as const, line })),
    ]
  const n = x.length
  const m = y.length
  // lcs[i][j]: the LCS length of x[i..] and y[j..], in one flat array.
  const lcs = new Uint32Array((n + 1) * (m + 1))
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i * (m + 1) + j] =
        x[i] === y[j]
          ? lcs[(i + 1) * (m + 1) + j + 1]! + 1
          : Math.max(lcs[(i + 1) * (m + 1) + j]!, lcs[i * (m + 1) + j + 1]!)
  const out: DiffLine[] = []
  let i = 0
  let j = 0
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push({ op: ' ', line: x[i]! })
      i++
      j++
    } else if (lcs[(i + 1) * (m + 1) + j]! >= lcs[i * (m + 1) + j + 1]!) out.push({ op: '-', line: x[i++]! })
    else out.push({ op: '+', line: y[j++]! })
  }
  while (i < n) out.push({ op: '-', line: x[i++]! })
  while (j < m) out.push({ op: '+', line: y[j++]! })
  return out
}

/** A zxid as ZooKeeper prints it: 0x and lowercase hex. */
export function zxidHex(zxid: number): string {
  return zxid < 0 ? String(zxid) : `0x${zxid.toString(16)}`
}

/** The epoch and counter of a zxid (epoch * 2^32 + counter). */
export function zxidParts(zxid: number): { epoch: number; counter: number } {
  return { epoch: Math.floor(zxid / 2 ** 32), counter: zxid % 2 ** 32 }
}

/** A zxid from srvr's text (`0x…`) or a number. */
export function parseZxid(value: unknown): number | undefined {
  if (typeof value === 'number') return value
  if (typeof value !== 'string') return undefined
  const n = value.startsWith('0x') ? Number.parseInt(value.slice(2), 16) : Number(value)
  return Number.isFinite(n) ? n : undefined
}

/** Epoch milliseconds as local ISO-like text (seconds precision). */
export function time(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '-'
  const d = new Date(ms)
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

/** Byte counts for people: 1,234 B, 12.3 KiB, 4.5 MiB. */
export function bytesText(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}
