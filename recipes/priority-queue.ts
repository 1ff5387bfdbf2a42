/**
 * PriorityQueue (Curator's DistributedPriorityQueue): put(data, priority);
 * take() returns the item with the lowest priority number, FIFO among equal
 * priorities. The priority is written into the item's name
 * (`qp-<priority + 2^31, 10 digits>-<sequence>`) so that a name sort gives
 * the take order.
 *
 * Invariants: priorities are 32-bit integers; every take lists the queue
 * afresh, so an urgent item put meanwhile is seen; exactly-once take as in
 * queue-core.ts.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, Data } from '../client/index.js'
import { ErrorCode, ZkError } from '../client/index.js'
import { QueueCore } from './queue-core.js'
import type { WaitOptions } from './wait.js'

export const PRIORITY_PREFIX = 'qp-'
const OFFSET = 2 ** 31

export function priorityKey(priority: number): string {
  if (!Number.isInteger(priority) || priority < -OFFSET || priority >= OFFSET)
    throw new ZkError(ErrorCode.BAD_ARGUMENTS, undefined, `BAD_ARGUMENTS: priority must be a 32-bit integer`)
  return `${String(priority + OFFSET).padStart(10, '0')}-`
}

export class PriorityQueue {
  private readonly core: QueueCore

  constructor(zk: Client, path: string) {
    this.core = new QueueCore(zk, path, { prefix: PRIORITY_PREFIX, cacheListing: false })
  }

  get path(): string {
    return this.core.path
  }

  /** Adds an item; lower `priority` numbers are taken first (default 0). */
  async put(data: Data, priority = 0): Promise<string> {
    return this.core.put(data, priorityKey(priority))
  }

  take(opts?: WaitOptions): Promise<Uint8Array | null> {
    return this.core.take(opts)
  }

  peek(): Promise<Uint8Array | null> {
    return this.core.peek()
  }

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
