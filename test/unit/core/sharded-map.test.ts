/**
 * ShardedMap behaves as a Map from strings: the same answers to every
 * get/has/set/delete/size, the same set of keys and entries (string and
 * integer keys); iteration may delete what it visits; the order depends only
 * on the operations applied. ShardedSet behaves as a Set; addScaling keeps
 * a plain Set until SHARD_AT members, then moves them into a ShardedSet.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { addScaling, SHARD_AT, ShardedMap, ShardedSet } from '../../../server/core/sharded-map.js'

const op = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.string({ maxLength: 6 }), value: fc.integer() }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.string({ maxLength: 6 }) }),
)

describe('ShardedMap', () => {
  it('answers as a Map does, after any sequence of sets and deletes', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const m = new Map<string, number>()
        const s = new ShardedMap<string, number>()
        for (const o of ops) {
          if (o.kind === 'set') {
            m.set(o.key, o.value)
            s.set(o.key, o.value)
          } else expect(s.delete(o.key)).toBe(m.delete(o.key))
          expect(s.size).toBe(m.size)
          expect(s.has(o.key)).toBe(m.has(o.key))
          expect(s.get(o.key)).toBe(m.get(o.key))
        }
        expect(new Map(s.entries())).toEqual(m)
        expect(new Set(s.keys())).toEqual(new Set(m.keys()))
        expect([...s.values()].sort()).toEqual([...m.values()].sort())
      }),
      { numRuns: 500 },
    )
  })

  it('answers as a Map does with integer keys', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(5000), fc.boolean()), { maxLength: 300 }), (ops) => {
        const m = new Map<number, bigint>()
        const s = new ShardedMap<number, bigint>()
        for (const [k, add] of ops) {
          if (add) {
            m.set(k, BigInt(k))
            s.set(k, BigInt(k))
          } else expect(s.delete(k)).toBe(m.delete(k))
          expect(s.size).toBe(m.size)
          expect(s.get(k)).toBe(m.get(k))
        }
        expect(new Map(s)).toEqual(m)
      }),
      { numRuns: 300 },
    )
  })

  it('spreads path-like keys over its shards, and iterates in an order fixed by the operations', () => {
    const a = new ShardedMap<string, number>()
    const b = new ShardedMap<string, number>()
    for (let i = 0; i < 10_000; i++) {
      a.set(`/queue/item-${String(i).padStart(10, '0')}`, i)
      b.set(`/queue/item-${String(i).padStart(10, '0')}`, i)
    }
    expect([...a.keys()]).toEqual([...b.keys()])
    // Not insertion order overall (the keys are spread), but every key once.
    const keys = [...a.keys()]
    expect(new Set(keys).size).toBe(10_000)
    expect(keys.slice(0, 100)).not.toEqual(keys.slice().sort().slice(0, 100))
  })

  it('may delete entries while iterating; each remaining one is visited once', () => {
    const s = new ShardedMap<string, number>()
    for (let i = 0; i < 5000; i++) s.set(`/n${i}`, i)
    const seen = new Set<string>()
    for (const [k, v] of s) {
      expect(seen.has(k)).toBe(false)
      seen.add(k)
      if (v % 2 === 0) s.delete(k)
      s.delete(`/n${v + 1}`)
    }
    expect(s.size).toBeLessThan(5000)
    for (const k of s.keys()) expect(seen.has(k)).toBe(true)
  })
})

describe('ShardedSet and addScaling', () => {
  it('answers as a Set does, after any sequence of adds and deletes (string and integer members)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 4 }), fc.nat(3000)), fc.boolean()), {
          maxLength: 300,
        }),
        (ops) => {
          const m = new Set<string | number>()
          const s = new ShardedSet<string | number>()
          for (const [k, add] of ops) {
            if (add) {
              m.add(k)
              s.add(k)
            } else expect(s.delete(k)).toBe(m.delete(k))
            expect(s.size).toBe(m.size)
            expect(s.has(k)).toBe(m.has(k))
          }
          expect(new Set(s)).toEqual(m)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('keeps a plain Set below SHARD_AT and moves every member into a ShardedSet at it', () => {
    let set: Set<number> | ShardedSet<number> = new Set<number>()
    for (let i = 0; i < SHARD_AT; i++) set = addScaling(set, i)
    expect(set).toBeInstanceOf(Set)
    // Adding a member it already has changes nothing.
    expect(addScaling(set, 5)).toBe(set)
    set = addScaling(set, SHARD_AT)
    expect(set).toBeInstanceOf(ShardedSet)
    expect(set.size).toBe(SHARD_AT + 1)
    expect(new Set(set)).toEqual(new Set(Array.from({ length: SHARD_AT + 1 }, (_, i) => i)))
    expect(addScaling(set, SHARD_AT + 1)).toBe(set)
    expect(set.delete(0)).toBe(true)
    expect(set.delete(0)).toBe(false)
    expect(set.size).toBe(SHARD_AT + 1)
  })
})
