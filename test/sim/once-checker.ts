/**
 * OnceChecker: exactly-once writes (issue 16), checked over the whole
 * simulated history. The tree workload's exactly-once clients wrap their
 * writes (ConclaveOpCode.exactlyOnce), and after a lost connection resume
 * their session on another server and send every unanswered write again,
 * with its xid. Whatever the faults:
 *
 *  - once-applied-twice: a (session, xid) is applied at most once (each
 *    committed Txn that carries a RememberSpec is counted on the first
 *    server to apply its zxid, i.e. in commit order);
 *  - once-result: a reply to such a write is the result of that one apply
 *    (same error, same created paths: a sequential create keeps its name),
 *    however many times the write was sent, and wherever it was answered;
 *  - once-unapplied-reply: no such write is answered (except with
 *    CONNECTION_LOSS, which the client takes as a lost connection, and
 *    SESSION_EXPIRED: a write in flight when its session ended has an
 *    unknown outcome, as in ZooKeeper) unless it was applied: even its
 *    failures are logged;
 *  - once-forgotten: none is answered OUTCOME_UNKNOWN (the workload never
 *    has more writes in flight than the server's sessionWriteResultsMax, and
 *    never sends an acknowledged write again).
 *
 * Invariants of this file: a violation throws at once through `fail`.
 */
import type { ApplyOutcome } from '../../server/state/tree-db.js'
import { errorCodeOf } from '../../shared/errors.js'
import { OpCode } from '../../shared/opcodes.js'
import type { Response } from '../../shared/records.js'
import { replyOf, type TreeReply } from './tree-state-machine.js'

/** A client's view of a reply, in the shape of replyOf (error code, created paths per op). */
export function clientReply(err: string, body: Response | undefined): TreeReply {
  if (err !== 'OK' || body === undefined) return { err, created: [] }
  if ('results' in body) {
    // A failed multi: err 0 and one error result per op; the failing op's code is the first not OK.
    for (const r of body.results)
      if (r.type === OpCode.error && r.err !== 0) return { err: errorCodeOf(r.err), created: [] }
    return { err: 'OK', created: body.results.map((r) => ('path' in r ? r.path : undefined)) }
  }
  return { err: 'OK', created: 'path' in body ? [body.path] : [] }
}

const same = (a: TreeReply, b: TreeReply) =>
  a.err === b.err && a.created.length === b.created.length && a.created.every((p, i) => p === b.created[i])

const show = (r: TreeReply) => `${r.err}${r.created.length > 0 ? ` [${r.created.join(',')}]` : ''}`

export class OnceChecker {
  /** "session/xid" -> the zxid and result of its one apply. */
  private readonly applied = new Map<string, { zxid: number; reply: TreeReply }>()
  readonly stats = {
    applied: 0,
    replies: 0,
    /** Replies to writes sent more than once. */
    answeredAgain: 0,
    /** ... of which the write had been applied before it was sent again: answered from the write memory. */
    fromMemory: 0,
    sessionExpired: 0,
  }

  constructor(private readonly fail: (invariant: string, detail: string) => never) {}

  /** The first apply of a zxid whose Txn was an exactly-once write. */
  onApplied(out: ApplyOutcome, zxid: number): void {
    if (out.remembered === undefined) return
    const key = `${out.sessionId.toString(16)}/${out.cxid}`
    const known = this.applied.get(key)
    if (known !== undefined)
      this.fail(
        'once-applied-twice',
        `session ${key} applied at 0x${known.zxid.toString(16)} and again at 0x${zxid.toString(16)}`,
      )
    this.applied.set(key, { zxid, reply: replyOf(out) })
    this.stats.applied++
  }

  /**
   * A client was answered (not with CONNECTION_LOSS); `sends` is how many
   * times it sent the write. Returns the zxid the write was applied at
   * (undefined: its session ended, and the outcome is unknown).
   */
  onReply(
    sessionId: bigint,
    xid: number,
    reply: TreeReply,
    sends: number,
    /** The highest zxid any server had applied when the write was last sent. */
    lastSentAtZxid: number,
  ): number | undefined {
    const key = `${sessionId.toString(16)}/${xid}`
    this.stats.replies++
    if (sends > 1) this.stats.answeredAgain++
    if (reply.err === 'OUTCOME_UNKNOWN')
      this.fail('once-forgotten', `session ${key} answered OUTCOME_UNKNOWN`)
    if (reply.err === 'SESSION_EXPIRED') {
      this.stats.sessionExpired++
      return undefined
    }
    const a = this.applied.get(key)
    if (a === undefined)
      return this.fail('once-unapplied-reply', `session ${key} answered ${show(reply)}, never applied`)
    if (sends > 1 && a.zxid <= lastSentAtZxid) this.stats.fromMemory++
    if (!same(a.reply, reply))
      this.fail(
        'once-result',
        `session ${key} (sent ${sends}x) answered ${show(reply)}; applied at 0x${a.zxid.toString(16)} as ${show(a.reply)}`,
      )
    return a.zxid
  }
}
