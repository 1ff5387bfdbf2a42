/**
 * Applier: the last stage of a write on every server. A committed Txn is
 * applied to the tree, in zxid order; its changes fire watches and join the
 * history watches resume from (ChangeRing; not an entry replayed over a
 * fuzzy snapshot: watch-history.ts); a session
 * it creates or closes enters or leaves the session table; and the server
 * the client is connected to answers the request that made it. Failed-prep
 * replies held behind this zxid are released, and the host learns of the
 * apply (snapshot scheduling, reaping).
 *
 * Invariants: a commit answers at most one waiting write of its session,
 * the one with its cxid (usually the oldest; an exactly-once write re-sent
 * on this connection may still wait for its answer while later writes are
 * applied); replies still leave in request order (ClientHandler); watches
 * fire before the reply leaves (ZooKeeper's order: the event, then the result).
 */
import { ErrorCode } from '../../shared/errors.js'
import { OpCode } from '../../shared/opcodes.js'
import { formatSessionId } from '../../shared/session-id.js'
import type { ApplyOutcome } from '../state/tree-db.js'
import { EVENT_TYPE } from '../watch/watch-table.js'
import type { Reaper } from './reaper.js'
import { replyFor } from './replies.js'
import type { ServerContext } from './server-context.js'
import type { Sessions } from './sessions.js'
import { recordApplied } from './watch-history.js'
import type { WriteRouter } from './write-router.js'

export class Applier {
  constructor(
    private readonly ctx: ServerContext,
    private readonly sessions: Sessions,
    private readonly router: WriteRouter,
    private readonly reaper: Reaper,
    /** Called after every applied Txn. */
    private readonly applied: (out: ApplyOutcome) => void,
  ) {}

  apply(zxid: number, txn: Uint8Array): ApplyOutcome {
    const { ctx } = this
    const out = ctx.db.apply(zxid, txn)
    recordApplied(ctx.watchHistory, zxid, out)
    for (const c of out.changes) {
      for (const d of ctx.watches.fire(c)) d.watcher.notify(EVENT_TYPE[d.type], d.path, zxid)
    }
    this.answer(out, zxid)
    this.router.held.applied(zxid)
    this.applied(out)
    return out
  }

  private answer(out: ApplyOutcome, zxid: number): void {
    const { ctx } = this
    if (out.sessionCreated !== undefined)
      return this.sessions.created(out.sessionCreated.id, out.sessionCreated.timeoutMs)
    if (out.sessionClosed !== undefined) return this.closed(out.sessionClosed, zxid)
    this.reaper.changed(out.changes)
    if (out.remembered !== undefined) this.router.writeApplied(out.sessionId, out.cxid, zxid, out.remembered)
    const h = ctx.handlers.get(out.sessionId)
    if (h === undefined || out.cxid === 0) return
    const entry = h.waitingWrite(out.cxid)
    if (entry === undefined) {
      // An exactly-once write re-sent here may have been answered by the leader already.
      if (out.remembered !== undefined) return
      ctx.logger.warn(
        { session: formatSessionId(out.sessionId), cxid: out.cxid },
        'commit matches no waiting request',
      )
      return
    }
    h.complete(entry, replyFor(entry.req, out.result, zxid))
  }

  /** A session closed: its own closeSession is answered; otherwise (expired) its connection is closed. */
  private closed(id: bigint, zxid: number): void {
    this.sessions.removed(id)
    const h = this.ctx.handlers.get(id)
    if (h === undefined) return
    const entry = h.firstWaitingWrite()
    if (entry !== undefined && entry.req.op === OpCode.closeSession)
      h.complete(entry, { err: ErrorCode.OK, zxid, body: { op: OpCode.closeSession } })
    else h.close('session expired')
  }
}
