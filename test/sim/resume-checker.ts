/**
 * ResumeChecker: a live session is never told it expired. When a server
 * answers a resume (a ConnectRequest with a session id) with EXPIRED, the
 * simulation looks at the leader at that moment, with its global view: if
 * the leader (the established one of the highest epoch) has the session in its session
 * table, not closing, and its deadline is more than a tick away, the
 * refusal is a violation (`resume-live`). EXPIRED is terminal for a
 * ZooKeeper client: its application drops its locks and leadership while
 * the session's ephemerals live on until its timeout.
 *
 * The refusal is seen where the server sends it (tree-workload.ts wraps the
 * server's side of the client's link), before any latency. Proven by the
 * planted bug localResumeSync (mutations.ts): a server that "catches up"
 * for a resume without the leader's round trip.
 *
 * Invariants: reads the simulated servers' state only; changes nothing.
 */
import type { SimNode } from './sim-node.js'

export class ResumeChecker {
  /** Resumes answered EXPIRED, and of those, the ones the leader had already expired or was closing. */
  refusals = 0

  constructor(
    private readonly nodes: readonly SimNode[],
    private readonly fail: (invariant: string, detail: string) => never,
  ) {}

  /** Resumes accepted. */
  accepted = 0

  /**
   * Whether the serving leader has closed `sessionId` now: gone from its table
   * and its tree — and no server holds it as a local session (made without a
   * Txn, which the leader never knows). Taken when the client sends its
   * resume, for onAccepted.
   */
  closedOnLeader(sessionId: bigint): boolean {
    const leader = this.leader()
    if (leader === undefined) return false
    if (this.nodes.some((n) => n.up && n.server?.pipeline.sessions.hasLocal(sessionId) === true)) return false
    const server = leader.server!
    return (
      server.pipeline.sessions.table.get(sessionId) === undefined && !server.context.db.hasSession(sessionId)
    )
  }

  /**
   * Server `at` resumed `sessionId`; `closedBefore` is closedOnLeader() from
   * when the client sent the resume. A session the leader had closed before
   * the request left must not be resumed (`resume-closed`): a lagging
   * follower would serve it a tree where its ephemerals, a lock node say,
   * still exist.
   */
  onAccepted(at: SimNode, sessionId: bigint, closedBefore: boolean): void {
    this.accepted++
    if (!closedBefore) return
    this.fail(
      'resume-closed',
      `n${at.id} resumed session ${sessionId.toString(16)}, which the leader had closed before the client asked`,
    )
  }

  /** Server `at` answered a resume of `sessionId` with EXPIRED, now. */
  onRefused(at: SimNode, sessionId: bigint): void {
    this.refusals++
    const leader = this.leader()
    if (leader === undefined || leader === at) return
    const server = leader.server!
    const s = server.pipeline.sessions.table.get(sessionId)
    if (s === undefined || s.closing) return
    const now = server.now()
    if (s.deadlineMs - now <= server.tickTime) return
    this.fail(
      'resume-live',
      `n${at.id} told session ${sessionId.toString(16)} it expired; leader n${leader.id} has it live for ${s.deadlineMs - now} ms more`,
    )
  }

  /**
   * The established (serving) leader of the highest epoch, if any. One not yet established
   * has restored its table from its tree, with fresh deadlines: the leader still serving
   * decides until it is (ZooKeeper's leader, too, tells a session it expired once it has
   * begun closing it, before the closeSession commits).
   */
  private leader(): SimNode | undefined {
    let best: SimNode | undefined
    let bestEpoch = -1
    for (const n of this.nodes) {
      if (!n.up || n.server === undefined) continue
      const st = n.peer.status()
      if (st.role === 'LEADING' && st.serving && st.epoch > bestEpoch) {
        best = n
        bestEpoch = st.epoch
      }
    }
    return best
  }
}
