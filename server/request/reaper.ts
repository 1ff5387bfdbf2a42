/**
 * Reaper: the leader's removal of container znodes left empty and TTL
 * znodes past their time. A timer (the context's Timers) fires at the
 * tree's next reap time; the leader proposes a `reap` for each eligible
 * path it is not already reaping. Not everything may be eligible yet (a
 * container's grace), so it looks again within a second while any remain.
 */
import type { Timer } from '../core/clock.js'
import type { PrepRequest } from '../txn/request.js'
import type { ServerContext } from './server-context.js'

/** A retry while candidates remain, at most this often. */
const REAP_RETRY_MS = 1000

export class Reaper {
  private timer: Timer | undefined
  private at = Number.POSITIVE_INFINITY
  /** Paths with a reap proposed and not yet applied (or failed): proposed once each. */
  private readonly reaping = new Set<string>()

  constructor(
    private readonly ctx: ServerContext,
    private readonly submitInternal: (write: PrepRequest, sessionId: bigint) => void,
  ) {}

  /** Paths a committed Txn changed: a reap of one of them is over (applied, or moot). */
  changed(changes: readonly { path: string }[]): void {
    if (this.reaping.size > 0) for (const c of changes) this.reaping.delete(c.path)
  }

  /** A reap could not be proposed (not leading, or refused by prep): it may be proposed again. */
  dropped(path: string): void {
    this.reaping.delete(path)
  }

  /** After an apply (or at start): the tree's next reap time may have come closer. */
  schedule(): void {
    const at = this.ctx.db.nextReapAtMs()
    if (at === undefined || at >= this.at) return
    this.timer?.cancel()
    this.at = at
    this.timer = this.ctx.timers.after(Math.max(0, at - this.ctx.clock.now()), () => this.reap())
  }

  private reap(): void {
    const { ctx } = this
    this.timer = undefined
    this.at = Number.POSITIVE_INFINITY
    const now = ctx.clock.now()
    if (ctx.isLeader()) {
      for (const path of ctx.db.reapable(now)) {
        if (this.reaping.has(path)) continue
        this.reaping.add(path)
        this.submitInternal({ type: 'reap', path }, 0n)
      }
    }
    const next = ctx.db.nextReapAtMs()
    if (next === undefined) return
    this.at = Math.max(next, now + REAP_RETRY_MS)
    this.timer = ctx.timers.after(this.at - now, () => this.reap())
  }

  stop(): void {
    this.timer?.cancel()
    this.timer = undefined
  }
}
