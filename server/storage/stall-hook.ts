/**
 * The storage stall test hook: CONCLAVE_STORAGE_STALL_FILE names a file
 * (relative to the data directory) holding `{ "until": epochMs }`; until
 * then, the disk is taken to stand still. The storage worker blocks before a
 * commit while the file says so (as if its fsync hung), re-reading the file
 * every STALL_POLL_MS so that writing `{ "until": 0 }` ends a stall within
 * that time; one stall lasts at most STALL_MS_MAX. The main thread commits
 * nothing inline while a stall is asked for (its commits go to the worker,
 * which stalls), so the hook stands the whole disk still, not one path.
 * Used by tests and the chaos harness's disk-stall fault; unset in
 * production, where none of this runs.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

export const STALL_POLL_MS = 50
export const STALL_MS_MAX = 60_000

/** Reads the hook's file at most every STALL_POLL_MS: how long from now the disk stands still (0: it does not). */
export class StallHook {
  private checkedAt = Number.NEGATIVE_INFINITY
  private until = 0

  private constructor(private readonly file: string) {}

  /** The hook for the database `dbFile`, or undefined when the hook is not set (production). */
  static forDatabase(dbFile: string): StallHook | undefined {
    const name = process.env.CONCLAVE_STORAGE_STALL_FILE
    return name ? new StallHook(resolve(dirname(dbFile), name)) : undefined
  }

  remainingMs(): number {
    const now = Date.now()
    if (now - this.checkedAt >= STALL_POLL_MS) {
      this.checkedAt = now
      try {
        this.until = Number((JSON.parse(readFileSync(this.file, 'utf8')) as { until?: unknown }).until) || 0
      } catch {
        this.until = 0
      }
    }
    return Math.max(0, Math.min(this.until - now, STALL_MS_MAX))
  }

  /** Blocks this thread while a stall is asked for (at most STALL_MS_MAX), looking again every STALL_POLL_MS. */
  stallIfAsked(): void {
    const started = Date.now()
    const cell = new Int32Array(new SharedArrayBuffer(4))
    for (;;) {
      const ms = Math.min(this.remainingMs(), STALL_MS_MAX - (Date.now() - started))
      if (ms <= 0) return
      Atomics.wait(cell, 0, 0, Math.min(ms, STALL_POLL_MS))
    }
  }
}
