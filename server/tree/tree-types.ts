/**
 * Types the DataTree exposes: change events (for the watch manager), the
 * per-node view prep reads (NodeMeta), the arguments of the tree's
 * mutation primitives, and the apply mode.
 *
 * Invariants: NodeMeta.cversion is the STORED cversion (child creates, the
 * sequential-suffix counter), never the value clients are shown; times are
 * ms since the epoch of the leader's clock; zxids are safe integers.
 * Must not import anything but shared/.
 */
import type { Acl } from '../../shared/acl.js'
import type { CreateMode } from '../../shared/opcodes.js'
import type { ZnodeData } from '../../shared/records.js'

export type ChangeType = 'created' | 'deleted' | 'dataChanged' | 'childrenChanged'

/** One change to the tree, in the order it happened, for the watch manager. */
export interface ChangeEvent {
  type: ChangeType
  path: string
  zxid: number
}

export type NodeKindName = 'persistent' | 'ephemeral' | 'container' | 'ttl'

/** What prep needs to know about a znode (and a full internal view of its stat). */
export interface NodeMeta {
  czxid: number
  mzxid: number
  pzxid: number
  ctime: number
  mtime: number
  version: number
  /** Stored cversion: the number of child creates (the next sequence number). */
  cversion: number
  aversion: number
  numChildren: number
  dataLength: number
  kind: NodeKindName
  /** The owning session for an ephemeral znode, else 0n. */
  ephemeralOwner: bigint
  /** The TTL of a TTL znode, else 0. */
  ttlMs: number
  acl: readonly Acl[]
}

/** Arguments of DataTree.createNode: absolute values, so replay is idempotent. */
export interface CreateNodeArgs {
  /** The final path (sequence suffix already appended). */
  path: string
  /** null: no data (distinct from empty bytes). */
  data: ZnodeData
  /** Already validated and expanded (no `auth` ids). */
  acl: readonly Acl[]
  mode: CreateMode
  /** The creating session (the owner when the mode is ephemeral). */
  sessionId: bigint
  /** TTL in ms for TTL modes, else 0. */
  ttlMs: number
  /** The parent's stored cversion after this create. */
  parentCversion: number
  zxid: number
  timeMs: number
}

/**
 * 'live': a committed Txn that prep produced against this very state; a
 * Txn that does not fit is a programmer error (assert, fail-stop).
 * 'replay': recovery over a fuzzy snapshot; operations that no longer fit
 * (create of an existing node, delete of a missing one…) are skipped, with
 * only their idempotent parent effects applied.
 */
export type ApplyMode = 'live' | 'replay'
