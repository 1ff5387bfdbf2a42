/**
 * ServerMetrics: one server's Prometheus metrics (prom-client, a Registry of
 * its own, never the global one) and the RequestProbe the request path
 * reports to (server/request/request-probe.ts).
 *
 * - Histograms: request latency by operation (arrival to reply sent),
 *   commit latency (proposal to commit applied, on the leader or a
 *   standalone server), group commit time (storage's BEGIN to COMMIT, the
 *   fsync included), election time (LOOKING to serving).
 * - Counters: sessions opened and expired, watch notifications, packets
 *   received, DIFF/TRUNC/SNAP sent to learners and the SNAP bytes, bytes
 *   made durable; watch resumes (replayed, compacted, events replayed);
 *   re-sent exactly-once writes (answered from the write memory, found in
 *   flight, found forgotten).
 * - Gauges, read from the AdminView when scraped: the tree, sessions,
 *   connections, watches, queue depths (writes in flight and deferred, the
 *   most requests outstanding on one connection), the watch history
 *   (changes, bytes, oldest zxid), the write memories (results, bytes,
 *   sessions), role, ready; and
 *   prom-client's default process and Node.js metrics.
 *
 * Cost on the hot path: two performance.now() calls and a FastHistogram
 * observation per request, plus a few field updates of its connection's
 * statistics; counters are plain numbers handed to prom-client at scrape
 * time. Everything else is computed when /metrics is read.
 * I/O edge: reads performance.now(); not for the pure core.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import { OpCode } from '../../shared/opcodes.js'
import type { ConnectionStats, RequestProbe } from '../request/request-probe.js'
import type { PeerMessage } from '../zab/index.js'
import type { AdminView } from './admin-view.js'
import { FastHistogram, type Series } from './fast-histogram.js'
import { ZOOKEEPER_COMPATIBLE_VERSION } from './four-letter-words.js'

/** Seconds: 100 µs to 10 s (requests and commits). */
const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]
/** Seconds: 500 µs to 5 s (a group commit is one fsync or two). */
const FSYNC_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5]
/** Seconds: 10 ms to 2 min (an election waits for its round, then the sync phase). */
const ELECTION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

/** Operations by opcode, as the request latency's `op` label names them (ZooKeeper's opcode names). */
const OP_NAMES = new Map<number, string>(Object.entries(OpCode).map(([name, code]) => [code, name]))

/** ZooKeeper's four-letter abbreviations of an operation (`cons`'s `lop`, FinalRequestProcessor's lastOp). */
const OP_SHORT: Record<string, string> = {
  create: 'CREA',
  create2: 'CREA',
  createTTL: 'CREA',
  createContainer: 'CREA',
  delete: 'DELE',
  deleteContainer: 'DELE',
  exists: 'EXIS',
  getData: 'GETD',
  setData: 'SETD',
  getACL: 'GETA',
  setACL: 'SETA',
  getChildren: 'GETC',
  getChildren2: 'GETC',
  sync: 'SYNC',
  ping: 'PING',
  check: 'CHEC',
  multi: 'MULT',
  multiRead: 'MLTR',
  reconfig: 'RECO',
  checkWatches: 'CHKW',
  removeWatches: 'REMW',
  auth: 'AUTH',
  setWatches: 'SETW',
  setWatches2: 'STW2',
  addWatch: 'ADDW',
  getEphemerals: 'GETE',
  getAllChildrenNumber: 'GACN',
  whoAmI: 'HOMI',
  closeSession: 'CLOS',
  createSession: 'SESS',
}

/** The sync-phase messages a leader sends a learner, counted by type. */
const SYNC_TYPES = ['DIFF', 'TRUNC', 'SNAP'] as const

const SERVING = new Set(['leading', 'following', 'observing'])
const ROLES = ['standalone', 'leading', 'following', 'observing', 'looking'] as const

export interface ServerMetricsOptions {
  /** An ensemble member starts LOOKING: its first election is timed from here. */
  ensemble: boolean
}

