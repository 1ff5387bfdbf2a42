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
 * An exactly-once write (a client's write sent with ConclaveOpCode.exactlyOnce,
 * possibly again after a lost connection) is looked up first, by (session,
 * xid): applied already, it is answered with its remembered result (a
 * follower gets the result to answer with); prepped and on its way, it is
 * answered when that Txn is applied; forgotten (acknowledged, or evicted
 * past sessionWriteResultsMax), it is answered OUTCOME_UNKNOWN; otherwise it
 * is prepped, and even a failure is then logged (an error Txn), so a late
 * copy of it finds the answer the client may already have.
 *
 * Invariants: a proposal gets the zxid prep used (asserted by the
 * Replicator); a forwarded write deferred past a change of leadership is
 * dropped (its follower has answered its client already); an exactly-once
 * write is prepped only if no Txn of it is applied or in flight.
 */
import { ErrorCode, errorCodeOf, errorNumber } from '../../shared/errors.js'
import { JuteReader, JuteWriter } from '../../shared/jute.js'
import { OpCode } from '../../shared/opcodes.js'
import {
  decodeRequest,
  type OnceHeader,
  type ReconfigRequest,
  type Request,
  readResponseBody,
  writeResponseBody,
} from '../../shared/records.js'
import { formatSessionId } from '../../shared/session-id.js'
import { sessionServerId } from '../session/session-ids.js'
import type { TreeQuota } from '../state/tree-quota.js'
import { xidBefore } from '../tree/write-memory.js'
import type { PrepContext, PrepRequest } from '../txn/request.js'
import { decodeResult } from '../txn/result-codec.js'
import type { ClientHandler, PendingRequest, Reply } from './client-handler.js'
import { decodeForward, encodeForward, type ForwardMessage } from './forwarding.js'
import { HeldReplies } from './held-replies.js'
import type { Reaper } from './reaper.js'
import { proposeReconfig, reconfigReply } from './reconfig.js'
import { failedReply, replyFor } from './replies.js'
import type { ServerContext } from './server-context.js'
import type { Sessions } from './sessions.js'
import { toPrepRequest } from './write-requests.js'
import type { WriteThrottle } from './write-throttle.js'

/**
 * Per-session order for exactly-once writes answered CONNECTION_LOSS (a
 * leader that has not applied its history yet, a server looking for one):
 * the client sends such a write again, and must not find a later write of
 * its session applied before it. Once xid `b` is refused, the key's later
 * xids are refused too, until `b` comes again, or the client's ack passes
 * it (the client gave it up).
 */
interface KeyedXids<K> {
  get(key: K): number | undefined
  set(key: K, xid: number): unknown
  delete(key: K): boolean
  has(key: K): boolean
}

class RefusalBarriers<K> {
  /** A Map, or a WeakMap for connections (a barrier goes with its connection). */
  constructor(private readonly from: KeyedXids<K>) {}

  /** Must this write be refused for an earlier one refused? Clears the barrier it passes. */
  blocks(key: K, xid: number, ackXid: number): boolean {
    const b = this.from.get(key)
    if (b === undefined) return false
    if (xid === b || xidBefore(b, ackXid)) {
      this.from.delete(key)
      return false
    }
    return xidBefore(b, xid)
  }

  refused(key: K, xid: number): void {
    if (!this.from.has(key)) this.from.set(key, xid)
  }
}

/**
 * What became of a write at the leader's prep: undefined (proposed; the
 * commit answers it), failed (answered once the barrier is applied), or an
 * exactly-once write met again (applied already, or in flight).
 */
type PrepResult =
  | undefined
  | { kind: 'failed'; reply: Reply; barrier: number }
  | { kind: 'remembered'; zxid: number; result: Uint8Array }
  | { kind: 'inFlight'; zxid: number }
  /** A reconfig proposed at `zxid`: answered with /zookeeper/config once that entry is applied. */
  | { kind: 'config'; zxid: number }

export class WriteRouter {
  /** Failed-prep replies waiting for the tree to catch up with the Txns prepped before them. */
  readonly held = new HeldReplies()
  /** Exactly-once writes met again at prep: answered from memory, waited for in flight, forgotten. */
  readonly onceStats = { remembered: 0, inFlight: 0, forgotten: 0 }
  /** Leader: followers waiting for an exactly-once write in flight ("session/xid" -> follower ids). */
  private readonly awaitingApply = new Map<string, Set<number>>()
  /** Leader: sessions with an exactly-once write refused for want of the applied history. */
  private sessionBarriers = new RefusalBarriers<bigint>(new Map())
  /** Connections with an exactly-once write refused while this server looked for a leader. */
  private readonly connectionBarriers = new RefusalBarriers<ClientHandler>(new WeakMap())
  private sessions!: Sessions
  private reaper!: Reaper

