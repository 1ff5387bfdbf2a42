/**
 * ZooKeeper's TCP framing: each packet is preceded by a 4-byte big-endian
 * length. FrameDecoder is an explicit parser (as ws's receiver is): it checks
 * the length against the limit before buffering anything of the packet.
 * Imports nothing of ours but jute (for ProtocolError) and the byte queue.
 */
import { ByteQueue } from './byte-queue.js'
import { ProtocolError } from './jute.js'

/** Default packet limit: 1 MiB of data plus room for the path, ACLs and headers. */
export const FRAME_BYTES_MAX_DEFAULT = 1024 * 1024 + 64 * 1024

export class FrameDecoder {
  private readonly queue = new ByteQueue()
  private readonly scratch = new Uint8Array(4)
  private expected = -1

  constructor(private readonly frameBytesMax = FRAME_BYTES_MAX_DEFAULT) {}

  /** Feeds bytes; returns every complete packet. Throws ProtocolError on a bad length. */
  push(chunk: Uint8Array): Uint8Array[] {
    this.queue.push(chunk)
    const out: Uint8Array[] = []
    for (;;) {
      if (this.expected < 0) {
        if (this.queue.length < 4) return out
        const head = this.queue.peek(4, this.scratch)
        const len = new DataView(head.buffer, head.byteOffset, 4).getInt32(0)
        if (len < 0) throw new ProtocolError(`negative frame length ${len}`)
        if (len > this.frameBytesMax)
          throw new ProtocolError(`frame of ${len} bytes exceeds the limit of ${this.frameBytesMax}`)
        this.queue.drop(4)
        this.expected = len
      }
      if (this.queue.length < this.expected) return out
      out.push(this.queue.take(this.expected))
      this.expected = -1
    }
  }

  /** Bytes held for an incomplete packet. */
  get pendingBytes(): number {
    return this.queue.length
  }
}

/** Prefixes a packet with its 4-byte length. */
export function frame(packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(packet.length + 4)
  new DataView(out.buffer).setInt32(0, packet.length)
  out.set(packet, 4)
  return out
}
