/**
 * AdminView: the read-only view of one server that the four-letter words,
 * the admin port's commands and the metrics read (server/node.ts builds it
 * from the server's parts). Everything is a call, read when asked, so the
 * admin code holds no server state and a command always sees the present.
 *
 * The one method that changes anything is resetConnectionStats (`crst`),
 * which resets statistics, never data.
 * Imports only types.
 */
import type { ServerConfig } from '../config.js'
import type { ConnectionStats } from '../request/request-probe.js'

/** A client connection with an established session, as `cons` lists it. */
export interface AdminConnection {
  readonly sessionId: bigint
  readonly conn: {
    readonly remoteAddress: string
    readonly remotePort?: number | undefined
    readonly tls?: object | undefined
  }
  /** Requests received and not yet answered. */
  readonly outstanding: number
  /** Being read (false while paused by its own limit or the write throttle). */
  readonly reading: boolean
  readonly stats: ConnectionStats
}

export interface AdminView {
  /** Conclave's version. */
  readonly version: string
  serverId(): number
  treeBytesMax(): number
  /** The Replicator's role: standalone, leading, following, observing or looking. */
  role(): string
  /** Serving clients: in a quorum, or started read-only (/health). */
  serving(): boolean
  /** In a quorum and synced with it, or standalone (/readyz): not while LOOKING, read-only or not. */
  ready(): boolean
  epoch(): number
  lastZxid(): number
  sessionCount(): number
  /** Sessions this server made without a Txn (local ones, read-only ones), not in sessionCount. */
  localSessionCount(): number
  connectionCount(): number
  nodeCount(): number
  watchCount(): number
  digest(): string
  treeBytesEstimate(): number
  packetsReceived(): number
  writesInFlight(): number
  writesDeferred(): number
  readingPaused(): boolean
  /** The history watches resume from: changes and estimated bytes held, and the zxid it is complete above. */
  watchHistory(): { changes: number; bytes: number; startZxid: number }
  /** Watch resumes answered by this server: replayed (and the events replayed) or told compacted. */
  watchResumes(): { resumed: number; compacted: number; replayedEvents: number }
  /**
   * Exactly-once writes: re-sent ones this server (as leader) answered from
   * the write memory with their original result, found still in flight, or
   * found forgotten (OUTCOME_UNKNOWN); and the write memories held.
   */
  exactlyOnce(): {
    remembered: number
    inFlight: number
    forgotten: number
    memorySessions: number
    memoryResults: number
    memoryBytes: number
  }
  /** The Replicator's own srvr lines (followers, leader, …). */
  replication(): Record<string, string | number>
  /** The effective configuration (secrets included: the renderers leave them out). */
  config(): ServerConfig
  /** The connections with a session on this server. */
  connections(): Iterable<AdminConnection>
  /** Every session in the tree with its timeout (what any member knows). */
  sessions(): Iterable<{ id: bigint; timeoutMs: number }>
  /** Leader or standalone: when each session expires (epoch ms), from the session table; undefined elsewhere. */
  sessionDeadlines(): Iterable<{ id: bigint; deadlineMs: number }> | undefined
  ephemerals(sessionId: bigint): string[]
  /** Every connection's watches: its session and the paths it watches (all kinds). */
  watches(): Iterable<{ sessionId: bigint; paths: string[] }>
  /** Clock of the connection statistics (ConnectionStats times) to epoch ms. */
  statsTimeToEpochMs(t: number): number
  /** `crst`: resets every connection's statistics. */
  resetConnectionStats(): void
}
