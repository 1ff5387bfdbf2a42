/**
 * Sessions: one server's side of client sessions. It answers ConnectRequests
 * (a new session is a createSession Txn proposed by the leader; a resumed
 * one is checked against its password and the replicated session table),
 * keeps the session table (SessionTracker) in step with the tree, expires
 * sessions when this server leads, reports session activity to the leader
 * when it does not, and closes connections whose createSession never
 * committed.
 *
 * Read-only mode (readOnlyMode, while this server has no quorum: ZooKeeper's
 * ReadOnlyZooKeeperServer): only a ConnectRequest with readOnly=true gets a
 * session, and its ConnectResponse says readOnly. A session the tree knows
 * (the client's, from before the quorum was lost) is resumed as it is; a new
 * one is local: an id no other session has, known only to this server, never
 * replicated (it can make no write); its client may resume it here until
 * its timeout has passed without a connection (ZooKeeper's local sessions). Losing
 * the quorum closes every connection (the clients that can be read-only come
 * back as such); regaining it closes the read-only ones (they come back
 * read-write).
 *
 * Resuming on a follower or observer: it may lag either way — not have
 * applied a session's createSession yet (a slow disk, a pause, a healed
 * partition; a client that has not seen a zxid past it says nothing that
 * would reveal it: a ConnectResponse carries no zxid, a ping reply does not
 * count), or not have applied the closeSession of a session the leader has
 * expired (it would resume it, and serve it a tree where its ephemerals,
 * a lock node say, still exist). So before deciding, it catches up, as
 * ZooKeeper's followers revalidate a session with the leader: one sync
 * through the leader per ConnectRequest, only once the password checked
 * out, the connection closed if the sync does not finish within the session
 * timeout or the leader is lost; then the session is resumed if it lives,
 * else expired. The leader and a standalone server answer at once.
 *
 * Local sessions (`localSessions` on: ZooKeeper's localSessionsEnabled): a
 * new read-write session is made here too, without a createSession Txn, in
 * the same table as the read-only ones (LocalSessions); it is expired here
 * and closed without a Txn, and its writes carry a mark that lets the
 * leader prep them for a session its tree does not hold. Before its first
 * ephemeral (a create or a multi with one), it is upgraded: its
 * createSession goes to the leader ahead of that write (the same FIFO path),
 * and once it commits the session is a global one like any other. With
 * `localSessionsUpgrading` off, that write fails EPHEMERAL_ON_LOCAL_SESSION.
 * Another server does not know a local session: a resume there is told
 * expired (as in ZooKeeper); here it resumes within its timeout.
 *
 * Time comes from the context's clock. Invariants: a connection waits in
 * `pending` until its createSession commits (or fails, or times out); an
 * id in `closing` is never resumed; the table is rebuilt from the tree at
 * start, on taking the lead and after a SNAP; a local read-only session is
 * in `local` while connected and for its timeout after, while read-only.
 */

import { ErrorCode } from '../../shared/errors.js'
import { OpCode } from '../../shared/opcodes.js'
import type { ConnectRequest } from '../../shared/records.js'
import { formatSessionId } from '../../shared/session-id.js'
import { formatZxid } from '../../shared/zxid.js'
import { checkSessionPassword, sessionPassword } from '../auth/session-password.js'
import { type LocalSession, LocalSessions } from '../session/local-sessions.js'
import { SessionIdGenerator } from '../session/session-ids.js'
import { SessionTracker } from '../session/session-tracker.js'
import type { PrepRequest } from '../txn/request.js'
import type { ClientHandler, PendingRequest } from './client-handler.js'
import { encodeForward } from './forwarding.js'
import type { ServerContext } from './server-context.js'
import { createsEphemeral } from './write-requests.js'

/** Catches this server up through the leader; `done` is not called if `h` closes first. */
export type SyncWithLeader = (h: ClientHandler, done: (err: ErrorCode) => void) => void

