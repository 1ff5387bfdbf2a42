/**
 * Purger: the retention rule and its bounded clean-up in the storage worker.
 *
 * Rule: keep the newest `snapshotsRetained` complete snapshots (newest =
 * highest zxid_end, then highest id) and every log record after the oldest
 * retained snapshot's zxidStart, so recovery can start from any retained
 * snapshot. Older snapshots become 'garbage' and the watermark
 * `log_purged_through` is raised, in the very transaction that completes a
 * snapshot (applyRetention). Garbage chunks, garbage rows and log records at
 * or below the watermark are then deleted between group commits, one short
 * transaction per step (1,000 log rows by default: steps of 10,000 took
 * 40–55 ms, and a commit arriving meanwhile waited for all of it).
 *
 * Invariants: the watermark only rises, and it is durable before any log
 * record below it is deleted, so recovery can tell when the log no longer
 * reaches back to a snapshot (and need not verify records below it). A step
 * never deletes more than purgeChunksPerBatch chunks or purgeLogRowsPerBatch
 * log records.
 *
 * Must not import: worker_threads.
 */
import type Database from 'better-sqlite3'
import { MetaKey, readMetaNumber, writeMeta } from './schema.js'
import type { WorkerInit } from './worker-protocol.js'

type Phase = 'idle' | 'chunks' | 'log'

export class Purger {
  private phase: Phase = 'idle'
  private readonly deleted = { snapshots: 0, chunks: 0, logRecords: 0 }

  constructor(
    private readonly db: Database.Database,
    private readonly init: Pick<
      WorkerInit,
      'file' | 'snapshotsRetained' | 'purgeChunksPerBatch' | 'purgeLogRowsPerBatch'
    >,
    private readonly info: (obj: Record<string, unknown>, msg: string) => void,
  ) {}

  /** Asks for a deletion pass (garbage chunks and rows, then log records at or below the watermark). */
  schedule(): void {
    // Mid-pass in 'chunks', the pass reaches the new work anyway; in 'log', start over.
    if (this.phase !== 'chunks') this.phase = 'chunks'
  }

  /** True when garbage snapshots or log records at or below the watermark are still stored. */
  leftovers(): boolean {
    const garbage = this.db.prepare("SELECT 1 FROM snapshots WHERE state = 'garbage' LIMIT 1").get()
    const watermark = readMetaNumber(this.db, this.init.file, MetaKey.LOG_PURGED_THROUGH)
    const oldest = this.db.prepare('SELECT min(zxid) FROM txnlog').pluck().get() as number | null
    return garbage !== undefined || (oldest !== null && oldest <= watermark)
  }

  hasWork(): boolean {
    return this.phase !== 'idle'
  }

  /**
   * One bounded transaction of deletions, committed without an fsync
   * (synchronous=NORMAL: in WAL mode still atomic and consistent, just not
   * durable until the next group commit's fsync, which covers the whole WAL).
   * Nothing needs a deletion to be durable: the watermark already is, and
   * rows a crash brings back are found by `leftovers` and deleted again.
   */
  step(): void {
    this.db.pragma('synchronous = NORMAL')
    try {
      if (this.phase === 'chunks') {
        if (this.db.transaction(() => this.deleteGarbageChunks()).immediate()) this.phase = 'log'
      } else if (this.phase === 'log') {
        if (this.db.transaction(() => this.deletePurgedLog()).immediate()) this.finishPass()
      }
    } finally {
      // Every commit of the log is fsynced again from here on.
      this.db.pragma('synchronous = FULL')
    }
  }

  /**
   * The retention rule, run inside the transaction that completes a snapshot
   * (cheap: it marks rows and raises the watermark; deletion comes later in
   * steps). Being atomic with the completion, recovery never sees a new
   * snapshot with a stale watermark.
   */
  applyRetention(): void {
    const complete = this.db
      .prepare(
        "SELECT id, zxid_start AS zxidStart FROM snapshots WHERE state = 'complete' ORDER BY zxid_end DESC, id DESC",
      )
      .all() as { id: number; zxidStart: number }[]
    if (complete.length === 0) return
    const retained = complete.slice(0, this.init.snapshotsRetained)
    const dropped = complete.slice(this.init.snapshotsRetained)
    const markGarbage = this.db.prepare("UPDATE snapshots SET state = 'garbage' WHERE id = ?")
    for (const s of dropped) markGarbage.run(s.id)
    const watermark = Math.min(...retained.map((s) => s.zxidStart))
    const previous = readMetaNumber(this.db, this.init.file, MetaKey.LOG_PURGED_THROUGH)
    if (watermark > previous) writeMeta(this.db, MetaKey.LOG_PURGED_THROUGH, String(watermark))
  }

  /** Deletes up to one batch of garbage chunks; true when none are left. */
  private deleteGarbageChunks(): boolean {
    const limit = this.init.purgeChunksPerBatch
    const info = this.db
      .prepare(
        `DELETE FROM snapshot_chunks WHERE id IN (
           SELECT c.id FROM snapshot_chunks c JOIN snapshots s ON s.id = c.snapshot_id
           WHERE s.state = 'garbage' LIMIT ?)`,
      )
      .run(limit)
    this.deleted.chunks += info.changes
    if (info.changes >= limit) return false
    const rows = this.db
      .prepare(
        `DELETE FROM snapshots WHERE state = 'garbage'
           AND NOT EXISTS (SELECT 1 FROM snapshot_chunks c WHERE c.snapshot_id = snapshots.id)`,
      )
      .run()
    this.deleted.snapshots += rows.changes
    return true
  }

  /** Deletes up to one batch of log records at or below the watermark; true when none are left. */
  private deletePurgedLog(): boolean {
    const watermark = readMetaNumber(this.db, this.init.file, MetaKey.LOG_PURGED_THROUGH)
    const limit = this.init.purgeLogRowsPerBatch
    const info = this.db
      .prepare(
        'DELETE FROM txnlog WHERE zxid IN (SELECT zxid FROM txnlog WHERE zxid <= ? ORDER BY zxid LIMIT ?)',
      )
      .run(watermark, limit)
    this.deleted.logRecords += info.changes
    return info.changes < limit
  }

  private finishPass(): void {
    this.phase = 'idle'
    const { snapshots, chunks, logRecords } = this.deleted
    if (snapshots + chunks + logRecords > 0) {
      this.info({ snapshots, chunks, logRecords }, 'storage purge finished')
    }
    this.deleted.snapshots = 0
    this.deleted.chunks = 0
    this.deleted.logRecords = 0
  }
}
