/**
 * ServerNode: the composition root of one Conclave server. It opens storage
 * and recovers the tree, listens for clients, and runs every request
 * through the same path whether the server is standalone or an ensemble
 * member: reads are served from the local tree in per-session FIFO order;
 * writes are prepped by the leader into Txns, committed by the Replicator,
 * applied here in zxid order, and answered by the server the client is
 * connected to. Clocks and timers live here, not in the core.
 */
import { type Logger, pino } from 'pino'
import { ErrorCode, errorCodeOf, errorNumber } from '../shared/errors.js'
import { JuteReader, JuteWriter } from '../shared/jute.js'
import { OpCode } from '../shared/opcodes.js'
import { pathError } from '../shared/paths.js'
import {
  type ConnectRequest,
  decodeRequest,
  type Request,
  readResponseBody,
  writeResponseBody,
} from '../shared/records.js'
import { formatZxid } from '../shared/zxid.js'
import { AdminServer } from './admin/admin-server.js'
import { describe, type FourLetterSource, fourLetterWord, metrics } from './admin/four-letter-words.js'
import { checkSessionPassword, newSecret, sessionPassword } from './auth/session-password.js'
import {
  ClientHandler,
  type ClientHandlerHost,
  hex,
  type PendingRequest,
  type Reply,
} from './client-handler.js'
import type { ServerConfig } from './config.js'
import type { ApplyOutcome, Db, WriteRequest } from './db.js'
import { decodeForward, encodeForward, type ForwardMessage } from './forwarding.js'
import { HeldReplies } from './held-replies.js'
import { ClientListener } from './net/client-listener.js'
import { addAuth, type ReadContext, serveRead } from './read-ops.js'
import type { Replicator, Role } from './replicate/replicator.js'
import { failedReply, replyFor } from './replies.js'
import { SessionIdGenerator } from './session/session-ids.js'
import { SessionTracker } from './session/session-tracker.js'
import { createReplicator, openState, type ServerState } from './state.js'
import { defaultTreeBytesMax, TreeQuota } from './tree-quota.js'
import { WatchTable } from './watch/watch-table.js'
import { toWriteRequest } from './write-requests.js'
import { WriteThrottle } from './write-throttle.js'
import { ZabReplicator } from './replicate/zab-replicator.js'

export const VERSION = '0.1.0'

interface PendingConnect {
  handler: ClientHandler
  timeoutMs: number
  /** Past this (the negotiated session timeout from the request), the connection is closed. */
  deadline: number
}

export class ServerNode implements ClientHandlerHost {
  readonly logger: Logger
  readonly outstandingRequestsMax: number
  readonly sendBufferBytesMax: number
  readonly replyBytesMax: number
  private readonly quota: TreeQuota
  onFatal: (err: Error) => void = () => {}
  port = 0

  private readonly watches = new WatchTable<ClientHandler>()
  private tracker: SessionTracker
  private readonly handlers = new Map<bigint, ClientHandler>()
  private readonly pendingConnects = new Map<bigint, PendingConnect>()
  private readonly closingSessions = new Set<bigint>()
  private readonly reaping = new Set<string>()
  private readonly readCtx: ReadContext
  private ids: SessionIdGenerator
  private listener: ClientListener | undefined
  private admin: AdminServer | undefined
  private ticker: NodeJS.Timeout | undefined
  private reapTimer: NodeJS.Timeout | undefined
  private reapAt = Number.POSITIVE_INFINITY
  private replicator!: Replicator
  private stopped = false
  private readonly stats = { received: 0, sent: 0, connections: 0 }
  /** Child loggers made once, not per connection (session setup is a hot path). */
  private readonly sessionLog: Logger
  /** Followers: sessions with traffic since the last report to the leader. */
  private readonly touched = new Set<bigint>()
  private readonly syncs = new Map<number, { h: ClientHandler; entry: PendingRequest; path: string }>()
  private nextSyncId = 1
  /** Failed-prep replies waiting for the tree to catch up with the Txns prepped before them. */
  private readonly held = new HeldReplies()
  private readonly throttle: WriteThrottle