/** A resume waiting for its catch-up sync. */
interface ResumingConnect {
  readonly sessionId: bigint
  /** Past this (the negotiated session timeout), the connection is closed: the client tries elsewhere. */
  readonly deadline: number
}

interface PendingConnect {
  handler: ClientHandler
  timeoutMs: number
  /** Past this (the negotiated session timeout from the request), the connection is closed. */
  deadline: number
}

export class Sessions {
  private tracker: SessionTracker
  private ids: SessionIdGenerator
  private readonly pending = new Map<bigint, PendingConnect>()
  private readonly closing = new Set<bigint>()
  /** Followers: sessions with traffic since the last report to the leader. */
  private readonly touched = new Set<bigint>()
  /** Sessions made here without a Txn (read-only ones, and every new one with localSessions on). */
  private readonly local: LocalSessions<ClientHandler>
  /** Resumes of a session unknown here, waiting for this server to catch up with the leader. */
  private readonly resuming = new Map<ClientHandler, ResumingConnect>()
  private readonly log

  constructor(
    private readonly ctx: ServerContext,
    private readonly secret: string,
    /** Proposes a write the server makes itself (through the write throttle). */
    private readonly submitInternal: (write: PrepRequest, sessionId: bigint) => void,
    /** A sync through the leader (the pipeline's, as for a client's sync request). */
    private readonly syncWithLeader: SyncWithLeader,
  ) {
    this.log = ctx.logger.child({ component: 'session' })
    this.tracker = new SessionTracker(ctx.config.tickTime)
    this.ids = new SessionIdGenerator(ctx.config.serverId, ctx.clock.now())
    this.local = new LocalSessions(ctx.config.tickTime)
  }

  get size(): number {
    return this.tracker.size
  }

  /** The session table, read-only (the admin's `dump`: expiry buckets on the leader). */
  get table(): Pick<SessionTracker, 'ids' | 'get'> {
    return this.tracker
  }

  /** Rebuilds the session table from the tree (at start, on leading, after a SNAP): what it held before is stale. */
  restore(): void {
    this.tracker = new SessionTracker(this.ctx.config.tickTime)
    const now = this.ctx.clock.now()
    for (const s of this.ctx.db.sessions()) this.tracker.add(s.id, s.timeoutMs, now)
    if (this.tracker.size > 0) this.ctx.logger.info({ sessions: this.tracker.size }, 'sessions restored')
  }

  /**
   * A SNAP replaced the tree: the session table is the new tree's (sessions
   * created while this server was behind arrive only in it, and must be able
   * to move here); a connect waiting for its createSession is answered if
   * the snapshot holds the session.
   */
  restored(): void {
    this.restore()
    for (const id of this.pending.keys()) {
      const s = this.tracker.get(id)
      if (s !== undefined) this.acceptPending(id, s.timeoutMs)
    }
  }

  connect(h: ClientHandler, req: ConnectRequest): void {
    const { ctx, log } = this
    const config = ctx.config
    if (!ctx.canServe()) return h.close('this server is not serving clients (no quorum)')
    if (req.lastZxidSeen > BigInt(ctx.db.lastZxid)) {
      log.info(
        { lastZxidSeen: req.lastZxidSeen.toString(), ours: ctx.db.lastZxid },
        'client is ahead of us; refused',
      )
      return h.close(
        `client has seen zxid ${req.lastZxidSeen}, this server only ${formatZxid(ctx.db.lastZxid)}`,
      )
    }
    const timeoutMs = Math.min(Math.max(req.timeOut, config.minSessionTimeout), config.maxSessionTimeout)
    if (ctx.isReadOnly()) return this.connectReadOnly(h, req, timeoutMs)
    if (req.sessionId !== 0n) return this.resume(h, req, timeoutMs)
    if (this.refusedAtLimit(h)) return
    if (config.localSessions) return this.createLocal(h, timeoutMs, false)
    const id = this.newId()
    this.pending.set(id, { handler: h, timeoutMs, deadline: ctx.clock.now() + timeoutMs })
    this.proposeCreate(id, timeoutMs)
  }

