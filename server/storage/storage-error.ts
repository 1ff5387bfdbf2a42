/**
 * StorageError: the one error class for environment failures of the storage
 * layer (I/O errors, a full disk, SQLite or checksum corruption, a schema too
 * new, a limit exceeded, use after close). Durability failures are fatal and
 * never retried: the server exits on them.
 *
 * Invariants: every message names the database file; corruption errors also
 * name the zxid (log) or snapshot id when one is known. `code` is a stable
 * string; `sqliteCode` keeps SQLite's own code when there was one.
 * Errors cross the worker boundary as plain `StorageErrorData` and are rebuilt
 * on the main thread with `StorageError.fromData`.
 *
 * Must not import: better-sqlite3 (it is used by storage files, not by the
 * errors they throw), anything outside shared/.
 */

export const StorageErrorCode = {
  /** An I/O failure: EIO, a failed fsync, a file that cannot be opened or written. */
  IO: 'IO',
  /** The disk, or the configured database size limit, is full. */
  FULL: 'FULL',
  /** SQLite reported corruption, or one of our checksums did not verify. */
  CORRUPT: 'CORRUPT',
  /** The database has a schema this build does not know. */
  SCHEMA: 'SCHEMA',
  /** The data directory belongs to another server id. */
  SERVER_ID_MISMATCH: 'SERVER_ID_MISMATCH',
  /** A configured limit was exceeded (entry size, pending bytes, chunk size). */
  LIMIT: 'LIMIT',
  /** The storage was closed, or failed earlier. */
  CLOSED: 'CLOSED',
  /** Anything else from SQLite or the worker (a bug or an unexpected environment). */
  INTERNAL: 'INTERNAL',
} as const

export type StorageErrorCode = (typeof StorageErrorCode)[keyof typeof StorageErrorCode]

/** The plain form of a StorageError, as posted between the worker and the main thread. */
export interface StorageErrorData {
  code: StorageErrorCode
  message: string
  file: string
  zxid?: number | undefined
  sqliteCode?: string | undefined
}

export class StorageError extends Error {
  override name = 'StorageError'
  readonly code: StorageErrorCode
  readonly file: string
  readonly zxid: number | undefined
  readonly sqliteCode: string | undefined

  constructor(data: StorageErrorData, options?: { cause?: unknown }) {
    super(data.message, options)
    this.code = data.code
    this.file = data.file
    this.zxid = data.zxid
    this.sqliteCode = data.sqliteCode
  }

  toData(): StorageErrorData {
    return {
      code: this.code,
      message: this.message,
      file: this.file,
      zxid: this.zxid,
      sqliteCode: this.sqliteCode,
    }
  }

  static fromData(data: StorageErrorData): StorageError {
    return new StorageError(data)
  }
}

/** Maps SQLite's primary result code (and Node's errno codes) to ours. */
function codeFor(sqliteCode: string | undefined): StorageErrorCode {
  if (sqliteCode === undefined) return StorageErrorCode.INTERNAL
  if (sqliteCode.startsWith('SQLITE_CORRUPT') || sqliteCode === 'SQLITE_NOTADB')
    return StorageErrorCode.CORRUPT
  if (sqliteCode === 'SQLITE_FULL' || sqliteCode === 'ENOSPC') return StorageErrorCode.FULL
  if (
    sqliteCode.startsWith('SQLITE_IOERR') ||
    sqliteCode.startsWith('SQLITE_CANTOPEN') ||
    sqliteCode.startsWith('SQLITE_READONLY') ||
    sqliteCode.startsWith('SQLITE_BUSY') ||
    sqliteCode === 'SQLITE_PERM' ||
    ['EIO', 'EACCES', 'EPERM', 'EROFS', 'ENOENT', 'ENOTDIR'].includes(sqliteCode)
  ) {
    return StorageErrorCode.IO
  }
  return StorageErrorCode.INTERNAL
}

/**
 * Wraps whatever was thrown by SQLite or the file system into a StorageError
 * naming `file` and what we were doing. A StorageError passes through as is.
 */
export function toStorageError(err: unknown, file: string, doing: string): StorageError {
  if (err instanceof StorageError) return err
  const sqliteCode =
    typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
      ? ((err as { code: string }).code as string)
      : undefined
  const detail = err instanceof Error ? err.message : String(err)
  const code = codeFor(sqliteCode)
  return new StorageError(
    { code, file, sqliteCode, message: `storage ${code} while ${doing} in ${file}: ${detail}` },
    { cause: err },
  )
}
