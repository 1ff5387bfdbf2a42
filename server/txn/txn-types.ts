/**
 * Txn: a committed change to the tree, as prep makes it and the log stores
 * it. Every Txn carries absolute resulting values (the parent's new stored
 * cversion, the new version, the new aversion), so applying it is
 * idempotent and replaying a log suffix over a fuzzy snapshot gives the
 * same tree (ZooKeeper's fuzzy-snapshot rule).
 *
 * Pure: imports only shared/.
 */
import type { Acl } from '../../shared/acl.js'

export type TxnOp =
  | { type: 'createSession'; sessionId: bigint; timeoutMs: number }
  | {
      type: 'closeSession'
      sessionId: bigint
      /**
       * The session's ephemerals when it was prepped, sorted. Live apply
       * deletes what the tree's index holds (the same set); a replay over a
       * fuzzy snapshot also needs the ones the snapshot missed, to advance
       * their parents' pzxid (ZooKeeper's CloseSessionTxn, ZOOKEEPER-3145).
       */
      paths: string[]
    }
  | {
      type: 'create'
      /** The request opcode (create, create2, createContainer, createTTL): it shapes the reply. */
      opcode: number
      path: string
      data: Uint8Array
      acl: Acl[]
      /** NodeKind: 0 normal, 1 ephemeral, 2 container, 3 ttl. */
      kind: number
      ephemeralOwner: bigint
      ttlMs: number
      /** The parent's stored cversion after this create. */
      parentCVersion: number
    }
  | { type: 'delete'; path: string }
  | { type: 'setData'; path: string; data: Uint8Array; version: number }
  | { type: 'setACL'; path: string; acl: Acl[]; aversion: number }
  | { type: 'check'; path: string }
  | { type: 'multi'; ops: TxnOp[] }
  /** Removal of a container or an expired TTL node (ZooKeeper's deleteContainer). */
  | { type: 'reap'; path: string }

export interface Txn {
  sessionId: bigint
  /** The client's xid (0 for Txns the server makes itself). */
  cxid: number
  zxid: number
  /** The leader's clock when it prepped the Txn. */
  timeMs: number
  op: TxnOp
}
