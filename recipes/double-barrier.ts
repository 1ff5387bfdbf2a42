/**
 * DoubleBarrier (ZooKeeper's Double Barriers recipe; Curator's
 * DistributedDoubleBarrier): `count` members enter together and leave
 * together. Each member is an EPHEMERAL child `<uuid>` of the barrier node;
 * the member whose arrival makes `count` creates `<path>/ready`, which
 * releases every enter(). leave() follows the recipe: the lowest member waits
 * for the highest to go, every other member deletes itself and waits for the
 * lowest; the last one out deletes `ready` together with its own node (one
 * multi), so the next round cannot pass a stale `ready` (Curator GH-1290).
 *
 *   const b = new DoubleBarrier(zk, '/barriers/job', 3)
 *   await b.enter({ timeoutMs }) ; ...compute... ; await b.leave({ timeoutMs })   // false on timeout
 *
 * Invariants: enter() that times out or is aborted removes its member node;
 * waits keep one watch each; loops are bounded.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client } from '../client/index.js'
import { ErrorCode, ZkError } from '../client/index.js'
import { TURNS_MAX } from './lock-core.js'
import { SessionGuard } from './session-guard.js'
import { bounded, contextOf, Latch, type WaitContext, type WaitOptions, waitLatch } from './wait.js'
import {
  checkRecipePath,
  childrenOrEmpty,
  deleteQuietly,
  ensurePath,
  isCode,
  joinPath,
  newGuid,
  retryOnLoss,
} from './znodes.js'

export const READY_NODE = 'ready'

export class DoubleBarrier {
  readonly path: string
  private readonly ready: string
  private readonly member: string
  private readonly name = newGuid()

  constructor(
    private readonly zk: Client,
    path: string,
    readonly count: number,
  ) {
    this.path = checkRecipePath(path)
    if (!Number.isInteger(count) || count < 1)
      throw new ZkError(ErrorCode.BAD_ARGUMENTS, path, 'BAD_ARGUMENTS: count must be an integer >= 1')
    this.ready = joinPath(this.path, READY_NODE)
    this.member = joinPath(this.path, this.name)
  }

  /** Joins and waits until `count` members have joined: true, or false at the deadline (having left). */
  async enter(opts?: WaitOptions): Promise<boolean> {
    const ctx = contextOf(opts)
    const guard = new SessionGuard(this.zk)
    try {
      await ensurePath(this.zk, this.path)
      const latch = new Latch()
      const readyNow = (await retryOnLoss(() => this.zk.exists(this.ready, { watch: latch.open }))) !== null
      await this.join()
      if (readyNow) return true
      const ok = await this.awaitReady(latch, ctx, guard)
      if (!ok) await deleteQuietly(this.zk, this.member)
      return ok
    } catch (err) {
      await deleteQuietly(this.zk, this.member).catch(() => {})
      throw err
    } finally {
      guard.dispose()
    }
  }

  private async join(): Promise<void> {
    try {
      await retryOnLoss(() => this.zk.create(this.member, new Uint8Array(0), { mode: 'ephemeral' }))
    } catch (err) {
      // After CONNECTION_LOSS the first attempt may have created it.
      if (!isCode(err, ErrorCode.NODE_EXISTS)) throw err
    }
  }

  private async members(): Promise<string[]> {
    return (await childrenOrEmpty(this.zk, this.path)).filter((c) => c !== READY_NODE).sort()
  }

  private async awaitReady(first: Latch, ctx: WaitContext, guard: SessionGuard): Promise<boolean> {
    let latch = first
    for (let i = 0; i < TURNS_MAX; i++) {
      if ((await this.members()).length >= this.count) {
        try {
          await retryOnLoss(() => this.zk.create(this.ready, new Uint8Array(0), { mode: 'persistent' }))
        } catch (err) {
          if (!isCode(err, ErrorCode.NODE_EXISTS)) throw err
        }
        return true
      }
      if ((await waitLatch(latch, ctx, guard)) === 'timeout') return false
      latch = new Latch()
      const read = retryOnLoss(() => this.zk.exists(this.ready, { watch: latch.open }))
      if ((await bounded(read, ctx, guard, 'exists')) !== null) return true
    }
    return false
  }

  /** Leaves and waits until every member has left: true, or false at the deadline. */
  async leave(opts?: WaitOptions): Promise<boolean> {
    const ctx = contextOf(opts)
    const guard = new SessionGuard(this.zk)
    try {
      for (let i = 0; i < TURNS_MAX; i++) {
        const step = await this.leaveStep()
        if (step === 'done') return true
        const latch = new Latch()
        const read = retryOnLoss(() => this.zk.exists(joinPath(this.path, step), { watch: latch.open }))
        if ((await bounded(read, ctx, guard, 'exists')) === null) continue
        if ((await waitLatch(latch, ctx, guard)) === 'timeout') return false
      }
      return false
    } finally {
      guard.dispose()
    }
  }

  /** One step of the leave protocol: 'done', or the member to wait for. */
  private async leaveStep(): Promise<string> {
    const members = await this.members()
    const mine = members.includes(this.name)
    if (members.length === 0) return 'done'
    if (mine && members.length === 1) {
      await this.leaveLast()
      return 'done'
    }
    if (members[0] === this.name) return members[members.length - 1]!
    if (mine) await deleteQuietly(this.zk, this.member)
    return members[0]!
  }

  private async leaveLast(): Promise<void> {
    try {
      await this.zk.multi([
        { op: 'delete', path: this.ready },
        { op: 'delete', path: this.member },
      ])
    } catch (err) {
      if (!isCode(err, ErrorCode.NO_NODE) && !isCode(err, ErrorCode.CONNECTION_LOSS)) throw err
      await deleteQuietly(this.zk, this.member)
      await deleteQuietly(this.zk, this.ready)
    }
  }
}