  private constructor(
    readonly config: ServerConfig,
    private readonly state: ServerState,
    private readonly secret: string,
    logger: Logger,
  ) {
    this.logger = logger
    this.sessionLog = logger.child({ component: 'session' })
    this.outstandingRequestsMax = config.outstandingRequestsMax
    this.sendBufferBytesMax = config.sendBufferBytesMax
    this.replyBytesMax = config.frameBytesMax
    this.quota = new TreeQuota(config.treeBytesMax ?? defaultTreeBytesMax(), logger)
    this.tracker = new SessionTracker(config.tickTime)
    this.ids = new SessionIdGenerator(config.serverId, Date.now())
    this.throttle = new WriteThrottle(config.globalOutstandingLimit, {
      logger,
      logPendingBytes: () => state.storage.pendingBytes,
      logThrottleBytes: state.storage.writeThrottleBytes,
      proposes: () => this.isLeader(),
      readingChanged: () => {
        for (const h of this.handlers.values()) h.refreshReading()
      },
    })
    // Each group commit (and each drain) may bring the log back under the throttle point.
    state.storage.onDurable(() => this.throttle.release())
    state.storage.onDrain(() => this.throttle.release())
    this.readCtx = {
      db: state.db,
      watches: this.watches,
      watchesPerSessionMax: config.watchesPerSessionMax,
      replyBytesMax: this.replyBytesMax,
      superDigest: config.superDigest,
    }
  }

  private get db(): Db {
    return this.state.db
  }

  static async start(config: ServerConfig, logger?: Logger): Promise<ServerNode> {
    const log = logger ?? pino({ level: config.logLevel, base: { server: config.serverId } })
    const state = await openState(config, log.child({ component: 'storage' }))
    const secret = config.ensembleSecret ?? state.secret ?? newSecret()
    if (state.secret === undefined && config.ensembleSecret === undefined) state.saveSecret(secret)
    const node = new ServerNode(config, state, secret, log)
    node.replicator = createReplicator(config, state, node.replicatorEvents(), log, secret)
    node.restoreSessions()
    if (node.replicator instanceof ZabReplicator) await node.replicator.start()
    await node.listen()
    node.ticker = setInterval(() => node.tick(), Math.max(10, Math.floor(config.tickTime / 2)))
    node.scheduleReap()
    if (config.adminPort > 0) {
      node.admin = new AdminServer(node)
      await node.admin.listen(config.adminPort, config.clientPortAddress)
    }
    log.info(
      {
        port: node.port,
        dataDir: config.dataDir,
        zxid: formatZxid(state.db.lastZxid),
        nodes: state.db.nodeCount(),
        treeBytes: state.db.sizeEstimateBytes(),
        treeBytesMax: node.quota.bytesMax,
      },
      'conclave server ready',
    )
    return node
  }

  private replicatorEvents() {
    return {
      commit: (zxid: number, txn: Uint8Array) => this.onCommit(zxid, txn),
      role: (role: Role, epoch: number) => this.onRole(role, epoch),
      forwarded: (from: number, payload: Uint8Array) => this.onForwarded(from, payload),
      leaderMessage: (payload: Uint8Array) => this.onLeaderMessage(payload),
      syncDone: (id: number) => this.finishSync(id, ErrorCode.OK),
      syncFailed: (id: number) => this.finishSync(id, ErrorCode.CONNECTION_LOSS),
      fatal: (err: Error) => this.fatal(err),
      restored: () => this.onRestored(),
    }
  }

  /**
   * A SNAP replaced the tree: the session table is the new tree's (sessions
   * created while this server was behind arrive only in it, and must be able
   * to move here); a connect waiting for its createSession is answered if
   * the snapshot holds the session.
   */
  private onRestored(): void {
    this.restoreSessions()
    for (const id of this.pendingConnects.keys()) {
      const s = this.tracker.get(id)
      if (s !== undefined) this.acceptPending(id, s.timeoutMs)
    }
  }

  /** A session this server's client asked for exists now: the client gets its ConnectResponse. */
  private acceptPending(id: bigint, timeoutMs: number): void {
    const pending = this.pendingConnects.get(id)
    if (pending === undefined) return
    this.pendingConnects.delete(id)
    this.handlers.set(id, pending.handler)
    pending.handler.accept(id, timeoutMs, sessionPassword(this.secret, id))
    this.logger.debug({ component: 'session', session: hex(id), timeoutMs }, 'session created')
  }

