/**
 * A data directory seen from outside a running server, for the operator's
 * commands (`conclave snapshot restore / inspect`, `conclave log dump`):
 *
 * - dataDirInUse: whether a server process holds the database now (an
 *   exclusive lock attempt that fails at once while any other connection
 *   has it open; taken and dropped, it changes nothing).
 * - seedDataDir: writes a new database whose only content is one complete
 *   snapshot (and the epochs and, if given, the server id), in one
 *   transaction: the server then starts from it as from any snapshot it
 *   took itself (recovery.ts verifies it again).
 * - DataDirReader: a read-only view (SQLite opened read-only, no recovery,
 *   no torn-tail repair, nothing written) of the meta rows, the snapshots
 *   and the log, every record checksum-verified as it is read.
 *
 * Must not import: worker_threads, log-writer.ts.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { LogReader } from './log-reader.js'
import { ensureSchema, MetaKey, openConnection, readMeta, readMetaNumber, writeMeta } from './schema.js'
import { type SnapshotInfo, SnapshotReader } from './snapshot-reader.js'
import { SnapshotRows } from './snapshot-rows.js'
import { StorageError, StorageErrorCode, toStorageError } from './storage-error.js'
import { DB_FILE_NAME, STORAGE_LIMIT_DEFAULTS } from './storage-options.js'
import type { LogEntry } from './worker-protocol.js'

// better-sqlite3 reads this once, when its native module first opens a
// database: URI filenames (for `immutable=1`, below) need it. Only the
// operator's commands import this module; `file:` names mean nothing else.
process.env.SQLITE_USE_URI ??= '1'

/** The database file of a data directory. */
export function dataDirFile(dataDir: string): string {
  return join(dataDir, DB_FILE_NAME)
}

/** True while another process (a running server) has the directory's database open. */
export function dataDirInUse(dataDir: string): boolean {
  const file = dataDirFile(dataDir)
  if (!existsSync(file)) return false
  let db: Database.Database | undefined
  try {
    db = new Database(file, { fileMustExist: true })
    db.pragma('busy_timeout = 0')
    db.pragma('locking_mode = EXCLUSIVE')
    db.exec('BEGIN EXCLUSIVE')
    db.exec('ROLLBACK')
    return false
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY') return true
    throw toStorageError(err, file, 'checking whether a server holds it')
  } finally {
    db?.close()
  }
}

export interface SeedOptions {
  dataDir: string
  /** Written as the directory's server id; absent: the first server to start there claims it. */
  serverId?: number
  zxid: number
  digest: string
  chunks: readonly Uint8Array[]
  /** The epochs to record (the zxid's epoch: the history the snapshot ends). */
  epoch: number
  /** Remove what the directory holds first (the caller checked that no server holds it). */
  replace: boolean
}

/** Seeds a data directory with one snapshot. Throws StorageError; on failure the directory holds no database. */
export function seedDataDir(o: SeedOptions): string {
  const file = dataDirFile(o.dataDir)
  mkdirSync(o.dataDir, { recursive: true })
  if (o.replace)
    for (const name of readdirSync(o.dataDir)) rmSync(join(o.dataDir, name), { recursive: true, force: true })
  const db = openConnection(file, { dbBytesMax: STORAGE_LIMIT_DEFAULTS.dbBytesMax })
  try {
    ensureSchema(db, file)
    db.transaction(() => {
      const rows = new SnapshotRows(db, SnapshotRows.insertChunkStatement(db), o.zxid)
      for (const c of o.chunks) rows.writeChunk(c)
      rows.finish(o.zxid, o.digest)
      writeMeta(db, MetaKey.ACCEPTED_EPOCH, String(o.epoch))
      writeMeta(db, MetaKey.CURRENT_EPOCH, String(o.epoch))
      if (o.serverId !== undefined) writeMeta(db, MetaKey.SERVER_ID, String(o.serverId))
    }).immediate()
    db.pragma('wal_checkpoint(TRUNCATE)')
  } catch (err) {
    db.close()
    for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true })
    throw toStorageError(err, file, 'seeding it from a snapshot')
  }
  db.close()
  return file
}

/**
 * A read-only connection that leaves no trace. With no -wal file beside the
 * database (no server has it open; the last one checkpointed on close) it is
 * opened immutable: SQLite would otherwise create -wal and -shm files to read
 * a WAL database, even read-only. With one there, a server may be writing:
 * a plain read-only connection sees what it has committed.
 */
