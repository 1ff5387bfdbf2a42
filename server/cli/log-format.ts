/**
 * How `conclave server` prints its log: pino's JSON lines (for collectors,
 * and whenever stdout is a file or a pipe), or one readable line per event on
 * a terminal:
 *
 *   14:03:07.412 INFO  server 1 net: connection refused  remote=10.0.0.7 reason="too many connections"
 *
 * Our own formatter rather than pino-pretty: pino-pretty adds 15 packages
 * (1.7 MB installed, against pino's 13 packages and 2.7 MB) to a server
 * that needs one line format, and as a pino transport it runs in a worker
 * thread whose buffered lines a fail-stop exit can lose. This one formats
 * each line synchronously on the main thread, which suits the volume a
 * person reads at a terminal.
 *
 * Invariants: formatLogLine is pure (the clock and colours are inputs); a
 * line that is not a JSON object is printed as it came. Imports pino only.
 */
import { type Logger, pino } from 'pino'
import { UsageError } from './args.js'

export type LogFormat = 'json' | 'pretty'
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const

/** `auto` (the default): pretty when stdout is a terminal, JSON otherwise. */
export function chooseLogFormat(flag: string | undefined, stdoutIsTty: boolean): LogFormat {
  const f = flag ?? 'auto'
  if (f === 'json' || f === 'pretty') return f
  if (f === 'auto') return stdoutIsTty ? 'pretty' : 'json'
  throw new UsageError(`--log-format (got ${JSON.stringify(f)}): expected ${LOG_FORMATS.join(', ')}`)
}

const LEVELS: Record<number, [name: string, color: string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[1;31m'],
}
const DIM = '\x1b[2m'
const RESET = '\x1b[0m'
/** Fields shown in the line's head (or not at all), not as key=value. */
const HEAD = new Set(['level', 'time', 'msg', 'server', 'component', 'pid', 'hostname', 'err'])

export interface PrettyOptions {
  /** ANSI colours (a terminal without NO_COLOR). */
  colors: boolean
  /** Formats the event time; local HH:MM:SS.mmm by default. */
  clock?: (epochMs: number) => string
}

/** One pino JSON line → one readable line (and the stack of an error, indented below it). */
export function formatLogLine(line: string, opts: PrettyOptions): string {
  let e: Record<string, unknown>
  try {
    const v: unknown = JSON.parse(line)
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      return line.endsWith('\n') ? line : `${line}\n`
    e = v as Record<string, unknown>
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`
  }
  const paint = (color: string, text: string) => (opts.colors ? `${color}${text}${RESET}` : text)
  const [name, color] = LEVELS[Number(e.level)] ?? [String(e.level).padEnd(5), '']
  const time = typeof e.time === 'number' ? (opts.clock ?? localTime)(e.time) : ''
  const who = [e.server === undefined ? '' : `server ${String(e.server)}`, e.component ?? '']
    .filter((s) => s !== '')
    .join(' ')
  const fields = Object.entries(e)
    .filter(([k]) => !HEAD.has(k))
    .map(([k, v]) => `${k}=${formatValue(v)}`)
  const err = e.err as { type?: string; message?: string; stack?: string } | undefined
  if (err !== undefined && typeof err === 'object')
    fields.push(`err=${formatValue(`${err.type ?? 'Error'}: ${err.message ?? ''}`)}`)
  let out = `${paint(DIM, time)} ${paint(color, name)} ${who === '' ? '' : paint(DIM, `${who}: `)}${String(e.msg ?? '')}`
  if (fields.length > 0) out += `  ${paint(DIM, fields.join(' '))}`
  const stack = typeof err?.stack === 'string' ? err.stack.split('\n').slice(1) : []
  for (const s of stack) out += `\n    ${s.trim()}`
  return `${out}\n`
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)
  if (typeof v === 'object' && v !== null) return JSON.stringify(v)
  return String(v)
}

function localTime(ms: number): string {
  const d = new Date(ms)
  const two = (n: number) => String(n).padStart(2, '0')
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`
}

export interface LoggerOptions {
  level: string
  serverId: number
  format: LogFormat
  /** Where lines go: process.stdout by default. */
  out?: { write(text: string): unknown; isTTY?: boolean }
  /** Colours for the pretty format; by default when `out` is a terminal and NO_COLOR is unset. */
  colors?: boolean
}

/** The server's pino logger: the same fields in both formats, JSON or pretty lines. */
export function createServerLogger(opts: LoggerOptions): Logger {
  const out = opts.out ?? process.stdout
  const base = { level: opts.level, base: { server: opts.serverId } }
  const colors = opts.colors ?? (out.isTTY === true && !process.env.NO_COLOR)
  if (opts.format === 'json')
    return opts.out === undefined ? pino(base) : pino(base, { write: (s: string) => out.write(s) })
  return pino(base, { write: (s: string) => out.write(formatLogLine(s, { colors })) })
}
