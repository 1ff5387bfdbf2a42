/**
 * The byte stream of `GET /conclave/snapshot` (admin/snapshot-endpoint.ts →
 * `conclave snapshot save`): a fuzzy snapshot and the log that makes it
 * exact. The server writes the snapshot a slice at a time while it keeps
 * applying transactions (no long pause), then every logged transaction from
 * the snapshot's start through the zxid applied when the last chunk was
 * written, then that zxid and the tree digest at that moment. The reader
 * rebuilds the tree, replays the log over it, and must arrive at that digest:
 * then it holds the exact state at one zxid (recovery does the same with a
 * stored fuzzy snapshot).
 *
 * Frames: u8 type, u32 BE payload length, payload.
 *   'H' JSON TransferStart     first
 *   'C' a snapshot chunk       as DataTree.snapshot() made it
 *   'L' u32 BE ×2 zxid (high, low), then the logged Txn's bytes
 *   'E' JSON TransferEnd       last: nothing may follow it
 *
 * Invariants: a frame longer than FRAME_BYTES_MAX, an unknown type, a frame
 * out of order and data after 'E' are TransferError; a stream that ends
 * without 'E' is incomplete (the caller says so).
 */
import { ByteQueue } from '../../shared/byte-queue.js'

/** Where the client port serves the transfer (GET). */
export const SNAPSHOT_PATH = '/conclave/snapshot'

export class TransferError extends Error {
  override name = 'TransferError'
}

export const FRAME_BYTES_MAX = 64 * 1024 * 1024
const TYPE = { start: 0x48, chunk: 0x43, log: 0x4c, end: 0x45 } as const

export interface TransferStart {
  serverId: number
  /** The zxid the fuzzy snapshot began at. */
  zxidStart: number
  /** Znodes and estimated bytes of the tree then (for progress). */
  znodes: number
  treeBytesEstimate: number
}

export interface TransferEnd {
  /** The zxid applied when the last chunk was written; the log runs through it. */
  zxidEnd: number
  /** The tree digest at zxidEnd. */
  digest: string
  chunks: number
  entries: number
}

export type Frame =
  | { type: 'start'; start: TransferStart }
  | { type: 'chunk'; data: Uint8Array }
  | { type: 'log'; zxid: number; data: Uint8Array }
  | { type: 'end'; end: TransferEnd }

function frame(type: number, payload: Uint8Array): Buffer[] {
  const head = Buffer.alloc(5)
  head.writeUInt8(type, 0)
  head.writeUInt32BE(payload.byteLength, 1)
  return [head, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)]
}

export function startFrame(s: TransferStart): Buffer[] {
  return frame(TYPE.start, Buffer.from(JSON.stringify(s)))
}

export function chunkFrame(data: Uint8Array): Buffer[] {
  return frame(TYPE.chunk, data)
}

export function logFrame(zxid: number, data: Uint8Array): Buffer[] {
  const head = Buffer.alloc(13)
  head.writeUInt8(TYPE.log, 0)
  head.writeUInt32BE(8 + data.byteLength, 1)
  head.writeUInt32BE(Math.floor(zxid / 2 ** 32), 5)
  head.writeUInt32BE(zxid % 2 ** 32, 9)
  return [head, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]
}

export function endFrame(e: TransferEnd): Buffer[] {
  return frame(TYPE.end, Buffer.from(JSON.stringify(e)))
}

function json<T>(payload: Buffer, what: string): T {
  try {
    return JSON.parse(payload.toString('utf8')) as T
  } catch {
    throw new TransferError(`unreadable ${what} frame`)
  }
}

/** Parses frames from bytes as they arrive, checking their order. */
export class TransferReader {
  /** What has arrived of the next frames (a frame's pieces are copied together once, when it is whole). */
  private readonly queue = new ByteQueue()
  private readonly head = new Uint8Array(5)
  private state: 'start' | 'body' | 'ended' = 'start'

  get ended(): boolean {
    return this.state === 'ended'
  }

  push(bytes: Uint8Array): Frame[] {
    this.queue.push(bytes)
    const out: Frame[] = []
    while (this.queue.length >= 5) {
      const head = this.queue.peek(5, this.head)
      const len = new DataView(head.buffer, 1, 4).getUint32(0)
      if (len > FRAME_BYTES_MAX) throw new TransferError(`a frame of ${len} bytes is too long`)
      if (this.queue.length - 5 < len) break
      const type = head[0]!
      this.queue.drop(5)
      const payload = this.queue.take(len)
      out.push(this.decode(type, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)))
    }
    return out
  }

  private decode(type: number, payload: Buffer): Frame {
    if (this.state === 'ended') throw new TransferError('data after the end frame')
    if (this.state === 'start' && type !== TYPE.start)
      throw new TransferError('the stream does not begin with a start frame')
    switch (type) {
      case TYPE.start:
        if (this.state !== 'start') throw new TransferError('a second start frame')
        this.state = 'body'
        return { type: 'start', start: json<TransferStart>(payload, 'start') }
      case TYPE.chunk:
        return { type: 'chunk', data: payload }
      case TYPE.log: {
        if (payload.length < 8) throw new TransferError('a log frame without its zxid')
        const zxid = payload.readUInt32BE(0) * 2 ** 32 + payload.readUInt32BE(4)
        return { type: 'log', zxid, data: payload.subarray(8) }
      }
      case TYPE.end:
        this.state = 'ended'
        return { type: 'end', end: json<TransferEnd>(payload, 'end') }
      default:
        throw new TransferError(`unknown frame type ${type}`)
    }
  }
}