function openReadOnly(file: string): Database.Database {
  if (existsSync(`${file}-wal`))
    return openConnection(file, { dbBytesMax: STORAGE_LIMIT_DEFAULTS.dbBytesMax, readonly: true })
  try {
    return new Database(`file:${encodeURI(file).replace(/\?/g, '%3f').replace(/#/g, '%23')}?immutable=1`, {
      readonly: true,
      fileMustExist: true,
    })
  } catch (err) {
    throw toStorageError(err, file, 'opening it read-only')
  }
}

export interface DataDirMeta {
  serverId: number | undefined
  acceptedEpoch: number
  currentEpoch: number
  logPurgedThrough: number
  schemaVersion: number
}

export interface SnapshotSummary extends SnapshotInfo {
  state: string
  /** Why it does not verify, or undefined (complete snapshots only). */
  problem: string | undefined
}

/** A read-only view of a data directory: nothing it does writes to it. */
export class DataDirReader {
  readonly file: string
  private readonly db: Database.Database
  private readonly log: LogReader
  private readonly snapshots: SnapshotReader

  constructor(dataDir: string) {
    this.file = dataDirFile(dataDir)
    if (!existsSync(this.file))
      throw new StorageError({
        code: StorageErrorCode.IO,
        file: this.file,
        message: `${dataDir} holds no Conclave database (${DB_FILE_NAME})`,
      })
    this.db = openReadOnly(this.file)
    try {
      const tables = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()
      if (!tables.includes('meta') || !tables.includes('txnlog'))
        throw new StorageError({
          code: StorageErrorCode.SCHEMA,
          file: this.file,
          message: `${this.file} is not a Conclave database`,
        })
      this.log = new LogReader(this.db, this.file, STORAGE_LIMIT_DEFAULTS.readLogBytesMax)
      this.snapshots = new SnapshotReader(this.db, this.file)
    } catch (err) {
      this.db.close()
      throw toStorageError(err, this.file, 'opening it read-only')
    }
  }

  meta(): DataDirMeta {
    const id = readMeta(this.db, this.file, MetaKey.SERVER_ID)
    return {
      serverId: id === undefined ? undefined : Number(id),
      acceptedEpoch: readMetaNumber(this.db, this.file, MetaKey.ACCEPTED_EPOCH),
      currentEpoch: readMetaNumber(this.db, this.file, MetaKey.CURRENT_EPOCH),
      logPurgedThrough: readMetaNumber(this.db, this.file, MetaKey.LOG_PURGED_THROUGH),
      schemaVersion: readMetaNumber(this.db, this.file, MetaKey.SCHEMA_VERSION),
    }
  }

  /** Every snapshot row (newest first), complete ones verified. */
  snapshotList(): SnapshotSummary[] {
    const rows = this.db
      .prepare(
        `SELECT id, state, zxid_start AS zxidStart, zxid_end AS zxidEnd, digest, chunk_count AS chunkCount,
           total_bytes AS totalBytes, chunks_crc AS chunksCrc, crc FROM snapshots ORDER BY id DESC`,
      )
      .all() as (SnapshotInfo & { state: string })[]
    return rows.map((r) => ({ ...r, problem: r.state === 'complete' ? this.snapshots.verify(r) : undefined }))
  }

  /**
   * The newest complete snapshot of `list` (snapshotList()'s) that verifies,
   * or undefined. Takes the list rather than reading it again: each
   * snapshotList() reads every complete snapshot's chunks to verify them.
   */
  newestSnapshot(list: readonly SnapshotSummary[]): SnapshotSummary | undefined {
    return list
      .filter((s) => s.state === 'complete' && s.problem === undefined)
      .sort((a, b) => b.zxidEnd - a.zxidEnd || b.id - a.id)[0]
  }

  snapshotChunks(info: SnapshotInfo): Uint8Array[] {
    return [...this.snapshots.chunks(info)]
  }

  /** Log records with zxid >= fromZxid, ascending, verified, read lazily. */
  logEntries(fromZxid = 0): Generator<LogEntry> {
    return this.log.entries({ verifyAfter: Math.max(0, fromZxid - 1), yieldAfter: Math.max(0, fromZxid - 1) })
  }

  logRange(): { oldest: number; last: number; count: number } {
    const count = this.db.prepare('SELECT count(*) FROM txnlog').pluck().get() as number
    return { oldest: this.log.oldestZxid(), last: this.log.lastZxid(), count }
  }

  close(): void {
    this.db.close()
  }
}
