/**
 * Barrier (ZooKeeper's Barriers recipe; Curator's DistributedBarrier): while
 * the barrier node exists, waiters block; removing it releases them all.
 *
 *   const b = new Barrier(zk, '/barriers/deploy')
 *   await b.setBarrier() ; ... ; await b.removeBarrier()
 *   const passed = await b.waitOnBarrier({ timeoutMs: 5_000 })   // false on timeout
 *
 * Invariants: waitOnBarrier resolves true only after it saw the node absent;
 * it keeps at most one exists watch registered per wait; it rejects with the
 * signal's reason on abort and SESSION_EXPIRED when the session ends.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client } from '../client/index.js'
import { ErrorCode } from '../client/index.js'
import { TURNS_MAX } from './lock-core.js'
import { SessionGuard } from './session-guard.js'
import { bounded, contextOf, Latch, type WaitOptions, waitLatch } from './wait.js'
import { checkRecipePath, deleteQuietly, ensurePath, isCode, retryOnLoss } from './znodes.js'

export class Barrier {
  readonly path: string

  constructor(
    private readonly zk: Client,
    path: string,
  ) {
    this.path = checkRecipePath(path)
  }

  /** Raises the barrier (creating parents); raising a raised barrier is fine. */
  async setBarrier(): Promise<void> {
    const parent = this.path.slice(0, this.path.lastIndexOf('/')) || '/'
    await ensurePath(this.zk, parent)
    try {
      await retryOnLoss(() => this.zk.create(this.path, new Uint8Array(0), { mode: 'persistent' }))
    } catch (err) {
      if (!isCode(err, ErrorCode.NODE_EXISTS)) throw err
    }
  }

  /** Removes the barrier, releasing every waiter; removing an absent barrier is fine. */
  async removeBarrier(): Promise<void> {
    await deleteQuietly(this.zk, this.path)
  }

  /** Alias of setBarrier(). */
  set(): Promise<void> {
    return this.setBarrier()
  }

  /** Alias of removeBarrier(). */
  remove(): Promise<void> {
    return this.removeBarrier()
  }

  /** Whether the barrier is raised now. */
  async isSet(): Promise<boolean> {
    return (await retryOnLoss(() => this.zk.exists(this.path))) !== null
  }

  /** Waits until the barrier is removed: true, or false at the deadline. */
  async waitOnBarrier(opts?: WaitOptions): Promise<boolean> {
    const ctx = contextOf(opts)
    const guard = new SessionGuard(this.zk)
    try {
      for (let i = 0; i < TURNS_MAX; i++) {
        const latch = new Latch()
        const read = retryOnLoss(() => this.zk.exists(this.path, { watch: latch.open }))
        const stat = await bounded(read, ctx, guard, 'exists').catch((err: unknown) => {
          if (isCode(err, ErrorCode.OPERATION_TIMEOUT)) return 'timeout' as const
          throw err
        })
        if (stat === null) return true
        if (stat === 'timeout' || (await waitLatch(latch, ctx, guard)) === 'timeout') return false
      }
      return false
    } finally {
      guard.dispose()
    }
  }
}
