/**
 * Semaphore: at most `permits` leases held at once across all clients
 * (Curator's InterProcessSemaphoreV2). A contender takes the internal mutex
 * `<path>/locks`, creates a protected EPHEMERAL_SEQUENTIAL lease node in
 * `<path>/leases`, and, still holding the mutex, waits until the number of
 * leases is at most `permits`; then it releases the mutex. Only the mutex
 * holder watches the leases directory, so a returned lease wakes one waiter.
 *
 *   const sem = new Semaphore(zk, '/sem/db', 3)
 *   const lease = await sem.acquire({ timeoutMs: 1_000 })
 *   try { ... } finally { await lease.release() }   // or sem.release(lease)
 *
 * Invariants: a lease is an ephemeral node, so it ends with its session; a
 * failed or cancelled acquire leaves neither a lease nor a mutex node; a
 * lease is released at most once, and its node (like the internal mutex's)
 * is deleted even if the connection is lost meanwhile (releaseNode).
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, Data } from '../client/index.js'
import { Emitter, ErrorCode, ZkError } from '../client/index.js'
import { acquireSequential, mutexPredicate, TURNS_MAX } from './lock-core.js'
import { protectedCreate } from './protected-create.js'
import { SessionGuard } from './session-guard.js'
import {
  bounded,
  checkContext,
  contextOf,
  Latch,
  timeoutError,
  type WaitContext,
  type WaitOptions,
  waitLatch,
} from './wait.js'
import {
  checkRecipePath,
  childrenOrEmpty,
  joinPath,
  releaseNode,
  retryOnLoss,
  stripProtected,
} from './znodes.js'

export const LEASE_PREFIX = 'lease-'

export interface Lease {
  /** The lease node. */
  readonly path: string
  /** The lease node's czxid (increases with every lease granted). */
  readonly fencingToken: number
  /** Aborted when the lease ends: released, or lost (session ended or suspect, node deleted). */
  readonly signal: AbortSignal
  /** Returns the lease (deletes its node); later calls do nothing. */
  release(): Promise<void>
}

type SemaphoreEvents = { lost: [lease: Lease, err: ZkError] }

export interface SemaphoreOptions {
  /** Stored in each lease node. */
  data?: Data | undefined
}

const isLease = (n: string): boolean => stripProtected(n).startsWith(LEASE_PREFIX)

export class Semaphore extends Emitter<SemaphoreEvents> {
  private readonly path: string
  private readonly leasesDir: string
  private readonly locksDir: string
  private readonly held = new Set<Lease>()

  constructor(
    private readonly zk: Client,
    path: string,
    readonly permits: number,
    private readonly opts: SemaphoreOptions = {},
  ) {
    super()
    this.path = checkRecipePath(path)
    if (!Number.isInteger(permits) || permits < 1)
      throw new ZkError(ErrorCode.BAD_ARGUMENTS, path, `BAD_ARGUMENTS: permits must be an integer >= 1`)
    this.leasesDir = joinPath(this.path, 'leases')
    this.locksDir = joinPath(this.path, 'locks')
  }

  /** Leases this object holds, oldest first. */
  get leases(): readonly Lease[] {
    return [...this.held]
  }

  /** Names of every lease node now held, by anyone. */
  async participants(): Promise<string[]> {
    return (await childrenOrEmpty(this.zk, this.leasesDir)).filter(isLease)
  }

  /** Waits for a lease. Rejects OPERATION_TIMEOUT, the signal's reason or SESSION_EXPIRED, leaving nothing behind. */
  async acquire(opts?: WaitOptions): Promise<Lease> {
    const ctx = contextOf(opts)
    const guard = new SessionGuard(this.zk)
    try {
      const mutex = await acquireSequential(this.zk, {
        dir: this.locksDir,
        prefix: 'lock-',
        predicate: mutexPredicate,
        ctx,
        end: guard,
      })
      try {
        return await this.takeLease(ctx, guard)
      } finally {
        await releaseNode(this.zk, mutex.path).catch(() => {})
      }
    } finally {
      guard.dispose()
    }
  }

  private async takeLease(ctx: WaitContext, guard: SessionGuard): Promise<Lease> {
    const node = await protectedCreate(this.zk, {
      dir: this.leasesDir,
      prefix: LEASE_PREFIX,
      data: this.opts.data,
      mode: 'ephemeralSequential',
      parentMode: 'container',
      ctx,
      end: guard,
    })
    try {
      await this.waitForRoom(node.name, ctx, guard)
    } catch (err) {
      await releaseNode(this.zk, node.path).catch(() => {})
      throw err
    }
    return this.grant(node.path, node.stat.czxid)
  }

  /** Makes the Lease handle: it watches its node and the session, and reports a loss once. */
  private grant(path: string, token: number): Lease {
    const controller = new AbortController()
    const guard = new SessionGuard(this.zk)
    let ended = false
    const end = (reason: unknown): boolean => {
      if (ended) return false
      ended = true
      guard.dispose()
      this.held.delete(lease)
      controller.abort(reason)
      return true
    }
    const lose = (err: ZkError): void => {
      if (end(err)) this.emit('lost', lease, err)
    }
    const lease: Lease = {
      path,
      fencingToken: token,
      signal: controller.signal,
      release: async () => {
        if (end(new Error('released'))) await releaseNode(this.zk, path)
      },
    }
    this.held.add(lease)
    guard.onEnd(lose)
    guard.on('suspect', lose)
    const gone = (): void => lose(new ZkError(ErrorCode.NO_NODE, path, `NO_NODE: lease ${path} was deleted`))
    this.zk
      .exists(path, { watch: (ev) => ev.type === 'deleted' && gone() })
      .then((stat) => stat === null && gone())
      .catch(() => {})
    return lease
  }

  private async waitForRoom(ours: string, ctx: WaitContext, guard: SessionGuard): Promise<void> {
    for (let i = 0; i < TURNS_MAX; i++) {
      checkContext(ctx, guard, 'semaphore acquisition timed out', this.path)
      const latch = new Latch()
      const read = retryOnLoss(() => this.zk.getChildren(this.leasesDir, { watch: latch.open }))
      const leases = (await bounded(read, ctx, guard, 'getChildren')).filter(isLease)
      if (!leases.includes(ours))
        throw new ZkError(
          ErrorCode.NO_NODE,
          joinPath(this.leasesDir, ours),
          'NO_NODE: our lease node vanished',
        )
      if (leases.length <= this.permits) return
      if ((await waitLatch(latch, ctx, guard)) === 'timeout')
        throw timeoutError('semaphore acquisition timed out', this.path)
    }
    throw new ZkError(ErrorCode.SYSTEM_ERROR, this.path, `SYSTEM_ERROR: gave up after ${TURNS_MAX} turns`)
  }

  /** Returns `lease`, or (without an argument) the oldest lease this object holds. */
  async release(lease?: Lease): Promise<void> {
    const target = lease ?? this.held.values().next().value
    if (target === undefined)
      throw new ZkError(ErrorCode.API_ERROR, this.path, 'API_ERROR: this semaphore holds no lease')
    await target.release()
  }
}