  constructor(
    private readonly ctx: ServerContext,
    private readonly throttle: WriteThrottle,
    private readonly quota: TreeQuota,
  ) {}

  bind(sessions: Sessions, reaper: Reaper): void {
    this.sessions = sessions
    this.reaper = reaper
  }

  /** A client's write, from its connection. */
  submit(h: ClientHandler, entry: PendingRequest): void {
    if (entry.req.op === OpCode.closeSession) this.sessions.markClosing(h.sessionId)
    // Local or not as it is now: a later write may upgrade it, and its createSession may pass this one.
    const local = this.sessions.isLocal(h.sessionId)
    this.throttle.admit(() => this.route(h, entry, local))
  }

  /** A client's write, once admitted: refused while looking, forwarded by a follower, proposed by the leader. */
  private route(h: ClientHandler, entry: PendingRequest, local: boolean): void {
    const { ctx } = this
    const once = entry.once
    if (
      ctx.replicator.role === 'looking' ||
      (once && this.connectionBarriers.blocks(h, entry.xid, once.ackXid))
    ) {
      if (once !== undefined) this.connectionBarriers.refused(h, entry.xid)
      return h.complete(entry, { err: ErrorCode.CONNECTION_LOSS, zxid: ctx.db.lastZxid })
    }
    if (!ctx.isLeader()) {
      const fwd: ForwardMessage = {
        kind: 'write',
        sessionId: h.sessionId,
        cxid: entry.xid,
        authIds: h.authIds,
        packet: entry.packet,
      }
      if (local) fwd.local = true
      return ctx.replicator.toLeader(encodeForward(fwd))
    }
    const out = this.prepAndPropose(entry.req, h.sessionId, entry.xid, h.authIds, entry.once, local)
    if (out === undefined) return
    switch (out.kind) {
      case 'failed':
        return this.held.hold(out.barrier, ctx.db.lastZxid, (ok) =>
          h.complete(entry, this.releasedReply(out.reply, ok)),
        )
      case 'remembered':
        return this.held.hold(out.zxid, ctx.db.lastZxid, (ok) =>
          h.complete(entry, this.rememberedReply(entry.req, out.result, out.zxid, ok)),
        )
      case 'inFlight':
        // The Applier answers it on this connection when out.zxid is applied.
        return
      case 'config':
        return this.held.hold(out.zxid, ctx.db.lastZxid, (ok) =>
          h.complete(entry, this.reconfiguredReply(ok)),
        )
    }
  }

  /** The reply to a reconfig once its entry is applied here (or CONNECTION_LOSS if leadership changed first). */
  private reconfiguredReply(ok: boolean): Reply {
    if (!ok) return { err: ErrorCode.CONNECTION_LOSS, zxid: this.ctx.db.lastZxid }
    return reconfigReply(this.ctx)
  }

  /** Leader: a reconfig (server/request/reconfig.ts), checked and proposed, or refused with the reason logged. */
  private reconfig(req: ReconfigRequest, sessionId: bigint, authIds: ClientHandler['authIds']): PrepResult {
    const { ctx } = this
    if (!ctx.historyApplied()) return this.failed(ErrorCode.CONNECTION_LOSS, 0)
    const out = proposeReconfig(ctx, req, authIds)
    if (out.ok) {
      ctx.logger.info(
        { session: formatSessionId(sessionId), zxid: out.zxid.toString(16) },
        'reconfig proposed',
      )
      return { kind: 'config', zxid: out.zxid }
    }
    ctx.logger.warn(
      { session: formatSessionId(sessionId), err: out.err, why: out.why },
      `reconfig refused: ${out.why}`,
    )
    return this.failed(out.err, ctx.replicator.lastLoggedZxid())
  }

