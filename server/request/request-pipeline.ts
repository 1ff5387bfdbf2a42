/**
 * RequestPipeline: one server's request path, from a client connection to
 * its replies, the same whether the server stands alone, leads or follows,
 * and the same in the server and in the simulation (which gives it a
 * simulated clock, timers, replicator and connections). It is the
 * ClientHandlerHost of every connection and the ReplicatorEvents of the
 * Replicator:
 *
 *   connection (ClientHandler: decode, per-session FIFO)
 *     → reads, auth, sync: served here from the local tree
 *     → writes: WriteRouter (throttle → forward, or prep → propose)
 *   Replicator (ZAB or standalone) → commit
 *     → Applier (tree, watches, session table, replies)
 *
 * Sessions keeps the session table and answers connects; the Reaper removes
 * expired containers and TTL nodes. Clocks and timers are the context's.
 */
import type { Logger } from 'pino'
import { ErrorCode } from '../../shared/errors.js'
import { OpCode } from '../../shared/opcodes.js'
import { pathError } from '../../shared/paths.js'
import type { ConnectRequest, Request } from '../../shared/records.js'
import { formatSessionId } from '../../shared/session-id.js'
import type { ClientConnection } from '../net/client-listener.js'
import type { ReplicatorEvents, Role } from '../replicate/replicator.js'
import { type ApplyOutcome, configNodeData } from '../state/tree-db.js'
import type { TreeQuota } from '../state/tree-quota.js'
import { Applier } from './applier.js'
import { ClientHandler, type ClientHandlerHost, type PendingRequest, type Reply } from './client-handler.js'
import { addAuth, type ReadContext, serveRead } from './read-ops.js'
import { Reaper } from './reaper.js'
import type { RequestProbe } from './request-probe.js'
import { RequestRateLimits } from './request-rate.js'
import type { ServerContext } from './server-context.js'
import { Sessions } from './sessions.js'
import { restartHistory } from './watch-history.js'
import { isWriteOp } from './write-requests.js'
import { WriteRouter } from './write-router.js'
import { WriteThrottle } from './write-throttle.js'

/** The log a leader's writes wait on (storage): its backlog and when it moves. */
export interface LogBacklog {
  pendingBytes(): number
  readonly throttleBytes: number
}

/** How long a connection over a request rate limit is not read (at most a tick: sessions time out after two). */
const RATE_HOLD_MS_MAX = 1000

export interface RequestPipelineOptions {
  readonly ctx: ServerContext
  readonly secret: string
  readonly quota: TreeQuota
  readonly log: LogBacklog
  /** Called after every applied Txn (snapshot scheduling). */
  readonly applied: (out: ApplyOutcome) => void
  /** A durability or protocol failure the server must not continue from. */
  readonly fatal: (err: Error) => void
}

export class RequestPipeline implements ClientHandlerHost {
  readonly logger: Logger
  readonly outstandingRequestsMax: number
  readonly sendBufferBytesMax: number
  readonly replyBytesMax: number
  readonly writeResultsMax: number
  readonly sessions: Sessions
  readonly throttle: WriteThrottle
  readonly router: WriteRouter
  readonly applier: Applier
  readonly reaper: Reaper
  readonly stats = { received: 0, connections: 0 }
  private readonly ctx: ServerContext
  private readonly readCtx: ReadContext
  private readonly rates: RequestRateLimits
  /** Connections told THROTTLED_OP, so each is logged once. */
  private readonly throttledLogged = new WeakSet<ClientHandler>()
  /** Connections not read for a while, over a rate limit. */
  private readonly rateHeld = new Set<ClientHandler>()
  /** Syncs through the leader in flight: a client's sync request, or a resume's catch-up (Sessions). */
  private readonly syncs = new Map<number, { h: ClientHandler; done: (err: ErrorCode) => void }>()
  private nextSyncId = 1