export class ServerMetrics implements RequestProbe {
  readonly registry = new Registry()
  private readonly requestLatency: FastHistogram<'op'>
  /** Per opcode: its latency series and its abbreviation (one lookup per reply). */
  private readonly byOp = new Map<number, { series: Series; short: string }>()
  private readonly commitLatency: Series
  private readonly fsyncTime: Series
  private readonly electionTime: Series
  private lookingSince: number | undefined
  /** Proposals waiting for their commit, in zxid order: zxid and when (ring, from `head`). */
  private proposedZxids: number[] = []
  private proposedAt: number[] = []
  private head = 0
  private readonly counts = {
    sessionsOpened: 0,
    sessionsExpired: 0,
    notifications: 0,
    snapBytes: 0,
    durableBytes: 0,
    DIFF: 0,
    TRUNC: 0,
    SNAP: 0,
  }

  constructor(
    private readonly view: AdminView,
    opts: ServerMetricsOptions,
  ) {
    const registers = [this.registry]
    this.lookingSince = opts.ensemble ? performance.now() : undefined
    this.requestLatency = new FastHistogram({
      name: 'conclave_request_duration_seconds',
      help: 'Client requests from arrival to reply sent, by operation (ZooKeeper opcode name).',
      labelNames: ['op'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.commitLatency = new FastHistogram({
      name: 'conclave_commit_duration_seconds',
      help: 'Leader or standalone: a write from its proposal to its commit applied (quorum ACKs, or durable alone).',
      buckets: LATENCY_BUCKETS,
      registers,
    }).series()
    this.fsyncTime = new FastHistogram({
      name: 'conclave_fsync_duration_seconds',
      help: 'Storage group commits: one SQLite transaction from BEGIN to COMMIT, its fsync included.',
      buckets: FSYNC_BUCKETS,
      registers,
    }).series()
    this.electionTime = new FastHistogram({
      name: 'conclave_election_duration_seconds',
      help: 'Ensemble members: from LOOKING to serving again (leader election and the sync phase).',
      buckets: ELECTION_BUCKETS,
      registers,
    }).series()
    this.counters()
    this.gauges()
    collectDefaultMetrics({ register: this.registry })
  }

  /** The Prometheus text format (version 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }

  // ------------------------------------------------------------ RequestProbe

  connected(stats: ConnectionStats): void {
    stats.establishedAt = performance.now()
  }

  received(): number {
    return performance.now()
  }

  replied(stats: ConnectionStats, op: number, cxid: number, zxid: number, mark: number): void {
    const now = performance.now()
    const ms = now - mark
    let entry = this.byOp.get(op)
    if (entry === undefined) {
      const name = OP_NAMES.get(op)
      entry = {
        series: this.requestLatency.series({ op: name ?? 'other' }),
        short: (name === undefined ? undefined : OP_SHORT[name]) ?? 'NA',
      }
      this.byOp.set(op, entry)
    }
    entry.series.observe(ms / 1000)
    stats.lastOp = entry.short
    if (cxid >= 0) stats.lastCxid = cxid
    stats.lastZxid = zxid
    stats.lastResponseAt = now
    stats.lastLatencyMs = ms
    if (ms < stats.minLatencyMs) stats.minLatencyMs = ms
    if (ms > stats.maxLatencyMs) stats.maxLatencyMs = ms
    stats.totalLatencyMs += ms
    stats.count++
  }

  notified(): void {
    this.counts.notifications++
  }

  proposed(zxid: number): void {
    this.proposedZxids.push(zxid)
    this.proposedAt.push(performance.now())
  }

  committed(zxid: number): void {
    const zxids = this.proposedZxids
    if (this.head === zxids.length) return
    // Commits come in zxid order: everything proposed up to this one is decided now.
    while (this.head < zxids.length && zxids[this.head]! <= zxid) {
      if (zxids[this.head] === zxid)
        this.commitLatency.observe((performance.now() - this.proposedAt[this.head]!) / 1000)
      this.head++
    }
    if (this.head === zxids.length) this.clearProposals()
    else if (this.head > 4096 && this.head * 2 > zxids.length) {
      this.proposedZxids = zxids.slice(this.head)
      this.proposedAt = this.proposedAt.slice(this.head)
      this.head = 0
    }
  }

  sessionOpened(): void {
    this.counts.sessionsOpened++
  }

  sessionExpired(): void {
    this.counts.sessionsExpired++
  }

  roleChanged(role: string): void {
    // Proposals of a leadership that ended are never committed by this server as its own.
    if (role !== 'leading' && role !== 'standalone') this.clearProposals()
    if (role === 'looking') {
      this.lookingSince ??= performance.now()
    } else if (SERVING.has(role) && this.lookingSince !== undefined) {
      this.electionTime.observe((performance.now() - this.lookingSince) / 1000)
      this.lookingSince = undefined
    }
  }

  // ------------------------------------------------------------ other parts' reports

  /** Storage finished a group commit (Storage.onGroupCommit). */
  groupCommitted(commitMs: number, bytes: number): void {
    this.fsyncTime.observe(commitMs / 1000)
    this.counts.durableBytes += bytes
  }

  /** A message left for a peer (ZabReplicator.onSending): counts the sync phase's DIFF, TRUNC, SNAP. */
  peerMessage(msg: PeerMessage): void {
    switch (msg.type) {
      case 'DIFF':
      case 'TRUNC':
      case 'SNAP':
        this.counts[msg.type]++
        return
      case 'SNAPCHUNK':
        this.counts.snapBytes += msg.data.byteLength
        return
      default:
        return
    }
  }

  private clearProposals(): void {
    this.proposedZxids = []
    this.proposedAt = []
    this.head = 0
  }

  // ------------------------------------------------------------ registration

  private counters(): void {
    const { counts, view } = this
    const counter = (name: string, help: string, read: () => number) => {
      let reported = 0
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          const n = read()
          if (n > reported) this.inc(n - reported)
          reported = Math.max(reported, n)
        },
      })
    }
    counter(
      'conclave_sessions_opened_total',
      'Sessions created for clients of this server.',
      () => counts.sessionsOpened,
    )
    counter(
      'conclave_sessions_expired_total',
      'Leader or standalone: sessions expired (their closeSession proposed).',
      () => counts.sessionsExpired,
    )
    counter(
      'conclave_watch_notifications_total',
      'Watch events sent to clients of this server (one per watcher per change).',
      () => counts.notifications,
    )
    counter('conclave_packets_received_total', 'Client requests received (pings included).', () =>
      view.packetsReceived(),
    )
    counter(
      'conclave_snap_bytes_total',
      'Leader: snapshot bytes streamed to learners by SNAP.',
      () => counts.snapBytes,
    )
    counter(
      'conclave_durable_bytes_total',
      'Bytes of log entries and snapshot chunks made durable by group commits.',
      () => counts.durableBytes,
    )
    counter(
      'conclave_watch_resumes_total',
      'Watch resumes answered by replaying the missed events from the history (a reconnecting Conclave SDK).',
      () => view.watchResumes().resumed,
    )
    counter(
      'conclave_watch_resume_compacted_total',
      "Watch resumes answered 'compacted': the history no longer reached back to the client's position (it resyncs).",
      () => view.watchResumes().compacted,
    )
    counter(
      'conclave_watch_replayed_events_total',
      'Watch events replayed to resuming clients (also counted in conclave_watch_notifications_total).',
      () => view.watchResumes().replayedEvents,
    )
    counter(
      'conclave_exactly_once_remembered_total',
      'Leader or standalone: re-sent exactly-once writes answered from the write memory with their original result (not applied again).',
      () => view.exactlyOnce().remembered,
    )
    counter(
      'conclave_exactly_once_in_flight_total',
      'Leader or standalone: re-sent exactly-once writes found still in flight (answered once they commit, not proposed again).',
      () => view.exactlyOnce().inFlight,
    )
    counter(
      'conclave_exactly_once_forgotten_total',
      'Leader or standalone: re-sent exactly-once writes whose result was already dropped (answered OUTCOME_UNKNOWN).',
      () => view.exactlyOnce().forgotten,
    )
    const reported = { DIFF: 0, TRUNC: 0, SNAP: 0 }
    const syncs = new Counter({
      name: 'conclave_learner_syncs_total',
      help: 'Leader: learners brought up to date, by how (DIFF, TRUNC or SNAP).',
      labelNames: ['type'],
      registers: [this.registry],
      collect() {
        for (const type of SYNC_TYPES) {
          if (counts[type] > reported[type]) this.inc({ type }, counts[type] - reported[type])
          reported[type] = counts[type]
        }
      },
    })
    for (const type of SYNC_TYPES) syncs.inc({ type }, 0)
  }

