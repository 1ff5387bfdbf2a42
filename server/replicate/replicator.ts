/**
 * Replicator: how a server gets a Txn committed. The standalone one logs to
 * its own storage and commits once the write is durable (a quorum of one);
 * the ZAB one (zab-replicator.ts, on zab-driver.ts) runs the atomic broadcast. The request path
 * sees only this interface, so a standalone server and an ensemble member
 * run the same request path.
 */

export type Role = 'standalone' | 'leading' | 'following' | 'observing' | 'looking'

export type { LogEntry } from '../core/log-entry.js'

import type { Membership, ProposeResult } from '../zab/index.js'

export interface ReplicatorEvents {
  /** A Txn is committed; called in zxid order. */
  commit(zxid: number, txn: Uint8Array): void
  /** Leader or standalone: a Txn was proposed (its commit follows; commit latency is measured between). */
  proposed?(zxid: number): void
  /** The role changed (serving clients opens or closes). */
  role(role: Role, epoch: number): void
  /** A follower forwarded a request to us (the leader). */
  forwarded(from: number, payload: Uint8Array): void
  /** The leader answered something we forwarded (e.g. a failed prep). */
  leaderMessage(payload: Uint8Array): void
  /** A sync finished: everything committed before it began is applied here. */
  syncDone(requestId: number): void
  /** A sync could not be served (no leader): the client gets CONNECTION_LOSS. */
  syncFailed?(requestId: number): void
  /** A durability or protocol failure this server must not continue from. */
  fatal(err: Error): void
  /** The tree was replaced by a snapshot from the leader (SNAP): state derived from it is stale. */
  restored?(): void
}

export interface Replicator {
  readonly role: Role
  readonly epoch: number
  /**
   * Leader: the last zxid of the history it took over. Until the tree has
   * applied it, prep would see a stale tree, so writes wait (ZAB commits the
   * history on establishment, so this gap is at most one event-loop turn).
   */
  readonly historyEnd: number
  /** Leader or standalone: the zxid the next proposal will get. */
  nextZxid(): number
  /** Leader or standalone: the zxid of the last Txn in the log (proposed, perhaps not yet committed). */
  lastLoggedZxid(): number
  /** Leader or standalone: replicate a prepped Txn at `zxid` (which must be nextZxid()). */
  propose(zxid: number, txn: Uint8Array): void
  /**
   * Leader: propose a membership config entry (server/zab/membership.ts),
   * which the ZAB core may refuse (one in flight already, no synced quorum
   * of the new config, malformed); standalone: always refused (not-leader).
   */
  proposeConfig(entry: Uint8Array): ProposeResult
  /** The membership view of the ZAB core (committed config, configs in flight); undefined standalone. */
  membership(): Pick<Membership, 'committed' | 'pending'> | undefined
  /** Follower or observer: send a payload to the leader, FIFO with everything else. */
  toLeader(payload: Uint8Array): void
  /** Leader: send a payload to one follower, FIFO after the commits already sent to it. */
  toFollower(serverId: number, payload: Uint8Array): void
  /** Starts a linearizable sync; `syncDone(requestId)` follows. */
  sync(requestId: number): void
  /** Periodic driver (timers live in the caller). */
  tick(nowMs: number): void
  /** Everything proposed so far is durable; then stop. */
  close(): Promise<void>
  /** Human-readable state for `srvr`/`stat`. */
  describe(): Record<string, string | number>
}
