/**
 * LogWriter: the storage worker's engine. It owns the only write connection
 * and turns queued ops into group commits: each step takes everything queued
 * (up to batchBytesMax) and commits it in ONE SQLite transaction, fsynced by
 * synchronous=FULL, then reports what became durable. When nothing is queued
 * it runs one bounded purge batch instead (see purger.ts). Snapshot chunks
 * get at most snapshotBytesPerCommitMax of a group, and log appends queued
 * behind more chunks than that join the group ahead of them. WAL checkpoints run after the
 * report (auto-checkpoint is off here), not inside COMMIT: given a
 * background checkpointer (checkpoint-worker.ts) the bulk of the copy runs
 * there, beside the commits, and this thread only copies the frames written
 * meanwhile (so the WAL restarts from its beginning instead of growing).
 * Commits the main thread makes itself while this writer is idle
 * (inline-writer.ts) are announced by `written` ops, which count their bytes
 * towards the next checkpoint.
 *
 * Invariants: ops are applied in the order they were posted, except that
 * appends and meta writes may be committed before snapshot chunks posted
 * earlier (takeLogOpsBehindChunks), never before any other op; a report is
 * posted only after COMMIT returned (the data is on disk); an id is reported
 * exactly once; after any error nothing more is written (durability failures
 * are fatal, never retried) and the error is posted as `fatal`. Checksums are
 * computed here, on the bytes actually written.
 *
 * Must not import: worker_threads (storage-worker.ts wires this to the port),
 * anything that touches the main thread's state.
 */
import type Database from 'better-sqlite3'
import { assert, unreachable } from '../../shared/assert.js'
import { Purger } from './purger.js'
import { ensureSchema, logInserter, openConnection, writeMeta } from './schema.js'
import { SnapshotRows } from './snapshot-rows.js'
import { toStorageError } from './storage-error.js'
import {
  PACKED_ENTRY_HEADER_BYTES,
  type WorkerInit,
  type WorkerOp,
  type WorkerReport,
} from './worker-protocol.js'

/** WAL bytes written between two checkpoints (SQLite's default autocheckpoint is ~4 MiB). */
const CHECKPOINT_BYTES = 8 * 1024 * 1024
/** What one purge step is counted as towards the next checkpoint (deletes rewrite pages too). */
const PURGE_STEP_WAL_BYTES = 1024 * 1024

/** Runs `wal_checkpoint(PASSIVE)` on another thread; calls back through LogWriter.backgroundCheckpointDone. */
export interface BackgroundCheckpointer {
  request(): void
}

interface GroupResult {
  durableUpTo: number | undefined
  bytes: number
  snapshotBytes: number
  ids: number[]
  /** Posted ops finished by this group. */
  ops: number
  purgeAfter: boolean
}

export class LogWriter {
  private readonly queue: WorkerOp[] = []
  /** Byte offset into the packed buffer of the append op at the queue head, when a group split it. */
  private appendOffset = 0
  private snapshot: SnapshotRows | undefined
  private readonly purger: Purger
  private state: 'open' | 'closed' | 'failed' = 'open'
  private leftoversDue = false
  private bytesSinceCheckpoint = 0
  private background: BackgroundCheckpointer | undefined
  private backgroundRunning = false
  /** A background checkpoint finished: copy what was written meanwhile, here. */
  private tailCheckpointDue = false
  private readonly insertLog: (zxid: number, data: Uint8Array) => void
  private readonly insertChunk: Database.Statement

  private constructor(
    private readonly db: Database.Database,
    private readonly init: WorkerInit,
    private readonly post: (report: WorkerReport) => void,
  ) {
    this.insertLog = logInserter(db)
    this.insertChunk = SnapshotRows.insertChunkStatement(db)
    this.purger = new Purger(db, init, (obj, msg) => post({ kind: 'log', level: 'info', obj, msg }))
  }

  static open(init: WorkerInit, post: (report: WorkerReport) => void): LogWriter {
    const db = openConnection(init.file, { dbBytesMax: init.dbBytesMax })
    try {
      ensureSchema(db, init.file)
      db.pragma('wal_autocheckpoint = 0')
      const writer = new LogWriter(db, init, post)
      // A snapshot still 'writing' belongs to a process that died: it is garbage.
      const abandoned = db.prepare("UPDATE snapshots SET state = 'garbage' WHERE state = 'writing'").run()
      // What a previous process left (garbage snapshots, log records below the watermark) is
      // purged after the first commit, so the purge does not slow down the recovery reads.
      writer.leftoversDue = abandoned.changes > 0 || writer.purger.leftovers()
      return writer
    } catch (err) {
      db.close()
      throw toStorageError(err, init.file, 'starting the storage worker')
    }
  }

  get finished(): boolean {
    return this.state !== 'open'
  }

