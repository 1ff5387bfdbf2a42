/**
 * Shared vocabulary of the ZAB core: server ids, log entries, votes, roles
 * and the persisted state a peer is rebuilt from.
 *
 * Invariants: a zxid is epoch * 2**32 + counter (shared/zxid.ts), a safe
 * integer; a log is strictly increasing in zxid; acceptedEpoch >=
 * currentEpoch, and neither ever decreases (across restarts too).
 *
 * Must not import anything but shared/ and server/core (pure module).
 */

export type ServerId = number

/** One replicated transaction; `data` is an opaque Txn for the state machine. */
import type { LogEntry } from '../core/log-entry.js'

export type { LogEntry }

import type { ConfigAt } from './membership.js'

export type Role = 'LOOKING' | 'FOLLOWING' | 'LEADING' | 'OBSERVING'

/** Election states on the wire, in this order (a 2-bit code). */
export const PEER_STATES = ['LOOKING', 'FOLLOWING', 'LEADING', 'OBSERVING'] as const
export type PeerState = (typeof PEER_STATES)[number]

/** A Fast Leader Election vote: "`leader` should lead; it has (epoch, zxid)". */
export interface Vote {
  readonly leader: ServerId
  readonly zxid: number
  /** The proposed leader's currentEpoch (ZooKeeper's peerEpoch). */
  readonly epoch: number
}

/** What a peer is rebuilt from after a restart: its durable state only. */
export interface PersistedState {
  /** The last epoch this server promised to follow (LEADERINFO accepted). */
  readonly acceptedEpoch: number
  /** The epoch of the last NEWLEADER this server acknowledged. */
  readonly currentEpoch: number
  /** The last zxid included in the latest durable snapshot (0 when none). */
  readonly snapshotZxid: number
  /** Durable log entries with zxid > snapshotZxid, in zxid order. */
  readonly log: readonly LogEntry[]
  /**
   * The membership config committed as of the snapshot (the application's
   * state holds it: ZooKeeper's /zookeeper/config); undefined: none was ever
   * committed, the static one from the config file applies. Config entries
   * in `log` after it are accepted, not known committed.
   */
  readonly config?: ConfigAt | undefined
}

/**
 * A snapshot of the application state, as a series of chunks: the state
 * after `zxid`, possibly with some effects of later entries up to `endZxid`
 * (a fuzzy snapshot, written while entries kept being applied). Entries in
 * (zxid, endZxid] must then be applied idempotently. Absent, endZxid is zxid.
 */
export interface Snapshot {
  readonly zxid: number
  readonly chunks: readonly Uint8Array[]
  readonly endZxid?: number
  /** The membership config committed as of `zxid` (a SNAP carries it; absent: unchanged). */
  readonly config?: ConfigAt
}

/**
 * A SNAP from the leader, complete at its SNAPEND (persist and restore it):
 * its chunks were handed to the driver one by one as they arrived
 * (Output.snapshotIn), so the core holds none of them; `chunkCount` is how
 * many there were. Entries in (zxid, endZxid] may already be reflected.
 */
export interface ReceivedSnapshot {
  readonly zxid: number
  readonly endZxid: number
  readonly chunkCount: number
  /** The membership config committed as of `zxid` (the SNAP header's). */
  readonly config?: ConfigAt
}

/**
 * A SNAP arriving, piece by piece, as the driver must carry it out: `begin`
 * (SNAP from `from`: open a snapshot in storage and a restore of the state),
 * each `chunk` in order (to both), `abandon` (the stream ended before its
 * SNAPEND: nothing of it may take effect, the old state and log stay).
 */
export type SnapshotIn =
  | { readonly kind: 'begin'; readonly zxid: number; readonly from: ServerId }
  | { readonly kind: 'chunk'; readonly data: Uint8Array }
  | { readonly kind: 'abandon' }

/**
 * Durable history older than the in-memory log, for DIFF synchronisation
 * (ZooKeeper replays its on-disk txn log the same way). `read(fromZxid, max)`
 * returns up to `max` entries with zxid >= fromZxid, ascending, all from one
 * contiguous stretch of this peer's history; nothing (or a first entry that
 * is not fromZxid) when fromZxid is not an entry of that stretch. Synchronous.
 */
export interface HistorySource {
  read(fromZxid: number, maxEntries: number): readonly LogEntry[]
}

/**
 * The application's side of SNAP synchronisation. `takeSnapshot` is called
 * synchronously; `zxid` must be the last entry the application has applied
 * (every entry the peer emitted in `commit` before this step: the driver
 * applies commits before the next step). The chunks may be produced lazily:
 * the core never iterates them, the driver streams them to the learner
 * (snapshot-stream.ts), and ends the stream with the highest zxid the state
 * may reflect by then (the last applied, or the end of a fuzzy snapshot the
 * state was rebuilt from and has not replayed past), which bounds the chunks.
 */
export interface SnapshotSource {
  takeSnapshot(): { zxid: number; chunks: Iterable<Uint8Array> }
}
