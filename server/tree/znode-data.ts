/**
 * How a znode's bytes are held in memory. Small data (the common case) is
 * kept as a one-byte ("latin1") JS string: one heap object of 16 bytes plus
 * the data, where a Uint8Array costs a JS object, an ArrayBuffer and an
 * off-heap backing store (~250 bytes of overhead). Large data keeps a
 * private Uint8Array copy, where that overhead no longer matters. Null data
 * (a znode created or set with none, ZooKeeper's null) is null, distinct
 * from empty bytes ('').
 *
 * Invariants: fromBytes never aliases its input (a decoded Txn's buffer is
 * not retained); toBytes(fromBytes(b)) equals b byte for byte, and null for
 * null; every string built here has only code units < 256.
 * Must not import anything but shared/.
 */
import type { JuteWriter } from '../../shared/jute.js'
import type { ZnodeData } from '../../shared/records.js'

export type StoredData = string | Uint8Array | null

/** Data up to this many bytes is stored as a one-byte string. */
export const INLINE_DATA_BYTES_MAX = 4096

export function fromBytes(bytes: ZnodeData): StoredData {
  return bytes === null ? null : fromRange(bytes, 0, bytes.length)
}

/**
 * fromBytes of bytes[at, at + n), or of null for n = -1: a snapshot's
 * znode data read where it lies in its chunk, without a view made first.
 */
export function fromRange(bytes: Uint8Array, at: number, n: number): StoredData {
  if (n === -1) return null
  if (n === 0) return ''
  // new Uint8Array copies whatever bytes is (a Buffer's slice() would be a view of its source).
  if (n > INLINE_DATA_BYTES_MAX) return new Uint8Array(bytes.subarray(at, at + n))
  // Native latin1 decoding: one flat one-byte string, no argument list of n numbers
  // (String.fromCharCode.apply allocated ~8 bytes per data byte before the string).
  return latin1String(bytes, at, n)
}

/** bytes[at, at + n) as a one-byte string, each byte one code unit (for ASCII, its UTF-8 reading too). */
export function latin1String(bytes: Uint8Array, at: number, n: number): string {
  const from = bytes.byteOffset + at
  return latin1View(bytes.buffer).toString('latin1', from, from + n)
}

/**
 * A Buffer over the whole of the last ArrayBuffer read from (or written to,
 * by writeData), reused while reads come from the same one: a snapshot's znodes all come from a few
 * chunks, and a Buffer per znode was 5% of rebuilding 1M of them. It keeps
 * that one buffer (a Txn's bytes, a chunk of at most a few MiB) alive
 * until a read from another.
 */
let lastBuffer: ArrayBufferLike | undefined
let lastView: Buffer = Buffer.alloc(0)

function latin1View(buffer: ArrayBufferLike): Buffer {
  if (buffer !== lastBuffer) {
    lastView = Buffer.from(buffer)
    lastBuffer = buffer
  }
  return lastView
}

/** The bytes of stored data (null for null). A stored Uint8Array is returned as is: callers must not mutate it. */
export function toBytes(data: StoredData): ZnodeData {
  if (typeof data !== 'string') return data
  const out = new Uint8Array(data.length)
  // Into a buffer of its own (not Buffer's shared pool): callers may keep or transfer it.
  Buffer.from(out.buffer, 0, out.length).write(data, 0, 'latin1')
  return out
}

/**
 * Writes stored data as a jute buffer, as `w.buffer(toBytes(data))` would,
 * without the copy: a snapshot writes every znode's data, and toBytes (an
 * ArrayBuffer, a Buffer and a copy per znode) was 40% of writing a snapshot
 * of 1 KiB znodes, plus the collection of those buffers.
 */
export function writeData(w: JuteWriter, data: StoredData): void {
  if (typeof data !== 'string') {
    w.buffer(data)
    return
  }
  const n = data.length
  w.int(n).raw(n, (buf, at) => {
    latin1View(buf.buffer).write(data, buf.byteOffset + at, n, 'latin1')
  })
}

/** Stat.dataLength: 0 for null data, as ZooKeeper reports it. */
export function dataLength(data: StoredData): number {
  return data === null ? 0 : data.length
}