  /** An id no session this server knows has (local ids embed its server id: no other server makes them). */
  private newId(): bigint {
    return this.ids.take((x) => this.ctx.db.hasSession(x) || this.pending.has(x) || this.local.has(x))
  }

  /** A session made here without a Txn (read-only, or with localSessions on). */
  private createLocal(h: ClientHandler, timeoutMs: number, readOnly: boolean): void {
    const id = this.newId()
    this.local.add(id, timeoutMs, readOnly, h, this.ctx.clock.now())
    this.ctx.handlers.set(id, h)
    h.accept(id, timeoutMs, sessionPassword(this.secret, id), readOnly, false)
    if (!readOnly) this.ctx.probe.sessionOpened()
    this.log.debug(
      { session: formatSessionId(id), conn: h.conn.id, readOnly },
      'local session created (no Txn)',
    )
  }

  /** A local session's client is back on this server (within its timeout): the new connection takes it over. */
  private resumedLocal(h: ClientHandler, s: LocalSession<ClientHandler>, readOnly: boolean): void {
    const { ctx } = this
    const old = ctx.handlers.get(s.id)
    if (old !== undefined && old !== h) old.close('session moved to another connection')
    s.handler = h
    this.local.touch(s.id, ctx.clock.now())
    ctx.handlers.set(s.id, h)
    h.accept(s.id, s.timeoutMs, sessionPassword(this.secret, s.id), readOnly, false)
    this.log.debug({ session: formatSessionId(s.id), conn: h.conn.id }, 'local session resumed')
  }

  private resume(h: ClientHandler, req: ConnectRequest, timeoutMs: number): void {
    const id = req.sessionId
    const { ctx, log } = this
    if (this.refusedPassword(h, id, req.passwd)) return
    // Made here without a Txn (and not upgraded yet): only this server knows it.
    const local = this.local.size > 0 ? this.local.get(id) : undefined
    if (local !== undefined && !local.readOnly) return this.resumedLocal(h, local, false)
    // The leader (or a standalone server) knows whether the session lives.
    if (ctx.isLeader() || ctx.replicator.role === 'standalone')
      return this.resumable(id) ? this.resumed(h, id) : this.expired(h, id)
    // A follower or observer may lag either way: behind the session's createSession (it would
    // call a live session expired) or behind its closeSession (it would resume a session the
    // leader has expired, and serve it reads of a tree where its ephemerals — a lock node —
    // still exist). So it catches up first, as ZooKeeper's followers revalidate with the leader.
    if (this.resuming.size >= ctx.config.sessionsMax) {
      log.warn({ sessionsMax: ctx.config.sessionsMax }, 'too many resumes waiting to catch up; refused')
      return h.close(`too many sessions resuming (sessionsMax=${ctx.config.sessionsMax})`)
    }
    this.resuming.set(h, { sessionId: id, deadline: ctx.clock.now() + timeoutMs })
    log.debug(
      { session: formatSessionId(id), conn: h.conn.id },
      'syncing with the leader before resuming the session',
    )
    this.syncWithLeader(h, (err) => {
      if (this.resuming.get(h)?.sessionId !== id) return
      this.resuming.delete(h)
      if (err !== ErrorCode.OK) return h.close('could not catch up with the leader to resume the session')
      if (this.resumable(id)) this.resumed(h, id)
      else this.expired(h, id)
    })
  }

  /** Refuses a new session past sessionsMax (sessions known, being created, and local read-only ones). */
  private refusedAtLimit(h: ClientHandler): boolean {
    const max = this.ctx.config.sessionsMax
    if (this.tracker.size + this.pending.size + this.local.size < max) return false
    this.log.warn({ sessionsMax: max }, 'session limit reached; refused')
    h.close(`too many sessions (sessionsMax=${max})`)
    return true
  }

