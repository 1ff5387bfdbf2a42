/**
 * applyTxn / replayTxn: dispatch a Txn onto the tree's absolute-valued
 * primitives, and build the reply result and the change events.
 * The tree is reached through the TxnTarget port (DataTree implements it),
 * so this module needs only the tree's types, not its class.
 *
 * Invariants: live apply of a Txn prep produced against the same state
 * always succeeds (anything else is a programmer error: the tree asserts,
 * fail-stop); replay skips what no longer fits; events come in the order
 * the changes happen; a failed (error) Txn changes nothing but lastZxid
 * (and, for an exactly-once write, its session's write memory: every
 * result of such a write is remembered, failures too).
 * Must not import anything but shared/, server/txn/ and server/tree/ types.
 */
import type { Acl } from '../../shared/acl.js'
import { assert } from '../../shared/assert.js'
import type { ErrorCode } from '../../shared/errors.js'
import { JuteWriter } from '../../shared/jute.js'
import type { ZnodeData } from '../../shared/records.js'
import type { WireStat } from '../../shared/stat.js'
import type { ApplyMode, ChangeEvent, ChangeType, CreateNodeArgs } from '../tree/tree-types.js'
import type { RememberedWrite } from '../tree/write-memory.js'
import { encodeResult } from './result-codec.js'
import type { RememberSpec, SubTxn, Txn } from './txn.js'

export type { ApplyMode, ChangeEvent, ChangeType, CreateNodeArgs }

/** The tree's mutation primitives (DataTree implements them). */
export interface TxnTarget {
  beginTxn(zxid: number, mode: ApplyMode): void
  createNode(a: CreateNodeArgs, mode: ApplyMode, events: ChangeEvent[]): WireStat | undefined
  deleteNode(path: string, zxid: number, mode: ApplyMode, events: ChangeEvent[]): boolean
  setData(
    path: string,
    data: ZnodeData,
    version: number,
    at: { zxid: number; timeMs: number },
    mode: ApplyMode,
    events: ChangeEvent[],
  ): WireStat | undefined
  setAcl(path: string, acl: readonly Acl[], aversion: number, mode: ApplyMode): WireStat | undefined
  createSession(sessionId: bigint, timeoutMs: number, mode: ApplyMode): void
  /** Keeps an exactly-once write's result in its session's write memory; false if the session is gone. */
  rememberWrite(sessionId: bigint, write: RememberedWrite, spec: RememberSpec, mode: ApplyMode): boolean
  closeSession(
    sessionId: bigint,
    paths: readonly string[],
    zxid: number,
    mode: ApplyMode,
    events: ChangeEvent[],
  ): string[]
}

export type OpResult =
  | { type: 'create'; path: string; stat: WireStat }
  | { type: 'delete' }
  | { type: 'setData'; stat: WireStat }
  | { type: 'check' }

export type TxnResult =
  | OpResult
  | { type: 'setACL'; stat: WireStat }
  | { type: 'multi'; results: OpResult[] }
  | { type: 'createSession'; timeoutMs: number }
  | { type: 'closeSession'; deleted: string[] }
  | { type: 'deleteContainer'; path: string }
  | { type: 'error'; code: ErrorCode; results?: ErrorCode[] }

export interface ApplyResult {
  zxid: number
  sessionId: bigint
  cxid: number
  result: TxnResult
  /** Changes in the order they happened (deleted before the parent's childrenChanged, etc.). */
  events: ChangeEvent[]
  /** An exactly-once write of a live session: its result as its write memory keeps it (result-codec.ts). */
  remembered?: Uint8Array
}

/** Reused for every remembered result (encodeResult returns a copy). */
const resultWriter = new JuteWriter(256)

/** Applies a committed Txn to the tree (live). */
export function applyTxn(tree: TxnTarget, txn: Txn): ApplyResult {
  const events: ChangeEvent[] = []
  tree.beginTxn(txn.zxid, 'live')
  const result = dispatch(tree, txn, 'live', events)
  const out: ApplyResult = { zxid: txn.zxid, sessionId: txn.sessionId, cxid: txn.cxid, result, events }
  if (txn.remember !== undefined) {
    const bytes = remember(tree, txn, txn.remember, result, 'live')
    if (bytes !== undefined) out.remembered = bytes
  }
  return out
}

