/**
 * Checksums of stored records: CRC-32 (node:zlib's native crc32, IEEE
 * polynomial) over a small header that binds the record to its key, followed
 * by its bytes. Binding the key means a record copied or renumbered to
 * another zxid (or chunk position) does not verify.
 *
 * Invariants: a checksum is an unsigned 32-bit integer; the same inputs always
 * give the same value on the writer (worker) and the reader (recovery).
 *
 * Must not import: better-sqlite3, worker_threads, anything outside shared/.
 */
import { crc32 } from 'node:zlib'

const header = Buffer.alloc(16)

function keyCrc(a: number, b: number): number {
  // Two non-negative safe integers, each as a little-endian 64-bit value.
  header.writeUIntLE(a % 2 ** 48, 0, 6)
  header.writeUInt16LE(Math.floor(a / 2 ** 48), 6)
  header.writeUIntLE(b % 2 ** 48, 8, 6)
  header.writeUInt16LE(Math.floor(b / 2 ** 48), 14)
  return crc32(header)
}

/** The checksum of one txn log record. */
export function logRecordCrc(zxid: number, data: Uint8Array): number {
  return crc32(data, keyCrc(zxid, 0)) >>> 0
}

/** The checksum of one snapshot chunk, bound to its snapshot id and position. */
export function chunkCrc(snapshotId: number, seq: number, data: Uint8Array): number {
  return crc32(data, keyCrc(snapshotId, seq)) >>> 0
}

/** The checksum of a meta row, bound to its key. */
export function metaCrc(key: string, value: string): number {
  return crc32(value, crc32(`${key}\u0000`)) >>> 0
}

/** Folds one chunk checksum into the running checksum of a whole snapshot (order-sensitive). */
export function foldChunkCrc(running: number, chunk: number): number {
  header.writeUInt32LE(chunk >>> 0, 0)
  return crc32(header.subarray(0, 4), running) >>> 0
}

/** The checksum of a snapshot's header fields. */
export function snapshotHeaderCrc(fields: {
  id: number
  zxidStart: number
  zxidEnd: number
  digest: string
  chunkCount: number
  totalBytes: number
  chunksCrc: number
}): number {
  const text = [
    fields.id,
    fields.zxidStart,
    fields.zxidEnd,
    fields.digest,
    fields.chunkCount,
    fields.totalBytes,
    fields.chunksCrc,
  ].join('\u0000')
  return crc32(text) >>> 0
}
