/**
 * Write admission: the two limits that keep a server's write intake bounded
 * when the writes it takes in cannot leave as fast (ZooKeeper's
 * globalOutstandingLimit, plus the disk backlog ZooKeeper leaves unbounded).
 *
 * - In flight: writes this server's connections have submitted and not yet
 *   answered (a follower's include those forwarded to the leader). At
 *   `limit` the server stops reading from every client connection; it reads
 *   again once at most half are left. While it does not read, it keeps the
 *   sessions of its connections alive itself (Node touches them each tick):
 *   their pings are waiting in the socket, through no fault of theirs.
 * - Log backlog (a leader or standalone server): when more bytes wait for
 *   its own disk than storage's writeThrottleBytes, new writes (its clients',
 *   forwarded ones, its own session writes) wait here, in arrival order, and
 *   are prepped and proposed once less than half is pending. Followers'
 *   forwarded writes then stay in flight, so their own in-flight limit stops
 *   their clients too: a slow leader disk slows every client down instead of
 *   growing the log queue until storage's pendingBytesMax fails the server.
 *
 * Invariants: deferred writes run in the order they arrived, and none runs
 * ahead of an earlier one; the queue is empty whenever this server does not
 * lead (a role change runs everything deferred at once, each write deciding
 * again under the new role). The queue is bounded by the members' in-flight
 * limits (plus session creates, bounded by sessionsMax).
 */
import type { Logger } from 'pino'

export interface WriteThrottleHost {
  readonly logger: Logger
  /** Bytes issued to this server's storage and not yet durable. */
  logPendingBytes(): number
  /** The throttle point: storage's writeThrottleBytes. */
  readonly logThrottleBytes: number
  /** Does this server prep and propose writes itself (leader or standalone)? */
  proposes(): boolean
  /** `paused` changed: every client connection should stop or resume reading to match it. */
  readingChanged(): void
  /** Milliseconds, for the durations it logs (the server's clock). */
  now(): number
}

export class WriteThrottle {
  /** Writes submitted by this server's connections and not yet answered. */
  inFlight = 0
  /** Reading from clients is stopped (the in-flight limit was reached). */
  paused = false
  private queue: (() => void)[] = []
  private head = 0
  private pausedAt = 0
  private deferringSince = 0
  private draining = false

  constructor(
    private readonly limit: number,
    private readonly host: WriteThrottleHost,
  ) {}

  /** Writes waiting for the log to drain. */
  get deferred(): number {
    return this.queue.length - this.head
  }

  started(): void {
    this.inFlight++
    if (this.paused || this.inFlight < this.limit) return
    this.paused = true
    this.pausedAt = this.host.now()
    this.host.logger.warn(
      { inFlight: this.inFlight, limit: this.limit, deferred: this.deferred },
      'too many writes in flight; not reading from clients',
    )
    this.host.readingChanged()
  }

  finished(): void {
    this.inFlight--
    if (!this.paused || this.inFlight > this.limit / 2) return
    this.paused = false
    this.host.logger.info(
      { inFlight: this.inFlight, pausedMs: this.host.now() - this.pausedAt },
      'reading from clients again',
    )
    this.host.readingChanged()
  }

  /** Runs `write` now, or once this server's log has drained, after every write deferred before it. */
  admit(write: () => void): void {
    if (this.draining) return void this.queue.push(write)
    if (this.deferred === 0 && !(this.host.proposes() && this.backlogged(1))) return write()
    if (this.deferred === 0) {
      this.deferringSince = this.host.now()
      this.host.logger.warn(
        { pendingBytes: this.host.logPendingBytes(), throttleBytes: this.host.logThrottleBytes },
        "this server's log is behind; deferring writes",
      )
    }
    this.queue.push(write)
  }

  /** The log made progress (or time passed): runs what waited once less than half the throttle point is pending. */
  release(): void {
    if (this.deferred === 0 || this.backlogged(0.5)) return
    this.host.logger.info(
      { deferred: this.deferred, deferredMs: this.host.now() - this.deferringSince },
      'log caught up; proposing deferred writes',
    )
    this.runAll()
  }

  /** A role change: everything deferred runs now, each write deciding again what to do under the new role. */
  flush(): void {
    if (this.deferred > 0) this.runAll()
  }

  private backlogged(fraction: number): boolean {
    return this.host.logPendingBytes() >= this.host.logThrottleBytes * fraction
  }

  /** Runs the queue in order; a write admitted meanwhile (one run here may submit the next) joins its end. */
  private runAll(): void {
    this.draining = true
    try {
      while (this.head < this.queue.length) {
        const write = this.queue[this.head]!
        this.queue[this.head++] = NOOP
        write()
      }
    } finally {
      this.draining = false
      this.queue = []
      this.head = 0
    }
  }
}

const NOOP = (): void => {}
