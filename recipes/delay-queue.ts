/**
 * DelayQueue (Curator's DistributedDelayQueue): put(data, delayMs) makes an
 * item takeable once its due time has passed. The due time (the producer's
 * clock, ms since the epoch) is written into the name
 * (`qd-<due, 15 digits>-<sequence>`), so a name sort gives due order; a
 * consumer waits until the earliest due time or a new item, whichever comes
 * first.
 *
 * Invariants: no item is returned before its due time by the consumer's
 * clock (producers and consumers should keep their clocks in sync); among
 * items due at the same millisecond, FIFO; exactly-once take as in queue-core.ts.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, Data } from '../client/index.js'
import { ErrorCode, ZkError } from '../client/index.js'
import { QueueCore } from './queue-core.js'
import type { WaitOptions } from './wait.js'

export const DELAY_PREFIX = 'qd-'

function dueOf(key: string): number {
  const digits = key.slice(DELAY_PREFIX.length, DELAY_PREFIX.length + 15)
  const n = Number(digits)
  return Number.isSafeInteger(n) ? n : 0
}

export class DelayQueue {
  private readonly core: QueueCore

  constructor(zk: Client, path: string) {
    this.core = new QueueCore(zk, path, { prefix: DELAY_PREFIX, dueAt: dueOf, cacheListing: false })
  }

  get path(): string {
    return this.core.path
  }

  /** Adds an item that becomes takeable after `delayMs` (default 0). */
  async put(data: Data, delayMs = 0): Promise<string> {
    if (!Number.isFinite(delayMs) || delayMs < 0)
      throw new ZkError(ErrorCode.BAD_ARGUMENTS, undefined, 'BAD_ARGUMENTS: delayMs must be >= 0')
    const due = Math.ceil(Date.now() + delayMs)
    return this.core.put(data, `${String(due).padStart(15, '0')}-`)
  }

  /** Takes the earliest due item, waiting until one is due; null after `timeoutMs`. */
  take(opts?: WaitOptions): Promise<Uint8Array | null> {
    return this.core.take(opts)
  }

  /** The earliest item if it is due, without taking it; else null. */
  peek(): Promise<Uint8Array | null> {
    return this.core.peek()
  }

  /** How many items are queued, due or not. */
  size(): Promise<number> {
    return this.core.size()
  }

  /**
   * Takes items as they come: `for await (const item of queue)`. Each step is
   * a take() (exactly-once), made only when the loop asks for the next item;
   * `break` or the signal end it (see QueueCore.items).
   */
  items(opts: { signal?: AbortSignal | undefined } = {}): AsyncIterableIterator<Uint8Array> {
    return this.core.items(opts)
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.core.items()
  }
}
