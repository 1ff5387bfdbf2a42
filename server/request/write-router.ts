/**
 * WriteRouter: where a write goes once a connection submits it. Through
 * the write throttle (write-throttle.ts) it is refused while this server
 * looks for a leader, forwarded by a follower to its leader, or prepped and
 * proposed by the leader (or a standalone server). The leader also takes
 * the writes its followers forward, and the writes the server makes itself
 * (session create/close, reaping). A write that fails in prep is answered
 * without a Txn — but only once the replying server has applied every Txn
 * prep could have seen (HeldReplies), so the reply never runs ahead of
 * writes before it.
 *
 * Invariants: a proposal gets the zxid prep used (asserted by the
 * Replicator); a forwarded write deferred past a change of leadership is
 * dropped (its follower has answered its client already).
 */
import { ErrorCode, errorCodeOf, errorNumber } from '../../shared/errors.js'
import { JuteReader, JuteWriter } from '../../shared/jute.js'
import { OpCode } from '../../shared/opcodes.js'
import { decodeRequest, type Request, readResponseBody, writeResponseBody } from '../../shared/records.js'
import type { TreeQuota } from '../state/tree-quota.js'
import type { PrepRequest } from '../txn/request.js'
import type { ClientHandler, PendingRequest, Reply } from './client-handler.js'
import { decodeForward, encodeForward, type ForwardMessage } from './forwarding.js'
import { HeldReplies } from './held-replies.js'
import { failedReply } from './replies.js'
import type { ServerContext } from './server-context.js'
import type { Sessions } from './sessions.js'
import { toPrepRequest } from './write-requests.js'
import type { WriteThrottle } from './write-throttle.js'

export class WriteRouter {
  /** Failed-prep replies waiting for the tree to catch up with the Txns prepped before them. */
  readonly held = new HeldReplies()
  /** Paths with a reap proposed and not yet applied (or failed). */
  readonly reaping = new Set<string>()
  private sessions!: Sessions

  constructor(
    private readonly ctx: ServerContext,
    private readonly throttle: WriteThrottle,
    private readonly quota: TreeQuota,
  ) {}

  bind(sessions: Sessions): void {
    this.sessions = sessions
  }

  /** A client's write, from its connection. */
  submit(h: ClientHandler, entry: PendingRequest): void {
    if (entry.req.op === OpCode.closeSession) this.sessions.markClosing(h.sessionId)
    this.throttle.admit(() => this.route(h, entry))
  }

  /** A client's write, once admitted: refused while looking, forwarded by a follower, proposed by the leader. */
  private route(h: ClientHandler, entry: PendingRequest): void {
    const { ctx } = this
    if (ctx.replicator.role === 'looking')
      return h.complete(entry, { err: ErrorCode.CONNECTION_LOSS, zxid: ctx.db.lastZxid })
    if (!ctx.isLeader()) {
      const fwd: ForwardMessage = {
        kind: 'write',
        sessionId: h.sessionId,
        cxid: entry.xid,
        authIds: h.authIds,
        packet: entry.packet,
      }
      return ctx.replicator.toLeader(encodeForward(fwd))
    }
    const failed = this.prepAndPropose(entry.req, h.sessionId, entry.xid, h.authIds)
    if (failed === undefined) return
    this.held.hold(failed.barrier, ctx.db.lastZxid, (ok) =>
      h.complete(entry, this.releasedReply(failed.reply, ok)),
    )
  }

  /** A held failed-prep reply, stamped with the zxid it is released at; CONNECTION_LOSS if leadership changed. */
  private releasedReply(reply: Reply, ok: boolean): Reply {
    const lastZxid = this.ctx.db.lastZxid
    if (!ok) return { err: ErrorCode.CONNECTION_LOSS, zxid: lastZxid }
    reply.zxid = Math.max(reply.zxid, lastZxid)
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
    const { ctx } = this
    const { db, replicator } = ctx
    const write = toPrepRequest(req)
    if ('err' in write) return { reply: { err: write.err, zxid: db.lastZxid }, barrier: 0 }
    if (!ctx.historyApplied())
      return { reply: { err: ErrorCode.CONNECTION_LOSS, zxid: db.lastZxid }, barrier: 0 }
    if (this.quota.refuses(write, db))
      return {
        reply: { err: ErrorCode.QUOTA_EXCEEDED, zxid: db.lastZxid },
        barrier: replicator.lastLoggedZxid(),
      }
    const zxid = replicator.nextZxid()
    const out = db.prep(write, { zxid, timeMs: ctx.clock.now(), sessionId, cxid, authIds })
    if (!out.ok)
      return { reply: failedReply(out.err, out.multi, db.lastZxid), barrier: replicator.lastLoggedZxid() }
    replicator.propose(zxid, out.txn)
    return undefined
  }

