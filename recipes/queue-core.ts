/**
 * The machinery under Queue, PriorityQueue and DelayQueue (ZooKeeper's
 * Queues recipe; Curator's DistributedQueue family). Items are protected
 * PERSISTENT_SEQUENTIAL children of the queue node, named so that sorting
 * their unprotected names gives the take order. A consumer lists the queue,
 * reads the first item and takes it with one multi: delete the item and
 * create an ephemeral claim `<queue>/_claims/<uuid>`. The delete decides who
 * gets the item (exactly once); the claim tells a consumer whose multi hit
 * CONNECTION_LOSS whether the take happened, so no item is lost or doubled
 * because of a dropped connection.
 *
 * Invariants: an item is returned by at most one take(); a take() that
 * returns null took nothing; every loop is bounded; claims are ephemeral and
 * removed right after a take.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, Data } from '../client/index.js'
import { ErrorCode, ZkError } from '../client/index.js'
import { TURNS_MAX } from './lock-core.js'
import { protectedCreateConsumable } from './protected-create.js'
import { SessionGuard } from './session-guard.js'
import {
  anyLatch,
  bounded,
  contextOf,
  Latch,
  now,
  timerLatch,
  type WaitContext,
  type WaitOptions,
  waitLatch,
} from './wait.js'
import {
  checkRecipePath,
  childrenOrEmpty,
  deleteQuietly,
  ensurePath,
  isCode,
  joinPath,
  newGuid,
  RETRIES_MAX,
  retryOnLoss,
  stripProtected,
} from './znodes.js'

export const CLAIMS_DIR = '_claims'

export interface QueueLayout {
  /** Every item's unprotected name starts with it. */
  prefix: string
  /** When an item may be taken (ms since the epoch), if it is delayed. */
  dueAt?: ((key: string) => number) | undefined
  /** Whether a take may reuse an earlier listing (true only if new items always sort last). */
  cacheListing: boolean
}

type TakeResult = { data: Uint8Array } | 'gone' | 'retry'

const byKey = (a: { key: string }, b: { key: string }): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

export class QueueCore {
  readonly path: string
  private readonly claims: string
  private claimsReady = false
  private cache: { name: string; key: string }[] = []
  private childLatch = new Latch()
  private readonly onChildren = (): void => this.childLatch.open()

  constructor(
    private readonly zk: Client,
    path: string,
    private readonly layout: QueueLayout,
  ) {
    this.path = checkRecipePath(path)
    this.claims = joinPath(this.path, CLAIMS_DIR)
  }

  /** Adds an item named `<prefix><keyPart>` + sequence; resolves to its path. */
  async put(data: Data, keyPart = ''): Promise<string> {
    // Consumable: a consumer may take the item before this call returns (see protectedCreateConsumable).
    return await protectedCreateConsumable(this.zk, {
      dir: this.path,
      prefix: `${this.layout.prefix}${keyPart}`,
      data,
      mode: 'persistentSequential',
      ctx: { deadline: undefined, signal: undefined },
    })
  }

  /** The items, in take order (listing with a watch on the queue's children). */
  private async list(watch: boolean): Promise<{ name: string; key: string }[]> {
    if (watch && this.childLatch.isOpen) this.childLatch = new Latch()
    const names = await childrenOrEmpty(this.zk, this.path, watch ? this.onChildren : undefined)
    return names
      .map((name) => ({ name, key: stripProtected(name) }))
      .filter((i) => i.key.startsWith(this.layout.prefix))
      .sort(byKey)
  }

  async size(): Promise<number> {
    return (await this.list(false)).length
  }

  /** The first takeable item's data, without taking it; null if there is none. */
  async peek(): Promise<Uint8Array | null> {
    const t = Date.now()
    for (const item of await this.list(false)) {
      if (this.layout.dueAt !== undefined && this.layout.dueAt(item.key) > t) return null
      try {
        return (await retryOnLoss(() => this.zk.getData(joinPath(this.path, item.name)))).data
      } catch (err) {
        if (!isCode(err, ErrorCode.NO_NODE)) throw err
      }
    }
    return null
  }

  /** Takes the first item, waiting for one; resolves null at the deadline. */
  async take(opts?: WaitOptions): Promise<Uint8Array | null> {
    const ctx = contextOf(opts)
    const guard = new SessionGuard(this.zk)
    try {
      return await this.takeLoop(ctx, guard)
    } finally {
      guard.dispose()
    }
  }

