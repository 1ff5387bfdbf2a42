/**
 * The tree digest: a sum, in two independent 32-bit lanes, of a hash of
 * every znode (path, data, every Stat field, kind, TTL, ACL) and every
 * session. Adding and removing a node is O(size of the node), so the digest
 * is kept current on every change and replicas can compare it at a zxid.
 *
 * Pure: imports nothing of ours. No crypto: a hand-written FNV-1a/murmur mix.
 */

export class Lanes {
  a = 0
  b = 0
  count = 0

  add(h: [number, number]): void {
    this.a = (this.a + h[0]) >>> 0
    this.b = (this.b + h[1]) >>> 0
    this.count++
  }

  sub(h: [number, number]): void {
    this.a = (this.a - h[0]) >>> 0
    this.b = (this.b - h[1]) >>> 0
    this.count--
  }

  toString(): string {
    return `${this.a.toString(16).padStart(8, '0')}${this.b.toString(16).padStart(8, '0')}-${this.count}`
  }
}

/** A streaming two-lane hasher (FNV-1a in lane A, a murmur-style mix in lane B). */
export class Hasher {
  private a = 0x811c9dc5
  private b = 0x9747b28c

  private byte(x: number): void {
    this.a = Math.imul(this.a ^ x, 0x01000193)
    this.b = Math.imul(this.b ^ x, 0x5bd1e995)
    this.b ^= this.b >>> 15
  }

  int(v: number): this {
    this.byte(v & 0xff)
    this.byte((v >>> 8) & 0xff)
    this.byte((v >>> 16) & 0xff)
    this.byte((v >>> 24) & 0xff)
    return this
  }

  num(v: number): this {
    this.int(v % 2 ** 32)
    return this.int(Math.floor(v / 2 ** 32))
  }

  big(v: bigint): this {
    this.int(Number(BigInt.asUintN(32, v)))
    return this.int(Number(BigInt.asUintN(32, v >> 32n)))
  }

  str(s: string): this {
    this.int(s.length)
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      this.byte(c & 0xff)
      this.byte(c >>> 8)
    }
    return this
  }

  bytes(d: Uint8Array): this {
    this.int(d.length)
    for (let i = 0; i < d.length; i++) this.byte(d[i]!)
    return this
  }

  done(): [number, number] {
    let b = this.b
    b = Math.imul(b ^ (b >>> 13), 0x5bd1e995)
    b ^= b >>> 15
    return [this.a >>> 0, b >>> 0]
  }
}