  /** Rebuilds the session table from the tree (at start, on leading, after a SNAP): what it held before is stale. */
  private restoreSessions(): void {
    this.tracker = new SessionTracker(this.config.tickTime)
    const now = Date.now()
    for (const s of this.db.sessions()) this.tracker.add(s.id, s.timeoutMs, now)
    if (this.tracker.size > 0) this.logger.info({ sessions: this.tracker.size }, 'sessions restored')
  }

  private async listen(): Promise<void> {
    const log = this.logger.child({ component: 'net' })
    this.listener = new ClientListener({
      host: this.config.clientPortAddress,
      port: this.config.clientPort,
      frameBytesMax: this.config.frameBytesMax,
      connectionsPerIpMax: this.config.maxClientCnxns,
      allowedOrigins: this.config.allowedOrigins,
      onConnection: (conn) => {
        this.stats.connections++
        log.debug({ conn: conn.id, remote: conn.remoteAddress, transport: conn.transport }, 'connection')
        new ClientHandler(conn, this)
      },
      onReject: (remote, reason) => log.warn({ remote, reason }, 'connection refused'),
      fourLetterWord: (w) => this.fourLetterWord(w),
    })
    this.port = await this.listener.listen()
  }

  // ------------------------------------------------------------ sessions

  connect(h: ClientHandler, req: ConnectRequest): void {
    const log = this.sessionLog
    if (!this.canServe()) return h.close('this server is not serving clients (no quorum)')
    if (req.lastZxidSeen > BigInt(this.db.lastZxid)) {
      log.info(
        { lastZxidSeen: req.lastZxidSeen.toString(), ours: this.db.lastZxid },
        'client is ahead of us; refused',
      )
      return h.close(
        `client has seen zxid ${req.lastZxidSeen}, this server only ${formatZxid(this.db.lastZxid)}`,
      )
    }
    const timeoutMs = Math.min(
      Math.max(req.timeOut, this.config.minSessionTimeout),
      this.config.maxSessionTimeout,
    )
    if (req.sessionId !== 0n) return this.resume(h, req, timeoutMs)
    if (this.tracker.size + this.pendingConnects.size >= this.config.sessionsMax) {
      log.warn({ sessionsMax: this.config.sessionsMax }, 'session limit reached; refused')
      return h.close(`too many sessions (sessionsMax=${this.config.sessionsMax})`)
    }
    const id = this.ids.take((x) => this.db.hasSession(x) || this.pendingConnects.has(x))
    this.pendingConnects.set(id, { handler: h, timeoutMs, deadline: Date.now() + timeoutMs })
    if (this.isLeader()) this.submitInternal({ kind: 'createSession', sessionId: id, timeoutMs }, id)
    else this.replicator.toLeader(encodeForward({ kind: 'createSession', sessionId: id, timeoutMs }))
  }

  private resume(h: ClientHandler, req: ConnectRequest, timeoutMs: number): void {
    const id = req.sessionId
    const log = this.sessionLog
    if (!checkSessionPassword(this.secret, id, req.passwd)) {
      log.info({ session: hex(id) }, 'wrong session password; refused')
      return h.reject('wrong session password')
    }
    const tracked = this.tracker.get(id)
    if (!this.db.hasSession(id) || tracked === undefined || tracked.closing || this.closingSessions.has(id)) {
      log.info({ session: hex(id) }, 'session expired; told the client')
      return h.reject('session expired')
    }
    const old = this.handlers.get(id)
    if (old !== undefined && old !== h) old.close('session moved to another connection')
    this.handlers.set(id, h)
    this.touch(id)
    h.accept(id, tracked.timeoutMs, sessionPassword(this.secret, id))
    log.debug({ session: hex(id), timeoutMs, conn: h.conn.id }, 'session resumed')
  }

  closed(h: ClientHandler, reason: string): void {
    this.watches.removeWatcher(h)
    for (const [id, s] of this.syncs) if (s.h === h) this.syncs.delete(id)
    if (h.sessionId !== 0n && this.handlers.get(h.sessionId) === h) this.handlers.delete(h.sessionId)
    for (const [id, p] of this.pendingConnects) if (p.handler === h) this.pendingConnects.delete(id)
    this.logger.debug({ conn: h.conn.id, session: hex(h.sessionId), reason }, 'connection closed')
  }

