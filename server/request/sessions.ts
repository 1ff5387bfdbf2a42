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
 * Time comes from the context's clock. Invariants: a connection waits in
 * `pending` until its createSession commits (or fails, or times out); an
 * id in `closing` is never resumed; the table is rebuilt from the tree at
 * start, on taking the lead and after a SNAP; a local read-only session is
 * in `local` while connected and for its timeout after, while read-only.
 */

import { ErrorCode } from '../../shared/errors.js'
import type { ConnectRequest } from '../../shared/records.js'
import { formatSessionId } from '../../shared/session-id.js'
import { formatZxid } from '../../shared/zxid.js'
import { checkSessionPassword, sessionPassword } from '../auth/session-password.js'
import { SessionIdGenerator } from '../session/session-ids.js'
import { SessionTracker } from '../session/session-tracker.js'
import type { PrepRequest } from '../txn/request.js'
import type { ClientHandler } from './client-handler.js'
import { encodeForward } from './forwarding.js'
import type { ServerContext } from './server-context.js'

interface LocalSession {
  handler: ClientHandler | undefined
  timeoutMs: number
  /** Without a connection: gone at this time (the context's clock). */
  expiresAt: number
}

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
  /** Read-only sessions made here (not replicated): their connection, or when they expire without one. */
  private readonly local = new Map<bigint, LocalSession>()
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
    const id = this.ids.take((x) => ctx.db.hasSession(x) || this.pending.has(x))
    this.pending.set(id, { handler: h, timeoutMs, deadline: ctx.clock.now() + timeoutMs })
    if (ctx.isLeader()) this.submitInternal({ type: 'createSession', timeoutMs }, id)
    else ctx.replicator.toLeader(encodeForward({ kind: 'createSession', sessionId: id, timeoutMs }))
  }

  private resume(h: ClientHandler, req: ConnectRequest, timeoutMs: number): void {
    const id = req.sessionId
    const { ctx, log } = this
    if (this.refusedPassword(h, id, req.passwd)) return
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
      const local = this.ids.take((x) => ctx.db.hasSession(x) || this.pending.has(x) || this.local.has(x))
      this.local.set(local, { handler: h, timeoutMs, expiresAt: Number.POSITIVE_INFINITY })
      ctx.handlers.set(local, h)
      h.accept(local, timeoutMs, sessionPassword(this.secret, local), true)
      log.debug({ session: formatSessionId(local), conn: h.conn.id }, 'read-only session created (local)')
      return
    }
    if (this.refusedPassword(h, id, req.passwd)) return
    const known = this.resumable(id)
    const found = this.local.get(id)
    const localOld = found !== undefined && ctx.clock.now() <= found.expiresAt ? found : undefined
    if (!known && localOld === undefined) {
      log.info({ session: formatSessionId(id) }, 'session expired (or unknown here); told the client')
      return h.reject('session expired')
    }
    const old = ctx.handlers.get(id)
    if (old !== undefined && old !== h) old.close('session moved to another connection')
    if (localOld !== undefined) {
      localOld.handler = h
      localOld.expiresAt = Number.POSITIVE_INFINITY
    }
    ctx.handlers.set(id, h)
    const keptMs = known ? this.tracker.get(id)!.timeoutMs : localOld!.timeoutMs
    h.accept(id, keptMs, sessionPassword(this.secret, id), true)
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

  /** A connection ended: it no longer waits for a session; a local read-only session's timeout starts. */
  closed(h: ClientHandler): void {
    for (const [id, p] of this.pending) if (p.handler === h) this.pending.delete(id)
    this.resuming.delete(h)
    const local = h.readOnly ? this.local.get(h.sessionId) : undefined
    if (local?.handler === h) {
      local.handler = undefined
      local.expiresAt = this.ctx.clock.now() + local.timeoutMs
    }
  }

  /** Read-only sessions made here and open now. */
  get localSessions(): number {
    return this.local.size
  }

  /** Activity on a session: the leader's table, or the next report to it. */
  touch(id: bigint): void {
    if (this.local.has(id)) return
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
    for (const [id, l] of this.local) if (now > l.expiresAt) this.local.delete(id)
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
    if (write.type === 'createSession')
      this.pending.get(sessionId)?.handler.close(notReady ? 'leader is not ready' : 'session not created')
    // An expiry that could not be proposed now is tried again at the next tick.
    if (write.type === 'closeSession' && notReady) this.retryExpiry(sessionId)
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
      this.local.clear()
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
