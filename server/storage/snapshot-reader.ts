/**
 * SnapshotReader: finds the newest complete snapshot whose every chunk
 * verifies, on the main thread at startup, and reads its chunks lazily.
 *
 * A snapshot verifies when its header checksum matches, its chunks are
 * numbered 0..chunk_count-1 without a hole, each chunk's checksum matches,
 * the sizes add up to total_bytes and the chunk checksums fold to chunks_crc.
 *
 * Invariants: chunks are verified twice — once when the snapshot is chosen
 * (so a damaged snapshot is skipped before the tree sees any of it) and again
 * as they are handed out; a mismatch the second time throws CORRUPT.
 * Never more than one chunk is held in memory by this module.
 *
 * Must not import: worker_threads, log-writer.ts.
 */
import type Database from 'better-sqlite3'
import { chunkCrc, foldChunkCrc, snapshotHeaderCrc } from './checksum.js'
import { StorageError, StorageErrorCode, toStorageError } from './storage-error.js'

export interface SnapshotInfo {
  id: number
  zxidStart: number
  zxidEnd: number
  digest: string
  chunkCount: number
  totalBytes: number
  chunksCrc: number
  crc: number
}

interface ChunkRow {
  seq: number
  data: unknown
  crc: number
}

const SNAPSHOT_COLUMNS = `id, zxid_start AS zxidStart, zxid_end AS zxidEnd, digest, chunk_count AS chunkCount,
  total_bytes AS totalBytes, chunks_crc AS chunksCrc, crc`

export class SnapshotReader {
  private readonly selectChunks: Database.Statement

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
  ) {
    this.selectChunks = db.prepare(
      'SELECT seq, data, crc FROM snapshot_chunks WHERE snapshot_id = ? ORDER BY seq',
    )
  }

  /** Complete snapshots, newest first (highest zxidEnd, then highest id). */
  completeSnapshots(): SnapshotInfo[] {
    try {
      return this.db
        .prepare(
          `SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE state = 'complete' ORDER BY zxid_end DESC, id DESC`,
        )
        .all() as SnapshotInfo[]
    } catch (err) {
      throw toStorageError(err, this.file, 'listing snapshots')
    }
  }

  /** Why the snapshot does not verify, or undefined when it does. Reads every chunk once. */
  verify(info: SnapshotInfo): string | undefined {
    if (snapshotHeaderCrc(info) !== info.crc) return 'header checksum mismatch'
    let seq = 0
    let bytes = 0
    let folded = 0
    try {
      for (const row of this.selectChunks.iterate(info.id) as IterableIterator<ChunkRow>) {
        if (row.seq !== seq) return `chunk ${seq} is missing`
        if (!(row.data instanceof Uint8Array) || chunkCrc(info.id, seq, row.data) !== row.crc) {
          return `chunk ${seq} checksum mismatch`
        }
        folded = foldChunkCrc(folded, row.crc)
        bytes += row.data.byteLength
        seq += 1
      }
    } catch (err) {
      throw toStorageError(err, this.file, `reading snapshot ${info.id}`)
    }
    if (seq !== info.chunkCount) return `${seq} chunks found, ${info.chunkCount} expected`
    if (bytes !== info.totalBytes) return `${bytes} bytes found, ${info.totalBytes} expected`
    if (folded !== info.chunksCrc) return 'chunk sequence checksum mismatch'
    return undefined
  }

  /** The snapshot's chunks in order, each verified as it is read. */
  *chunks(info: SnapshotInfo): Generator<Uint8Array> {
    const rows = this.selectChunks.iterate(info.id) as IterableIterator<ChunkRow>
    try {
      let seq = 0
      for (;;) {
        let next: IteratorResult<ChunkRow>
        try {
          next = rows.next()
        } catch (err) {
          throw toStorageError(err, this.file, `reading snapshot ${info.id}`)
        }
        if (next.done === true) break
        const row = next.value
        if (
          row.seq !== seq ||
          !(row.data instanceof Uint8Array) ||
          chunkCrc(info.id, seq, row.data) !== row.crc
        ) {
          throw this.corrupt(info, `chunk ${seq} changed after it was verified`)
        }
        seq += 1
        yield row.data
      }
      if (seq !== info.chunkCount) throw this.corrupt(info, `chunk ${seq} disappeared after it was verified`)
    } finally {
      rows.return?.()
    }
  }

  private corrupt(info: SnapshotInfo, why: string): StorageError {
    return new StorageError({
      code: StorageErrorCode.CORRUPT,
      file: this.file,
      message: `snapshot ${info.id} (zxidEnd ${info.zxidEnd}) of ${this.file} is corrupt: ${why}`,
    })
  }
}