  /** The reply to an exactly-once write applied already: its remembered result. */
  private rememberedReply(req: Request, result: Uint8Array, zxid: number, ok: boolean): Reply {
    const lastZxid = this.ctx.db.lastZxid
    if (!ok) return { err: ErrorCode.CONNECTION_LOSS, zxid: lastZxid }
    return replyFor(req, decodeResult(result), Math.max(zxid, lastZxid))
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
    once: OnceHeader | undefined,
    local: boolean,
  ): PrepResult {
    const { ctx } = this
    const { db, replicator } = ctx
    if (req.op === OpCode.reconfig) return this.reconfig(req, sessionId, authIds)
    const write = toPrepRequest(req)
    if ('err' in write) return this.failed(write.err, 0)
    // No write result can be remembered for a session the state does not hold (none was negotiated).
    if (local && once !== undefined) return this.failed(ErrorCode.BAD_ARGUMENTS, 0)
    if (!ctx.historyApplied() || (once && this.sessionBarriers.blocks(sessionId, cxid, once.ackXid))) {
      if (once !== undefined) this.sessionBarriers.refused(sessionId, cxid)
      return this.failed(ErrorCode.CONNECTION_LOSS, 0)
    }
    const prepCtx: PrepContext = {
      zxid: 0,
      timeMs: ctx.clock.now(),
      sessionId,
      cxid,
      authIds,
      aclEntriesMax: ctx.config.aclEntriesMax,
    }
    if (local) prepCtx.localSession = true
    if (once !== undefined) {
      const met = this.recall(sessionId, cxid, once)
      if (met !== undefined) return met
      prepCtx.remember = {
        ackXid: once.ackXid,
        resultsMax: ctx.config.sessionWriteResultsMax,
        resultBytesMax: ctx.config.sessionWriteResultBytesMax,
      }
    }
    if (this.quota.refuses(write, db)) {
      if (prepCtx.remember === undefined)
        return this.failed(ErrorCode.QUOTA_EXCEEDED, replicator.lastLoggedZxid())
      prepCtx.zxid = replicator.nextZxid()
      replicator.propose(prepCtx.zxid, db.prepRefusal(ErrorCode.QUOTA_EXCEEDED, prepCtx))
      return undefined
    }
    prepCtx.zxid = replicator.nextZxid()
    const out = db.prep(write, prepCtx)
    if (!out.ok)
      return {
        kind: 'failed',
        reply: failedReply(out.err, out.multi, db.lastZxid),
        barrier: replicator.lastLoggedZxid(),
      }
    replicator.propose(prepCtx.zxid, out.txn)
    return undefined
  }

  private failed(err: ErrorCode, barrier: number): PrepResult {
    return { kind: 'failed', reply: { err, zxid: this.ctx.db.lastZxid }, barrier }
  }

  /**
   * An exactly-once write at prep: what the state knows of it (undefined:
   * nothing, prep it). The leader has applied its whole history before it
   * preps anything, so "neither applied nor in flight" is the truth.
   */
  private recall(sessionId: bigint, cxid: number, once: OnceHeader): PrepResult {
    // The SDK's xids are positive, and it acknowledges only replies it has (below this write).
    if (cxid <= 0 || once.ackXid <= 0 || xidBefore(cxid, once.ackXid))
      return this.failed(ErrorCode.BAD_ARGUMENTS, 0)
    const r = this.ctx.db.recallWrite(sessionId, cxid)
    switch (r.kind) {
      case 'remembered':
        this.onceStats.remembered++
        return { kind: 'remembered', zxid: r.zxid, result: r.result }
      case 'inFlight':
        this.onceStats.inFlight++
        return { kind: 'inFlight', zxid: r.zxid }
      case 'forgotten':
        this.onceStats.forgotten++
        this.ctx.logger.info(
          { session: formatSessionId(sessionId), xid: cxid, why: r.why },
          'exactly-once write met again after its result was dropped: OUTCOME_UNKNOWN',
        )
        return this.failed(ErrorCode.OUTCOME_UNKNOWN, 0)
      case 'unknown':
        return undefined
    }
  }

  /**
   * Leader: an exactly-once write was applied. Followers that forwarded it
   * again while it was in flight get its result (their own apply answers
   * their connection too if the write waits there already; one answer wins).
   */
  writeApplied(sessionId: bigint, cxid: number, zxid: number, result: Uint8Array): void {
    if (this.awaitingApply.size === 0) return
    const key = `${sessionId}/${cxid}`
    const followers = this.awaitingApply.get(key)
    if (followers === undefined) return
    this.awaitingApply.delete(key)
    for (const f of followers) this.sendAnswered(f, sessionId, cxid, zxid, result)
  }

