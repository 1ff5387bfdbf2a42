/**
 * Request rate limits (issue 15): a token bucket per session (the
 * connection it is on) and one per client IP address, each refilled
 * continuously at its rate and holding at most one second's worth. Both off
 * (0) by default; ZooKeeper has neither. A request that finds either bucket
 * empty is answered THROTTLED_OP without being served, and takes no token
 * (the pipeline then stops reading that connection for a second); pings and
 * closeSession always pass, so a throttled session stays alive and can
 * close.
 *
 * Time comes from the caller (nowMs), so the simulation can run it.
 * Imports nothing but shared/.
 */
import { OpCode } from '../../shared/opcodes.js'

export class TokenBucket {
  private tokens: number
  private atMs: number

  constructor(
    private readonly perSecond: number,
    nowMs: number,
  ) {
    this.tokens = perSecond
    this.atMs = nowMs
  }

  private refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.atMs)
    this.atMs = nowMs
    this.tokens = Math.min(this.perSecond, this.tokens + (elapsed * this.perSecond) / 1000)
  }

  /** Has a token now. */
  has(nowMs: number): boolean {
    this.refill(nowMs)
    return this.tokens >= 1
  }

  /** Takes a token (after has() said there is one). */
  take(): void {
    this.tokens -= 1
  }

  /** Refilled to the brim: nobody has asked of it for a second. */
  full(nowMs: number): boolean {
    this.refill(nowMs)
    return this.tokens >= this.perSecond
  }
}

export interface RequestRateOptions {
  /** Requests per second one session may make; 0: no limit. */
  perSessionPerSecond: number
  /** Requests per second the sessions of one IP address may make together; 0: no limit. */
  perIpPerSecond: number
}

/** Whether a request counts against the rate limits (pings and closeSession never do). */
export function rateLimited(op: number): boolean {
  return op !== OpCode.ping && op !== OpCode.closeSession
}

export class RequestRateLimits {
  private readonly sessions = new Map<object, TokenBucket>()
  private readonly ips = new Map<string, TokenBucket>()

  constructor(private readonly opts: RequestRateOptions) {}

  get enabled(): boolean {
    return this.opts.perSessionPerSecond > 0 || this.opts.perIpPerSecond > 0
  }

  /**
   * Whether a request of `session` (any object standing for it: its
   * connection's handler) from `ip` may be served now; if so it takes a
   * token from each bucket that applies.
   */
  admit(session: object, ip: string, op: number, nowMs: number): boolean {
    if (!this.enabled || !rateLimited(op)) return true
    const s = this.bucket(this.sessions, session, this.opts.perSessionPerSecond, nowMs)
    const i = this.bucket(this.ips, ip, this.opts.perIpPerSecond, nowMs)
    if ((s !== undefined && !s.has(nowMs)) || (i !== undefined && !i.has(nowMs))) return false
    s?.take()
    i?.take()
    return true
  }

  private bucket<K>(
    map: Map<K, TokenBucket>,
    key: K,
    perSecond: number,
    nowMs: number,
  ): TokenBucket | undefined {
    if (perSecond <= 0) return undefined
    let b = map.get(key)
    if (b === undefined) {
      b = new TokenBucket(perSecond, nowMs)
      map.set(key, b)
    }
    return b
  }

  /** The session's connection ended. */
  forget(session: object): void {
    this.sessions.delete(session)
  }

  /** Drops the buckets of addresses that have been quiet for a second (they would start full anyway). */
  sweep(nowMs: number): void {
    for (const [ip, b] of this.ips) if (b.full(nowMs)) this.ips.delete(ip)
  }

  /** Addresses with a bucket (for tests and metrics). */
  get ipCount(): number {
    return this.ips.size
  }
}
