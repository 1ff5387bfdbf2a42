/**
 * A pure-JS 64-bit hash in two independent 32-bit lanes (murmur3-style
 * mixing, different seeds and constants per lane), used for the tree
 * digest. Not cryptographic: it only has to make two diverged trees
 * differ with overwhelming probability.
 *
 * Invariants: lane values are always unsigned 32-bit integers; equal input
 * sequences give equal results on every platform (only Math.imul and
 * 32-bit bit operations are used).
 * Must not import anything but shared/ (it imports nothing).
 */

const C1 = 0xcc9e2d51
const C2 = 0x1b873593
const D1 = 0x85ebca77
const D2 = 0xc2b2ae3d

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r))
}

function stepA(h: number, k: number): number {
  k = Math.imul(k, C1)
  k = rotl(k, 15)
  k = Math.imul(k, C2)
  h ^= k
  h = rotl(h, 13)
  return (Math.imul(h, 5) + 0xe6546b64) | 0
}

function stepB(h: number, k: number): number {
  k = Math.imul(k, D1)
  k = rotl(k, 17)
  k = Math.imul(k, D2)
  h ^= k
  h = rotl(h, 11)
  return (Math.imul(h, 9) + 0x27d4eb2f) | 0
}

function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** An incremental two-lane hasher. Feed words, numbers, strings, bytes; then finish. */
export class Hasher {
  private a: number
  private b: number
  private n = 0

  constructor(seed = 0) {
    this.a = seed | 0
    this.b = (seed ^ 0x5bd1e995) | 0
  }

  /**
   * Starts again, as `new Hasher(seed)` would: a hot caller (the tree hashes
   * every znode it loads) reuses one hasher instead of making one per hash.
   */
  reset(seed = 0): this {
    this.a = seed | 0
    this.b = (seed ^ 0x5bd1e995) | 0
    this.n = 0
    return this
  }

  /** A 32-bit word (only the low 32 bits count). */
  word(k: number): this {
    this.a = stepA(this.a, k | 0)
    this.b = stepB(this.b, k | 0)
    this.n++
    return this
  }

  /** A non-negative or negative integer up to 2^53, as two words. */
  num(x: number): this {
    const hi = Math.floor(x / 2 ** 32)
    return this.word(hi).word(x - hi * 2 ** 32)
  }

  /** A 64-bit signed value, as two words. */
  big(x: bigint): this {
    // The common 0 (no ephemeral owner) without the three BigInts the general case makes.
    if (x === 0n) return this.word(0).word(0)
    const u = BigInt.asUintN(64, x)
    return this.word(Number(u >> 32n)).word(Number(u & 0xffffffffn))
  }

  /** A string, as its UTF-16 code units (two per word), then its length. */
  str(s: string): this {
    const len = s.length
    let i = 0
    for (; i + 1 < len; i += 2) this.word(s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16))
    if (i < len) this.word(s.charCodeAt(i) | 0x10000000)
    return this.word(len)
  }

  /** Bytes (b[start, end): a record read in place in its chunk), four per word, then their length. */
  bytes(b: Uint8Array, start = 0, end = b.length): this {
    const len = end - start
    let i = start
    for (; i + 3 < end; i += 4) this.word(b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24))
    let tail = 0
    for (let s = 0; i < end; i++, s += 8) tail |= b[i]! << s
    if ((len & 3) !== 0) this.word(tail)
    return this.word(len)
  }

  finishA(): number {
    return fmix(this.a ^ this.n)
  }

  finishB(): number {
    return fmix(this.b ^ Math.imul(this.n, 0x9e3779b1))
  }
}

/** Formats a two-lane sum as 16 hex digits. */
export function formatLanes(a: number, b: number): string {
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0')
}
