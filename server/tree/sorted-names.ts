/**
 * SortedNames: a set of items kept in the JS default string order (UTF-16
 * code units, data-tree.ts compareNames) of their names, as a list of
 * chunks, so that adding or removing one costs O(log n + CHUNK_MAX) and
 * reading a page of k items after a given name costs O(log n + k), instead
 * of sorting all n. An item is its name (strings) or anything a `nameOf`
 * function names: the tree keeps slots (8 bytes each in a chunk) and names
 * them from their paths, so the index holds no string of its own.
 *
 * Why: a znode's children are an unordered Set of slots (node-store.ts);
 * a paginated getChildren over them would sort every child for every page
 * (data-tree.ts keeps one of these for each large parent).
 *
 * Invariants: every chunk is non-empty and sorted; the last name of a chunk
 * is below the first of the next; no name appears twice; a chunk holds at
 * most CHUNK_MAX items (a full one is split in halves).
 * Must not import anything (pure data structure).
 */

/** Names per chunk before it is split: a splice in a chunk this size moves at most 8 KiB of pointers. */
export const CHUNK_MAX = 1024

function less(a: string, b: string): boolean {
  return a < b
}

const identity = <T>(x: T): string => x as unknown as string

export class SortedNames<T = string> {
  private readonly chunks: T[][] = []
  private count = 0

  constructor(private readonly nameOf: (item: T) => string = identity) {}

  /** Index of the first item in sorted `list` whose name is not below `name` (list.length if none). */
  private lowerBound(list: readonly T[], name: string): number {
    let lo = 0
    let hi = list.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (less(this.nameOf(list[mid]!), name)) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Index of the first item in sorted `list` whose name is above `name`. */
  private upperBound(list: readonly T[], name: string): number {
    let lo = 0
    let hi = list.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (less(name, this.nameOf(list[mid]!))) hi = mid
      else lo = mid + 1
    }
    return lo
  }

  /** Builds the set from items in any order (sorted once: O(n log n), each name taken once). */
  static of<T = string>(items: Iterable<T>, nameOf?: (item: T) => string): SortedNames<T> {
    const s = new SortedNames<T>(nameOf)
    const named = Array.from(items, (item) => ({ item, name: s.nameOf(item) }))
    named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (let i = 0; i < named.length; i += CHUNK_MAX / 2)
      s.chunks.push(named.slice(i, i + CHUNK_MAX / 2).map((x) => x.item))
    s.count = named.length
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
      if (less(this.nameOf(c[c.length - 1]!), name)) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Adds an item; false if one of its name was there. */
  add(item: T): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([item])
      this.count = 1
      return true
    }
    const name = this.nameOf(item)
    const ci = this.chunkFor(name)
    const chunk = this.chunks[ci]!
    const at = this.lowerBound(chunk, name)
    if (at < chunk.length && this.nameOf(chunk[at]!) === name) return false
    chunk.splice(at, 0, item)
    this.count++
    if (chunk.length > CHUNK_MAX) this.chunks.splice(ci + 1, 0, chunk.splice(chunk.length >>> 1))
    return true
  }

  /** Removes the item of this item's name; false if there was none. */
  delete(item: T): boolean {
    if (this.chunks.length === 0) return false
    const name = this.nameOf(item)
    const ci = this.chunkFor(name)
    const chunk = this.chunks[ci]!
    const at = this.lowerBound(chunk, name)
    if (at >= chunk.length || this.nameOf(chunk[at]!) !== name) return false
    chunk.splice(at, 1)
    this.count--
    if (chunk.length === 0) this.chunks.splice(ci, 1)
    return true
  }

  /** Whether an item of this name is in the set. */
  has(name: string): boolean {
    if (this.chunks.length === 0) return false
    const chunk = this.chunks[this.chunkFor(name)]!
    const at = this.lowerBound(chunk, name)
    return at < chunk.length && this.nameOf(chunk[at]!) === name
  }

  /** The items whose names are above `after` ('' : all), in order; stops when the caller stops. */
  *after(after: string): Generator<T, void, undefined> {
    const chunks = this.chunks
    if (chunks.length === 0) return
    let ci = after === '' ? 0 : this.chunkFor(after)
    let i = after === '' ? 0 : this.upperBound(chunks[ci]!, after)
    for (; ci < chunks.length; ci++, i = 0) {
      const chunk = chunks[ci]!
      for (; i < chunk.length; i++) yield chunk[i]!
    }
  }

  /** Every item, in order. */
  toArray(): T[] {
    return this.chunks.flat()
  }
}
