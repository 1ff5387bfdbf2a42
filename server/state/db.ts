/**
 * Db: what the server needs of its replicated state, in one narrow
 * interface over the DataTree (server/tree) and prep (server/txn): reads,
 * prepping a request into a Txn, applying a committed Txn, sessions,
 * reaping, snapshots. node.ts and read-ops.ts program against this, so the
 * tree's internals stay its own.
 */
import type { Acl, Id } from '../../shared/acl.js'
import type { ErrorCode } from '../../shared/errors.js'
import type { ZnodeData } from '../../shared/records.js'
import type { WireStat } from '../../shared/stat.js'
import type { TxnResult } from '../txn/apply.js'
import type { WatchChange } from '../watch/watch-table.js'

export type { TxnResult }

export interface NodeView {
  readonly stat: WireStat
  readonly data: ZnodeData
  readonly acl: readonly Acl[]
}

/** A client write, as the server hands it to prep (mapped from the wire request). */
export type WriteRequest =
  | { kind: 'create'; path: string; data: ZnodeData; acl: Acl[]; flags: number; ttlMs: number; op: number }
  | { kind: 'delete'; path: string; version: number }
  | { kind: 'setData'; path: string; data: ZnodeData; version: number }
  | { kind: 'setACL'; path: string; acl: Acl[]; version: number }
  | { kind: 'check'; path: string; version: number }
  | { kind: 'multi'; ops: WriteRequest[] }
  | { kind: 'createSession'; sessionId: bigint; timeoutMs: number }
  | { kind: 'closeSession'; sessionId: bigint }
  | { kind: 'reap'; path: string }

export interface PrepContext {
  zxid: number
  timeMs: number
  sessionId: bigint
  cxid: number
  authIds: readonly Id[]
}

/** A failed multi carries one code per op. */
export type PrepOutcome = { ok: true; txn: Uint8Array } | { ok: false; err: ErrorCode; multi?: ErrorCode[] }

export interface ApplyOutcome {
  sessionId: bigint
  cxid: number
  result: TxnResult
  /** Watch changes, in the order they happened. */
  changes: WatchChange[]
  /** Sessions this Txn created or closed. */
  sessionCreated?: { id: bigint; timeoutMs: number }
  sessionClosed?: bigint
}

export interface Db {
  readonly lastZxid: number
  digest(): string
  get(path: string): NodeView | undefined
  children(path: string): string[] | undefined
  canAccess(acl: readonly Acl[], perm: number, authIds: readonly Id[]): boolean
  ephemerals(sessionId: bigint): string[]
  descendantCount(path: string): number
  sessions(): Iterable<{ id: bigint; timeoutMs: number }>
  hasSession(id: bigint): boolean
  /** Turns a write into a Txn, seeing earlier prepped-but-unapplied Txns. */
  prep(req: WriteRequest, ctx: PrepContext): PrepOutcome
  /** Applies a committed Txn (live). */
  apply(zxid: number, txn: Uint8Array): ApplyOutcome
  /** Applies a Txn from the log during recovery (idempotent over a fuzzy snapshot). */
  replay(zxid: number, txn: Uint8Array): void
  /** Forgets prepped Txns that will never be applied (leader change). */
  dropOutstanding(): void
  reapable(nowMs: number): string[]
  nextReapAtMs(): number | undefined
  /** A snapshot: the zxid it starts from and its chunks, to drain a few per event-loop turn. */
  snapshot(): { zxid: number; chunks: Iterator<Uint8Array> }
  nodeCount(): number
  /** The tree's estimated size in bytes (DataTree.sizeEstimateBytes), for the treeBytesMax quota. */
  sizeEstimateBytes(): number
}