  /** Refuses a resume whose password is not the session's. */
  private refusedPassword(h: ClientHandler, id: bigint, passwd: Uint8Array): boolean {
    if (checkSessionPassword(this.secret, id, passwd)) return false
    this.log.info({ session: formatSessionId(id) }, 'wrong session password; refused')
    h.reject('wrong session password')
    return true
  }

  /** This server knows the session, and not as closing. */
  private resumable(id: bigint): boolean {
    const tracked = this.tracker.get(id)
    return this.ctx.db.hasSession(id) && tracked !== undefined && !tracked.closing && !this.closing.has(id)
  }

  private expired(h: ClientHandler, id: bigint): void {
    this.log.info({ session: formatSessionId(id) }, 'session expired; told the client')
    h.reject('session expired')
  }

  private resumed(h: ClientHandler, id: bigint): void {
    const { ctx, log } = this
    const timeoutMs = this.tracker.get(id)!.timeoutMs
    const old = ctx.handlers.get(id)
    if (old !== undefined && old !== h) old.close('session moved to another connection')
    ctx.handlers.set(id, h)
    this.touch(id)
    h.accept(id, timeoutMs, sessionPassword(this.secret, id))
    log.debug({ session: formatSessionId(id), timeoutMs, conn: h.conn.id }, 'session resumed')
  }

  /** A ConnectRequest to a read-only server (see the header). */
  private connectReadOnly(h: ClientHandler, req: ConnectRequest, timeoutMs: number): void {
    const { ctx, log } = this
    if (req.readOnly !== true) {
      log.info({ conn: h.conn.id }, 'read-only: refused a client that did not ask for a read-only session')
      return h.close('this server is read-only (it has no quorum), and the client did not ask for read-only')
    }
    const id = req.sessionId
    if (id === 0n) {
      if (this.refusedAtLimit(h)) return
      return this.createLocal(h, timeoutMs, true)
    }
    if (this.refusedPassword(h, id, req.passwd)) return
    const localOld = this.local.get(id)
    // Read-only here, whatever it was made as (a read-write one is read-write again once this server is).
    if (localOld !== undefined) return this.resumedLocal(h, localOld, true)
    if (!this.resumable(id)) {
      log.info({ session: formatSessionId(id) }, 'session expired (or unknown here); told the client')
      return h.reject('session expired')
    }
    const old = ctx.handlers.get(id)
    if (old !== undefined && old !== h) old.close('session moved to another connection')
    ctx.handlers.set(id, h)
    h.accept(id, this.tracker.get(id)!.timeoutMs, sessionPassword(this.secret, id), true)
    log.debug({ session: formatSessionId(id), conn: h.conn.id }, 'session resumed read-only')
  }

  /** A session this server's client asked for exists now: the client gets its ConnectResponse. */
  private acceptPending(id: bigint, timeoutMs: number): void {
    const p = this.pending.get(id)
    if (p === undefined) return
    this.pending.delete(id)
    this.ctx.handlers.set(id, p.handler)
    p.handler.accept(id, timeoutMs, sessionPassword(this.secret, id))
    this.ctx.probe.sessionOpened()
    this.log.debug({ session: formatSessionId(id), timeoutMs }, 'session created')
  }

  /** A connection ended: it no longer waits for a session; a local session waits for its client to come back. */
  closed(h: ClientHandler): void {
    for (const [id, p] of this.pending) if (p.handler === h) this.pending.delete(id)
    this.resuming.delete(h)
    const local = this.local.size > 0 ? this.local.get(h.sessionId) : undefined
    if (local?.handler === h) local.handler = undefined
  }

  /** Sessions made here without a Txn (read-only or local) and open now. */
  get localSessions(): number {
    return this.local.size
  }

  /** A session made here without a Txn (read-only, local, or local being upgraded). */
  hasLocal(id: bigint): boolean {
    return this.local.size > 0 && this.local.has(id)
  }