  private tick(): void {
    const now = Date.now()
    // Not reading from clients is this server's doing: their sessions stay alive meanwhile.
    if (this.throttle.paused) for (const id of this.handlers.keys()) this.touch(id)
    this.throttle.release()
    // A createSession that has not committed within the session timeout was lost on the
    // way (a leader that dropped it, or died): the client should try again, not wait.
    for (const p of this.pendingConnects.values())
      if (now > p.deadline) p.handler.close('session not created within its timeout')
    this.replicator.tick(now)
    if (!this.isLeader()) {
      if (this.touched.size > 0 && this.replicator.role !== 'looking') {
        this.replicator.toLeader(encodeForward({ kind: 'touch', sessionIds: [...this.touched] }))
        this.touched.clear()
      }
      return
    }
    for (const id of this.tracker.expire(now)) {
      this.logger.info({ component: 'session', session: hex(id) }, 'session expired')
      this.closeSession(id)
    }
  }

  private closeSession(id: bigint): void {
    if (this.closingSessions.has(id)) return
    this.closingSessions.add(id)
    this.tracker.setClosing(id)
    this.submitInternal({ kind: 'closeSession', sessionId: id }, id)
  }

  // ------------------------------------------------------------ requests

  isWrite(req: Request): boolean {
    switch (req.op) {
      case OpCode.create:
      case OpCode.create2:
      case OpCode.createContainer:
      case OpCode.createTTL:
      case OpCode.delete:
      case OpCode.setData:
      case OpCode.setACL:
      case OpCode.check:
      case OpCode.multi:
      case OpCode.closeSession:
        return true
      default:
        return false
    }
  }

  serveRead(h: ClientHandler, entry: PendingRequest): Reply | 'wait' {
    this.stats.received++
    this.touch(h.sessionId)
    const req = entry.req
    if (req.op === OpCode.auth) {
      if (addAuth(this.readCtx, h, req.scheme, req.auth)) return { err: ErrorCode.OK, zxid: this.db.lastZxid }
      queueMicrotask(() => h.close('authentication failed'))
      return { err: ErrorCode.AUTH_FAILED, zxid: this.db.lastZxid }
    }
    if (req.op === OpCode.sync) {
      if (pathError(req.path) !== null) return { err: ErrorCode.BAD_ARGUMENTS, zxid: this.db.lastZxid }
      if (this.replicator.role === 'standalone')
        return { err: ErrorCode.OK, zxid: this.db.lastZxid, body: { op: OpCode.sync, path: req.path } }
      // A quorum round through the leader: sync + read is linearizable (ZOOKEEPER-1675 fixed).
      const id = this.nextSyncId++
      this.syncs.set(id, { h, entry, path: req.path })
      this.replicator.sync(id)
      return 'wait'
    }
    return serveRead(this.readCtx, h, req)
  }

  submitWrite(h: ClientHandler, entry: PendingRequest): void {
    this.stats.received++
    this.touch(h.sessionId)
    if (entry.req.op === OpCode.closeSession) {
      this.closingSessions.add(h.sessionId)
      this.tracker.setClosing(h.sessionId)
    }
    this.throttle.admit(() => this.routeWrite(h, entry))
  }

  get readingPaused(): boolean {
    return this.throttle.paused
  }

  writeStarted(): void {
    this.throttle.started()
  }

  writeFinished(): void {
    this.throttle.finished()
  }

  /** A client's write, once admitted: refused while looking, forwarded by a follower, proposed by the leader. */
  private routeWrite(h: ClientHandler, entry: PendingRequest): void {
    if (this.replicator.role === 'looking')
      return h.complete(entry, { err: ErrorCode.CONNECTION_LOSS, zxid: this.db.lastZxid })
    if (!this.isLeader()) {
      const fwd: ForwardMessage = {
        kind: 'write',
        sessionId: h.sessionId,
        cxid: entry.xid,
        authIds: h.authIds,
        packet: entry.packet,
      }
      return this.replicator.toLeader(encodeForward(fwd))
    }
    const failed = this.prepAndPropose(entry.req, h.sessionId, entry.xid, h.authIds)
    if (failed === undefined) return
    this.held.hold(failed.barrier, this.db.lastZxid, (ok) =>
      h.complete(entry, this.releasedReply(failed.reply, ok)),
    )
  }

