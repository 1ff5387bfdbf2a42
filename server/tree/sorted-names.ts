/**
 * SortedNames: a set of strings kept in JS default string order (UTF-16
 * code units, data-tree.ts compareNames) as a list of chunks, so that
 * adding or removing a name costs O(log n + CHUNK_MAX) and reading a page of
 * k names after a given name costs O(log n + k), instead of sorting all n.
 *
 * Why: a znode's children are an unordered Set of slots (node-store.ts);
 * a paginated getChildren over them would sort every child for every page
 * (data-tree.ts keeps one of these for each large parent that was paged).
 *
 * Invariants: every chunk is non-empty and sorted; the last name of a chunk
 * is below the first of the next; no name appears twice; a chunk holds at
 * most CHUNK_MAX names (a full one is split in halves).
 * Must not import anything (pure data structure).
 */

/** Names per chunk before it is split: a splice in a chunk this size moves at most 8 KiB of pointers. */
export const CHUNK_MAX = 1024

function less(a: string, b: string): boolean {
  return a < b
}

/** Index of the first name in sorted `list` that is not below `name` (list.length if none). */
function lowerBound(list: readonly string[], name: string): number {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (less(list[mid]!, name)) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Index of the first name in sorted `list` above `name`. */
function upperBound(list: readonly string[], name: string): number {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (less(name, list[mid]!)) hi = mid
    else lo = mid + 1
  }
  return lo
}

export class SortedNames {
  private readonly chunks: string[][] = []
  private count = 0

  /** Builds the set from names in any order (sorted once: O(n log n)). */
  static of(names: Iterable<string>): SortedNames {
    const s = new SortedNames()
    const all = [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    for (let i = 0; i < all.length; i += CHUNK_MAX / 2) s.chunks.push(all.slice(i, i + CHUNK_MAX / 2))
    s.count = all.length
    return s
  }

  get size(): number {
    return this.count
  }

  /** The chunk a name belongs in: the first whose last name is not below it (the last chunk if none). */
  private chunkFor(name: string): number {
    const chunks = this.chunks
    let lo = 0
    let hi = chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const c = chunks[mid]!
      if (less(c[c.length - 1]!, name)) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Adds a name; false if it was there. */
  add(name: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([name])
      this.count = 1
      return true
    }
    const ci = this.chunkFor(name)
    const chunk = this.chunks[ci]!
    const at = lowerBound(chunk, name)
    if (chunk[at] === name) return false
    chunk.splice(at, 0, name)
    this.count++
    if (chunk.length > CHUNK_MAX) this.chunks.splice(ci + 1, 0, chunk.splice(chunk.length >>> 1))
    return true
  }

  /** Removes a name; false if it was not there. */
  delete(name: string): boolean {
    if (this.chunks.length === 0) return false
    const ci = this.chunkFor(name)
    const chunk = this.chunks[ci]!
    const at = lowerBound(chunk, name)
    if (chunk[at] !== name) return false
    chunk.splice(at, 1)
    this.count--
    if (chunk.length === 0) this.chunks.splice(ci, 1)
    return true
  }

  has(name: string): boolean {
    if (this.chunks.length === 0) return false
    const chunk = this.chunks[this.chunkFor(name)]!
    return chunk[lowerBound(chunk, name)] === name
  }

  /** The names above `after` ('' : all), in order; stops when the caller stops. */
  *after(after: string): Generator<string, void, undefined> {
    const chunks = this.chunks
    if (chunks.length === 0) return
    let ci = after === '' ? 0 : this.chunkFor(after)
    let i = after === '' ? 0 : upperBound(chunks[ci]!, after)
    for (; ci < chunks.length; ci++, i = 0) {
      const chunk = chunks[ci]!
      for (; i < chunk.length; i++) yield chunk[i]!
    }
  }

  /** Every name, in order. */
  toArray(): string[] {
    return this.chunks.flat()
  }
}
