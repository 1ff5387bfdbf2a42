/**
 * ZooKeeper's TCP framing: each packet is preceded by a 4-byte big-endian
 * length. FrameDecoder is an explicit parser (as ws's receiver is): it checks
 * the length against the limit before buffering anything of the packet.
 * Imports nothing of ours but jute (for ProtocolError).
 */
import { ProtocolError } from './jute.js'

/** Default packet limit: 1 MiB of data plus room for the path, ACLs and headers. */
export const FRAME_BYTES_MAX_DEFAULT = 1024 * 1024 + 64 * 1024

export class FrameDecoder {
  private chunks: Uint8Array[] = []
  private buffered = 0
  private expected = -1

  constructor(private readonly frameBytesMax = FRAME_BYTES_MAX_DEFAULT) {}

  /** Feeds bytes; returns every complete packet. Throws ProtocolError on a bad length. */
  push(chunk: Uint8Array): Uint8Array[] {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const out: Uint8Array[] = []
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < 4) return out
        const head = this.take(4)
        const len = new DataView(head.buffer, head.byteOffset, 4).getInt32(0)
        if (len < 0) throw new ProtocolError(`negative frame length ${len}`)
        if (len > this.frameBytesMax)
          throw new ProtocolError(`frame of ${len} bytes exceeds the limit of ${this.frameBytesMax}`)
        this.expected = len
      }
      if (this.buffered < this.expected) return out
      out.push(this.take(this.expected))
      this.expected = -1
    }
  }

  /** Bytes held for an incomplete packet. */
  get pendingBytes(): number {
    return this.buffered
  }

  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0)
    const first = this.chunks[0]!
    if (first.length >= n) {
      const out = first.subarray(0, n)
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      this.buffered -= n
      return out
    }
    const out = new Uint8Array(n)
    let at = 0
    while (at < n) {
      const c = this.chunks[0]!
      const k = Math.min(c.length, n - at)
      out.set(c.subarray(0, k), at)
      at += k
      if (k === c.length) this.chunks.shift()
      else this.chunks[0] = c.subarray(k)
    }
    this.buffered -= n
    return out
  }
}

/** Prefixes a packet with its 4-byte length. */
export function frame(packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(packet.length + 4)
  new DataView(out.buffer).setInt32(0, packet.length)
  out.set(packet, 4)
  return out
}
