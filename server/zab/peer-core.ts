/**
 * PeerCore: what the role logic (leadership.ts, learnership.ts) may see and
 * do on the peer that hosts it. ZabPeer implements it; the split keeps each
 * role's protocol in its own file without sharing mutable fields directly.
 *
 * Invariants kept by the implementation: every log change goes through
 * append/truncateAfter/installSnapshot, which also queue the matching
 * persist write; acceptedEpoch/currentEpoch only grow; commitZxid only grows
 * and commits are emitted in zxid order.
 *
 * Must not import anything but shared/, server/core and server/zab (pure).
 */
import type { ConfigAt, Membership } from './membership.js'
import type { OutputBuilder } from './output.js'
import type { HistorySource, LogEntry, ReceivedSnapshot, ServerId, SnapshotSource } from './types.js'
import type { ZabLog } from './zab-log.js'

export interface PeerLimits {
  readonly initLimitTicks: number
  readonly syncLimitTicks: number
  readonly snapChunkBytesMax: number
  /** Most entries a DIFF reads from durable history (older than the in-memory log); past it, SNAP. */
  readonly historyDiffEntriesMax: number
}

export interface PeerCore {
  readonly id: ServerId
  /** Who votes and what a quorum is: the committed config and those accepted after it (membership.ts). */
  readonly membership: Membership
  readonly limits: PeerLimits
  readonly log: ZabLog
  readonly snapshots: SnapshotSource
  /** Durable history older than the in-memory log, when the driver offers it. */
  readonly history: HistorySource | undefined
  /** Effects of the current step. */
  readonly out: OutputBuilder
  /** Ticks since the peer was built. */
  readonly now: number
  readonly acceptedEpoch: number
  readonly currentEpoch: number
  readonly commitZxid: number
  /** The highest persist batch known durable. */
  readonly durableSeq: number
  /** The last zxid of the log as of the last durable batch. */
  readonly durableZxid: number
  /** The seq the current step's persist batch will carry. */
  stepSeq(): number
  setAcceptedEpoch(epoch: number): void
  setCurrentEpoch(epoch: number): void
  append(entry: LogEntry): void
  truncateAfter(zxid: number): void
  installSnapshot(s: ReceivedSnapshot): void
  /**
   * Takes the leader's committed config (NEWLEADER): a newer one becomes
   * ours, a different static one (zxid 0) replaces ours and is persisted, an
   * older one is ignored. False: it contradicts ours (a protocol error was raised).
   */
  adoptLeaderConfig(at: ConfigAt): boolean
  /** Commits (emits for apply) every entry up to `zxid`. */
  commitThrough(zxid: number): void
  /** Leaves the current role for LOOKING (a new election). */
  goLooking(reason: string): void
  /** The other side broke the protocol: count it, then go LOOKING. */
  protocolError(reason: string): void
  /** Records an internal event for traces. */
  trace(event: string): void
}
