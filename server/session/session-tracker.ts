/**
 * SessionTracker: which sessions are alive and when each expires, with
 * ZooKeeper's ExpiryQueue buckets: deadlines are rounded up to a tick, so
 * expiry is checked once per tick for a whole bucket instead of a timer per
 * session. Every call takes `nowMs`; nothing here reads a clock.
 *
 * Invariant: a session is in exactly one bucket while live; a session
 * marked closing is in none and is never reported expired twice.
 * Pure: imports only shared/.
 */

export interface TrackedSession {
  id: bigint
  timeoutMs: number
  deadlineMs: number
  closing: boolean
}

export class SessionTracker {
  private readonly sessions = new Map<bigint, TrackedSession>()
  private readonly buckets = new Map<number, Set<bigint>>()

  constructor(private readonly tickMs: number) {}

  get size(): number {
    return this.sessions.size
  }

  get(id: bigint): TrackedSession | undefined {
    return this.sessions.get(id)
  }

  ids(): IterableIterator<bigint> {
    return this.sessions.keys()
  }

  private bucketOf(deadlineMs: number): number {
    return Math.ceil(deadlineMs / this.tickMs) * this.tickMs
  }

  private place(s: TrackedSession, nowMs: number): void {
    const old = this.bucketOf(s.deadlineMs)
    this.buckets.get(old)?.delete(s.id)
    if (this.buckets.get(old)?.size === 0) this.buckets.delete(old)
    s.deadlineMs = this.bucketOf(nowMs + s.timeoutMs)
    let b = this.buckets.get(s.deadlineMs)
    if (b === undefined) {
      b = new Set()
      this.buckets.set(s.deadlineMs, b)
    }
    b.add(s.id)
  }

  /** Starts tracking a session (new, or restored after a restart or a leader change). */
  add(id: bigint, timeoutMs: number, nowMs: number): void {
    const existing = this.sessions.get(id)
    if (existing !== undefined) {
      existing.timeoutMs = timeoutMs
      if (!existing.closing) this.place(existing, nowMs)
      return
    }
    const s: TrackedSession = { id, timeoutMs, deadlineMs: 0, closing: false }
    this.sessions.set(id, s)
    this.place(s, nowMs)
  }

  /** Records activity; returns false for an unknown or closing session. */
  touch(id: bigint, nowMs: number): boolean {
    const s = this.sessions.get(id)
    if (s === undefined || s.closing) return false
    const next = this.bucketOf(nowMs + s.timeoutMs)
    if (next !== s.deadlineMs) this.place(s, nowMs)
    return true
  }

  /** Marks a session as closing: it will not expire again while its closeSession Txn is in flight. */
  setClosing(id: bigint): void {
    const s = this.sessions.get(id)
    if (s === undefined || s.closing) return
    s.closing = true
    const b = this.buckets.get(s.deadlineMs)
    b?.delete(id)
    if (b?.size === 0) this.buckets.delete(s.deadlineMs)
  }

  remove(id: bigint): void {
    this.setClosing(id)
    this.sessions.delete(id)
  }

  /** Sessions whose deadline has passed, marked closing; each is reported once. */
  expire(nowMs: number): bigint[] {
    const out: bigint[] = []
    for (const [deadline, ids] of this.buckets) {
      if (deadline > nowMs) continue
      for (const id of ids) out.push(id)
    }
    out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    for (const id of out) this.setClosing(id)
    return out
  }

  /** The earliest deadline, for scheduling the next check. */
  nextDeadlineMs(): number | undefined {
    let min: number | undefined
    for (const d of this.buckets.keys()) if (min === undefined || d < min) min = d
    return min
  }
}
