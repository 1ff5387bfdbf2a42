/**
 * The messages between the main thread (Storage) and the storage worker, and
 * the packed form of appended log entries.
 *
 * Invariants: the main thread posts `{ ops }` batches; the worker applies ops
 * in exactly the order posted. Appended entries travel packed in one
 * transferred buffer per batch (no per-entry structured clone):
 *   repeat { zxid: float64 LE, length: uint32 LE, bytes[length] }
 * Every op with an `id` is acknowledged once, after the transaction holding it
 * is durable, in issue order; every `committed` report counts the posted ops
 * it finished (an append split between two groups counts once, in the second).
 *
 * Must not import: better-sqlite3, worker_threads.
 */
import { assert } from '../../shared/assert.js'
import type { StorageErrorData } from './storage-error.js'

export const PACKED_ENTRY_HEADER_BYTES = 12

import type { LogEntry } from '../core/log-entry.js'

export type { LogEntry }

export type WorkerOp =
  | { kind: 'append'; packed: Uint8Array; count: number }
  | { kind: 'meta'; id: number; entries: [key: string, value: string][] }
  | { kind: 'truncate'; id: number; zxid: number }
  | { kind: 'snapshotBegin'; zxidStart: number }
  | { kind: 'snapshotChunk'; data: Uint8Array }
  | { kind: 'snapshotFinish'; id: number; zxidEnd: number; digest: string }
  | { kind: 'snapshotAbort'; id: number }
  | { kind: 'close'; id: number }
  /** Bytes the main thread committed inline since the last such op: they count towards the next checkpoint. */
  | { kind: 'written'; bytes: number }

export interface WorkerBatch {
  ops: WorkerOp[]
}

export interface WorkerInit {
  file: string
  dbBytesMax: number
  batchBytesMax: number
  snapshotBytesPerCommitMax: number
  snapshotsRetained: number
  purgeLogRowsPerBatch: number
  purgeChunksPerBatch: number
  /** The CommitLock's cell (commit-lock.ts): the worker writes only while it holds it. */
  commitLock: SharedArrayBuffer
}

export type WorkerReport =
  | {
      kind: 'committed'
      /** The highest zxid appended by this transaction, if it appended any. */
      durableUpTo: number | undefined
      /** Bytes of log entries and snapshot chunks this transaction made durable. */
      bytes: number
      /** Ids of ops made durable by this transaction, in issue order. */
      ids: number[]
      /** How many posted ops this transaction finished (the main thread knows when nothing is in flight). */
      ops: number
      /** How long the transaction took, BEGIN to COMMIT (its fsync included), in ms. */
      commitMs: number
    }
  | { kind: 'fatal'; error: StorageErrorData }
  | { kind: 'log'; level: 'info' | 'warn'; obj: Record<string, unknown>; msg: string }
  | { kind: 'closed' }

/** Packs entries into one buffer (copied, so the caller may reuse its arrays). */
export function packEntries(entries: readonly LogEntry[], totalDataBytes: number): Uint8Array {
  const out = new Uint8Array(totalDataBytes + entries.length * PACKED_ENTRY_HEADER_BYTES)
  const view = new DataView(out.buffer)
  let at = 0
  for (const e of entries) {
    view.setFloat64(at, e.zxid, true)
    view.setUint32(at + 8, e.data.byteLength, true)
    out.set(e.data, at + PACKED_ENTRY_HEADER_BYTES)
    at += PACKED_ENTRY_HEADER_BYTES + e.data.byteLength
  }
  assert(at === out.byteLength, 'packEntries: size mismatch')
  return out
}

/** Reads packed entries as views into `packed` (no copies). */
export function* unpackEntries(packed: Uint8Array): Generator<LogEntry> {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength)
  let at = 0
  while (at < packed.byteLength) {
    const zxid = view.getFloat64(at, true)
    const length = view.getUint32(at + 8, true)
    const start = packed.byteOffset + at + PACKED_ENTRY_HEADER_BYTES
    yield { zxid, data: new Uint8Array(packed.buffer, start, length) }
    at += PACKED_ENTRY_HEADER_BYTES + length
  }
}
