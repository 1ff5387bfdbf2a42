/**
 * Maps wire responses to the SDK's typed results: Stat, multi results
 * (success list, or the ZkError of a failed multi with one entry per op),
 * watch event types.
 *
 * Invariants: returned paths are relative to the chroot; a failed multi's
 * ZkError has the first failing op's code and path. Pure.
 * Imports only shared/ and client/types (no node:*).
 */
import { type ErrorCode, errorCodeOf, type MultiErrorResult, ZkError } from '../shared/errors.js'
import { EventType, OpCode } from '../shared/opcodes.js'
import { stripChroot } from '../shared/paths.js'
import type { MultiResult, MultiWriteOp } from '../shared/records.js'
import { formatSessionId } from '../shared/session-id.js'
import type { Stat, WireStat } from '../shared/stat.js'
import type { OpResult, WatchEventType } from './types.js'

/** statFromWire, without a bigint-to-string conversion for the common non-ephemeral node. */
export function toStat(w: WireStat): Stat {
  return {
    czxid: w.czxid,
    mzxid: w.mzxid,
    pzxid: w.pzxid,
    ctime: w.ctime,
    mtime: w.mtime,
    version: w.version,
    cversion: w.cversion,
    aversion: w.aversion,
    ephemeralOwner: w.ephemeralOwner === 0n ? '0x0' : formatSessionId(w.ephemeralOwner),
    dataLength: w.dataLength,
    numChildren: w.numChildren,
  }
}

/** A server path as the client sees it (unchanged if outside the chroot). */
export function clientPath(chroot: string | undefined, serverPath: string): string {
  return chroot === undefined ? serverPath : (stripChroot(chroot, serverPath) ?? serverPath)
}

function okResult(r: MultiResult, chroot: string | undefined): OpResult {
  switch (r.type) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      return { op: 'create', path: clientPath(chroot, r.path) }
    case OpCode.delete:
      return { op: 'delete' }
    case OpCode.setData:
      return { op: 'setData', stat: toStat(r.stat) }
    case OpCode.check:
      return { op: 'check' }
    default:
      throw new ZkError('SYSTEM_ERROR', undefined, `unexpected multi result type ${r.type}`)
  }
}

/**
 * The outcome of a multi: its results, or the ZkError to reject with when
 * any op failed (`results` then has one `{ op: 'error', code }` per op).
 */
export function multiOutcome(
  results: readonly MultiResult[],
  ops: readonly MultiWriteOp[],
  chroot: string | undefined,
): OpResult[] | ZkError {
  let failed = -1
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!
    if (r.type === OpCode.error && r.err !== 0) {
      failed = i
      break
    }
  }
  if (failed < 0) {
    if (results.some((r) => r.type === OpCode.error))
      return new ZkError('SYSTEM_ERROR', undefined, 'multi reported errors that are all OK')
    return results.map((r) => okResult(r, chroot))
  }
  const errors: MultiErrorResult[] = results.map((r) => ({
    op: 'error',
    code: r.type === OpCode.error ? errorCodeOf(r.err) : ('OK' as ErrorCode),
  }))
  const code = errors[failed]!.code
  const op = ops[failed]
  const path = op === undefined ? undefined : clientPath(chroot, op.path)
  return new ZkError(code, path, undefined, errors)
}

const EVENT_NAMES = new Map<number, WatchEventType>([
  [EventType.nodeCreated, 'created'],
  [EventType.nodeDeleted, 'deleted'],
  [EventType.nodeDataChanged, 'dataChanged'],
  [EventType.nodeChildrenChanged, 'childrenChanged'],
])

/** The SDK's name for a WatcherEvent type; undefined for session and removal events. */
export function eventTypeName(type: number): WatchEventType | undefined {
  return EVENT_NAMES.get(type)
}