  private gauges(): void {
    const { view } = this
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read())
        },
      })
    gauge('conclave_znode_count', 'Znodes in the tree.', () => view.nodeCount())
    gauge('conclave_tree_bytes_estimate', "The tree's estimated size (bytes).", () =>
      view.treeBytesEstimate(),
    )
    gauge('conclave_tree_bytes_max', "The tree's size limit, treeBytesMax (bytes).", () =>
      view.treeBytesMax(),
    )
    gauge('conclave_watch_count', 'Watches held on this server.', () => view.watchCount())
    gauge('conclave_num_alive_connections', 'Client connections with a session.', () =>
      view.connectionCount(),
    )
    gauge('conclave_session_count', "Live sessions (the whole ensemble's, as this server knows them).", () =>
      view.sessionCount(),
    )
    gauge(
      'conclave_local_session_count',
      'Sessions this server made without a Txn (local, read-only): only it knows them; not in conclave_session_count.',
      () => view.localSessionCount(),
    )
    gauge(
      'conclave_watch_history_changes',
      'Changes held in the history watches resume from (watchHistoryChangesMax).',
      () => view.watchHistory().changes,
    )
    gauge(
      'conclave_watch_history_bytes',
      'Estimated bytes of the history watches resume from (watchHistoryBytesMax).',
      () => view.watchHistory().bytes,
    )
    gauge(
      'conclave_watch_history_oldest_zxid',
      'The history watches resume from is complete above this zxid; a client that saw less gets a resync.',
      () => view.watchHistory().startZxid,
    )
    gauge(
      'conclave_exactly_once_memory_results',
      'Results of exactly-once writes held in the write memories (replicated state).',
      () => view.exactlyOnce().memoryResults,
    )
    gauge(
      'conclave_exactly_once_memory_bytes',
      'Their estimated bytes (sessionWriteResultBytesMax per session; counted in the tree size).',
      () => view.exactlyOnce().memoryBytes,
    )
    gauge(
      'conclave_exactly_once_memory_sessions',
      'Sessions with an exactly-once write memory.',
      () => view.exactlyOnce().memorySessions,
    )
    gauge('conclave_last_zxid', 'The last zxid applied to the tree.', () => view.lastZxid())
    gauge('conclave_epoch', 'The current epoch.', () => view.epoch())
    gauge(
      'conclave_writes_in_flight',
      'Writes submitted and not yet answered (globalOutstandingLimit).',
      () => view.writesInFlight(),
    )
    gauge('conclave_writes_deferred', "Writes held while the leader's log is behind.", () =>
      view.writesDeferred(),
    )
    gauge(
      'conclave_reading_paused',
      '1 while the server stops reading from clients (too many writes in flight).',
      () => (view.readingPaused() ? 1 : 0),
    )
    gauge('conclave_outstanding_requests_max', 'The most requests outstanding on one connection.', () => {
      let max = 0
      for (const c of view.connections()) if (c.outstanding > max) max = c.outstanding
      return max
    })
    gauge('conclave_ready', '1 while in a quorum and synced (or standalone): /readyz answers 200.', () =>
      view.ready() ? 1 : 0,
    )
    new Gauge({
      name: 'conclave_server_state',
      help: "1 for this server's role (standalone, leading, following, observing, looking), 0 for the others.",
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const role = view.role()
        for (const state of ROLES) this.set({ state }, state === role ? 1 : 0)
      },
    })
    new Gauge({
      name: 'conclave_build_info',
      help: "Always 1: Conclave's version and the ZooKeeper protocol version it speaks.",
      labelNames: ['version', 'zookeeper_version', 'server_id'],
      registers: [this.registry],
      collect() {
        const labels = { version: view.version, server_id: String(view.serverId()) }
        this.set({ ...labels, zookeeper_version: ZOOKEEPER_COMPATIBLE_VERSION }, 1)
      },
    })
  }
}
