/**
 * EventStream: a bounded, single-consumer async queue that turns pushed
 * events into an AsyncIterableIterator, for `for await` over watches
 * (client.watch) and over the recipes (caches, group membership, election,
 * queues). The producer pushes; the consumer pulls with next().
 *
 * When the consumer is slower than the events and `bufferSize` events are
 * already waiting, the next push calls `overflow(buffered, incoming)`, which
 * returns the new buffer: each user says what falling behind means (a
 * 'resync' marker for raw watch events, the latest value for a state, one
 * event per path for a cache). Memory therefore stays bounded; the consumer
 * is told (or given the newest state), never silently shortchanged.
 *
 * Invariants: items come out in push order (after the overflow rewrite);
 * after close(), return(), end() or fail() nothing more is buffered;
 * `onClose` runs exactly once, when the stream stops for any reason, and
 * return()/close() resolve after it has; a pending next() settles when the
 * stream stops (done, or the failure); an aborted signal closes the stream.
 * Imports nothing (no node:*), like emitter.ts.
 */

export interface EventStreamOptions<T> {
  /** Most events held for a slow consumer (>= 1). */
  bufferSize: number
  /**
   * Called when an event arrives while `bufferSize` events are waiting:
   * returns the buffer to keep (it may hold more than bufferSize, e.g. one
   * entry per path; then it runs again only once the buffer has doubled).
   * Default: keep the newest `bufferSize` events.
   */
  overflow?: ((buffered: T[], incoming: T) => T[]) | undefined
  /** Runs once when the stream stops (break, return(), close(), abort, end, failure). */
  onClose?: (() => Promise<void> | void) | undefined
  /** Aborting it closes the stream: the iteration ends (done). */
  signal?: AbortSignal | undefined
}

type Waiter<T> = { resolve: (r: IteratorResult<T>) => void; reject: (err: unknown) => void }

export class EventStream<T> implements AsyncIterableIterator<T> {
  private buffer: T[] = []
  /** Pending next() calls, oldest first (non-empty only while the buffer is empty). */
  private waiters: Waiter<T>[] = []
  /** Set once no more events will be buffered: 'done' (end/close) or a failure to throw. */
  private finished: { error: unknown } | 'done' | undefined
  private closing: Promise<void> | undefined
  private readonly bufferSize: number
  /** When the next push overflows: bufferSize, or twice what an overflow left if that was more. */
  private limit: number
  private readonly onAbort = (): void => void this.close()

  constructor(private readonly opts: EventStreamOptions<T>) {
    if (!Number.isInteger(opts.bufferSize) || opts.bufferSize < 1)
      throw new RangeError(`bufferSize must be an integer >= 1, not ${String(opts.bufferSize)}`)
    this.bufferSize = opts.bufferSize
    this.limit = opts.bufferSize
    const signal = opts.signal
    if (signal?.aborted) this.onAbort()
    else signal?.addEventListener('abort', this.onAbort, { once: true })
  }

  /** Whether the stream still takes events. */
  get open(): boolean {
    return this.finished === undefined
  }

  /** How many events wait for the consumer. */
  get buffered(): number {
    return this.buffer.length
  }

  /** Hands an event to the consumer (ignored once the stream has stopped). */
  push(item: T): void {
    if (this.finished !== undefined) return
    const w = this.waiters.shift()
    if (w !== undefined) {
      w.resolve({ value: item, done: false })
      return
    }
    if (this.buffer.length < this.limit) this.buffer.push(item)
    else if (this.opts.overflow !== undefined) {
      this.buffer = this.opts.overflow(this.buffer, item)
      // An overflow that keeps more than bufferSize (one event per path) is not run again until
      // the buffer doubles, so pushes stay amortised O(1).
      this.limit = this.buffer.length > this.bufferSize ? 2 * this.buffer.length : this.bufferSize
    } else {
      this.buffer.push(item)
      this.buffer.splice(0, this.buffer.length - this.bufferSize)
    }
  }

  /** No more events: the consumer gets what is buffered, then done. */
  end(): void {
    this.stop('done', false)
  }

  /** The consumer gets what is buffered, then `err` is thrown. */
  fail(err: unknown): void {
    this.stop({ error: err }, false)
  }

  /** Stops at once, dropping what is buffered; resolves once `onClose` has run. */
  close(): Promise<void> {
    this.stop('done', true)
    return this.closing ?? Promise.resolve()
  }

  private stop(how: { error: unknown } | 'done', drop: boolean): void {
    if (drop) this.buffer = []
    if (this.finished === undefined) {
      this.finished = how
      this.opts.signal?.removeEventListener('abort', this.onAbort)
      this.closing = Promise.resolve()
        .then(() => this.opts.onClose?.())
        .catch(() => {})
    }
    // Waiters exist only while the buffer is empty.
    for (let w = this.waiters.shift(); w !== undefined; w = this.waiters.shift()) this.settleFinished(w)
  }

  private settleFinished(w: Waiter<T>): void {
    const f = this.finished
    if (f !== undefined && f !== 'done') {
      // A failure is thrown once; after it the stream is simply done.
      this.finished = 'done'
      w.reject(f.error)
    } else w.resolve({ value: undefined, done: true })
  }

  next(): Promise<IteratorResult<T>> {
    if (this.buffer.length > 0) {
      const value = this.buffer.shift()!
      if (this.buffer.length < this.bufferSize) this.limit = this.bufferSize
      return Promise.resolve({ value, done: false })
    }
    if (this.finished !== undefined)
      return new Promise((resolve, reject) => this.settleFinished({ resolve, reject }))
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject })
    })
  }

  /** Called by `break` in a for-await loop: stops the stream (and its watch). */
  async return(): Promise<IteratorResult<T>> {
    await this.close()
    return { value: undefined, done: true }
  }

  [Symbol.asyncIterator](): this {
    return this
  }
}