/** Applies a logged Txn during recovery, over a (possibly fuzzy) snapshot: idempotent. */
export function replayTxn(tree: TxnTarget, txn: Txn): ChangeEvent[] {
  const events: ChangeEvent[] = []
  tree.beginTxn(txn.zxid, 'replay')
  const result = dispatch(tree, txn, 'replay', events)
  // A result replay computed while skipping (the tree was ahead) is never kept: the write
  // memory, read after every znode in a fuzzy snapshot, already holds such a write's result.
  if (txn.remember !== undefined) remember(tree, txn, txn.remember, result, 'replay')
  return events
}

function remember(
  tree: TxnTarget,
  txn: Txn,
  spec: RememberSpec,
  result: TxnResult,
  mode: ApplyMode,
): Uint8Array | undefined {
  const bytes = encodeResult(result, resultWriter)
  const kept = tree.rememberWrite(txn.sessionId, { xid: txn.cxid, zxid: txn.zxid, result: bytes }, spec, mode)
  return kept ? bytes : undefined
}

function dispatch(tree: TxnTarget, txn: Txn, mode: ApplyMode, events: ChangeEvent[]): TxnResult {
  switch (txn.type) {
    case 'create':
    case 'delete':
    case 'setData':
    case 'check':
      return applyOp(tree, txn, txn, mode, events)
    case 'setACL':
      return { type: 'setACL', stat: present(tree.setAcl(txn.path, txn.acl, txn.aversion, mode), mode) }
    case 'multi':
      return { type: 'multi', results: txn.ops.map((op) => applyOp(tree, op, txn, mode, events)) }
    case 'createSession':
      tree.createSession(txn.sessionId, txn.timeoutMs, mode)
      return { type: 'createSession', timeoutMs: txn.timeoutMs }
    case 'closeSession':
      return {
        type: 'closeSession',
        deleted: tree.closeSession(txn.sessionId, txn.paths, txn.zxid, mode, events),
      }
    case 'deleteContainer':
      tree.deleteNode(txn.path, txn.zxid, mode, events)
      return { type: 'deleteContainer', path: txn.path }
    case 'error':
      return txn.results === undefined
        ? { type: 'error', code: txn.code }
        : { type: 'error', code: txn.code, results: txn.results }
  }
}

function applyOp(
  tree: TxnTarget,
  op: SubTxn,
  hdr: { zxid: number; timeMs: number; sessionId: bigint },
  mode: ApplyMode,
  events: ChangeEvent[],
): OpResult {
  switch (op.type) {
    case 'create': {
      const args: CreateNodeArgs = {
        path: op.path,
        data: op.data,
        acl: op.acl,
        mode: op.mode,
        sessionId: hdr.sessionId,
        ttlMs: op.ttlMs,
        parentCversion: op.parentCversion,
        zxid: hdr.zxid,
        timeMs: hdr.timeMs,
      }
      return { type: 'create', path: op.path, stat: present(tree.createNode(args, mode, events), mode) }
    }
    case 'delete':
      tree.deleteNode(op.path, hdr.zxid, mode, events)
      return { type: 'delete' }
    case 'setData': {
      const stat = tree.setData(op.path, op.data, op.version, hdr, mode, events)
      return { type: 'setData', stat: present(stat, mode) }
    }
    case 'check':
      return { type: 'check' }
  }
}

/** Live apply always yields a Stat; replay may not (the op was skipped) and nobody reads it. */
function present(stat: WireStat | undefined, mode: ApplyMode): WireStat {
  if (stat !== undefined) return stat
  assert(mode === 'replay', 'live apply produced no stat')
  return SKIPPED
}

const SKIPPED: WireStat = Object.freeze({
  czxid: 0,
  mzxid: 0,
  ctime: 0,
  mtime: 0,
  version: 0,
  cversion: 0,
  aversion: 0,
  ephemeralOwner: 0n,
  dataLength: 0,
  numChildren: 0,
  pzxid: 0,
})
