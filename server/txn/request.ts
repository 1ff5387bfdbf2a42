/**
 * PrepRequest: a write as prep takes it, after the network layer decoded
 * the wire record (or the server itself asked for a session change or a
 * reap). PrepContext: who asks, and the zxid and time the leader stamps.
 *
 * Invariants: none is checked here — prep validates every field (paths,
 * modes, TTL, data size, ACLs) before it looks at the tree.
 * Must not import anything but shared/ and server/txn/.
 */
import type { Acl, Id } from '../../shared/acl.js'
import type { CreateMode } from '../../shared/opcodes.js'
import type { ZnodeData } from '../../shared/records.js'
import type { RememberSpec } from './txn.js'

export interface CreateRequest {
  type: 'create'
  /** For sequential modes, the prefix (may end in '/'). */
  path: string
  /** null: no data (ZooKeeper's null, distinct from empty bytes). */
  data: ZnodeData
  acl: readonly Acl[]
  mode: CreateMode
  /**
   * Required (> 0) for TTL modes. For other modes leave it undefined (or
   * negative, as ZooKeeper's -1): any value >= 0 is BAD_ARGUMENTS.
   */
  ttlMs?: number
}

export interface DeleteRequest {
  type: 'delete'
  path: string
  /** -1 = any. */
  version: number
}

export interface SetDataRequest {
  type: 'setData'
  path: string
  /** null: no data (ZooKeeper's null, distinct from empty bytes). */
  data: ZnodeData
  /** -1 = any. */
  version: number
}

export interface CheckRequest {
  type: 'check'
  path: string
  /** -1 = any. */
  version: number
}

export interface SetAclRequest {
  type: 'setACL'
  path: string
  acl: readonly Acl[]
  /** Expected aversion; -1 = any. */
  version: number
}

export type MultiOpRequest = CreateRequest | DeleteRequest | SetDataRequest | CheckRequest

export interface MultiRequest {
  type: 'multi'
  ops: readonly MultiOpRequest[]
}

export interface CreateSessionRequest {
  type: 'createSession'
  /** The negotiated timeout. The new session's id is PrepContext.sessionId. */
  timeoutMs: number
}

export interface CloseSessionRequest {
  type: 'closeSession'
}

/** Remove a container or TTL znode if it is (still) eligible: ZooKeeper's deleteContainer. */
export interface ReapRequest {
  type: 'reap'
  path: string
}

export type PrepRequest =
  | CreateRequest
  | DeleteRequest
  | SetDataRequest
  | CheckRequest
  | SetAclRequest
  | MultiRequest
  | CreateSessionRequest
  | CloseSessionRequest
  | ReapRequest

export interface PrepContext {
  zxid: number
  /** The leader's clock. */
  timeMs: number
  sessionId: bigint
  /** The client's xid (0 for server-made requests). */
  cxid: number
  /** The connection's authenticated ids (ip, digest, super…). */
  authIds: readonly Id[]
  /** `user:base64(sha1(user:password))`: a connection holding this digest id bypasses ACLs. */
  superDigest?: string
  /** Largest znode data accepted; defaults to DATA_BYTES_MAX (1 MiB). */
  dataBytesMax?: number
  /** Most entries an ACL list may have, as sent and as expanded; defaults to ACL_ENTRIES_MAX_DEFAULT. */
  aclEntriesMax?: number
  /**
   * A client's exactly-once write: the Txn carries this, and a failed prep
   * is an `error` Txn too (logged and remembered, so a copy of the write
   * that arrives late is answered with it instead of being prepped again).
   */
  remember?: RememberSpec
  /**
   * The write is a local session's (made by a server without a Txn,
   * server/session/local-sessions.ts): it is not in the tree, and may still
   * write — but never own an ephemeral (its server upgrades it first).
   */
  localSession?: boolean
}
