/**
 * Txn: what the leader proposes, every server logs and applies. Prep turns
 * a client request into one; a failed request becomes an `error` Txn, which
 * the server answers without logging (the reply held behind the Txns
 * prepped before it, so per-session FIFO holds across failures) — except an
 * exactly-once write's, which is logged so that a retry finds its answer.
 *
 * Every Txn carries absolute resulting values (the create's parent
 * cversion, the new version, the final sequential path, the ephemerals a
 * closeSession deletes), so applying is deterministic and replaying a log
 * suffix over a fuzzy snapshot is idempotent.
 *
 * Invariants: `zxid` and `timeMs` are safe non-negative integers;
 * `sessionId` is a signed 64-bit bigint; multi sub-ops are only create,
 * delete, setData, check; a failed multi is an `error` Txn whose `results`
 * has one code per op (OK before the failing op, its code, then
 * RUNTIME_INCONSISTENCY); a Txn with `remember` is a client's exactly-once
 * write, whose result (an `error` one too) every server remembers.
 * Must not import anything but shared/ and server/txn/.
 */
import type { Acl } from '../../shared/acl.js'
import type { ErrorCode } from '../../shared/errors.js'
import type { CreateMode } from '../../shared/opcodes.js'
import type { ZnodeData } from '../../shared/records.js'

export interface TxnHeader {
  /** The session that sent the request (or the session being created/closed). */
  sessionId: bigint
  /** The client's xid, so the server it is connected to can match the commit to its request. */
  cxid: number
  zxid: number
  /** The leader's clock when it prepped the request (ctime/mtime, TTL expiry). */
  timeMs: number
  /** An exactly-once write: applying it also remembers its result under (sessionId, cxid). */
  remember?: RememberSpec | undefined
}

/**
 * What an exactly-once write's Txn tells every server about its session's
 * write memory (server/tree/write-memory.ts). Absolute values from the
 * leader, so every server applies the same change.
 */
export interface RememberSpec {
  /** The client has the reply of every xid below this one: their results are dropped. */
  ackXid: number
  /** The session keeps at most this many results (the leader's sessionWriteResultsMax); the oldest go first. */
  resultsMax: number
  /** … and at most this many bytes of them (sessionWriteResultBytesMax); the newest always stays. */
  resultBytesMax: number
}

export interface CreateTxn {
  type: 'create'
  /** The final path, sequence suffix included. */
  path: string
  /** null: no data (kept distinct from empty bytes, as ZooKeeper does). */
  data: ZnodeData
  /** Validated, `auth` expanded to the creator's ids. */
  acl: Acl[]
  mode: CreateMode
  /** TTL for the TTL modes, else 0. */
  ttlMs: number
  /** The parent's stored cversion after this create (ZooKeeper's CreateTxn.parentCVersion). */
  parentCversion: number
}

export interface DeleteTxn {
  type: 'delete'
  path: string
}

export interface SetDataTxn {
  type: 'setData'
  path: string
  /** null: no data (kept distinct from empty bytes, as ZooKeeper does). */
  data: ZnodeData
  /** The new version. */
  version: number
}

export interface CheckTxn {
  type: 'check'
  path: string
  /** The version checked (the node's current version). */
  version: number
}

export interface SetAclTxn {
  type: 'setACL'
  path: string
  acl: Acl[]
  /** The new aversion. */
  aversion: number
}

export type SubTxn = CreateTxn | DeleteTxn | SetDataTxn | CheckTxn

export interface MultiTxn {
  type: 'multi'
  ops: SubTxn[]
}

export interface CreateSessionTxn {
  type: 'createSession'
  timeoutMs: number
}

export interface CloseSessionTxn {
  type: 'closeSession'
  /** The session's ephemerals at prep time (outstanding changes included), sorted. */
  paths: string[]
}

/** ZooKeeper's deleteContainer (opcode 20): removes an eligible container or expired TTL znode. */
export interface DeleteContainerTxn {
  type: 'deleteContainer'
  path: string
}

export interface ErrorTxn {
  type: 'error'
  code: ErrorCode
  /** For a failed multi: one code per op. */
  results?: ErrorCode[]
}

export type TxnBody =
  | SubTxn
  | SetAclTxn
  | MultiTxn
  | CreateSessionTxn
  | CloseSessionTxn
  | DeleteContainerTxn
  | ErrorTxn

export type Txn = TxnHeader & TxnBody

/**
 * Makes a fresh body object the Txn by adding the header fields to it (no
 * spread copy: prep and decode run this for every write). `body` must not
 * be shared.
 */
export function withHeader(body: TxnBody, h: TxnHeader): Txn {
  const txn = body as Txn
  txn.sessionId = h.sessionId
  txn.cxid = h.cxid
  txn.zxid = h.zxid
  txn.timeMs = h.timeMs
  if (h.remember !== undefined) txn.remember = h.remember
  return txn
}