  /** A session made here without a Txn that is not being upgraded: its writes are marked local for the leader. */
  isLocal(id: bigint): boolean {
    if (this.local.size === 0) return false
    const s = this.local.get(id)
    return s !== undefined && !s.upgrading
  }

  /**
   * A write of a local session, before it is routed: answered here (true)
   * if it needs no Txn (closeSession) or cannot be made (an ephemeral
   * without localSessionsUpgrading); an ephemeral upgrades the session
   * first (its createSession goes ahead of the write; false: route it).
   */
  localWrite(h: ClientHandler, entry: PendingRequest): boolean {
    const s = this.local.get(h.sessionId)
    if (s === undefined || s.upgrading) return false
    const { ctx } = this
    const req = entry.req
    if (req.op === OpCode.closeSession) {
      this.local.remove(s.id)
      this.log.debug({ session: formatSessionId(s.id) }, 'local session closed (no Txn)')
      h.complete(entry, { err: ErrorCode.OK, zxid: ctx.db.lastZxid, body: { op: OpCode.closeSession } })
      return true
    }
    if (!createsEphemeral(req)) return false
    if (!ctx.config.localSessionsUpgrading) {
      h.complete(entry, { err: ErrorCode.EPHEMERAL_ON_LOCAL_SESSION, zxid: ctx.db.lastZxid })
      return true
    }
    s.upgrading = true
    this.log.debug(
      { session: formatSessionId(s.id) },
      'upgrading local session: createSession before its ephemeral',
    )
    this.proposeCreate(s.id, s.timeoutMs)
    return false
  }

  /** A createSession for `id`: proposed here if this server leads, else forwarded (ahead of any later write). */
  private proposeCreate(id: bigint, timeoutMs: number): void {
    if (this.ctx.isLeader()) this.submitInternal({ type: 'createSession', timeoutMs }, id)
    else this.ctx.replicator.toLeader(encodeForward({ kind: 'createSession', sessionId: id, timeoutMs }))
  }

  /** Activity on a session: the leader's table, or the next report to it. */
  touch(id: bigint): void {
    if (this.local.size > 0) {
      const s = this.local.touch(id, this.ctx.clock.now())
      if (s !== undefined && !s.upgrading) return
    }
    if (this.ctx.isLeader()) this.tracker.touch(id, this.ctx.clock.now())
    else this.touched.add(id)
  }

  /** Leader: a follower reports activity on these sessions. */
  touchedElsewhere(ids: readonly bigint[]): void {
    const now = this.ctx.clock.now()
    for (const id of ids) this.tracker.touch(id, now)
  }

  /** The session is being closed (its closeSession is on its way): it is not resumed or expired again. */
  markClosing(id: bigint): void {
    this.closing.add(id)
    this.tracker.setClosing(id)
  }

  /** Touches every session connected here (their pings wait unread while this server's throttle holds reading). */
  keepAlive(): void {
    for (const id of this.ctx.handlers.keys()) this.touch(id)
  }

  /**
   * Periodic work: connects whose createSession is overdue are closed; a
   * follower reports activity to its leader; the leader expires sessions.
   */
  tick(): void {
    const { ctx } = this
    const now = ctx.clock.now()
    for (const s of this.local.expire(now)) {
      this.log.info({ session: formatSessionId(s.id), readOnly: s.readOnly }, 'local session expired')
      if (!s.readOnly) this.ctx.probe.sessionExpired()
      s.handler?.close('session expired')
    }
    // A createSession that has not committed within the session timeout was lost on the
    // way (a leader that dropped it, or died): the client should try again, not wait.
    for (const p of this.pending.values())
      if (now > p.deadline) p.handler.close('session not created within its timeout')
    for (const [h, r] of this.resuming)
      if (now > r.deadline) h.close('could not catch up with the leader in time to resume the session')
    if (!ctx.isLeader()) {
      if (this.touched.size > 0 && ctx.replicator.role !== 'looking') {
        ctx.replicator.toLeader(encodeForward({ kind: 'touch', sessionIds: [...this.touched] }))
        this.touched.clear()
      }
      return
    }
    for (const id of this.tracker.expire(now)) {
      this.log.info({ session: formatSessionId(id) }, 'session expired')
      this.ctx.probe.sessionExpired()
      this.expire(id)
    }
  }

