/**
 * SharedCounter (Curator's SharedCount / DistributedAtomicLong, optimistic
 * mode): an integer kept as decimal text in one znode and changed only by
 * compare-and-set on the node's version (setData with the version read), so
 * concurrent increments never lose an update.
 *
 *   const c = new SharedCounter(zk, '/counters/orders')
 *   await c.increment() ; await c.increment(5) ; await c.get()
 *   await c.trySet(6, 0)   // true if the value was 6 and nobody changed it in between
 *
 * Invariants: every write names the version it read; a lost race retries
 * after a short random pause, at most `attemptsMax` times (then
 * OPERATION_TIMEOUT); values stay safe integers. The node is created with
 * `initial` on first use.
 *
 * Exact: with exactly-once writes (the SDK's default against Conclave), a
 * compare-and-set whose connection is lost is sent again and answered once
 * (its own result if it had been applied), so an increment neither fails
 * with CONNECTION_LOSS nor counts twice. A client without them (Apache
 * ZooKeeper, or `exactlyOnce: false`) cannot know whether a write that met
 * CONNECTION_LOSS happened: increment then rejects with CONNECTION_LOSS,
 * saying so, and never retries it blindly.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client } from '../client/index.js'
import { ErrorCode, ZkError } from '../client/index.js'
import { abortReason, timeoutError, timerLatch } from './wait.js'
import { checkRecipePath, ensurePath, fromUtf8, isCode, retryOnLoss, utf8 } from './znodes.js'

export const ATTEMPTS_MAX_DEFAULT = 10_000
const BACKOFF_MS_MAX = 20

export interface VersionedValue {
  value: number
  version: number
}

export interface IncrementOptions {
  /** Give up (OPERATION_TIMEOUT) after this many lost races. */
  attemptsMax?: number | undefined
  signal?: AbortSignal | undefined
}

function parseValue(path: string, data: Uint8Array): number {
  const text = fromUtf8(data).trim()
  const n = text === '' ? 0 : Number(text)
  if (!Number.isSafeInteger(n))
    throw new ZkError(ErrorCode.BAD_ARGUMENTS, path, `BAD_ARGUMENTS: ${path} does not hold an integer`)
  return n
}

function checkValue(n: number): void {
  if (!Number.isSafeInteger(n))
    throw new ZkError(ErrorCode.BAD_ARGUMENTS, undefined, `BAD_ARGUMENTS: ${n} is not a safe integer`)
}

export class SharedCounter {
  readonly path: string

  constructor(
    private readonly zk: Client,
    path: string,
    private readonly initial = 0,
  ) {
    this.path = checkRecipePath(path)
    checkValue(initial)
  }

  /** The value and the node's version (for trySetVersioned). */
  async getVersioned(): Promise<VersionedValue> {
    for (let i = 0; i < 3; i++) {
      try {
        const r = await retryOnLoss(() => this.zk.getData(this.path))
        return { value: parseValue(this.path, r.data), version: r.stat.version }
      } catch (err) {
        if (!isCode(err, ErrorCode.NO_NODE)) throw err
        await this.create()
      }
    }
    throw new ZkError(ErrorCode.NO_NODE, this.path, `NO_NODE: ${this.path} keeps disappearing`)
  }

  private async create(): Promise<void> {
    const parent = this.path.slice(0, this.path.lastIndexOf('/')) || '/'
    await ensurePath(this.zk, parent)
    try {
      await retryOnLoss(() => this.zk.create(this.path, String(this.initial), { mode: 'persistent' }))
    } catch (err) {
      if (!isCode(err, ErrorCode.NODE_EXISTS)) throw err
    }
  }

  async get(): Promise<number> {
    return (await this.getVersioned()).value
  }

  /** Sets `value` if the node still has `version`; false if someone changed it first. */
  async trySetVersioned(version: number, value: number): Promise<boolean> {
    checkValue(value)
    try {
      await this.zk.setData(this.path, utf8(String(value)), version)
      return true
    } catch (err) {
      if (isCode(err, ErrorCode.BAD_VERSION)) return false
      throw err
    }
  }

  /** Sets `value` if the counter holds `expected` and nobody changes it in between. */
  async trySet(expected: number, value: number): Promise<boolean> {
    const cur = await this.getVersioned()
    if (cur.value !== expected) return false
    return this.trySetVersioned(cur.version, value)
  }

  /**
   * Adds `by` (default 1) atomically; resolves to the new value. Rejects with
   * CONNECTION_LOSS when the compare-and-set's reply is lost: it may or may
   * not have been applied, and retrying could count it twice.
   *
   * TODO(issue 16, item 1 — exactly-once writes): once the SDK re-sends a
   * write whose connection was lost and the ensemble answers it exactly once,
   * the setData below no longer rejects with CONNECTION_LOSS against Conclave
   * and increment() becomes exact; keep rejecting when exactlyOnce is off or
   * the server is Apache ZooKeeper.
   */
  async increment(by = 1, opts: IncrementOptions = {}): Promise<number> {
    checkValue(by)
    const attemptsMax = opts.attemptsMax ?? ATTEMPTS_MAX_DEFAULT
    for (let attempt = 1; attempt <= attemptsMax; attempt++) {
      if (opts.signal?.aborted) throw abortReason(opts.signal)
      const cur = await this.getVersioned()
      const next = cur.value + by
      checkValue(next)
      if (await this.setOrLoss(cur.version, next)) return next
      await this.backoff(attempt)
    }
    throw timeoutError(`increment lost ${attemptsMax} races`, this.path)
  }

  /** trySetVersioned, whose CONNECTION_LOSS (a client without exactly-once writes) says what it means here. */
  private async setOrLoss(version: number, value: number): Promise<boolean> {
    try {
      return await this.trySetVersioned(version, value)
    } catch (err) {
      if (!isCode(err, ErrorCode.CONNECTION_LOSS)) throw err
      throw new ZkError(
        ErrorCode.CONNECTION_LOSS,
        this.path,
        `CONNECTION_LOSS: ${this.path}: the increment to ${value} may or may not have happened ` +
          (this.zk.exactlyOnce
            ? '(its write was sent as often as the SDK sends one, and never answered)'
            : '(the client has no exactly-once writes: Apache ZooKeeper, or exactlyOnce: false)'),
      )
    }
  }

  /** A short random pause that grows with the number of lost races, so contenders spread out. */
  private async backoff(attempt: number): Promise<void> {
    const ms = Math.floor(Math.random() * Math.min(BACKOFF_MS_MAX, attempt * 2))
    if (ms === 0) return
    const t = timerLatch(ms)
    await t.latch.promise
  }
}
