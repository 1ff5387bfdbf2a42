/**
 * ServerContext: what the parts of one server's request path share — its
 * configuration, clock and logger, the replicated tree (TreeDb), the watch
 * table and the history of recent changes watches resume from, the connections of established sessions, the probe (metrics,
 * request-probe.ts), and the Replicator (which
 * is attached after construction: the Replicator's events call back into
 * the parts). Each part (sessions, write router, applier, reaper, request
 * pipeline) holds one and does one job with it.
 *
 * Invariant: `replicator` is attached once, before any request is served.
 */
import type { Logger } from 'pino'
import { assert } from '../../shared/assert.js'
import type { ServerConfig } from '../config.js'
import type { Clock, Timers } from '../core/clock.js'
import type { Replicator } from '../replicate/replicator.js'
import type { TreeDb } from '../state/tree-db.js'
import type { ChangeRing } from '../watch/change-ring.js'
import { WatchTable } from '../watch/watch-table.js'
import type { ClientHandler } from './client-handler.js'
import { NO_PROBE, type RequestProbe } from './request-probe.js'
import { newHistory } from './watch-history.js'

/** A server must have been without a quorum this long (or half a tick, if longer) before it is read-only. */
export const READ_ONLY_GRACE_MS_MIN = 1_000

export class ServerContext {
  readonly watches = new WatchTable<ClientHandler>()
  /** Recent changes, for watches that resume (the Applier appends; a restored snapshot resets it). */
  readonly watchHistory: ChangeRing
  /** Watch resumes answered (read-ops.ts): replayed from the history, or told it was compacted; events replayed. */
  readonly resumeStats = { resumed: 0, compacted: 0, replayedEvents: 0 }
  /** The connection of each established session on this server. */
  readonly handlers = new Map<bigint, ClientHandler>()
  /** The request path's instruments (the server's metrics; none in the simulation). */
  probe: RequestProbe = NO_PROBE
  /** Attached once, before any request is served (read on every request: a plain field). */
  replicator!: Replicator
  /** When the role last became LOOKING (a server starts LOOKING, unless standalone). */
  private lookingSinceMs: number
  /**
   * This server has been in a quorum since it started. Until then it is
   * never read-only: its tree may lack what the ensemble committed (a
   * restarted member holds its log's tail as pending until a leader says
   * what committed), and a server starting is LOOKING for a while anyway.
   */
  private hadQuorum = false

  constructor(
    readonly config: ServerConfig,
    readonly clock: Clock,
    readonly timers: Timers,
    readonly logger: Logger,
    readonly db: TreeDb,
  ) {
    this.watchHistory = newHistory(
      { changesMax: config.watchHistoryChangesMax, bytesMax: config.watchHistoryBytesMax },
      db,
    )
    this.lookingSinceMs = clock.now()
  }

  attach(replicator: Replicator): void {
    assert(this.replicator === undefined, 'a replicator is attached already')
    this.replicator = replicator
  }

  /** Leader or standalone: this server preps and proposes writes. */
  isLeader(): boolean {
    const r = this.replicator.role
    return r === 'standalone' || r === 'leading'
  }

  /** Serving clients: in a quorum, or read-only (below). */
  canServe(): boolean {
    return this.replicator.role !== 'looking' || this.isReadOnly()
  }

  /**
   * Read-only (ZooKeeper's read-only mode, with readOnlyMode on): a quorum
   * this server had is lost (LOOKING) for READ_ONLY_GRACE_MS_MIN or half a tick, whichever is longer, so
   * only clients that asked for read-only get a session; reads are served
   * from this server's tree and every write is NOT_READ_ONLY. The grace
   * (ZooKeeper's, in QuorumPeer, is the longer of 2 s and a tick) keeps an
   * ordinary election, or a server's start, from handing out read-only
   * sessions that the new quorum would end a moment later. Shorter than
   * ZooKeeper's, so that a client reaches a read-only server within kazoo's
   * 6 s (TestReadOnlyMode, which ZooKeeper 3.8 fails) even when the server
   * was the leader, which notices the lost quorum at its next tick.
   */
  isReadOnly(): boolean {
    if (this.replicator.role !== 'looking' || !this.config.readOnlyMode || !this.hadQuorum) return false
    const grace = Math.max(READ_ONLY_GRACE_MS_MIN, this.config.tickTime / 2)
    return this.clock.now() - this.lookingSinceMs >= grace
  }

  /** The role changed (the request pipeline tells): when LOOKING began, and whether a quorum was ever had. */
  noteRole(role: string): void {
    if (role === 'looking') this.lookingSinceMs = this.clock.now()
    else if (role !== 'standalone') this.hadQuorum = true
  }

  /** A new leader preps only once its tree holds the whole history it took over. */
  historyApplied(): boolean {
    return this.db.lastZxid >= this.replicator.historyEnd
  }
}