  private expire(id: bigint): void {
    if (this.closing.has(id)) return
    this.markClosing(id)
    this.submitInternal({ type: 'closeSession' }, id)
  }

  /** A createSession committed. */
  created(id: bigint, timeoutMs: number): void {
    this.tracker.add(id, timeoutMs, this.ctx.clock.now())
    // An upgraded local session is a global one from here on.
    if (this.local.size > 0 && this.local.remove(id) !== undefined)
      this.log.debug({ session: formatSessionId(id) }, 'local session upgraded')
    this.acceptPending(id, timeoutMs)
  }

  /** A closeSession committed: the session is gone from the table. */
  removed(id: bigint): void {
    this.tracker.remove(id)
    this.closing.delete(id)
  }

  /**
   * A session write of the server's own could not be proposed: `notReady`,
   * this server does not lead (or not yet); otherwise prep refused it.
   */
  internalFailed(write: PrepRequest, sessionId: bigint, notReady: boolean): void {
    if (write.type === 'createSession') {
      this.pending.get(sessionId)?.handler.close(notReady ? 'leader is not ready' : 'session not created')
      this.upgradeFailed(sessionId)
    }
    // An expiry that could not be proposed now is tried again at the next tick.
    if (write.type === 'closeSession' && notReady) this.retryExpiry(sessionId)
  }

  /** A local session's upgrade did not go through: local again; its client (whose ephemeral fails) reconnects. */
  private upgradeFailed(id: bigint): void {
    const s = this.local.get(id)
    if (s === undefined || !s.upgrading) return
    s.upgrading = false
    s.handler?.close('local session could not be upgraded')
  }

  private retryExpiry(id: bigint): void {
    this.closing.delete(id)
    const t = this.tracker.get(id)?.timeoutMs
    this.tracker.remove(id)
    if (t !== undefined) this.tracker.add(id, t, this.ctx.clock.now() - t)
  }

  /**
   * The role changed. Losing the leader closes every connection (with
   * readOnlyMode, the clients that can be read-only come back as such, as
   * ZooKeeper's do when its server restarts read-only), and connects waiting
   * for a createSession (that proposal died with the leadership). Regaining
   * a quorum closes the read-only connections: their clients come back
   * read-write (a local session's client with a new session). Taking the
   * lead starts a fresh id generator and rebuilds the table from the tree
   * (expiry state of an earlier term is stale); following a new leader
   * forgets this server's closing marks.
   */
  roleChanged(role: string): void {
    const { ctx } = this
    if (role === 'looking') {
      for (const h of [...ctx.handlers.values()]) h.close('server lost its leader')
      for (const p of [...this.pending.values()]) p.handler.close('server lost its leader')
      for (const h of [...this.resuming.keys()]) h.close('server lost its leader')
    } else {
      for (const h of [...ctx.handlers.values()])
        if (h.readOnly) h.close('server is in a quorum again: reconnect read-write')
      this.local.clear((s) => s.readOnly)
      // An upgrade whose createSession the last leader did not commit is lost: the session is local again.
      for (const s of this.local.values()) if (s.upgrading && !ctx.db.hasSession(s.id)) s.upgrading = false
    }
    if (role === 'leading') {
      this.ids = new SessionIdGenerator(ctx.config.serverId, ctx.clock.now())
      this.closing.clear()
      this.restore()
    } else if (role !== 'looking' && this.closing.size > 0) {
      // A closeSession forwarded from here under the last leader either is in the new leader's
      // history (it commits, and the session goes) or was lost (the session lives on there):
      // this server's own marks are stale either way, and must not refuse a resume.
      this.closing.clear()
      this.restore()
    }
  }
}