  /** A held failed-prep reply, stamped with the zxid it is released at; CONNECTION_LOSS if leadership changed. */
  private releasedReply(reply: Reply, ok: boolean): Reply {
    if (!ok) return { err: ErrorCode.CONNECTION_LOSS, zxid: this.db.lastZxid }
    reply.zxid = Math.max(reply.zxid, this.db.lastZxid)
    return reply
  }

  /**
   * Leader: preps a client write and proposes it. If it failed in prep,
   * returns the reply and the barrier: the last zxid logged before it (every
   * Txn prep could have seen), which the replying server must have applied
   * before the reply leaves (see HeldReplies). A new leader's log ends at
   * historyEnd, which the tree has applied before prep runs at all.
   */
  private prepAndPropose(
    req: Request,
    sessionId: bigint,
    cxid: number,
    authIds: ClientHandler['authIds'],
  ): { reply: Reply; barrier: number } | undefined {
    const write = toWriteRequest(req, sessionId)
    if ('err' in write) return { reply: { err: write.err, zxid: this.db.lastZxid }, barrier: 0 }
    if (!this.historyApplied())
      return { reply: { err: ErrorCode.CONNECTION_LOSS, zxid: this.db.lastZxid }, barrier: 0 }
    if (this.quota.refuses(write, this.db))
      return {
        reply: { err: ErrorCode.QUOTA_EXCEEDED, zxid: this.db.lastZxid },
        barrier: this.replicator.lastLoggedZxid(),
      }
    const zxid = this.replicator.nextZxid()
    const out = this.db.prep(write, { zxid, timeMs: Date.now(), sessionId, cxid, authIds })
    if (!out.ok)
      return {
        reply: failedReply(out.err, out.multi, this.db.lastZxid),
        barrier: this.replicator.lastLoggedZxid(),
      }
    this.replicator.propose(zxid, out.txn)
    return undefined
  }

  private touch(id: bigint): void {
    if (this.isLeader()) this.tracker.touch(id, Date.now())
    else this.touched.add(id)
  }

  /** Leader: a follower forwarded a write, a new session, or session activity. */
  private onForwarded(from: number, payload: Uint8Array): void {
    let m: ForwardMessage
    try {
      m = decodeForward(payload)
    } catch (err) {
      this.logger.error({ from, err: (err as Error).message }, 'malformed forwarded message')
      return
    }
    if (!this.isLeader()) return
    if (m.kind === 'touch') {
      const now = Date.now()
      for (const id of m.sessionIds) this.tracker.touch(id, now)
      return
    }
    if (m.kind === 'createSession') {
      return this.submitInternal(
        { kind: 'createSession', sessionId: m.sessionId, timeoutMs: m.timeoutMs },
        m.sessionId,
      )
    }
    if (m.kind !== 'write') return
    this.tracker.touch(m.sessionId, Date.now())
    let req: Request
    try {
      req = decodeRequest(m.packet).req
    } catch {
      return this.sendFailed(from, m.sessionId, m.cxid, { err: ErrorCode.MARSHALLING_ERROR, zxid: 0 }, 0)
    }
    if (req.op === OpCode.closeSession) {
      this.closingSessions.add(m.sessionId)
      this.tracker.setClosing(m.sessionId)
    }
    const term = this.replicator.epoch
    this.throttle.admit(() => {
      // Deferred past a change of leadership: the follower has answered its client already.
      if (!this.isLeader() || this.replicator.epoch !== term) return
      const failed = this.prepAndPropose(req, m.sessionId, m.cxid, m.authIds)
      if (failed !== undefined) this.sendFailed(from, m.sessionId, m.cxid, failed.reply, failed.barrier)
    })
  }

  /** The follower holds the reply until it has applied `barrier` (it rides the same link as the commits). */
  private sendFailed(to: number, sessionId: bigint, cxid: number, reply: Reply, barrier: number): void {
    const w = new JuteWriter(64)
    if (reply.body !== undefined) writeResponseBody(w, reply.body)
    this.replicator.toFollower(
      to,
      encodeForward({
        kind: 'failed',
        sessionId,
        cxid,
        barrier,
        err: errorNumber(reply.err),
        body: w.finish(),
      }),
    )
  }

