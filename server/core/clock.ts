/**
 * Clock and Timers: the ports through which server parts read time and
 * schedule work, so the same code runs on the event loop (the server) and
 * on the simulator's seeded scheduler. Time is in milliseconds; only the
 * server's composition root binds them to Date.now and setTimeout.
 *
 * Pure (interfaces only).
 */

export interface Clock {
  /** Wall-clock milliseconds (Txn timestamps and session deadlines use it). */
  now(): number
}

export interface Timer {
  cancel(): void
}

export interface Timers {
  /** Runs `fn` once after `ms` (never holding the process open). */
  after(ms: number, fn: () => void): Timer
}
