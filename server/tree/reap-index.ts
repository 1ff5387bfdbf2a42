/**
 * ReapIndex: the container and TTL znodes that are, or will become,
 * removal candidates, each with the time it becomes eligible. The tree
 * keeps it up to date on every change, so the leader can ask
 * `nextAtMs()` and schedule a reap Txn within a second of eligibility
 * (event-driven, instead of ZooKeeper's 60 s ContainerManager poll).
 *
 * Invariants: `at` holds the truth (path -> eligible-at ms); the heap may
 * hold stale entries (superseded or removed), which are skipped and
 * compacted away; results are sorted by (time, path) so they are
 * deterministic.
 * Must not import anything but shared/ and server/tree/.
 */

interface HeapEntry {
  at: number
  path: string
}

function less(x: HeapEntry, y: HeapEntry): boolean {
  return x.at < y.at || (x.at === y.at && x.path < y.path)
}

export class ReapIndex {
  private readonly at = new Map<string, number>()
  private heap: HeapEntry[] = []

  get size(): number {
    return this.at.size
  }

  set(path: string, atMs: number): void {
    if (this.at.get(path) === atMs) return
    this.at.set(path, atMs)
    this.push({ at: atMs, path })
    if (this.heap.length > 2 * this.at.size + 64) this.compact()
  }

  delete(path: string): void {
    this.at.delete(path)
  }

  has(path: string): boolean {
    return this.at.has(path)
  }

  /** The earliest eligibility time, or undefined when there is no candidate. */
  nextAtMs(): number | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0]!
      if (this.at.get(top.path) === top.at) return top.at
      this.pop()
    }
    return undefined
  }

  /** Candidates eligible at nowMs, earliest first (at most `limit`). */
  due(nowMs: number, limit: number): string[] {
    const found: HeapEntry[] = []
    const seen = new Set<string>()
    // Walk only the part of the heap at or before nowMs (the heap order bounds it).
    const stack = [0]
    while (stack.length > 0) {
      const i = stack.pop()!
      const e = this.heap[i]
      if (e === undefined || e.at > nowMs) continue
      if (this.at.get(e.path) === e.at && !seen.has(e.path)) {
        seen.add(e.path)
        found.push(e)
      }
      stack.push(2 * i + 1, 2 * i + 2)
    }
    found.sort((x, y) => (less(x, y) ? -1 : less(y, x) ? 1 : 0))
    return found.slice(0, limit).map((e) => e.path)
  }

  private compact(): void {
    this.heap = []
    for (const [path, at] of this.at) this.push({ at, path })
  }

  private push(e: HeapEntry): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  private pop(): void {
    const h = this.heap
    const last = h.pop()!
    if (h.length === 0) return
    h[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && less(h[l]!, h[m]!)) m = l
      if (r < h.length && less(h[r]!, h[m]!)) m = r
      if (m === i) return
      ;[h[i], h[m]] = [h[m]!, h[i]!]
      i = m
    }
  }
}
