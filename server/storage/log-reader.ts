/**
 * LogReader: synchronous, checksum-verified reads of the txn log on the main
 * thread's own connection (WAL readers never wait for the worker's writer):
 * recovery replay, readLogFrom for ZAB DIFF, oldest/last zxid.
 *
 * Invariants: every record returned has had its checksum verified; a bad
 * record throws a CORRUPT StorageError naming the database file and the zxid.
 * Reads see only committed (durable) records. While a returned iterator is
 * being consumed the connection is busy: finish it before other reads.
 *
 * Must not import: worker_threads, log-writer.ts (writes belong to the worker).
 */
import type Database from 'better-sqlite3'
import { formatZxid } from '../../shared/zxid.js'
import { logRecordCrc } from './checksum.js'
import { StorageError, StorageErrorCode, toStorageError } from './storage-error.js'
import type { LogEntry } from './worker-protocol.js'

interface LogRow {
  zxid: number
  data: unknown
  crc: number
}

/** True when the row's bytes and checksum agree. */
export function logRowValid(row: LogRow): row is LogRow & { data: Uint8Array } {
  return row.data instanceof Uint8Array && logRecordCrc(row.zxid, row.data) === row.crc
}

export function corruptRecordError(file: string, zxid: number, where: string): StorageError {
  return new StorageError({
    code: StorageErrorCode.CORRUPT,
    file,
    zxid,
    message:
      `checksum mismatch in txn log record zxid ${formatZxid(zxid)} (${zxid}) of ${file}, ${where}: ` +
      'the log is corrupt; refusing to use it. Move this data directory aside and let the server ' +
      'resync from the ensemble (SNAP), or restore it from a backup',
  })
}

export class LogReader {
  private readonly selectFrom: Database.Statement
  private readonly selectAfter: Database.Statement
  private readonly selectOldest: Database.Statement
  private readonly selectLast: Database.Statement

  constructor(
    db: Database.Database,
    private readonly file: string,
    private readonly readLogBytesMax: number,
  ) {
    this.selectFrom = db.prepare('SELECT zxid, data, crc FROM txnlog WHERE zxid >= ? ORDER BY zxid LIMIT ?')
    this.selectAfter = db.prepare('SELECT zxid, data, crc FROM txnlog WHERE zxid > ? ORDER BY zxid')
    this.selectOldest = db.prepare('SELECT min(zxid) FROM txnlog').pluck()
    this.selectLast = db.prepare('SELECT max(zxid) FROM txnlog').pluck()
  }

  /**
   * Up to `maxEntries` durable records with zxid >= `fromZxid`, ascending,
   * and at most readLogBytesMax bytes (but at least one record if any exists).
   */
  readFrom(fromZxid: number, maxEntries: number, maxBytes = this.readLogBytesMax): LogEntry[] {
    const out: LogEntry[] = []
    let bytes = 0
    try {
      for (const row of this.selectFrom.iterate(fromZxid, maxEntries) as IterableIterator<LogRow>) {
        if (!logRowValid(row)) throw corruptRecordError(this.file, row.zxid, 'read for DIFF')
        if (out.length > 0 && bytes + row.data.byteLength > maxBytes) break
        bytes += row.data.byteLength
        out.push({ zxid: row.zxid, data: row.data })
      }
    } catch (err) {
      throw toStorageError(err, this.file, 'reading the txn log')
    }
    return out
  }

  /**
   * Records with zxid > `yieldAfter`, ascending, read lazily. Every record
   * with zxid > `verifyAfter` (<= yieldAfter) is read and verified, so a
   * recovery can check the part of the log it does not replay too.
   */
  *entries(options: { verifyAfter: number; yieldAfter: number }): Generator<LogEntry> {
    const rows = this.selectAfter.iterate(
      Math.min(options.verifyAfter, options.yieldAfter),
    ) as IterableIterator<LogRow>
    try {
      for (;;) {
        let next: IteratorResult<LogRow>
        try {
          next = rows.next()
        } catch (err) {
          throw toStorageError(err, this.file, 'reading the txn log')
        }
        if (next.done === true) return
        const row = next.value
        if (!logRowValid(row)) throw corruptRecordError(this.file, row.zxid, 'with valid records after it')
        if (row.zxid > options.yieldAfter) yield { zxid: row.zxid, data: row.data }
      }
    } finally {
      rows.return?.()
    }
  }

  /** The oldest zxid still in the log (0 when the log is empty). */
  oldestZxid(): number {
    return this.number(this.selectOldest)
  }

  /** The newest durable zxid in the log (0 when the log is empty). */
  lastZxid(): number {
    return this.number(this.selectLast)
  }

  private number(stmt: Database.Statement): number {
    try {
      const v = stmt.get() as number | null
      return v ?? 0
    } catch (err) {
      throw toStorageError(err, this.file, 'reading the txn log')
    }
  }
}
