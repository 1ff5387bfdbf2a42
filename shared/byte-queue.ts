/**
 * ByteQueue: bytes received in chunks, consumed from the front. The framing
 * decoders (shared/framing.ts for ZooKeeper TCP, shared/websocket.ts) keep
 * what has arrived of a frame here until the whole frame is in.
 *
 * Invariants: `length` is the number of bytes held; `take` returns a view of
 * a chunk when the bytes lie in one (no copy), else a fresh copy; `peek` and
 * `drop` allocate nothing. Consumed chunks are skipped by index (and the
 * first one by an offset), not shifted out one by one, so a frame that
 * arrives a byte per chunk costs linear time, not quadratic. Pure.
 *
 * Memory: a chunk of fewer than SMALL_CHUNK_BYTES is copied into a shared
 * block instead of being kept, so what the queue holds is at most about
 * twice the bytes it holds plus a few hundred bytes. Kept as they came,
 * one-byte chunks (a client sending one byte per TCP segment) cost ~25
 * times their bytes in Buffer, ArrayBuffer and view objects (measured: 64
 * KiB trickled held 1.6 MiB of a server's heap). A block is sized to twice
 * what the queue holds (between BLOCK_BYTES_MIN and BLOCK_BYTES_MAX), so an
 * idle connection's two stray bytes do not cost 16 KiB. A block's bytes
 * are never rewritten: views handed out by `take` stay valid.
 */

/** Chunks smaller than this are copied into a block (issue 15). */
export const SMALL_CHUNK_BYTES = 512
const BLOCK_BYTES_MIN = 256
const BLOCK_BYTES_MAX = 16 * 1024

/** What take(0) returns: no bytes, nothing to allocate. */
const EMPTY = new Uint8Array(0)

export class ByteQueue {
  private chunks: Uint8Array[] = []
  /** Index of the first chunk not yet consumed, and how much of it is consumed. */
  private head = 0
  private offset = 0
  private held = 0
  /** The block small chunks are copied into, how much of it is used, and the entry of `chunks` viewing its tail. */
  private block: Uint8Array | undefined
  private blockUsed = 0
  private blockEntry = -1

  get length(): number {
    return this.held
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.held += chunk.length
    if (chunk.length >= SMALL_CHUNK_BYTES) {
      this.chunks.push(chunk)
      return
    }
    if (this.block === undefined || this.blockUsed + chunk.length > this.block.length) {
      const size = Math.min(BLOCK_BYTES_MAX, Math.max(BLOCK_BYTES_MIN, 2 * this.held))
      this.block = new Uint8Array(size)
      this.blockUsed = 0
      this.blockEntry = -1
    }
    const block = this.block
    block.set(chunk, this.blockUsed)
    const last = this.chunks.length - 1
    if (this.blockEntry === last && last >= this.head) {
      // The last entry views the block up to blockUsed: extend it over the new bytes.
      const prior = this.chunks[last]!
      this.chunks[last] = block.subarray(prior.byteOffset, this.blockUsed + chunk.length)
    } else {
      this.chunks.push(block.subarray(this.blockUsed, this.blockUsed + chunk.length))
      this.blockEntry = this.chunks.length - 1
    }
    this.blockUsed += chunk.length
  }

  /**
   * The first n bytes (n at most scratch.length, at most length) copied into
   * `scratch`, without consuming them. Headers are peeked per frame: this
   * allocates nothing (a view per frame made 2 million empty frames cost
   * seconds, most of it garbage collection).
   */
  peek(n: number, scratch: Uint8Array): Uint8Array {
    let at = 0
    let off = this.offset
    for (let i = this.head; at < n; i++) {
      const c = this.chunks[i]!
      const k = Math.min(c.length - off, n - at)
      for (let j = 0; j < k; j++) scratch[at + j] = c[off + j]!
      at += k
      off = 0
    }
    return scratch
  }

  /** Consumes n bytes and returns them: a view when they lie in one chunk, else a copy. */
  take(n: number): Uint8Array {
    if (n === 0) return EMPTY
    const first = this.chunks[this.head]!
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n)
      this.drop(n)
      return out
    }
    const out = new Uint8Array(n)
    let at = 0
    let off = this.offset
    for (let i = this.head; at < n; i++) {
      const c = this.chunks[i]!
      const k = Math.min(c.length - off, n - at)
      out.set(c.subarray(off, off + k), at)
      at += k
      off = 0
    }
    this.drop(n)
    return out
  }

  /** Consumes n bytes (at most length) without returning them. */
  drop(n: number): void {
    this.held -= n
    while (n > 0) {
      const left = this.chunks[this.head]!.length - this.offset
      if (n < left) {
        this.offset += n
        return
      }
      n -= left
      this.offset = 0
      this.head++
      if (this.head === this.chunks.length) {
        this.chunks = []
        this.head = 0
        this.blockEntry = -1
      } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
        this.chunks = this.chunks.slice(this.head)
        this.blockEntry -= this.head
        this.head = 0
      }
    }
  }
}
