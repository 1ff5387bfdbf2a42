/**
 * InlineWriter: a group commit on the main thread, for when the storage
 * worker has nothing in flight. Handing a commit to the worker costs two
 * thread wake-ups (the worker's, then the main thread's for its report),
 * and on this VM a wake-up costs more than a small commit's CPU; a lone
 * write at C=1 paid them on every write. Committed here, the ops are
 * durable when commit() returns (synchronous=FULL: COMMIT fsyncs the WAL),
 * and the event loop is blocked for that one commit.
 *
 * Storage decides when this may run (nothing in flight at the worker, only
 * appends and meta writes, at most inlineCommitBytesMax, not right after a
 * slow commit); this module only commits, under the CommitLock, and never
 * waits for it: if the worker holds the lock (a purge step, a checkpoint),
 * commit() returns undefined and the ops go to the worker instead.
 *
 * Invariants: nothing is written unless the lock was free and SQLite's
 * write lock could be taken at once (busy_timeout 0); a commit either
 * returns (durable) or throws (the caller fails the storage: a failed
 * commit is never retried); ops are written in the order given.
 *
 * Must not import: worker_threads.
 */
import type Database from 'better-sqlite3'
import { unreachable } from '../../shared/assert.js'
import type { CommitLock } from './commit-lock.js'
import { logInserter, openConnection, writeMeta } from './schema.js'
import { toStorageError } from './storage-error.js'
import { unpackEntries, type WorkerOp } from './worker-protocol.js'

/** The ops an inline commit takes; anything else goes to the worker. */
export type InlineOp = Extract<WorkerOp, { kind: 'append' | 'meta' }>

export interface InlineCommit {
  durableUpTo: number | undefined
  /** Bytes of log entries made durable. */
  bytes: number
  /** Ids of the meta ops made durable, in order. */
  ids: number[]
  /** BEGIN to COMMIT, the fsync included. */
  commitMs: number
}

export class InlineWriter {
  private readonly insertLog: (zxid: number, data: Uint8Array) => void

  private constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly lock: CommitLock,
  ) {
    this.insertLog = logInserter(db)
  }

  /** Opens a write connection to `file` (its schema already checked by the caller). */
  static open(file: string, dbBytesMax: number, lock: CommitLock): InlineWriter {
    const db = openConnection(file, { dbBytesMax })
    try {
      // Never wait inside SQLite on this thread: the lock is what keeps writers apart.
      db.pragma('busy_timeout = 0')
      db.pragma('wal_autocheckpoint = 0')
      return new InlineWriter(db, file, lock)
    } catch (err) {
      db.close()
      throw toStorageError(err, file, 'opening the inline writer')
    }
  }

  static accepts(op: WorkerOp): op is InlineOp {
    return op.kind === 'append' || op.kind === 'meta'
  }

  /**
   * Commits `ops` in one transaction; undefined (nothing written) if the
   * worker holds the lock, or another connection holds SQLite's write lock
   * (busy: the worker, which may wait for it, takes the ops).
   */
  commit(ops: readonly InlineOp[]): InlineCommit | undefined {
    if (!this.lock.tryAcquireMain()) return undefined
    try {
      return this.commitLocked(ops)
    } finally {
      this.lock.releaseMain()
    }
  }

  close(): void {
    this.db.close()
  }

  private commitLocked(ops: readonly InlineOp[]): InlineCommit | undefined {
    const result: InlineCommit = { durableUpTo: undefined, bytes: 0, ids: [], commitMs: 0 }
    const began = performance.now()
    try {
      this.db.exec('BEGIN IMMEDIATE')
    } catch (err) {
      if ((err as { code?: unknown }).code === 'SQLITE_BUSY') return undefined
      throw toStorageError(err, this.file, 'beginning an inline commit')
    }
    try {
      for (const op of ops) this.apply(op, result)
      this.db.exec('COMMIT')
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK')
      throw toStorageError(err, this.file, 'writing (the write is NOT durable)')
    }
    result.commitMs = performance.now() - began
    return result
  }

  private apply(op: InlineOp, result: InlineCommit): void {
    switch (op.kind) {
      case 'append':
        for (const e of unpackEntries(op.packed)) {
          this.insertLog(e.zxid, e.data)
          result.durableUpTo = e.zxid
          result.bytes += e.data.byteLength
        }
        return
      case 'meta':
        for (const [key, value] of op.entries) writeMeta(this.db, key, value)
        result.ids.push(op.id)
        return
      default:
        return unreachable(op)
    }
  }
}
