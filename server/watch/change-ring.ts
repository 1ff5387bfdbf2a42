/**
 * ChangeRing: the server's recent history of watch-relevant changes — for
 * each applied Txn that changed the tree, its zxid and its changes (type and
 * path, what WatchTable.fire needs), oldest first. Every server applies the
 * same committed Txns in zxid order, so every server holds the same history
 * (from where it started or last restored a snapshot), and a watch can
 * resume on any of them (watch-resume.ts).
 *
 * Bounded by the changes it holds and their estimated bytes: past either,
 * whole Txns are dropped oldest first. `startZxid` says how far back it is
 * complete: it holds every change of every Txn with a zxid above it.
 *
 * Invariants: entries in strictly increasing zxid order, each above
 * startZxid; changes and bytes at most the limits once append returns (a
 * single Txn over them is dropped at once, and startZxid moves past it).
 * Pure: no I/O, no clock. Imports only server/watch.
 */
import type { WatchChange } from './watch-table.js'

export interface ChangeRingLimits {
  /** Most changes held (a Txn's changes go and come together). */
  changesMax: number
  /** Most estimated bytes held. */
  bytesMax: number
}

/** What one change is estimated to hold: its object, its type, and the path's characters (UTF-16). */
export const CHANGE_OVERHEAD_BYTES = 64
/** … and one Txn's entry (its zxid, its array). */
export const ENTRY_OVERHEAD_BYTES = 48

export interface RingEntry {
  readonly zxid: number
  readonly changes: readonly WatchChange[]
}

interface Entry extends RingEntry {
  readonly bytes: number
}

export function changeBytes(c: WatchChange): number {
  return CHANGE_OVERHEAD_BYTES + 2 * c.path.length
}

export class ChangeRing {
  private entries: Entry[] = []
  private head = 0
  private changeCount = 0
  private byteCount = 0
  private start: number
  /** Txns dropped to stay within the limits (not counting resets). */
  evicted = 0

  constructor(
    private readonly limits: ChangeRingLimits,
    startZxid: number,
  ) {
    this.start = startZxid
  }

  /** The history is complete above this zxid. */
  get startZxid(): number {
    return this.start
  }

  /** Changes held. */
  get size(): number {
    return this.changeCount
  }

  /** Their estimated bytes. */
  get bytes(): number {
    return this.byteCount
  }

  /** Txns held. */
  get length(): number {
    return this.entries.length - this.head
  }

  /** The newest zxid held, or startZxid if none. */
  get lastZxid(): number {
    return this.length === 0 ? this.start : this.entries[this.entries.length - 1]!.zxid
  }

  /** Forgets everything: the history now starts at `zxid` (a snapshot was restored). */
  reset(zxid: number): void {
    this.entries = []
    this.head = 0
    this.changeCount = 0
    this.byteCount = 0
    this.start = zxid
  }

  /** Records the changes of the Txn applied at `zxid` (above every zxid held). */
  append(zxid: number, changes: readonly WatchChange[]): void {
    if (zxid <= this.lastZxid) {
      // Not in zxid order: the history can no longer be trusted before this point.
      this.reset(zxid)
      return
    }
    if (changes.length === 0) return
    let bytes = ENTRY_OVERHEAD_BYTES
    for (const c of changes) bytes += changeBytes(c)
    this.entries.push({ zxid, changes, bytes })
    this.changeCount += changes.length
    this.byteCount += bytes
    while (
      this.head < this.entries.length &&
      (this.changeCount > this.limits.changesMax || this.byteCount > this.limits.bytesMax)
    ) {
      const e = this.entries[this.head]!
      this.entries[this.head++] = undefined as unknown as Entry
      this.changeCount -= e.changes.length
      this.byteCount -= e.bytes
      this.start = e.zxid
      this.evicted++
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }

  /**
   * The Txns after `fromZxid`, oldest first; 'compacted' when the history
   * no longer reaches back to it (fromZxid is below startZxid).
   */
  since(fromZxid: number): RingEntry[] | 'compacted' {
    if (fromZxid < this.start) return 'compacted'
    // The first entry above fromZxid (binary search: entries are in zxid order).
    let lo = this.head
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.entries[mid]!.zxid <= fromZxid) lo = mid + 1
      else hi = mid
    }
    return this.entries.slice(lo)
  }
}
