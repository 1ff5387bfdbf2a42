/**
 * Prng: a seeded pseudo-random number generator (sfc32, seeded through
 * splitmix32) with an integer-first API, so every random choice in the core
 * and in the simulator is reproducible from one seed.
 *
 * Invariants: the same seed gives the same sequence on every platform (only
 * 32-bit integer arithmetic via Math.imul and >>> 0); fork(label) depends on
 * the seed and the label only, never on how many numbers the parent has
 * drawn, so adding a draw in one component does not shift another's stream.
 *
 * Must not import anything but shared/assert; no Math.random, no Date.
 */
import { assert } from '../../shared/assert.js'

const U32 = 2 ** 32

/** splitmix32 step: a good mixer to turn a small seed into a full state. */
function splitmix32(x: number): [number, number] {
  const next = (x + 0x9e3779b9) >>> 0
  let z = next
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
  z = (z ^ (z >>> 16)) >>> 0
  return [next, z]
}

/** FNV-1a over the UTF-16 code units of a label. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number
  /** The state right after seeding; fork() derives from it. */
  private readonly origin: readonly [number, number, number, number]

  /** `seed` is any safe non-negative integer (up to 2**53 - 1). */
  constructor(seed: number) {
    assert(Number.isSafeInteger(seed) && seed >= 0, `Prng seed must be a safe non-negative integer: ${seed}`)
    let s = (seed % U32) >>> 0
    const hi = Math.floor(seed / U32) >>> 0
    const words: number[] = []
    for (let i = 0; i < 4; i++) {
      const [next, z] = splitmix32(s ^ (i === 1 ? hi : 0))
      s = next
      words.push(z)
    }
    this.a = words[0]!
    this.b = words[1]!
    this.c = words[2]!
    this.d = words[3]! | 1
    // Warm up so that similar seeds diverge (recommended for sfc32).
    for (let i = 0; i < 12; i++) this.nextU32()
    this.origin = [this.a, this.b, this.c, this.d]
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t
  }

  /** A uniform integer in [lo, hiInclusive]; the range may span at most 2**32 values. */
  int(lo: number, hiInclusive: number): number {
    assert(Number.isSafeInteger(lo) && Number.isSafeInteger(hiInclusive), 'Prng.int bounds must be integers')
    assert(hiInclusive >= lo, `Prng.int empty range [${lo}, ${hiInclusive}]`)
    const span = hiInclusive - lo + 1
    assert(span <= U32, 'Prng.int range too wide')
    if (span === U32) return lo + this.nextU32()
    // Rejection sampling removes the modulo bias.
    const limit = U32 - (U32 % span)
    for (;;) {
      const x = this.nextU32()
      if (x < limit) return lo + (x % span)
    }
  }

  /** A float in [0, 1) with 53 bits of randomness. */
  float(): number {
    const hi = this.nextU32() >>> 5 // 27 bits
    const lo = this.nextU32() >>> 6 // 26 bits
    return (hi * 2 ** 26 + lo) / 2 ** 53
  }

  /** True with probability p (p <= 0 never, p >= 1 always). */
  chance(p: number): boolean {
    if (p <= 0) return false
    if (p >= 1) return true
    return this.float() < p
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'Prng.pick from an empty array')
    return items[this.int(0, items.length - 1)]!
  }

  /** Fisher-Yates shuffle, in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i)
      const t = items[i]!
      items[i] = items[j]!
      items[j] = t
    }
    return items
  }

  /** An independent generator derived from this one's seed and `label`. */
  fork(label: string): Prng {
    const h = hashLabel(label)
    const [o0, o1, o2, o3] = this.origin
    const mixed = (o0 ^ Math.imul(h, 0x9e3779b1) ^ o2) >>> 0
    const high = ((o1 ^ o3 ^ h) >>> 0) % 2 ** 21
    return new Prng(high * U32 + mixed)
  }
}