  /** Follower: the leader answered a forwarded write that failed in prep. */
  private onLeaderMessage(payload: Uint8Array): void {
    let m: ForwardMessage
    try {
      m = decodeForward(payload)
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'malformed message from the leader')
      return
    }
    if (m.kind !== 'failed') return
    const reply: Reply = { err: errorCodeOf(m.err), zxid: 0 }
    if (m.body.length > 0) reply.body = readResponseBody(new JuteReader(m.body), OpCode.multi)
    this.held.hold(m.barrier, this.db.lastZxid, (ok) =>
      this.handlers.get(m.sessionId)?.completeWrite(m.cxid, this.releasedReply(reply, ok)),
    )
  }

  private finishSync(id: number, err: ErrorCode): void {
    const s = this.syncs.get(id)
    if (s === undefined) return
    this.syncs.delete(id)
    const reply: Reply =
      err === ErrorCode.OK
        ? { err, zxid: this.db.lastZxid, body: { op: OpCode.sync, path: s.path } }
        : { err, zxid: this.db.lastZxid }
    s.h.complete(s.entry, reply)
  }

  /** A write the server makes itself (session create/close, reaping). */
  private submitInternal(write: WriteRequest, sessionId: bigint): void {
    this.throttle.admit(() => this.proposeInternal(write, sessionId))
  }

  private proposeInternal(write: WriteRequest, sessionId: bigint): void {
    if (!this.isLeader() || !this.historyApplied()) {
      if (write.kind === 'reap') this.reaping.delete(write.path)
      if (write.kind === 'createSession')
        this.pendingConnects.get(sessionId)?.handler.close('leader is not ready')
      if (write.kind === 'closeSession') this.retryExpiry(sessionId)
      return
    }
    const zxid = this.replicator.nextZxid()
    const out = this.db.prep(write, { zxid, timeMs: Date.now(), sessionId, cxid: 0, authIds: [] })
    if (!out.ok) {
      this.logger.warn({ write: write.kind, err: out.err }, 'internal write refused by prep')
      if (write.kind === 'reap') this.reaping.delete(write.path)
      if (write.kind === 'createSession')
        this.pendingConnects.get(sessionId)?.handler.close('session not created')
      return
    }
    this.replicator.propose(zxid, out.txn)
  }

  private onCommit(zxid: number, txn: Uint8Array): void {
    const out = this.db.apply(zxid, txn)
    for (const c of out.changes) {
      for (const d of this.watches.fire(c)) d.watcher.notify(EVENT_TYPE[d.type], d.path, zxid)
    }
    this.afterApply(out, zxid)
    this.held.applied(zxid)
    this.state.applied(zxid, txn)
    this.scheduleReap()
  }

  private afterApply(out: ApplyOutcome, zxid: number): void {
    if (out.sessionCreated !== undefined) {
      const { id, timeoutMs } = out.sessionCreated
      this.tracker.add(id, timeoutMs, Date.now())
      this.acceptPending(id, timeoutMs)
      return
    }
    if (out.sessionClosed !== undefined) {
      const id = out.sessionClosed
      this.tracker.remove(id)
      this.closingSessions.delete(id)
      const h = this.handlers.get(id)
      if (h === undefined) return
      const entry = h.firstWaitingWrite()
      if (entry !== undefined && entry.req.op === OpCode.closeSession)
        h.complete(entry, { err: ErrorCode.OK, zxid, body: { op: OpCode.closeSession } })
      else h.close('session expired')
      return
    }
    if (out.changes.length > 0 && this.reaping.size > 0)
      for (const c of out.changes) this.reaping.delete(c.path)
    const h = this.handlers.get(out.sessionId)
    if (h === undefined || out.cxid === 0) return
    const entry = h.firstWaitingWrite()
    if (entry === undefined || entry.xid !== out.cxid) {
      this.logger.warn({ session: hex(out.sessionId), cxid: out.cxid }, 'commit matches no waiting request')
      return
    }
    h.complete(entry, replyFor(entry.req, out.result, zxid))
  }

  private scheduleReap(): void {
    const at = this.db.nextReapAtMs()
    if (at === undefined || at >= this.reapAt) return
    if (this.reapTimer !== undefined) clearTimeout(this.reapTimer)
    this.reapAt = at
    this.reapTimer = setTimeout(() => this.reap(), Math.max(0, at - Date.now()))
    this.reapTimer.unref()
  }

  private reap(): void {
    this.reapTimer = undefined
    this.reapAt = Number.POSITIVE_INFINITY
    if (this.isLeader()) {
      for (const path of this.db.reapable(Date.now())) {
        if (this.reaping.has(path)) continue
        this.reaping.add(path)
        this.submitInternal({ kind: 'reap', path }, 0n)
      }
    }
    // Not everything may be eligible yet; look again within a second.
    const next = this.db.nextReapAtMs()
    if (next !== undefined) {
      this.reapAt = Math.max(next, Date.now() + 1000)
      this.reapTimer = setTimeout(() => this.reap(), this.reapAt - Date.now())
      this.reapTimer.unref()
    }
  }

  // ------------------------------------------------------------ roles

  /** An expiry that could not be proposed now is tried again at the next tick. */
  private retryExpiry(id: bigint): void {
    this.closingSessions.delete(id)
    const t = this.tracker.get(id)?.timeoutMs
    this.tracker.remove(id)
    if (t !== undefined) this.tracker.add(id, t, Date.now() - t)
  }

  /** A new leader preps only once its tree holds the whole history it took over. */
  private historyApplied(): boolean {
    return this.db.lastZxid >= this.replicator.historyEnd
  }

  private isLeader(): boolean {
    const r = this.replicator.role
    return r === 'standalone' || r === 'leading'
  }

  serving(): boolean {
    return this.canServe()
  }

  private canServe(): boolean {
    const r = this.replicator.role
    return r !== 'looking' || this.config.readOnlyMode
  }

  private onRole(role: Role, epoch: number): void {
    this.logger.info({ component: 'zab', role, epoch }, 'role')
    // Txns prepped under an earlier leadership will never be applied by this one.
    if (role !== 'standalone') this.db.dropOutstanding()
    this.held.dropAll()
    // Deferred writes go now, each the way the new role sends it (refused, forwarded or dropped).
    this.throttle.flush()
    if (role === 'looking' && !this.config.readOnlyMode) {
      for (const h of this.handlers.values()) h.close('server lost its leader')
      // A connect waiting for its createSession: that proposal died with the leadership.
      for (const p of this.pendingConnects.values()) p.handler.close('server lost its leader')
    }
    if (role === 'leading') {
      // The session table is the tree's; expiry state from an earlier term is stale.
      this.ids = new SessionIdGenerator(this.config.serverId, Date.now())
      this.closingSessions.clear()
      this.restoreSessions()
    }
  }

  // ------------------------------------------------------------ admin

  /** What the four-letter words and the admin port read (server/admin/four-letter-words.ts). */
  private readonly adminView: FourLetterSource = {
    version: VERSION,
    serverId: () => this.config.serverId,
    readOnlyMode: () => this.config.readOnlyMode,
    treeBytesMax: () => this.quota.bytesMax,
    role: () => this.replicator.role,
    epoch: () => this.replicator.epoch,
    lastZxid: () => this.db.lastZxid,
    sessionCount: () => this.tracker.size,
    connectionCount: () => this.handlers.size,
    nodeCount: () => this.db.nodeCount(),
    watchCount: () => this.watches.size,
    digest: () => this.db.digest(),
    treeBytesEstimate: () => this.db.sizeEstimateBytes(),
    packetsReceived: () => this.stats.received,
    writesInFlight: () => this.throttle.inFlight,
    writesDeferred: () => this.throttle.deferred,
    readingPaused: () => this.throttle.paused,
    replication: () => this.replicator.describe(),
  }

  fourLetterWord(word: string): string | undefined {
    return fourLetterWord(this.adminView, word)
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
    if (this.reapTimer) clearTimeout(this.reapTimer)
    await this.listener?.close()
    await this.admin?.close()
    await this.replicator.close()
    await this.state.close()
    this.logger.info('stopped')
    this.logger.flush()
  }
}

const EVENT_TYPE = {
  created: 1,
  deleted: 2,
  dataChanged: 3,
  childrenChanged: 4,
} as const

export function startServer(config: ServerConfig, logger?: Logger): Promise<ServerNode> {
  return ServerNode.start(config, logger)
}