  constructor(private readonly opts: RequestPipelineOptions) {
    const ctx = opts.ctx
    const config = ctx.config
    this.ctx = ctx
    this.logger = ctx.logger
    this.outstandingRequestsMax = config.outstandingRequestsMax
    this.sendBufferBytesMax = config.sendBufferBytesMax
    this.replyBytesMax = config.frameBytesMax
    this.writeResultsMax = config.sessionWriteResultsMax
    this.throttle = new WriteThrottle(config.globalOutstandingLimit, {
      logger: ctx.logger,
      logPendingBytes: () => opts.log.pendingBytes(),
      logThrottleBytes: opts.log.throttleBytes,
      proposes: () => ctx.isLeader(),
      readingChanged: () => {
        for (const h of ctx.handlers.values()) h.refreshReading()
      },
      now: () => ctx.clock.now(),
    })
    this.router = new WriteRouter(ctx, this.throttle, opts.quota)
    const submitInternal = this.router.submitInternal.bind(this.router)
    this.sessions = new Sessions(ctx, opts.secret, submitInternal, (h, done) => this.startSync(h, done))
    this.reaper = new Reaper(ctx, submitInternal)
    this.router.bind(this.sessions, this.reaper)
    this.applier = new Applier(ctx, this.sessions, this.router, this.reaper, (out) => {
      opts.applied(out)
      this.reaper.schedule()
    })
    this.readCtx = {
      db: ctx.db,
      watches: ctx.watches,
      watchesPerSessionMax: config.watchesPerSessionMax,
      watchHistory: ctx.watchHistory,
      watchResumesPerConnectionMax: config.watchResumesPerConnectionMax,
      resumeStats: ctx.resumeStats,
      authIdsPerConnectionMax: config.authIdsPerConnectionMax,
      replyBytesMax: this.replyBytesMax,
      childrenPageMax: config.childrenPageMax,
      superDigest: config.superDigest,
      // The committed config as ZAB knows it: a joiner's own --servers gives way to its leader's.
      staticConfigData: () => {
        const c = ctx.replicator.membership()?.committed
        return c === undefined ? undefined : configNodeData(c.config, c.zxid)
      },
    }
    this.rates = new RequestRateLimits({
      perSessionPerSecond: config.requestsPerSecondPerSessionMax,
      perIpPerSecond: config.requestsPerSecondPerIpMax,
    })
  }

  /** A new client connection: its handler runs the session handshake and its requests through here. */
  accept(conn: ClientConnection): ClientHandler {
    this.stats.connections++
    return new ClientHandler(conn, this)
  }

  /** The Replicator's events, bound to this pipeline. */
  events(): ReplicatorEvents {
    return {
      commit: (zxid, txn) => {
        this.applier.apply(zxid, txn)
        this.ctx.probe.committed(zxid)
      },
      proposed: (zxid) => this.ctx.probe.proposed(zxid),
      role: (role, epoch) => this.roleChanged(role, epoch),
      forwarded: (from, payload) => this.router.forwarded(from, payload),
      leaderMessage: (payload) => this.router.fromLeader(payload),
      syncDone: (id) => this.finishSync(id, ErrorCode.OK),
      syncFailed: (id) => this.finishSync(id, ErrorCode.CONNECTION_LOSS),
      fatal: (err) => this.opts.fatal(err),
      restored: () => {
        // The tree was replaced by a snapshot: no history of how it got there (nor of its fuzzy window).
        restartHistory(this.ctx.watchHistory, this.ctx.db)
        this.sessions.restored()
      },
    }
  }

  /** Periodic work (every half tickTime). */
  tick(): void {
    // Not reading from clients is this server's doing: their sessions stay alive meanwhile.
    if (this.throttle.paused) this.sessions.keepAlive()
    this.throttle.release()
    this.ctx.replicator.tick(this.ctx.clock.now())
    this.sessions.tick()
    this.rates.sweep(this.ctx.clock.now())
  }

  // ------------------------------------------------------------ ClientHandlerHost

  get readingPaused(): boolean {
    return this.throttle.paused
  }

  get probe(): RequestProbe {
    return this.ctx.probe
  }

  writeStarted(): void {
    this.throttle.started()
  }

  writeFinished(): void {
    this.throttle.finished()
  }

  connect(h: ClientHandler, req: ConnectRequest): void {
    this.sessions.connect(h, req)
  }

  isWrite(req: Request): boolean {
    return isWriteOp(req.op)
  }

  submitWrite(h: ClientHandler, entry: PendingRequest): void {
    this.stats.received++
    this.sessions.touch(h.sessionId)
    if (h.readOnly) {
      // A read-only session (ZooKeeper's ReadOnlyRequestProcessor): closeSession only ends the
      // connection (the session, if the ensemble has it, expires there); every write is refused.
      const zxid = this.ctx.db.lastZxid
      if (entry.req.op === OpCode.closeSession)
        h.complete(entry, { err: ErrorCode.OK, zxid, body: { op: OpCode.closeSession } })
      else h.complete(entry, { err: ErrorCode.NOT_READ_ONLY, zxid })
      return
    }
    // A local session's closeSession, or an ephemeral that upgrades it (or cannot): sessions.ts.
    if (this.sessions.localSessions > 0 && this.sessions.localWrite(h, entry)) return
    this.router.submit(h, entry)
  }

