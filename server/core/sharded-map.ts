/**
 * ShardedMap: a Map from strings or integers, split over a fixed number of
 * smaller Maps by a hash of the key, so that growing it never rehashes
 * everything at once.
 *
 * Why: a V8 Map grows by doubling and rehashes every entry in one go inside
 * the `set` that crosses the boundary. Measured on this machine (Node 20,
 * path-like keys): 44 ms at 131,072 entries, 125 ms at 524,288, 275 ms at
 * 1,048,576 and 679 ms at 2,097,152 — an event-loop stall on every server
 * at the same create (they all hold the same tree). Split 256 ways, each
 * part doubles at 1/256 of the size, a fraction of a millisecond at 1M.
 *
 * Invariants: a key lives in exactly one shard, chosen by a deterministic
 * hash of its characters (FNV-1a) or, for an integer, by its low bits (the
 * tree's slots are dense), so the iteration order (shard by shard,
 * insertion order within one) depends only on the operations applied.
 * ShardedSet is the same for a Set; most sets stay small (a znode's
 * children, a session's ephemerals), so `addScaling` keeps a plain Set until
 * it reaches SHARD_AT members and only then moves them into a ShardedSet.
 * Must not import anything (pure data structure).
 */

const SHARD_BITS = 8
const SHARDS = 1 << SHARD_BITS

function shardOf(key: string | number): number {
  if (typeof key === 'number') return key & (SHARDS - 1)
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  // Fold the high bits in: FNV's low bits alone mix the last characters poorly.
  return (h ^ (h >>> 16)) & (SHARDS - 1)
}

/** What ShardedMap and ShardedSet share: the shards, the count, has and delete. */
abstract class Sharded<K extends string | number, S extends Map<K, unknown> | Set<K>> {
  protected readonly shards: S[]
  protected count = 0

  protected constructor(make: () => S) {
    this.shards = Array.from({ length: SHARDS }, make)
  }

  get size(): number {
    return this.count
  }

  has(key: K): boolean {
    return this.shards[shardOf(key)]!.has(key)
  }

  delete(key: K): boolean {
    const deleted = this.shards[shardOf(key)]!.delete(key)
    if (deleted) this.count--
    return deleted
  }
}

export class ShardedMap<K extends string | number, V> extends Sharded<K, Map<K, V>> {
  constructor() {
    super(() => new Map())
  }

  get(key: K): V | undefined {
    return this.shards[shardOf(key)]!.get(key)
  }

  set(key: K, value: V): this {
    const shard = this.shards[shardOf(key)]!
    const before = shard.size
    shard.set(key, value)
    this.count += shard.size - before
    return this
  }

  /**
   * Entries added in bulk (a map being loaded whole, nothing reading it
   * meanwhile): `add` only sorts them by shard; `finish` sets them one shard
   * at a time, in the order added, at most `budget` of them a call; once all
   * are set it returns how many keys were added more than once (the last
   * value wins), else undefined (call again). Filling one shard's table at a
   * time, instead of all 256 at random, took 1M fresh path keys in 0.9-1.0 s
   * of CPU instead of 1.4 s (a get and a set each) on this machine.
   */
  bulk(): { add(key: K, value: V): void; finish(budget?: number): number | undefined } {
    const keys: K[][] = Array.from({ length: SHARDS }, () => [])
    const values: V[][] = Array.from({ length: SHARDS }, () => [])
    let added = 0
    let shard = 0
    let at = 0
    const before = this.count
    return {
      add: (key, value) => {
        const s = shardOf(key)
        keys[s]!.push(key)
        values[s]!.push(value)
        added++
      },
      finish: (budget = Number.POSITIVE_INFINITY) => {
        for (; shard < SHARDS; shard++, at = 0) {
          const map = this.shards[shard]!
          const ks = keys[shard]!
          const vs = values[shard]!
          const size = map.size
          for (; at < ks.length && budget > 0; at++, budget--) map.set(ks[at]!, vs[at]!)
          this.count += map.size - size
          if (at < ks.length) return undefined
          ks.length = 0
          vs.length = 0
        }
        return added - (this.count - before)
      },
    }
  }

  /**
   * Iteration visits the shards in turn, each live as a Map iterator is:
   * an entry deleted before it is reached is skipped; one added meanwhile is
   * visited if its shard has not been passed yet (a fuzzy snapshot replays
   * the log after it, so either is fine). Hash order, not insertion order:
   * a walk that reads per-entry state stored by slot should go in slot order.
   */
  keys(): IterableIterator<K> {
    return new ShardsIterator(this.shards, (m) => m.keys())
  }

  values(): IterableIterator<V> {
    return new ShardsIterator(this.shards, (m) => m.values())
  }

  entries(): IterableIterator<[K, V]> {
    return new ShardsIterator(this.shards, (m) => m.entries())
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries()
  }
}

/**
 * A Set split over SHARDS smaller Sets, as ShardedMap splits a Map. Iterates
 * shard by shard, live as a Set iterator is (see ShardedMap.keys).
 */
export class ShardedSet<K extends string | number> extends Sharded<K, Set<K>> {
  constructor(members: Iterable<K> = []) {
    super(() => new Set())
    for (const k of members) this.add(k)
  }

  add(key: K): this {
    const shard = this.shards[shardOf(key)]!
    const before = shard.size
    shard.add(key)
    this.count += shard.size - before
    return this
  }

  values(): IterableIterator<K> {
    return new ShardsIterator(this.shards, (s) => s.values())
  }

  [Symbol.iterator](): IterableIterator<K> {
    return this.values()
  }
}

/** A set that is a plain Set while small and a ShardedSet once large (see addScaling). */
export type ScalingSet<K extends string | number> = Set<K> | ShardedSet<K>

/**
 * Members at which addScaling moves a Set into a ShardedSet: a Set this size
 * rehashes in well under a millisecond; one of 131,072 took 44 ms.
 */
export const SHARD_AT = 8192

/** Adds `key` and returns the set to keep: `set` itself, or a ShardedSet holding its members once it has SHARD_AT. */
export function addScaling<K extends string | number>(set: ScalingSet<K>, key: K): ScalingSet<K> {
  if (set instanceof Set && set.size >= SHARD_AT && !set.has(key)) return new ShardedSet(set).add(key)
  return set.add(key)
}

/** One shard's iterator after another, without a generator frame per entry (yield* took 26-32 ms per 1M values, this 3-18 ms). */
class ShardsIterator<S, T> implements IterableIterator<T> {
  private at = 0
  private current: Iterator<T>

  constructor(
    private readonly shards: readonly S[],
    private readonly open: (shard: S) => Iterator<T>,
  ) {
    this.current = open(shards[0]!)
  }

  next(): IteratorResult<T> {
    for (;;) {
      const r = this.current.next()
      if (r.done !== true || this.at === this.shards.length - 1) return r
      this.current = this.open(this.shards[++this.at]!)
    }
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this
  }
}
