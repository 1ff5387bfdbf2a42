/**
 * How the shell prints things, in zkCli's style: Stat (`cZxid = 0x…`, dates
 * as Java's Date.toString), znode data (UTF-8 text, or escaped when binary),
 * lists (`[a, b]`), watch and state events (`WatchedEvent state:SyncConnected
 * type:NodeDataChanged path:/a`), and error messages (`Node does not exist:
 * /a`, `version No is not valid : /a`).
 * Invariants: pure (the time zone is a parameter); every function returns
 * text ending in '\n' when it returns whole lines, so callers never add one.
 * Imports only shared/ and the shell's tokenizer (for its error class).
 */
import { ZkError } from '../../shared/errors.js'
import type { Stat } from '../../shared/stat.js'
import { ShellUsageError } from './shell-tokenize.js'

const WEEKDAY_MONTH: Intl.DateTimeFormatOptions = { weekday: 'short', month: 'short' }

/** Java's Date.toString(): `Thu Jan 01 00:00:00 UTC 1970`, in `timeZone` (default: the local zone). */
export function formatJavaDate(ms: number, timeZone?: string): string {
  const fmt = new Intl.DateTimeFormat('en-US', {
    ...WEEKDAY_MONTH,
    day: '2-digit',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
    ...(timeZone === undefined ? {} : { timeZone }),
  })
  const parts = new Map(fmt.formatToParts(new Date(ms)).map((p) => [p.type, p.value]))
  const p = (t: Intl.DateTimeFormatPartTypes): string => parts.get(t) ?? '?'
  return `${p('weekday')} ${p('month')} ${p('day')} ${p('hour')}:${p('minute')}:${p('second')} ${p('timeZoneName')} ${p('year')}`
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`
}

/** zkCli's StatPrinter, field by field in its order. */
export function formatStat(stat: Stat, timeZone?: string): string {
  return [
    `cZxid = ${hex(stat.czxid)}`,
    `ctime = ${formatJavaDate(stat.ctime, timeZone)}`,
    `mZxid = ${hex(stat.mzxid)}`,
    `mtime = ${formatJavaDate(stat.mtime, timeZone)}`,
    `pZxid = ${hex(stat.pzxid)}`,
    `cversion = ${stat.cversion}`,
    `dataVersion = ${stat.version}`,
    `aclVersion = ${stat.aversion}`,
    `ephemeralOwner = ${stat.ephemeralOwner}`,
    `dataLength = ${stat.dataLength}`,
    `numChildren = ${stat.numChildren}`,
    '',
  ].join('\n')
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/** True for text a terminal shows as written: no control characters but tab, CR and LF. */
function isPlainText(text: string): boolean {
  return !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(text)
}

/** Every byte as printable ASCII, `\\`, or `\xHH`. */
export function escapeBytes(data: Uint8Array): string {
  let out = ''
  for (const b of data) {
    if (b === 0x5c) out += '\\\\'
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b)
    else out += `\\x${b.toString(16).padStart(2, '0')}`
  }
  return out
}

/** Znode data for printing: UTF-8 text as is; anything else (invalid UTF-8, control bytes) escaped byte by byte. */
export function formatData(data: Uint8Array): string {
  try {
    const text = decoder.decode(data)
    if (isPlainText(text)) return text
  } catch {
    // Not UTF-8: fall through to the escaped form.
  }
  return escapeBytes(data)
}

/** Java's List.toString(): `[a, b]`. */
export function formatList(items: readonly string[]): string {
  return `[${items.join(', ')}]`
}

const EVENT_TYPES: Record<string, string> = {
  created: 'NodeCreated',
  deleted: 'NodeDeleted',
  dataChanged: 'NodeDataChanged',
  childrenChanged: 'NodeChildrenChanged',
}

const KEEPER_STATES: Record<string, string> = {
  connected: 'SyncConnected',
  disconnected: 'Disconnected',
  expired: 'Expired',
  closed: 'Closed',
  authFailed: 'AuthFailed',
  connecting: 'Disconnected',
}

/** The KeeperState name zkCli prints for an SDK state. */
export function keeperStateName(state: string): string {
  return KEEPER_STATES[state] ?? state
}

/** zkCli's watcher output for a znode event. */
export function formatWatchEvent(event: { type: string; path: string }, state: string): string {
  const type = EVENT_TYPES[event.type] ?? event.type
  return `\nWATCHER::\n\nWatchedEvent state:${keeperStateName(state)} type:${type} path:${event.path}\n`
}

/** zkCli's watcher output for a connection state change. */
export function formatStateEvent(state: string): string {
  return `\nWATCHER::\n\nWatchedEvent state:${keeperStateName(state)} type:None path:null\n`
}

/** NO_NODE → NoNode, as KeeperException.Code names read. */
function codeWords(code: string): string {
  return code
    .toLowerCase()
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('')
}

/** zkCli's messages (CliWrapperException), by code; others `KeeperErrorCode = Code for /path`. */
const ZK_MESSAGES: Record<string, string> = {
  NO_NODE: 'Node does not exist: ',
  NO_CHILDREN_FOR_EPHEMERALS: 'Ephemerals cannot have children: ',
  NODE_EXISTS: 'Node already exists: ',
  NOT_EMPTY: 'Node not empty: ',
  NOT_READ_ONLY: 'Not a read-only call: ',
  INVALID_ACL: 'Acl is not valid : ',
  NO_AUTH: 'Insufficient permission : ',
  BAD_ARGUMENTS: 'Arguments are not valid : ',
  BAD_VERSION: 'version No is not valid : ',
}

/** One line (no newline) describing a failed command; `path` is used when the error names none. */
export function describeError(err: unknown, path?: string): string {
  if (ZkError.is(err)) {
    const p = err.path ?? path
    const prefix = ZK_MESSAGES[err.code]
    if (prefix !== undefined && p !== undefined) return prefix + p
    return `KeeperErrorCode = ${codeWords(err.code)}${p === undefined ? '' : ` for ${p}`}`
  }
  if (err instanceof ShellUsageError) return err.message
  if (err instanceof Error) return err.message
  return String(err)
}
