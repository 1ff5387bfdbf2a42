/**
 * StorageOptions: where the database lives and every limit of the storage
 * layer, each a named value with a unit suffix and a default.
 *
 * Invariants: `resolveStorageOptions` returns only positive integer limits
 * (inlineCommitBytesMax may be 0: no inline commits) and
 * the database path `<dataDir>/conclave.db`; anything else is a programmer
 * error (assert), since the config layer (zod, server/config.ts) validates
 * user input before it gets here.
 *
 * Must not import: better-sqlite3, worker_threads.
 */
import { join } from 'node:path'
import { assert } from '../../shared/assert.js'

/** Pino-compatible subset; the storage logs torn tails, purges and fatal errors. */
export interface StorageLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface StorageLimits {
  /** Largest single log entry. */
  entryBytesMax: number
  /** Most bytes the worker puts into one group-commit transaction (a bigger single entry goes alone). */
  batchBytesMax: number
  /** Most bytes issued to the worker and not yet durable; past it append() throws. */
  pendingBytesMax: number
  /** Above this many pending bytes append/writeSnapshotChunk return false; onDrain fires below it again. */
  pendingBytesHighWater: number
  /**
   * Above this many pending bytes the server admits no more writes (a leader
   * defers proposing them) until less than half of it is pending: its log
   * falling behind slows clients down instead of reaching pendingBytesMax.
   * A policy of the server, kept with the byte limits it is measured against.
   */
  writeThrottleBytes: number
  /** Largest single snapshot chunk. */
  snapshotChunkBytesMax: number
  /** Most snapshot bytes in one group commit (a bigger single chunk goes alone), so log appends are not held up. */
  snapshotBytesPerCommitMax: number
  /** Most bytes one readLogFrom() returns (it stops before the entry that would exceed it, but returns at least one). */
  readLogBytesMax: number
  /** Largest database file (SQLite max_page_count); past it writes fail with FULL. */
  dbBytesMax: number
  /** Log records deleted per purge transaction. */
  purgeLogRowsPerBatch: number
  /** Snapshot chunks deleted per purge transaction. */
  purgeChunksPerBatch: number
  /**
   * Most log bytes the main thread commits itself when the storage worker is
   * idle (inline-writer.ts), blocking its event loop for that one fsync
   * instead of paying two thread wake-ups; 0 sends every commit to the worker.
   */
  inlineCommitBytesMax: number
  /** A commit slower than this, inline or the worker's (a slow or busy disk), sends commits to the worker for the next second. */
  inlineCommitMsMax: number
}

export interface StorageOptions extends Partial<StorageLimits> {
  dataDir: string
  /** This server's id; a data directory that holds another id refuses to open. */
  serverId: number
  /** Complete snapshots kept by the purge (default 3, at least 1). */
  snapshotsRetained?: number
  logger?: StorageLogger
}

export interface ResolvedStorageOptions extends StorageLimits {
  dataDir: string
  file: string
  serverId: number
  snapshotsRetained: number
}

export const DB_FILE_NAME = 'conclave.db'

const MiB = 1024 * 1024

export const STORAGE_LIMIT_DEFAULTS: StorageLimits = {
  entryBytesMax: 2 * MiB,
  batchBytesMax: 8 * MiB,
  pendingBytesMax: 256 * MiB,
  pendingBytesHighWater: 8 * MiB,
  writeThrottleBytes: 32 * MiB,
  snapshotChunkBytesMax: 4 * MiB,
  snapshotBytesPerCommitMax: 1 * MiB,
  readLogBytesMax: 64 * MiB,
  dbBytesMax: 1024 * 1024 * MiB,
  purgeLogRowsPerBatch: 1_000,
  purgeChunksPerBatch: 16,
  inlineCommitBytesMax: 64 * 1024,
  inlineCommitMsMax: 5,
}

/** Limits that may be 0 (it turns the feature off); every other limit must be positive. */
const ZERO_ALLOWED: ReadonlySet<keyof StorageLimits> = new Set(['inlineCommitBytesMax'])

export const SNAPSHOTS_RETAINED_DEFAULT = 3

export function resolveStorageOptions(options: StorageOptions): ResolvedStorageOptions {
  const limits: StorageLimits = { ...STORAGE_LIMIT_DEFAULTS }
  // Unless given, the throttle point follows smaller pending limits down (a quarter of them, never under the high water mark).
  if (options.writeThrottleBytes === undefined && options.pendingBytesMax !== undefined)
    limits.writeThrottleBytes = Math.max(
      options.pendingBytesHighWater ?? limits.pendingBytesHighWater,
      Math.min(limits.writeThrottleBytes, Math.floor(options.pendingBytesMax / 4)),
    )
  for (const key of Object.keys(STORAGE_LIMIT_DEFAULTS) as (keyof StorageLimits)[]) {
    const value = options[key]
    if (value !== undefined) limits[key] = value
    const least = ZERO_ALLOWED.has(key) ? 0 : 1
    assert(
      Number.isSafeInteger(limits[key]) && limits[key] >= least,
      `storage option ${key} must be an integer >= ${least}, got ${limits[key]}`,
    )
  }
  assert(
    limits.pendingBytesHighWater <= limits.pendingBytesMax,
    'pendingBytesHighWater must be <= pendingBytesMax',
  )
  assert(
    limits.pendingBytesHighWater <= limits.writeThrottleBytes &&
      limits.writeThrottleBytes <= limits.pendingBytesMax,
    'writeThrottleBytes must be between pendingBytesHighWater and pendingBytesMax',
  )
  const snapshotsRetained = options.snapshotsRetained ?? SNAPSHOTS_RETAINED_DEFAULT
  assert(Number.isSafeInteger(snapshotsRetained) && snapshotsRetained >= 1, 'snapshotsRetained must be >= 1')
  assert(Number.isSafeInteger(options.serverId) && options.serverId >= 0, 'serverId must be an integer >= 0')
  assert(options.dataDir.length > 0, 'dataDir must not be empty')
  return {
    ...limits,
    dataDir: options.dataDir,
    file: join(options.dataDir, DB_FILE_NAME),
    serverId: options.serverId,
    snapshotsRetained,
  }
}

/** The default logger: one JSON line per event on stderr (the server passes its pino child instead). */
export const stderrLogger: StorageLogger = {
  info: (obj, msg) =>
    process.stderr.write(`${JSON.stringify({ level: 'info', component: 'storage', ...obj, msg })}\n`),
  warn: (obj, msg) =>
    process.stderr.write(`${JSON.stringify({ level: 'warn', component: 'storage', ...obj, msg })}\n`),
  error: (obj, msg) =>
    process.stderr.write(`${JSON.stringify({ level: 'error', component: 'storage', ...obj, msg })}\n`),
}