  private sendAnswered(to: number, sessionId: bigint, cxid: number, zxid: number, result: Uint8Array): void {
    this.ctx.replicator.toFollower(
      to,
      encodeForward({ kind: 'answered', sessionId, cxid, barrier: zxid, result }),
    )
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
    let once: OnceHeader | undefined
    try {
      ;({ req, once } = decodeRequest(m.packet))
    } catch {
      return this.sendFailed(from, m.sessionId, m.cxid, { err: ErrorCode.MARSHALLING_ERROR, zxid: 0 }, 0)
    }
    if (req.op === OpCode.closeSession) this.sessions.markClosing(m.sessionId)
    // A learner's local session (ZooKeeper's leader takes them too): only one whose id is the sender's.
    const local = m.local === true && sessionServerId(m.sessionId) === from
    if (m.local === true && !local)
      ctx.logger.warn(
        { from, session: formatSessionId(m.sessionId) },
        'forwarded write marked local for a session the sender did not make; prepped as global',
      )
    const term = ctx.replicator.epoch
    this.throttle.admit(() => {
      // Deferred past a change of leadership: the follower has answered its client already.
      if (!ctx.isLeader() || ctx.replicator.epoch !== term) return
      const out = this.prepAndPropose(req, m.sessionId, m.cxid, m.authIds, once, local)
      if (out === undefined) return
      switch (out.kind) {
        case 'failed':
          return this.sendFailed(from, m.sessionId, m.cxid, out.reply, out.barrier)
        case 'remembered':
          return this.sendAnswered(from, m.sessionId, m.cxid, out.zxid, out.result)
        case 'inFlight': {
          const key = `${m.sessionId}/${m.cxid}`
          let followers = this.awaitingApply.get(key)
          if (followers === undefined) this.awaitingApply.set(key, (followers = new Set()))
          followers.add(from)
          return
        }
        case 'config':
          return ctx.replicator.toFollower(
            from,
            encodeForward({ kind: 'reconfigured', sessionId: m.sessionId, cxid: m.cxid, barrier: out.zxid }),
          )
      }
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
    if (m.kind === 'answered') return this.answeredByLeader(m.sessionId, m.cxid, m.barrier, m.result)
    if (m.kind === 'reconfigured')
      return this.held.hold(m.barrier, ctx.db.lastZxid, (ok) =>
        ctx.handlers.get(m.sessionId)?.completeWrite(m.cxid, this.reconfiguredReply(ok)),
      )
    if (m.kind !== 'failed') return
    const reply: Reply = { err: errorCodeOf(m.err), zxid: 0 }
    if (m.body.length > 0) reply.body = readResponseBody(new JuteReader(m.body), OpCode.multi)
    this.held.hold(m.barrier, ctx.db.lastZxid, (ok) =>
      ctx.handlers.get(m.sessionId)?.completeWrite(m.cxid, this.releasedReply(reply, ok)),
    )
  }

  /** Follower: a forwarded exactly-once write had been applied; its connection gets the remembered result. */
  private answeredByLeader(sessionId: bigint, cxid: number, barrier: number, result: Uint8Array): void {
    this.held.hold(barrier, this.ctx.db.lastZxid, (ok) => {
      const h = this.ctx.handlers.get(sessionId)
      const entry = h?.waitingWrite(cxid)
      // Answered already: its Txn was applied here while the write waited on this connection.
      if (h === undefined || entry === undefined) return
      h.complete(entry, this.rememberedReply(entry.req, result, barrier, ok))
    })
  }

  /** A write the server makes itself (session create/close, reaping). */
  submitInternal(write: PrepRequest, sessionId: bigint): void {
    this.throttle.admit(() => this.proposeInternal(write, sessionId))
  }

  private proposeInternal(write: PrepRequest, sessionId: bigint): void {
    const { ctx } = this
    if (!ctx.isLeader() || !ctx.historyApplied()) {
      if (write.type === 'reap') this.reaper.dropped(write.path)
      this.sessions.internalFailed(write, sessionId, true)
      return
    }
    const zxid = ctx.replicator.nextZxid()
    const out = ctx.db.prep(write, { zxid, timeMs: ctx.clock.now(), sessionId, cxid: 0, authIds: [] })
    if (!out.ok) {
      ctx.logger.warn({ write: write.type, err: out.err }, 'internal write refused by prep')
      if (write.type === 'reap') this.reaper.dropped(write.path)
      this.sessions.internalFailed(write, sessionId, false)
      return
    }
    ctx.replicator.propose(zxid, out.txn)
  }

  /** The role changed: held replies of the old term fail; deferred writes go now, each under the new role. */
  roleChanged(): void {
    this.awaitingApply.clear()
    this.sessionBarriers = new RefusalBarriers<bigint>(new Map())
    this.held.dropAll()
    this.throttle.flush()
  }
}
