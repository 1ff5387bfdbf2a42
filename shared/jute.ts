/**
 * Jute primitives: ZooKeeper's big-endian binary encoding (int, long,
 * boolean, buffer, ustring, vector). Reader and writer over Uint8Array and
 * DataView only (no Buffer), so the SDK runs in a browser.
 *
 * Invariants: a reader never reads past its end and never allocates more
 * than the bytes left in the frame allow; every malformed input throws
 * ProtocolError (and nothing else).
 * Imports nothing of ours.
 */

export class ProtocolError extends Error {
  override name = 'ProtocolError'
}

const decoder = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

/**
 * JuteWriter.finishPooled copies into slabs of this size, as Node's Buffer
 * pool does for small buffers: an ArrayBuffer each costs ~1 us and GC work
 * (Uint8Array.slice of a 1 KiB Txn: 1.1-1.9 us, a slab copy 0.3-0.5 us,
 * microbenchmark on the project's VM).
 */
const SLAB_BYTES = 64 * 1024
/** Larger copies get an ArrayBuffer of their own. */
const SLAB_COPY_BYTES_MAX = 8 * 1024
let slab = new Uint8Array(0)
let slabUsed = 0

export class JuteReader {
  /** Made on the first long(): most records (a request, a reply header) have none, and a DataView per reader was ~1% of a write's main-thread time. */
  private view: DataView | undefined
  pos: number

  constructor(
    private readonly bytes: Uint8Array,
    offset = 0,
    private readonly end = bytes.length,
  ) {
    this.pos = offset
  }

  /** The big-endian int32 at `at` (within bounds: the caller checked). */
  private int32At(at: number): number {
    const b = this.bytes
    return (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!
  }

  get remaining(): number {
    return this.end - this.pos
  }

  private need(n: number, what: string): void {
    if (n > this.end - this.pos)
      throw new ProtocolError(`truncated ${what}: need ${n} bytes, ${this.remaining} left`)
  }

  int(): number {
    this.need(4, 'int')
    const v = this.int32At(this.pos)
    this.pos += 4
    return v
  }

  long(): bigint {
    this.need(8, 'long')
    this.view ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength)
    const v = this.view.getBigInt64(this.pos)
    this.pos += 8
    return v
  }

  /** A long that must be a safe, non-negative integer (zxids, times). */
  safeLong(what = 'long'): number {
    this.need(8, what)
    const hi = this.int32At(this.pos)
    const lo = this.int32At(this.pos + 4) >>> 0
    this.pos += 8
    if (hi < 0 || hi > 0x1fffff) throw new ProtocolError(`${what} out of range`)
    return hi * 2 ** 32 + lo
  }

  /** A long read as a JS number; values beyond ±2^53 lose precision (used for Stat times and zxids from a trusted server). */
  numberLong(): number {
    this.need(8, 'long')
    const hi = this.int32At(this.pos)
    const lo = this.int32At(this.pos + 4) >>> 0
    this.pos += 8
    return hi * 2 ** 32 + lo
  }

  bool(): boolean {
    this.need(1, 'boolean')
    const b = this.bytes[this.pos]!
    this.pos += 1
    return b !== 0
  }

  /** A buffer: int length (-1 = null) then bytes. The result is a copy-free view. */
  buffer(): Uint8Array | null {
    const len = this.int()
    if (len === -1) return null
    if (len < 0) throw new ProtocolError(`negative buffer length ${len}`)
    this.need(len, 'buffer')
    const out = this.bytes.subarray(this.pos, this.pos + len)
    this.pos += len
    return out
  }

  ustring(): string | null {
    const len = this.int()
    if (len === -1) return null
    if (len < 0) throw new ProtocolError(`negative string length ${len}`)
    this.need(len, 'string')
    let s: string
    try {
      s = decoder.decode(this.bytes.subarray(this.pos, this.pos + len))
    } catch {
      throw new ProtocolError('string is not valid UTF-8')
    }
    this.pos += len
    return s
  }

  /** A string that must not be null. */
  string(what = 'string'): string {
    const s = this.ustring()
    if (s === null) throw new ProtocolError(`${what} must not be null`)
    return s
  }

