/**
 * Recovery at startup, synchronous, on the main thread's connection before
 * the worker starts: read meta, check the server id, cut a torn tail, choose
 * the newest snapshot that verifies, and describe the log to replay after it.
 *
 * Rules:
 * - A bad checksum on the LAST log record is a torn tail: that one record is
 *   deleted (durably) and a warning logged.
 * - A bad checksum on any other record is mid-log corruption: replay throws a
 *   CORRUPT StorageError naming the file and the zxid, and the server refuses
 *   to start. Replay verifies the whole retained log (everything above the
 *   purge watermark), not only the part after the snapshot.
 * - A complete snapshot that does not verify is marked garbage (with a
 *   warning) and the next older one is tried; one whose zxidStart is below
 *   the purge watermark cannot be replayed from and is skipped. With no
 *   usable snapshot the tree starts empty, which is only possible while the
 *   log has never been purged; otherwise startup is refused.
 *
 * Invariants: nothing here runs once the worker writes, so these few writes
 * never contend with it.
 *
 * Must not import: worker_threads, log-writer.ts.
 */
import type Database from 'better-sqlite3'
import { formatZxid } from '../../shared/zxid.js'
import { type LogReader, logRowValid } from './log-reader.js'
import { MetaKey, readMeta, readMetaNumber, writeMeta } from './schema.js'
import { type SnapshotInfo, SnapshotReader } from './snapshot-reader.js'
import { StorageError, StorageErrorCode, toStorageError } from './storage-error.js'
import type { StorageLogger } from './storage-options.js'
import type { LogEntry } from './worker-protocol.js'

export interface Epochs {
  acceptedEpoch: number
  currentEpoch: number
}

export interface RecoveredSnapshot {
  zxidStart: number
  zxidEnd: number
  digest: string
  chunkCount: number
  totalBytes: number
  /** The chunks in order, verified as they are read (read lazily; iterate once). */
  chunks(): Iterable<Uint8Array>
}

export interface Recovery {
  epochs: Epochs
  serverId: number
  /** The newest snapshot that verified, or undefined: start from an empty tree. */
  snapshot: RecoveredSnapshot | undefined
  /** Replay starts after this zxid (the snapshot's zxidStart, or 0). */
  replayAfterZxid: number
  /** Log records to replay, zxid > replayAfterZxid, ascending, verified (read lazily; iterate once). */
  logEntries(): Iterable<LogEntry>
  /** The newest zxid in the log after the torn-tail repair (0 if the log is empty). */
  lastLogZxid: number
  /** The zxid of the torn last record that was cut, if there was one. */
  tornTailZxid: number | undefined
}

export interface RecoveryContext {
  db: Database.Database
  file: string
  serverId: number
  logger: StorageLogger
  logReader: LogReader
}

export function recover(ctx: RecoveryContext): Recovery {
  const { db, file } = ctx
  try {
    checkServerId(ctx)
    const epochs: Epochs = {
      acceptedEpoch: readMetaNumber(db, file, MetaKey.ACCEPTED_EPOCH),
      currentEpoch: readMetaNumber(db, file, MetaKey.CURRENT_EPOCH),
    }
    const tornTailZxid = repairTornTail(ctx)
    const watermark = readMetaNumber(db, file, MetaKey.LOG_PURGED_THROUGH)
    const chosen = chooseSnapshot(ctx, watermark)
    const snapshots = new SnapshotReader(db, file)
    const replayAfterZxid = chosen?.zxidStart ?? 0
    const snapshot: RecoveredSnapshot | undefined =
      chosen === undefined
        ? undefined
        : {
            zxidStart: chosen.zxidStart,
            zxidEnd: chosen.zxidEnd,
            digest: chosen.digest,
            chunkCount: chosen.chunkCount,
            totalBytes: chosen.totalBytes,
            chunks: () => snapshots.chunks(chosen),
          }
    return {
      epochs,
      serverId: ctx.serverId,
      snapshot,
      replayAfterZxid,
      // Records at or below the watermark are logically deleted (a purge was cut short): not verified.
      logEntries: () => ctx.logReader.entries({ verifyAfter: watermark, yieldAfter: replayAfterZxid }),
      lastLogZxid: ctx.logReader.lastZxid(),
      tornTailZxid,
    }
  } catch (err) {
    throw toStorageError(err, file, 'recovering')
  }
}

function checkServerId({ db, file, serverId }: RecoveryContext): void {
  const stored = readMeta(db, file, MetaKey.SERVER_ID)
  if (stored === undefined) {
    db.transaction(() => writeMeta(db, MetaKey.SERVER_ID, String(serverId))).immediate()
    return
  }
  if (stored !== String(serverId)) {
    throw new StorageError({
      code: StorageErrorCode.SERVER_ID_MISMATCH,
      file,
      message: `${file} belongs to server id ${stored}, not ${serverId}: check the data directory and the server id`,
    })
  }
}

/** Cuts the last log record if its checksum does not verify; returns its zxid. */
function repairTornTail({ db, file, logger }: RecoveryContext): number | undefined {
  const last = db.prepare('SELECT zxid, data, crc FROM txnlog ORDER BY zxid DESC LIMIT 1').get() as
    | { zxid: number; data: unknown; crc: number }
    | undefined
  if (last === undefined || logRowValid(last)) return undefined
  db.transaction(() => db.prepare('DELETE FROM txnlog WHERE zxid = ?').run(last.zxid)).immediate()
  logger.warn(
    { file, zxid: last.zxid, zxidHex: formatZxid(last.zxid) },
    'storage: the last txn log record was torn (bad checksum) and has been truncated',
  )
  return last.zxid
}

function chooseSnapshot({ db, file, logger }: RecoveryContext, watermark: number): SnapshotInfo | undefined {
  const reader = new SnapshotReader(db, file)
  for (const info of reader.completeSnapshots()) {
    if (info.zxidStart < watermark) {
      logger.warn(
        { file, snapshotId: info.id, watermark },
        'storage: snapshot predates the purged log; skipped',
      )
      continue
    }
    const problem = reader.verify(info)
    if (problem === undefined) return info
    logger.warn(
      { file, snapshotId: info.id, zxidEnd: info.zxidEnd, problem },
      'storage: snapshot does not verify; marked garbage, trying an older one',
    )
    db.transaction(() =>
      db.prepare("UPDATE snapshots SET state = 'garbage' WHERE id = ?").run(info.id),
    ).immediate()
  }
  if (watermark > 0) {
    throw new StorageError({
      code: StorageErrorCode.CORRUPT,
      file,
      message:
        `${file} has no snapshot that verifies, and its log was purged through ${formatZxid(watermark)}: ` +
        'cannot recover; move this data directory aside and let the server resync from the ensemble (SNAP)',
    })
  }
  return undefined
}
