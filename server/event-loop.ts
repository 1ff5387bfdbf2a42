/**
 * The event loop's clock and timers, bound once for the whole server: the
 * wall clock (Txn timestamps, session deadlines), a monotonic clock (the ZAB
 * driver's slice budgets and durations), and timers that never hold the
 * process open. The request path and the ZAB driver take these through
 * their ports; the simulation gives them its scheduler instead.
 */
import type { Clock, Timers } from './core/clock.js'

export const wallClock: Clock = { now: () => Date.now() }

export const eventLoopTimers: Timers & { now(): number; defer(fn: () => void): void } = {
  now: () => performance.now(),
  defer: (fn) => setImmediate(fn),
  after(ms, fn) {
    const t = setTimeout(fn, ms)
    t.unref()
    return { cancel: () => clearTimeout(t) }
  },
}
