/**
 * Prng: same seed, same sequence; bounds respected; fork streams are
 * independent of how much the parent drew; shuffle is a permutation.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Prng } from '../../../server/core/prng.js'

describe('Prng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Prng(42)
    const b = new Prng(42)
    const c = new Prng(43)
    const sa = Array.from({ length: 8 }, () => a.nextU32())
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(sa)
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(sa)
  })

  it('keeps int, float and pick within bounds', () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.integer({ min: -1000, max: 1000 }),
        fc.nat({ max: 5000 }),
        (seed, lo, width) => {
          const p = new Prng(seed)
          const x = p.int(lo, lo + width)
          const f = p.float()
          return x >= lo && x <= lo + width && Number.isInteger(x) && f >= 0 && f < 1
        },
      ),
    )
    const p = new Prng(7)
    for (let i = 0; i < 100; i++) expect(['a', 'b', 'c']).toContain(p.pick(['a', 'b', 'c']))
    expect(p.chance(0)).toBe(false)
    expect(p.chance(1)).toBe(true)
  })

  it('forks independently of the parent draws', () => {
    const a = new Prng(9)
    const b = new Prng(9)
    b.nextU32()
    b.nextU32()
    expect(a.fork('net').nextU32()).toBe(b.fork('net').nextU32())
    expect(a.fork('net').nextU32()).not.toBe(a.fork('disk').nextU32())
  })

  it('shuffles to a permutation', () => {
    const p = new Prng(3)
    const xs = Array.from({ length: 20 }, (_, i) => i)
    expect([...p.shuffle([...xs])].sort((x, y) => x - y)).toEqual(xs)
  })

  it('accepts seeds up to 2**53 - 1 and rejects others', () => {
    expect(() => new Prng(Number.MAX_SAFE_INTEGER)).not.toThrow()
    expect(() => new Prng(-1)).toThrow()
    expect(() => new Prng(1.5)).toThrow()
  })
})
