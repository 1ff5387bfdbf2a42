/**
 * ServerNode: the composition root of one Conclave server. It wires the
 * parts together and binds them to the real world, doing none of their work
 * itself: storage opened and the tree recovered (state/), the Replicator
 * (standalone, or a ZAB ensemble member), the request path
 * (request/request-pipeline.ts: sessions, write router, applier, reaper) on
 * the event loop's clock and timers, the client listener, the admin port,
 * the four-letter words (admin/four-letter-words.ts) and the snapshot
 * endpoint (admin/snapshot-endpoint.ts).
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Logger, pino } from 'pino'
import { formatZxid } from '../shared/zxid.js'
import { AdminServer, type AdminSource } from './admin/admin-server.js'
import type { AdminView } from './admin/admin-view.js'
import {
  allowedWords,
  describe,
  type FourLetterWord,
  fourLetterWord,
  metrics,
} from './admin/four-letter-words.js'
import { ServerMetrics } from './admin/server-metrics.js'
import { SnapshotEndpoint } from './admin/snapshot-endpoint.js'
import type { ServerConfig } from './config.js'
import { consoleRoutes, hostAllowed } from './console/console-server.js'
import { eventLoopTimers, wallClock } from './event-loop.js'
import { ClientListener } from './net/client-listener.js'
import {
  clientTlsContext,
  quorumTlsContext,
  type ReloadingSecureContext,
} from './net/reloading-secure-context.js'
import { createReplicator } from './replicate/create-replicator.js'
import type { Replicator } from './replicate/replicator.js'
import { ZabReplicator } from './replicate/zab-replicator.js'
import { RequestPipeline } from './request/request-pipeline.js'
import { ServerContext } from './request/server-context.js'
import { loadSecret } from './state/ensemble-secret.js'
import { type RecoveredState, recoverState } from './state/recover-state.js'
import { opsIn, Snapshotter } from './state/snapshotter.js'
import { defaultTreeBytesMax, TreeQuota } from './state/tree-quota.js'

export const VERSION = '0.1.0'

export class ServerNode {
  readonly logger: Logger
  onFatal: (err: Error) => void = () => {}
  port = 0
  private readonly ctx: ServerContext
  private readonly pipeline: RequestPipeline
  private readonly quota: TreeQuota
  private readonly snapshotter: Snapshotter
  /** This server's log (the snapshot endpoint reads the Txns applied while it streams). */
  private readonly storage: RecoveredState['storage']
  private listener: ClientListener | undefined
  /** The client port's TLS certificate, reloaded when its files change; undefined without client TLS. */
  private clientTls: ReloadingSecureContext | undefined
  private admin: AdminServer | undefined
  /** Prometheus metrics (admin/server-metrics.ts), and the request path's probe. */
  readonly serverMetrics: ServerMetrics
  private readonly allowedWords: ReadonlySet<FourLetterWord>
  private ticker: NodeJS.Timeout | undefined
  private stopped = false

  private constructor(
    readonly config: ServerConfig,
    state: RecoveredState,
    secret: string,
    logger: Logger,
  ) {
    this.logger = logger
    this.quota = new TreeQuota(config.treeBytesMax ?? defaultTreeBytesMax(), logger)
    this.storage = state.storage
    this.snapshotter = new Snapshotter(
      state.storage,
      state.tree,
      config.snapCount,
      logger.child({ component: 'storage' }),
    )
    this.ctx = new ServerContext(config, wallClock, eventLoopTimers, logger, state.tree)
    this.pipeline = new RequestPipeline({
      ctx: this.ctx,
      secret,
      quota: this.quota,
      log: {
        pendingBytes: () => state.storage.pendingBytes,
        throttleBytes: state.storage.writeThrottleBytes,
      },
      applied: (out) => this.snapshotter.applied(opsIn(out.result)),
      fatal: (err) => this.fatal(err),
    })
    // Each group commit (and each drain) may bring the log back under the throttle point.
    state.storage.onDurable(() => this.pipeline.throttle.release())
    state.storage.onDrain(() => this.pipeline.throttle.release())
    this.allowedWords = allowedWords(config.fourLetterWordWhitelist, config.readOnlyMode)
    this.serverMetrics = new ServerMetrics(this.adminView, { ensemble: config.servers.length > 1 })
    this.ctx.probe = this.serverMetrics
    state.storage.onGroupCommit((ms, bytes) => this.serverMetrics.groupCommitted(ms, bytes))
  }

  private get replicator(): Replicator {
    return this.ctx.replicator
  }

  static async start(config: ServerConfig, logger?: Logger): Promise<ServerNode> {
    const log = logger ?? pino({ level: config.logLevel, base: { server: config.serverId } })
    // TLS files first: a file that does not load stops the start before anything is open.
    const clientTls = clientTlsContext(config, log)
    let quorumTls: ReloadingSecureContext | undefined
    try {
      quorumTls = quorumTlsContext(config, log)
    } catch (err) {
      clientTls?.close()
      throw err
    }
    const state = recoverState(config, log.child({ component: 'storage' }))
    const secret = loadSecret(config, state.storage, log)
    const node = new ServerNode(config, state, secret, log)
    node.clientTls = clientTls
    const replicator = createReplicator(
      config,
      state,
      node.snapshotter,
      node.pipeline.events(),
      log,
      quorumTls,
    )
    node.ctx.attach(replicator)
    if (replicator instanceof ZabReplicator)
      replicator.onSending = (msg) => node.serverMetrics.peerMessage(msg)
    node.pipeline.sessions.restore()
    if (replicator instanceof ZabReplicator) await replicator.start()
    await node.listen()
    node.ticker = setInterval(() => node.pipeline.tick(), Math.max(10, Math.floor(config.tickTime / 2)))
    node.pipeline.reaper.schedule()
    if (config.adminPort > 0) {
      node.admin = new AdminServer({
        view: node.adminView,
        metrics: async () => ({
          text: await node.serverMetrics.text(),
          contentType: node.serverMetrics.contentType,
        }),
        ...(config.adminConsole ? { console: node.webConsole() } : {}),
      })
      await node.admin.listen(config.adminPort, config.clientPortAddress)
    }
    log.info(
      {
        port: node.port,
        dataDir: config.dataDir,
        zxid: formatZxid(state.tree.lastZxid),
        nodes: state.tree.nodeCount(),
        treeBytes: state.tree.sizeEstimateBytes(),
        treeBytesMax: node.quota.bytesMax,
      },
      'conclave server ready',
    )
    return node
  }

  /**
   * The origins of the web console this server's admin port serves
   * (adminConsole): its page connects to this client port from there.
   */
  private webConsoleOrigins(): string[] {
    const c = this.config
    if (!c.adminConsole || c.adminPort === 0) return []
    const host = c.clientPortAddress.includes(':') ? `[${c.clientPortAddress}]` : c.clientPortAddress
    const origins = [`http://${host}:${c.adminPort}`]
    if (['127.0.0.1', '::1', 'localhost'].includes(c.clientPortAddress))
      origins.push(
        `http://127.0.0.1:${c.adminPort}`,
        `http://localhost:${c.adminPort}`,
        `http://[::1]:${c.adminPort}`,
      )
    return [...new Set(origins)]
  }

  /**
   * The web console on the admin port (adminConsole): the page connects to
   * this server's client port; the ensemble and sessions views report on
   * every member (this one through its own admin port, the others through
   * their four-letter words).
   */
  private webConsole(): NonNullable<AdminSource['console']> {
    const c = this.config
    const url = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`
    const self = url(c.clientPortAddress, this.port)
    const others = c.servers.filter((m) => m.id !== c.serverId).map((m) => url(m.host, m.clientPort))
    const routes = consoleRoutes({
      servers: `ws://${self}`,
      members: [self, ...others].join(','),
      admin: [`http://${url(c.clientPortAddress, c.adminPort)}`],
      assetsDir: join(dirname(fileURLToPath(import.meta.url)), '..', 'browser'),
    })
    return {
      handle: (path, origin, res) => routes.handle(path, origin, res),
      hostAllowed: (host) => hostAllowed(c.clientPortAddress, c.adminPort, host),
    }
  }

  private async listen(): Promise<void> {
    const log = this.logger.child({ component: 'net' })
    const tls = this.clientTls
    this.listener = new ClientListener({
      host: this.config.clientPortAddress,
      port: this.config.clientPort,
      frameBytesMax: this.config.frameBytesMax,
      connectionsPerIpMax: this.config.maxClientCnxns,
      allowedOrigins: [...this.config.allowedOrigins, ...this.webConsoleOrigins()],
      handshakeTimeoutMs: this.config.handshakeTimeoutMs,
      onConnection: (conn) => {
        log.debug({ conn: conn.id, remote: conn.remoteAddress, transport: conn.transport }, 'connection')
        this.pipeline.accept(conn)
      },
      onReject: (remote, reason) => log.warn({ remote, reason }, 'connection refused'),
      fourLetterWord: (w) => this.fourLetterWord(w),
      plainRequest: (socket, req) => this.snapshots.handle(socket, req),
      tls:
        tls === undefined
          ? undefined
          : {
              context: () => tls.current(),
              clientAuth: this.config.clientTlsClientAuth,
              only: this.config.clientTlsOnly,
            },
    })
    this.port = await this.listener.listen()
  }

  /** `GET /conclave/snapshot` on the client port (`conclave snapshot save`). */
  private readonly snapshots = new SnapshotEndpoint({
    db: () => this.ctx.db,
    serverId: () => this.config.serverId,
    superDigest: () => this.config.superDigest,
    unavailable: () => {
      if (this.replicator.role === 'looking') return 'this server is not in a quorum'
      const db = this.ctx.db
      if (db.fuzzyEndZxid > db.lastZxid) return 'this server is still catching up with its leader'
      return undefined
    },
    log: (obj, msg) => this.logger.info({ component: 'snapshot', ...obj }, msg),
    storage: () => this.storage,
  })

  serving(): boolean {
    return this.ctx.canServe()
  }

  // ------------------------------------------------------------ admin

  /** What the four-letter words, the admin port and the metrics read (server/admin/admin-view.ts). */
  private readonly adminView: AdminView = {
    version: VERSION,
    serverId: () => this.config.serverId,
    treeBytesMax: () => this.quota.bytesMax,
    role: () => this.replicator.role,
    serving: () => this.ctx.canServe(),
    ready: () => this.replicator.role !== 'looking' && this.ctx.historyApplied(),
    epoch: () => this.replicator.epoch,
    lastZxid: () => this.ctx.db.lastZxid,
    sessionCount: () => this.pipeline.sessions.size,
    localSessionCount: () => this.pipeline.sessions.localSessions,
    connectionCount: () => this.ctx.handlers.size,
    nodeCount: () => this.ctx.db.nodeCount(),
    watchCount: () => this.ctx.watches.size,
    digest: () => this.ctx.db.digest(),
    treeBytesEstimate: () => this.ctx.db.sizeEstimateBytes(),
    packetsReceived: () => this.pipeline.stats.received,
    writesInFlight: () => this.pipeline.throttle.inFlight,
    writesDeferred: () => this.pipeline.throttle.deferred,
    readingPaused: () => this.pipeline.throttle.paused,
    watchHistory: () => {
      const h = this.ctx.watchHistory
      return { changes: h.size, bytes: h.bytes, startZxid: h.startZxid }
    },
    watchResumes: () => ({ ...this.ctx.resumeStats }),
    exactlyOnce: () => {
      const m = this.ctx.db.writeMemoryStats()
      return {
        ...this.pipeline.router.onceStats,
        memorySessions: m.sessions,
        memoryResults: m.results,
        memoryBytes: m.bytes,
      }
    },
    replication: () => this.replicator.describe(),
    config: () => ({ ...this.config, fourLetterWordWhitelist: [...this.allowedWords] }),
    connections: () => this.ctx.handlers.values(),
    sessions: () => this.ctx.db.sessions(),
    sessionDeadlines: () => (this.ctx.isLeader() ? this.sessionDeadlines() : undefined),
    ephemerals: (id) => this.ctx.db.ephemerals(id),
    watches: () => this.watchesBySession(),
    statsTimeToEpochMs: (t) => performance.timeOrigin + t,
    resetConnectionStats: () => {
      for (const h of this.ctx.handlers.values()) h.stats.reset()
    },
  }

  private *sessionDeadlines(): Generator<{ id: bigint; deadlineMs: number }> {
    const table = this.pipeline.sessions.table
    for (const id of table.ids()) {
      const s = table.get(id)
      if (s !== undefined && !s.closing) yield { id, deadlineMs: s.deadlineMs }
    }
  }

  private *watchesBySession(): Generator<{ sessionId: bigint; paths: string[] }> {
    for (const { watcher, watches } of this.ctx.watches.watchers())
      yield { sessionId: watcher.sessionId, paths: watches.map((w) => w.path) }
  }

  fourLetterWord(word: string): string | undefined {
    return fourLetterWord(this.adminView, word, this.allowedWords)
  }

  describe(): Record<string, string | number> {
    return describe(this.adminView)
  }

  metrics(): Record<string, string | number> {
    return metrics(this.adminView)
  }

  // ------------------------------------------------------------ lifecycle

  private fatal(err: Error): void {
    this.logger.fatal({ err }, 'fatal')
    void this.stop().finally(() => this.onFatal(err))
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    if (this.ticker) clearInterval(this.ticker)
    this.pipeline.stop()
    await this.listener?.close()
    this.clientTls?.close()
    await this.admin?.close()
    await this.replicator.close()
    await this.snapshotter.close()
    this.logger.info('stopped')
    this.logger.flush()
  }
}

export function startServer(config: ServerConfig, logger?: Logger): Promise<ServerNode> {
  return ServerNode.start(config, logger)
}
