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
import { ChangeRing } from '../watch/change-ring.js'
import { WatchTable } from '../watch/watch-table.js'
import type { ClientHandler } from './client-handler.js'
import { NO_PROBE, type RequestProbe } from './request-probe.js'

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

  constructor(
    readonly config: ServerConfig,
    readonly clock: Clock,
    readonly timers: Timers,
    readonly logger: Logger,
    readonly db: TreeDb,
  ) {
    this.watchHistory = new ChangeRing(
      { changesMax: config.watchHistoryChangesMax, bytesMax: config.watchHistoryBytesMax },
      db.lastZxid,
    )
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

  /** Serving clients: in a quorum, or started read-only. */
  canServe(): boolean {
    return this.replicator.role !== 'looking' || this.config.readOnlyMode
  }

  /** A new leader preps only once its tree holds the whole history it took over. */
  historyApplied(): boolean {
    return this.db.lastZxid >= this.replicator.historyEnd
  }
}