  enqueue(ops: WorkerOp[]): void {
    for (const op of ops) this.queue.push(op)
  }

  /** Runs one group commit (or one purge batch); returns true while work remains. */
  step(): boolean {
    if (this.state !== 'open') return false
    try {
      if (this.queue[0]?.kind === 'close') {
        this.close()
        return false
      }
      if (this.queue.length > 0) this.commitGroup()
      else if (this.tailCheckpointDue) this.checkpointTail()
      else if (this.purger.hasWork()) {
        this.purger.step()
        this.checkpointIfDue(PURGE_STEP_WAL_BYTES)
      }
    } catch (err) {
      this.fail(err)
      return false
    }
    return this.queue.length > 0 || this.tailCheckpointDue || this.purger.hasWork()
  }

  /** True when the next step closes the connection (the caller stops the checkpointer first). */
  get closing(): boolean {
    return this.queue[0]?.kind === 'close'
  }

  /** From now on, checkpoints run on `checkpointer` (undefined: on this thread again). */
  useBackgroundCheckpointer(checkpointer: BackgroundCheckpointer | undefined): void {
    this.background = checkpointer
    this.backgroundRunning = false
  }

  backgroundCheckpointDone(): void {
    this.backgroundRunning = false
    this.tailCheckpointDue = true
  }

  private commitGroup(): void {
    const result: GroupResult = {
      durableUpTo: undefined,
      bytes: 0,
      snapshotBytes: 0,
      ids: [],
      ops: 0,
      purgeAfter: false,
    }
    const began = performance.now()
    this.db.exec('BEGIN IMMEDIATE')
    try {
      while (this.queue.length > 0 && result.bytes < this.init.batchBytesMax) {
        const op = this.queue[0]!
        if (op.kind === 'close') break
        if (this.snapshotBudgetSpent(op, result)) {
          this.takeLogOpsBehindChunks(result)
          break
        }
        if (!this.apply(op, result)) break
        this.queue.shift()
        result.ops++
      }
      this.db.exec('COMMIT')
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK')
      throw err
    }
    // COMMIT returned: with synchronous=FULL the WAL is fsynced, so this is durable.
    if (result.purgeAfter || this.leftoversDue) this.purger.schedule()
    this.leftoversDue = false
    const commitMs = performance.now() - began
    this.post({
      kind: 'committed',
      durableUpTo: result.durableUpTo,
      bytes: result.bytes,
      ids: result.ids,
      ops: result.ops,
      commitMs,
    })
    if (this.tailCheckpointDue) this.checkpointTail()
    this.checkpointIfDue(result.bytes)
  }

  /**
   * Auto-checkpoint is off on this connection: SQLite would run it inside
   * COMMIT, before we could report the (already durable) commit. We
   * checkpoint after the report instead, every CHECKPOINT_BYTES: on the
   * background checkpointer when there is one, else here.
   */
  private checkpointIfDue(bytes: number): void {
    this.bytesSinceCheckpoint += bytes
    if (this.bytesSinceCheckpoint < CHECKPOINT_BYTES) return
    // A background checkpoint that does not keep up (or a checkpointer still
    // starting) must not let the WAL grow without bound: checkpoint here too.
    const behind = this.bytesSinceCheckpoint >= 2 * CHECKPOINT_BYTES
    if (this.background === undefined || behind) {
      this.bytesSinceCheckpoint = 0
      this.db.pragma('wal_checkpoint(PASSIVE)')
      return
    }
    if (this.backgroundRunning) return
    this.bytesSinceCheckpoint = 0
    this.backgroundRunning = true
    this.background.request()
  }

  /**
   * After a background checkpoint: the frames committed while it ran are
   * still only in the WAL, and SQLite restarts the WAL from its beginning only
   * once every frame is copied. Copying those few here (no commit can slip in
   * meanwhile) lets the next commit restart it.
   */
  private checkpointTail(): void {
    this.tailCheckpointDue = false
    this.db.pragma('wal_checkpoint(PASSIVE)')
  }

  /**
   * Snapshot chunks get a smaller share of a group than log entries, so log
   * appends queued behind a chunk wait for one chunk's commit, not many.
   */
  private snapshotBudgetSpent(op: WorkerOp, result: GroupResult): boolean {
    if (op.kind !== 'snapshotChunk' || result.snapshotBytes === 0) return false
    return result.snapshotBytes + op.data.byteLength > this.init.snapshotBytesPerCommitMax
  }

