/**
 * ByteQueue: bytes received in chunks, consumed from the front. The framing
 * decoders (shared/framing.ts for ZooKeeper TCP, shared/websocket.ts) keep
 * what has arrived of a frame here until the whole frame is in.
 *
 * Invariants: `length` is the number of bytes held; `take` returns a view of
 * a chunk when the bytes lie in one (no copy), else a fresh copy. Consumed
 * chunks are skipped by index, not shifted out one by one, so a frame that
 * arrives a byte per chunk costs linear time, not quadratic. Pure.
 */
export class ByteQueue {
  private chunks: Uint8Array[] = []
  /** Index of the first chunk not yet consumed. */
  private head = 0
  private held = 0

  get length(): number {
    return this.held
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.held += chunk.length
  }

  /** The first n bytes without consuming them: the first chunk itself if it holds them, else `scratch`. */
  peek(n: number, scratch: Uint8Array): Uint8Array {
    const first = this.chunks[this.head]!
    if (first.length >= n) return first
    let at = 0
    for (let i = this.head; at < n; i++) {
      const c = this.chunks[i]!
      const k = Math.min(c.length, n - at)
      scratch.set(c.subarray(0, k), at)
      at += k
    }
    return scratch
  }

  /** Consumes n bytes and returns them. */
  take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0)
    const first = this.chunks[this.head]!
    if (first.length >= n) {
      const out = first.subarray(0, n)
      this.consumeFirst(first, n)
      return out
    }
    const out = new Uint8Array(n)
    let at = 0
    while (at < n) {
      const c = this.chunks[this.head]!
      const k = Math.min(c.length, n - at)
      out.set(c.subarray(0, k), at)
      at += k
      this.consumeFirst(c, k)
    }
    return out
  }

  /** Consumes n bytes without returning them. */
  drop(n: number): void {
    while (n > 0) {
      const c = this.chunks[this.head]!
      const k = Math.min(c.length, n)
      this.consumeFirst(c, k)
      n -= k
    }
  }

  private consumeFirst(c: Uint8Array, k: number): void {
    this.held -= k
    if (k < c.length) {
      this.chunks[this.head] = c.subarray(k)
      return
    }
    this.head++
    if (this.head === this.chunks.length) {
      this.chunks = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
  }
}
