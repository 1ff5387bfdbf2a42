/**
 * The database schema and connection setup: one SQLite file per server, WAL
 * journal, synchronous=FULL (a commit returns only after fsync), the schema
 * version in `meta`, and the checksummed meta rows.
 *
 * Tables:
 *   meta(key, value, crc)                      epochs, server id, schema version,
 *                                              purge watermark, misc `kv.*` keys
 *   txnlog(zxid PRIMARY KEY, data, crc)        the txn log, zxid strictly increasing
 *   snapshots(id, state, zxid_start, ...)      one row per snapshot; state is
 *                                              'writing' | 'complete' | 'garbage'
 *   snapshot_chunks(id, snapshot_id, seq, data, crc)
 *
 * Invariants: a database this build creates has SCHEMA_VERSION; a newer one
 * is refused with a SCHEMA error naming the file and both versions; a file
 * that is some other SQLite database is refused. Every meta read verifies its
 * checksum.
 *
 * Must not import: worker_threads (both the main thread and the worker use it).
 */
import Database from 'better-sqlite3'
import { logRecordCrc, metaCrc } from './checksum.js'
import { StorageError, StorageErrorCode, toStorageError } from './storage-error.js'

export const SCHEMA_VERSION = 1
/** SQLite application_id: 'Cncl'. */
export const APPLICATION_ID = 0x436e636c

export const MetaKey = {
  SCHEMA_VERSION: 'schema_version',
  SERVER_ID: 'server_id',
  ACCEPTED_EPOCH: 'accepted_epoch',
  CURRENT_EPOCH: 'current_epoch',
  /** Every log record at or below this zxid may have been purged. */
  LOG_PURGED_THROUGH: 'log_purged_through',
} as const

/** Prefix of the caller's misc keys (setMeta/getMeta), so they never clash with ours. */
export const KV_PREFIX = 'kv.'

const DDL = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL, crc INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE txnlog (zxid INTEGER PRIMARY KEY, data BLOB NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  state TEXT NOT NULL,
  zxid_start INTEGER NOT NULL,
  zxid_end INTEGER,
  digest TEXT,
  chunk_count INTEGER,
  total_bytes INTEGER,
  chunks_crc INTEGER,
  crc INTEGER
);
CREATE TABLE snapshot_chunks (
  id INTEGER PRIMARY KEY,
  snapshot_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  crc INTEGER NOT NULL
);
CREATE UNIQUE INDEX snapshot_chunks_by_snapshot ON snapshot_chunks (snapshot_id, seq);
`

export interface ConnectionOptions {
  dbBytesMax: number
  readonly?: boolean
}

/** Opens `file` with the durability pragmas. The caller closes it. */
export function openConnection(file: string, options: ConnectionOptions): Database.Database {
  let db: Database.Database | undefined
  try {
    db = new Database(file, { readonly: options.readonly === true, fileMustExist: options.readonly === true })
    if (options.readonly !== true) {
      const mode = db.pragma('journal_mode = WAL', { simple: true })
      if (mode !== 'wal') throw new Error(`could not switch to WAL journal mode (got ${String(mode)})`)
    }
    db.pragma('synchronous = FULL')
    db.pragma('busy_timeout = 10000')
    db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`)
    const pageSize = db.pragma('page_size', { simple: true }) as number
    db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.dbBytesMax / pageSize))}`)
    return db
  } catch (err) {
    db?.close()
    throw toStorageError(err, file, 'opening the database')
  }
}

/** Creates the schema in an empty database, or checks the version of an existing one. */
export function ensureSchema(db: Database.Database, file: string): void {
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]
    if (tables.length === 0) {
      db.transaction(() => {
        db.exec(DDL)
        db.pragma(`application_id = ${APPLICATION_ID}`)
        writeMeta(db, MetaKey.SCHEMA_VERSION, String(SCHEMA_VERSION))
      }).immediate()
      return
    }
    checkExistingSchema(db, file, tables)
  } catch (err) {
    throw toStorageError(err, file, 'checking the schema')
  }
}

function checkExistingSchema(db: Database.Database, file: string, tables: string[]): void {
  const appId = db.pragma('application_id', { simple: true }) as number
  if (appId !== APPLICATION_ID || !tables.includes('meta')) {
    throw new StorageError({
      code: StorageErrorCode.SCHEMA,
      file,
      message: `${file} is not a Conclave database (application_id ${appId}, tables ${tables.join(', ')})`,
    })
  }
  const raw = readMeta(db, file, MetaKey.SCHEMA_VERSION)
  const version = Number(raw)
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new StorageError({
      code: StorageErrorCode.SCHEMA,
      file,
      message: `${file} has an unreadable schema version ${JSON.stringify(raw)}`,
    })
  }
  if (version > SCHEMA_VERSION) {
    throw new StorageError({
      code: StorageErrorCode.SCHEMA,
      file,
      message:
        `${file} has schema version ${version}, newer than this Conclave's ${SCHEMA_VERSION}: ` +
        'it was written by a newer release; run that release (or newer), never an older one',
    })
  }
  // SCHEMA_VERSION is 1: there is nothing older to migrate yet.
}

/** Reads one meta value, verifying its checksum; undefined if absent. */
export function readMeta(db: Database.Database, file: string, key: string): string | undefined {
  const row = db.prepare('SELECT value, crc FROM meta WHERE key = ?').get(key) as
    | { value: string; crc: number }
    | undefined
  if (row === undefined) return undefined
  if (metaCrc(key, row.value) !== row.crc) {
    throw new StorageError({
      code: StorageErrorCode.CORRUPT,
      file,
      message: `checksum mismatch in meta key ${JSON.stringify(key)} of ${file}: the database is corrupt`,
    })
  }
  return row.value
}

/** Reads a numeric meta value (0 when absent). */
export function readMetaNumber(db: Database.Database, file: string, key: string): number {
  const raw = readMeta(db, file, key)
  if (raw === undefined) return 0
  const n = Number(raw)
  if (!Number.isSafeInteger(n)) {
    throw new StorageError({
      code: StorageErrorCode.CORRUPT,
      file,
      message: `meta key ${key} of ${file} holds ${JSON.stringify(raw)}, not an integer`,
    })
  }
  return n
}

/** A prepared insert of one txn log record, its checksum computed on the bytes written. */
export function logInserter(db: Database.Database): (zxid: number, data: Uint8Array) => void {
  const insert = db.prepare('INSERT INTO txnlog (zxid, data, crc) VALUES (?, ?, ?)')
  return (zxid, data) => {
    insert.run(zxid, data, logRecordCrc(zxid, data))
  }
}

/** Writes one meta row with its checksum (inside the caller's transaction). */
export function writeMeta(db: Database.Database, key: string, value: string): void {
  db.prepare('INSERT OR REPLACE INTO meta (key, value, crc) VALUES (?, ?, ?)').run(
    key,
    value,
    metaCrc(key, value),
  )
}
