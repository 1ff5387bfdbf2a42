/**
 * PrepView: what prep reads of the replicated state. The DataTree
 * satisfies it (its NodeMeta is a superset of PrepNode), and OutstandingChanges layers the effects of prepped-but-unapplied Txns
 * over it.
 *
 * Invariants: PrepNode.cversion is the STORED cversion (child creates);
 * ephemeralOwner is 0n unless kind is 'ephemeral'; ephemerals() is sorted.
 * Must not import anything but shared/, server/txn/ and server/tree/ types.
 */
import type { Acl } from '../../shared/acl.js'
import type { NodeKindName } from '../tree/tree-types.js'

export type { NodeKindName }

export interface PrepNode {
  version: number
  /** Stored cversion: child creates so far, the next sequence number. */
  cversion: number
  aversion: number
  numChildren: number
  kind: NodeKindName
  ephemeralOwner: bigint
  ttlMs: number
  mtime: number
  acl: readonly Acl[]
}

export interface PrepView {
  nodeMeta(path: string): PrepNode | undefined
  hasSession(sessionId: bigint): boolean
  /** The session's ephemeral paths, sorted. */
  ephemerals(sessionId: bigint): readonly string[]
}