  /**
   * The group's share of snapshot chunks is spent and the queue starts with
   * more: appends and meta writes queued behind those chunks join this group
   * anyway (whole appends, within batchBytesMax), up to the first op that is
   * neither (a snapshot's finish stays behind its chunks, a truncate behind
   * everything before it). A snapshot writer keeps the queue at the high
   * water mark (8 MiB) of chunks, so a log append issued during a snapshot
   * waited for 8 group commits of 1 MiB of chunks each before its own.
   * Safe: chunks belong to a snapshot that is not complete until its finish,
   * and no chunk depends on a log entry or meta value (nor they on it).
   */
  private takeLogOpsBehindChunks(result: GroupResult): void {
    let i = 1
    while (i < this.queue.length && result.bytes < this.init.batchBytesMax) {
      const op = this.queue[i]!
      if (op.kind === 'snapshotChunk') {
        i++
        continue
      }
      if (op.kind === 'append') {
        if (result.bytes + op.packed.byteLength > this.init.batchBytesMax) return
      } else if (op.kind !== 'meta' && op.kind !== 'written') return
      // Never split here: appendOffset belongs to the queue head.
      assert(this.apply(op, result), 'an append behind snapshot chunks was split')
      this.queue.splice(i, 1)
      result.ops++
    }
  }

  /** Applies one op inside the open transaction; false if an append was split by the byte budget. */
  private apply(op: Exclude<WorkerOp, { kind: 'close' }>, result: GroupResult): boolean {
    switch (op.kind) {
      case 'append':
        return this.appendEntries(op.packed, result)
      case 'meta':
        for (const [key, value] of op.entries) writeMeta(this.db, key, value)
        result.ids.push(op.id)
        return true
      case 'truncate':
        this.truncateAfter(op.zxid)
        result.ids.push(op.id)
        result.purgeAfter = true
        return true
      case 'snapshotBegin':
        this.beginSnapshot(op.zxidStart)
        return true
      case 'snapshotChunk':
        this.writeChunk(op.data)
        result.bytes += op.data.byteLength
        result.snapshotBytes += op.data.byteLength
        return true
      case 'snapshotFinish':
        this.finishSnapshot(op.zxidEnd, op.digest)
        result.ids.push(op.id)
        result.purgeAfter = true
        return true
      case 'snapshotAbort':
        this.abortSnapshot()
        result.ids.push(op.id)
        result.purgeAfter = true
        return true
      case 'written':
        // Committed by the main thread (inline-writer.ts): its WAL frames need a checkpoint too.
        this.bytesSinceCheckpoint += op.bytes
        return true
      default:
        return unreachable(op)
    }
  }

  private appendEntries(packed: Uint8Array, result: GroupResult): boolean {
    const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength)
    let at = this.appendOffset
    while (at < packed.byteLength) {
      if (result.bytes >= this.init.batchBytesMax) {
        this.appendOffset = at
        return false
      }
      const zxid = view.getFloat64(at, true)
      const length = view.getUint32(at + 8, true)
      const data = packed.subarray(at + PACKED_ENTRY_HEADER_BYTES, at + PACKED_ENTRY_HEADER_BYTES + length)
      this.insertLog(zxid, data)
      result.durableUpTo = zxid
      result.bytes += length
      at += PACKED_ENTRY_HEADER_BYTES + length
    }
    this.appendOffset = 0
    return true
  }

  private truncateAfter(zxid: number): void {
    this.db.prepare('DELETE FROM txnlog WHERE zxid > ?').run(zxid)
    // A snapshot past the truncation point would outrun the log (ZooKeeper's truncateLog drops them too).
    this.db
      .prepare("UPDATE snapshots SET state = 'garbage' WHERE state = 'complete' AND zxid_end > ?")
      .run(zxid)
  }

  private beginSnapshot(zxidStart: number): void {
    assert(this.snapshot === undefined, 'beginSnapshot while another snapshot is open')
    this.snapshot = new SnapshotRows(this.db, this.insertChunk, zxidStart)
  }

  private writeChunk(data: Uint8Array): void {
    assert(this.snapshot !== undefined, 'snapshot chunk without beginSnapshot')
    this.snapshot.writeChunk(data)
  }

  private finishSnapshot(zxidEnd: number, digest: string): void {
    assert(this.snapshot !== undefined, 'finishSnapshot without beginSnapshot')
    this.snapshot.finish(zxidEnd, digest)
    this.snapshot = undefined
    this.purger.applyRetention()
  }

  private abortSnapshot(): void {
    this.snapshot?.abort()
    this.snapshot = undefined
  }

  private close(): void {
    this.state = 'closed'
    this.db.close()
    this.post({ kind: 'closed' })
  }

  private fail(err: unknown): void {
    this.state = 'failed'
    const error = toStorageError(err, this.init.file, 'writing (the write is NOT durable)')
    try {
      this.db.close()
    } catch {
      // The connection may already be unusable; the fatal report below is what matters.
    }
    this.post({ kind: 'fatal', error: error.toData() })
  }
}
