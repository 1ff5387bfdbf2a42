/**
 * SnapshotRows: how one snapshot is written into the database — a
 * 'writing' row in `snapshots`, its chunks in `snapshot_chunks` with a CRC
 * each (folded into the header's chunks_crc), then the row completed with
 * its end zxid, digest, counts and header CRC — in one place for the two
 * writers: the storage worker's LogWriter (snapshots taken or installed by
 * a running server) and seedDataDir (`conclave snapshot restore`).
 *
 * Invariants: chunks are numbered from 0 in the order written; the header's
 * chunk_count, total_bytes and chunks_crc are those of the chunks written;
 * the caller runs it inside its own transaction(s).
 */
import type Database from 'better-sqlite3'
import { chunkCrc, foldChunkCrc, snapshotHeaderCrc } from './checksum.js'

export class SnapshotRows {
  readonly id: number
  private seq = 0
  private chunksCrc = 0
  private totalBytes = 0

  /** Starts a snapshot whose fuzzy image begins at `zxidStart` (a 'writing' row). */
  constructor(
    private readonly db: Database.Database,
    private readonly insertChunk: Database.Statement,
    readonly zxidStart: number,
  ) {
    const info = db.prepare("INSERT INTO snapshots (state, zxid_start) VALUES ('writing', ?)").run(zxidStart)
    this.id = Number(info.lastInsertRowid)
  }

  /** The statement writeChunk runs (prepare it once per connection). */
  static insertChunkStatement(db: Database.Database): Database.Statement {
    return db.prepare('INSERT INTO snapshot_chunks (snapshot_id, seq, data, crc) VALUES (?, ?, ?, ?)')
  }

  writeChunk(data: Uint8Array): void {
    const crc = chunkCrc(this.id, this.seq, data)
    this.insertChunk.run(this.id, this.seq, data, crc)
    this.chunksCrc = foldChunkCrc(this.chunksCrc, crc)
    this.seq += 1
    this.totalBytes += data.byteLength
  }

  /** Completes the row: the state it reflects through `zxidEnd`, with that state's digest. */
  finish(zxidEnd: number, digest: string): void {
    const fields = {
      id: this.id,
      zxidStart: this.zxidStart,
      zxidEnd,
      digest,
      chunkCount: this.seq,
      totalBytes: this.totalBytes,
      chunksCrc: this.chunksCrc,
    }
    this.db
      .prepare(
        `UPDATE snapshots SET state = 'complete', zxid_end = ?, digest = ?, chunk_count = ?,
           total_bytes = ?, chunks_crc = ?, crc = ? WHERE id = ?`,
      )
      .run(zxidEnd, digest, this.seq, this.totalBytes, this.chunksCrc, snapshotHeaderCrc(fields), this.id)
  }

  /** Marks an unfinished snapshot garbage (the purger deletes it). */
  abort(): void {
    this.db.prepare("UPDATE snapshots SET state = 'garbage' WHERE id = ?").run(this.id)
  }
}
