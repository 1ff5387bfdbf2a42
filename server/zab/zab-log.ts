/**
 * ZabLog: a peer's in-memory view of its transaction log: every entry after
 * `baseZxid` (the last entry dropped from memory, or the snapshot the peer
 * was rebuilt from). The leader keeps the last `commitLogCount` committed
 * entries here for DIFF synchronisation, plus every uncommitted one.
 *
 * Invariants: zxids strictly increase; baseZxid < first entry; entries are
 * only dropped from the front through trimThrough (committed ones) and from
 * the back through truncateAfter (never below baseZxid).
 *
 * Must not import anything but shared/ and server/zab (pure module).
 */
import { fail } from '../../shared/assert.js'
import type { LogEntry } from './types.js'

export class ZabLog {
  private entries: LogEntry[] = []
  private head = 0
  private base: number

  constructor(baseZxid: number, entries: readonly LogEntry[]) {
    this.base = baseZxid
    for (const e of entries) if (e.zxid > baseZxid) this.append(e)
  }

  /** The zxid just before the first in-memory entry. */
  get baseZxid(): number {
    return this.base
  }

  get lastZxid(): number {
    return this.entries.length > this.head ? this.entries[this.entries.length - 1]!.zxid : this.base
  }

  get size(): number {
    return this.entries.length - this.head
  }

  append(e: LogEntry): void {
    if (!(e.zxid > this.lastZxid)) fail(`log append out of order: ${e.zxid} after ${this.lastZxid}`)
    this.entries.push(e)
  }

  /** Index into `entries` of the last entry with zxid <= `zxid`, or head - 1 when none. */
  private floorIndex(zxid: number): number {
    let lo = this.head
    let hi = this.entries.length - 1
    let found = this.head - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.entries[mid]!.zxid <= zxid) {
        found = mid
        lo = mid + 1
      } else {
        hi = mid - 1
      }
    }
    return found
  }

  get(zxid: number): LogEntry | undefined {
    const i = this.floorIndex(zxid)
    const e = i >= this.head ? this.entries[i] : undefined
    return e?.zxid === zxid ? e : undefined
  }

  /** True when `zxid` is an in-memory entry or exactly the base (a known point of history). */
  knows(zxid: number): boolean {
    return zxid === this.base || this.get(zxid) !== undefined
  }

  /** The largest known zxid <= `zxid` (the base if no entry qualifies); undefined below the base. */
  floor(zxid: number): number | undefined {
    if (zxid < this.base) return undefined
    const i = this.floorIndex(zxid)
    return i >= this.head ? this.entries[i]!.zxid : this.base
  }

  /** Entries with after < zxid <= upTo, in order. `after` must be known history or the base. */
  slice(after: number, upTo: number): LogEntry[] {
    if (!(after >= this.base)) fail(`log slice below base: ${after} < ${this.base}`)
    const out: LogEntry[] = []
    for (let i = this.floorIndex(after) + 1; i < this.entries.length; i++) {
      const e = this.entries[i]!
      if (e.zxid > upTo) break
      out.push(e)
    }
    return out
  }

  /** Drops every entry with zxid > `zxid`. */
  truncateAfter(zxid: number): void {
    if (!(zxid >= this.base)) fail(`truncate below base: ${zxid} < ${this.base}`)
    this.entries.length = this.floorIndex(zxid) + 1
  }

  /** Forgets everything: the log restarts after a snapshot at `zxid`. */
  resetTo(zxid: number): void {
    this.entries = []
    this.head = 0
    this.base = zxid
  }

  /** Drops the oldest entries so that at most `keep` entries <= `committedZxid` stay in memory. */
  trimCommitted(committedZxid: number, keep: number): void {
    const i = this.floorIndex(committedZxid)
    const extra = i - this.head + 1 - keep
    if (extra > 0) this.trimThrough(this.entries[this.head + extra - 1]!.zxid)
  }

  /** Drops entries with zxid <= `zxid` from memory (they stay on disk). */
  trimThrough(zxid: number): void {
    const i = this.floorIndex(zxid)
    if (i < this.head) return
    this.base = this.entries[i]!.zxid
    this.head = i + 1
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }
}