  private async takeLoop(ctx: WaitContext, guard: SessionGuard): Promise<Uint8Array | null> {
    for (let i = 0; i < TURNS_MAX; i++) {
      if (ctx.signal?.aborted) throw ctx.signal.reason
      if (guard.endError !== undefined) throw guard.endError
      if (ctx.deadline !== undefined && now() >= ctx.deadline) return null
      if (this.cache.length === 0 || !this.layout.cacheListing)
        this.cache = await bounded(this.list(true), ctx, guard, 'getChildren').catch((err: unknown) => {
          if (isCode(err, ErrorCode.OPERATION_TIMEOUT)) return []
          throw err
        })
      const head = this.cache[0]
      const wait = head === undefined ? { latch: this.childLatch, cancel: () => {} } : this.dueWait(head.key)
      if (wait !== undefined) {
        this.cache = []
        const r = await waitLatch(wait.latch, ctx, guard).finally(wait.cancel)
        if (r === 'timeout') return null
        continue
      }
      this.cache.shift()
      const r = await this.tryTake(head!.name)
      if (typeof r === 'object') return r.data
    }
    throw new ZkError(ErrorCode.SYSTEM_ERROR, this.path, `SYSTEM_ERROR: gave up after ${TURNS_MAX} turns`)
  }

  /**
   * Takes items one after another as an async iterator: each next() is a
   * take() with no deadline, so nothing is taken before the consumer asks
   * for it (no buffer). `break` or the signal end it; an item already taken
   * when the signal aborts is still handed over, so none is lost. The end of
   * the session throws SESSION_EXPIRED.
   */
  items(opts: { signal?: AbortSignal | undefined } = {}): AsyncIterableIterator<Uint8Array> {
    const stop = new AbortController()
    const onAbort = (): void => stop.abort(opts.signal?.reason)
    if (opts.signal?.aborted) onAbort()
    else opts.signal?.addEventListener('abort', onAbort, { once: true })
    const finish = (): IteratorResult<Uint8Array> => {
      opts.signal?.removeEventListener('abort', onAbort)
      if (!stop.signal.aborted) stop.abort()
      return { value: undefined, done: true }
    }
    const iterator: AsyncIterableIterator<Uint8Array> = {
      next: async () => {
        if (stop.signal.aborted) return finish()
        try {
          const item = await this.take({ signal: stop.signal })
          return item === null ? finish() : { value: item, done: false }
        } catch (err) {
          if (stop.signal.aborted) return finish()
          finish()
          throw err
        }
      },
      return: async () => finish(),
      [Symbol.asyncIterator]: () => iterator,
    }
    return iterator
  }

  /** For a head item that is not due yet: a latch for its due time or a new item. */
  private dueWait(key: string): { latch: Latch; cancel: () => void } | undefined {
    const due = this.layout.dueAt?.(key)
    if (due === undefined) return undefined
    const ms = due - Date.now()
    if (ms <= 0) return undefined
    const t = timerLatch(ms)
    return { latch: anyLatch(t.latch, this.childLatch), cancel: t.cancel }
  }

  private async ensureClaims(): Promise<void> {
    if (this.claimsReady) return
    await ensurePath(this.zk, this.claims)
    this.claimsReady = true
  }

  /** Reads an item and takes it with delete + claim in one multi. */
  private async tryTake(name: string): Promise<TakeResult> {
    const path = joinPath(this.path, name)
    let data: Uint8Array
    try {
      data = (await retryOnLoss(() => this.zk.getData(path))).data
    } catch (err) {
      if (isCode(err, ErrorCode.NO_NODE)) return 'gone'
      throw err
    }
    await this.ensureClaims()
    for (let i = 0; i < RETRIES_MAX; i++) {
      const r = await this.claim(path)
      if (r === 'taken') return { data }
      if (r === 'gone') return 'gone'
    }
    return 'retry'
  }

  private async claim(path: string): Promise<'taken' | 'gone' | 'retry'> {
    const claim = joinPath(this.claims, newGuid())
    try {
      await this.zk.multi([
        { op: 'delete', path },
        { op: 'create', path: claim, mode: 'ephemeral' },
      ])
    } catch (err) {
      if (isCode(err, ErrorCode.CONNECTION_LOSS)) {
        // The multi may have happened: our claim says whether it did.
        if ((await retryOnLoss(() => this.zk.exists(claim))) === null) return 'retry'
      } else if (
        isCode(err, ErrorCode.NO_NODE) &&
        ZkError.is(err) &&
        err.results?.[0]?.code === ErrorCode.OK
      ) {
        this.claimsReady = false
        await this.ensureClaims()
        return 'retry'
      } else if (isCode(err, ErrorCode.NO_NODE)) {
        return 'gone'
      } else throw err
    }
    void deleteQuietly(this.zk, claim).catch(() => {})
    return 'taken'
  }
}
