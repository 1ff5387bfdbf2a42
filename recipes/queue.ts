/**
 * Queue: a distributed FIFO queue with exactly-once take (ZooKeeper's Queues
 * recipe). Items are PERSISTENT_SEQUENTIAL `qn-` children of the queue
 * node, taken lowest sequence first; see queue-core.ts for the take protocol.
 *
 *   const q = new Queue(zk, '/queues/jobs')
 *   await q.put(bytes) ; const item = await q.take({ timeoutMs: 1_000 })  // null on timeout
 *
 * Invariants: items put by one producer (one put after another) are taken in
 * that order; every item is taken at most once. ZooKeeper is a modest queue
 * (Curator TN4): every item is a znode, and a listing holds every name.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, Data } from '../client/index.js'
import { QueueCore } from './queue-core.js'
import type { WaitOptions } from './wait.js'

export const QUEUE_PREFIX = 'qn-'

export class Queue {
  private readonly core: QueueCore

  constructor(zk: Client, path: string) {
    // New items always sort after every listed one, so a listing can be reused.
    this.core = new QueueCore(zk, path, { prefix: QUEUE_PREFIX, cacheListing: true })
  }

  get path(): string {
    return this.core.path
  }

  /** Appends an item; resolves to its node's path. */
  put(data: Data): Promise<string> {
    return this.core.put(data)
  }

  /** Removes and returns the oldest item, waiting for one; null after `timeoutMs`. */
  take(opts?: WaitOptions): Promise<Uint8Array | null> {
    return this.core.take(opts)
  }

  /** The oldest item, without removing it; null if the queue is empty. */
  peek(): Promise<Uint8Array | null> {
    return this.core.peek()
  }

  /** How many items are queued. */
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