  serveRead(h: ClientHandler, entry: PendingRequest): Reply | 'wait' {
    this.stats.received++
    this.sessions.touch(h.sessionId)
    const { db, replicator } = this.ctx
    const req = entry.req
    if (req.op === OpCode.auth) {
      const outcome = addAuth(this.readCtx, h, req.scheme, req.auth)
      if (outcome === 'ok') return { err: ErrorCode.OK, zxid: db.lastZxid }
      const why =
        outcome === 'too many'
          ? `too many identities (authIdsPerConnectionMax=${this.readCtx.authIdsPerConnectionMax})`
          : 'authentication failed'
      if (outcome === 'too many')
        this.logger.warn(
          { conn: h.conn.id, session: formatSessionId(h.sessionId) },
          `addAuth refused: ${why}`,
        )
      // The failure reply goes first; the connection closes right after this turn.
      queueMicrotask(() => h.close(why))
      return { err: ErrorCode.AUTH_FAILED, zxid: db.lastZxid }
    }
    if (req.op === OpCode.sync) {
      if (pathError(req.path) !== null) return { err: ErrorCode.BAD_ARGUMENTS, zxid: db.lastZxid }
      // No leader to sync with (ZooKeeper's read-only server refuses sync the same way).
      if (h.readOnly) return { err: ErrorCode.NOT_READ_ONLY, zxid: db.lastZxid }
      if (replicator.role === 'standalone')
        return { err: ErrorCode.OK, zxid: db.lastZxid, body: { op: OpCode.sync, path: req.path } }
      // A quorum round through the leader: sync + read is linearizable (ZOOKEEPER-1675 fixed).
      const path = req.path
      this.startSync(h, (err) =>
        h.complete(
          entry,
          err === ErrorCode.OK
            ? { err, zxid: db.lastZxid, body: { op: OpCode.sync, path } }
            : { err, zxid: db.lastZxid },
        ),
      )
      return 'wait'
    }
    return serveRead(this.readCtx, h, req)
  }

  admit(h: ClientHandler, req: Request): boolean {
    if (this.rates.admit(h, h.conn.remoteAddress, req.op, this.ctx.clock.now())) return true
    // What the connection sent already is answered THROTTLED_OP; nothing more is read for a
    // second (or a tick), so a flood costs the server a second's requests and a read's worth of
    // errors a second, not an error reply for every request it can send.
    if (!this.rateHeld.has(h)) {
      this.rateHeld.add(h)
      h.holdForRate(true)
      this.ctx.timers.after(Math.min(RATE_HOLD_MS_MAX, this.ctx.config.tickTime), () => {
        this.rateHeld.delete(h)
        h.holdForRate(false)
      })
    }
    if (!this.throttledLogged.has(h)) {
      this.throttledLogged.add(h)
      this.logger.warn(
        { conn: h.conn.id, session: formatSessionId(h.sessionId), remote: h.conn.remoteAddress },
        'requests over the rate limit (requestsPerSecondPerSessionMax, requestsPerSecondPerIpMax) answered THROTTLED_OP',
      )
    }
    return false
  }

  closed(h: ClientHandler, reason: string): void {
    this.rates.forget(h)
    this.rateHeld.delete(h)
    this.ctx.watches.removeWatcher(h)
    for (const [id, s] of this.syncs) if (s.h === h) this.syncs.delete(id)
    if (h.sessionId !== 0n && this.ctx.handlers.get(h.sessionId) === h) this.ctx.handlers.delete(h.sessionId)
    this.sessions.closed(h)
    this.logger.debug({ conn: h.conn.id, session: formatSessionId(h.sessionId), reason }, 'connection closed')
  }

  /**
   * A sync through the leader for connection `h`: `done(OK)` once everything
   * committed before it began is applied here, CONNECTION_LOSS without a
   * leader; never called if the connection closes first.
   */
  private startSync(h: ClientHandler, done: (err: ErrorCode) => void): void {
    const id = this.nextSyncId++
    this.syncs.set(id, { h, done })
    this.ctx.replicator.sync(id)
  }

  private finishSync(id: number, err: ErrorCode): void {
    const s = this.syncs.get(id)
    if (s === undefined) return
    this.syncs.delete(id)
    s.done(err)
  }

  private roleChanged(role: Role, epoch: number): void {
    this.logger.info({ component: 'zab', role, epoch }, 'role')
    this.ctx.probe.roleChanged(role)
    this.ctx.noteRole(role)
    // Txns prepped under an earlier leadership will never be applied by this one.
    if (role !== 'standalone') this.ctx.db.dropOutstanding()
    // Deferred writes go now, each the way the new role sends it (refused, forwarded or dropped).
    this.router.roleChanged()
    this.sessions.roleChanged(role)
  }

  stop(): void {
    this.reaper.stop()
  }
}