  /**
   * A vector: int count (-1 = null) then items. `minItemBytes` bounds the
   * count by the bytes left, so a huge count cannot make us allocate.
   */
  vector<T>(item: (r: JuteReader) => T, minItemBytes: number): T[] | null {
    const n = this.int()
    if (n === -1) return null
    if (n < 0) throw new ProtocolError(`negative vector length ${n}`)
    if (n * minItemBytes > this.remaining)
      throw new ProtocolError(`vector of ${n} items does not fit in the frame`)
    const out: T[] = []
    for (let i = 0; i < n; i++) out.push(item(this))
    return out
  }

  /** Throws unless every byte was consumed. */
  done(what: string): void {
    if (this.pos !== this.end) throw new ProtocolError(`${this.end - this.pos} trailing bytes after ${what}`)
  }
}

export class JuteWriter {
  private buf: Uint8Array
  private view: DataView
  pos = 0

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial)
    this.view = new DataView(this.buf.buffer)
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  int(v: number): this {
    this.ensure(4)
    this.view.setInt32(this.pos, v)
    this.pos += 4
    return this
  }

  long(v: bigint | number): this {
    this.ensure(8)
    if (typeof v === 'bigint') {
      this.view.setBigInt64(this.pos, BigInt.asIntN(64, v))
    } else {
      const hi = Math.floor(v / 2 ** 32)
      this.view.setInt32(this.pos, hi)
      this.view.setUint32(this.pos + 4, v - hi * 2 ** 32)
    }
    this.pos += 8
    return this
  }

  bool(v: boolean): this {
    this.ensure(1)
    this.buf[this.pos++] = v ? 1 : 0
    return this
  }

  buffer(v: Uint8Array | null): this {
    if (v === null) return this.int(-1)
    this.int(v.length)
    this.ensure(v.length)
    this.buf.set(v, this.pos)
    this.pos += v.length
    return this
  }

  ustring(v: string | null): this {
    if (v === null) return this.int(-1)
    // Worst case 3 bytes per UTF-16 unit.
    this.ensure(4 + v.length * 3)
    const { written } = encoder.encodeInto(v, this.buf.subarray(this.pos + 4))
    this.view.setInt32(this.pos, written)
    this.pos += 4 + written
    return this
  }

  vector<T>(items: readonly T[] | null, item: (w: JuteWriter, v: T) => void): this {
    if (items === null) return this.int(-1)
    this.int(items.length)
    for (const v of items) item(this, v)
    return this
  }

  /**
   * Writes `n` bytes that `fill` puts at `buf[at]..buf[at + n - 1]`, in place
   * (no copy of its own): for a writer that holds the bytes in another form.
   */
  raw(n: number, fill: (buf: Uint8Array, at: number) => void): this {
    this.ensure(n)
    fill(this.buf, this.pos)
    this.pos += n
    return this
  }

  /** Writes a placeholder int and returns its position, for a length filled in later. */
  reserveInt(): number {
    this.ensure(4)
    const at = this.pos
    this.pos += 4
    return at
  }

  setIntAt(at: number, v: number): void {
    this.view.setInt32(at, v)
  }

  /** The bytes written so far (a copy, so the writer can be reused). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos)
  }

  /**
   * The bytes written so far, copied into a shared slab (a view of it): one
   * ArrayBuffer per SLAB_BYTES of output instead of one per call. A view
   * keeps its whole slab alive, so this suits bytes dropped about in the
   * order they were made (a Txn on its way through the log); finish() suits
   * bytes kept on their own. Never transfer a view's buffer.
   */
  finishPooled(): Uint8Array {
    const n = this.pos
    if (n > SLAB_COPY_BYTES_MAX) return this.finish()
    if (slabUsed + n > slab.length) {
      slab = new Uint8Array(SLAB_BYTES)
      slabUsed = 0
    }
    const out = slab.subarray(slabUsed, slabUsed + n)
    out.set(this.buf.subarray(0, n))
    // 8-byte aligned, so a reader's DataView over a view is aligned like one over a buffer of its own.
    slabUsed += (n + 7) & ~7
    return out
  }

  /** The bytes written so far, without copying (valid until the next write). */
  view_(): Uint8Array {
    return this.buf.subarray(0, this.pos)
  }

  reset(): this {
    this.pos = 0
    return this
  }
}

export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s)
}

export function utf8Decode(b: Uint8Array): string {
  return new TextDecoder().decode(b)
}