  /** Leader: a follower forwarded a write, a new session, or session activity. */
  forwarded(from: number, payload: Uint8Array): void {
    const { ctx } = this
    let m: ForwardMessage
    try {
      m = decodeForward(payload)
    } catch (err) {
      ctx.logger.error({ from, err: (err as Error).message }, 'malformed forwarded message')
      return
    }
    if (!ctx.isLeader()) return
    if (m.kind === 'touch') return this.sessions.touchedElsewhere(m.sessionIds)
    if (m.kind === 'createSession')
      return this.submitInternal({ type: 'createSession', timeoutMs: m.timeoutMs }, m.sessionId)
    if (m.kind !== 'write') return
    this.sessions.touchedElsewhere([m.sessionId])
    let req: Request
    try {
      req = decodeRequest(m.packet).req
    } catch {
      return this.sendFailed(from, m.sessionId, m.cxid, { err: ErrorCode.MARSHALLING_ERROR, zxid: 0 }, 0)
    }
    if (req.op === OpCode.closeSession) this.sessions.markClosing(m.sessionId)
    const term = ctx.replicator.epoch
    this.throttle.admit(() => {
      // Deferred past a change of leadership: the follower has answered its client already.
      if (!ctx.isLeader() || ctx.replicator.epoch !== term) return
      const failed = this.prepAndPropose(req, m.sessionId, m.cxid, m.authIds)
      if (failed !== undefined) this.sendFailed(from, m.sessionId, m.cxid, failed.reply, failed.barrier)
    })
  }

  /** The follower holds the reply until it has applied `barrier` (it rides the same link as the commits). */
  private sendFailed(to: number, sessionId: bigint, cxid: number, reply: Reply, barrier: number): void {
    const w = new JuteWriter(64)
    if (reply.body !== undefined) writeResponseBody(w, reply.body)
    this.ctx.replicator.toFollower(
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
  fromLeader(payload: Uint8Array): void {
    const { ctx } = this
    let m: ForwardMessage
    try {
      m = decodeForward(payload)
    } catch (err) {
      ctx.logger.error({ err: (err as Error).message }, 'malformed message from the leader')
      return
    }
    if (m.kind !== 'failed') return
    const reply: Reply = { err: errorCodeOf(m.err), zxid: 0 }
    if (m.body.length > 0) reply.body = readResponseBody(new JuteReader(m.body), OpCode.multi)
    this.held.hold(m.barrier, ctx.db.lastZxid, (ok) =>
      ctx.handlers.get(m.sessionId)?.completeWrite(m.cxid, this.releasedReply(reply, ok)),
    )
  }

  /** A write the server makes itself (session create/close, reaping). */
  submitInternal(write: PrepRequest, sessionId: bigint): void {
    this.throttle.admit(() => this.proposeInternal(write, sessionId))
  }

  private proposeInternal(write: PrepRequest, sessionId: bigint): void {
    const { ctx } = this
    if (!ctx.isLeader() || !ctx.historyApplied()) {
      if (write.type === 'reap') this.reaping.delete(write.path)
      this.sessions.internalFailed(write, sessionId, true)
      return
    }
    const zxid = ctx.replicator.nextZxid()
    const out = ctx.db.prep(write, { zxid, timeMs: ctx.clock.now(), sessionId, cxid: 0, authIds: [] })
    if (!out.ok) {
      ctx.logger.warn({ write: write.type, err: out.err }, 'internal write refused by prep')
      if (write.type === 'reap') this.reaping.delete(write.path)
      this.sessions.internalFailed(write, sessionId, false)
      return
    }
    ctx.replicator.propose(zxid, out.txn)
  }

  /** The role changed: held replies of the old term fail; deferred writes go now, each under the new role. */
  roleChanged(): void {
    this.held.dropAll()
    this.throttle.flush()
  }
}
