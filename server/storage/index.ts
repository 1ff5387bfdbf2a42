/**
 * The storage layer's public surface: Storage (open, append, onDurable,
 * epochs, meta, truncate, snapshots, reads, close), its error type, options
 * and recovery types. Callers import from here, not from the modules.
 *
 * Invariants: re-exports only; no code.
 *
 * Must not import: the worker modules (storage-worker.ts, log-writer.ts,
 * purger.ts), which run only inside the worker thread.
 */
export type { Epochs, RecoveredSnapshot, Recovery } from './recovery.js'
export { SCHEMA_VERSION } from './schema.js'
export {
  type DoneCallback,
  type DrainListener,
  type DurableListener,
  type FatalListener,
  Storage,
} from './storage.js'
export { StorageError, StorageErrorCode, type StorageErrorData } from './storage-error.js'
export {
  DB_FILE_NAME,
  SNAPSHOTS_RETAINED_DEFAULT,
  STORAGE_LIMIT_DEFAULTS,
  type StorageLimits,
  type StorageLogger,
  type StorageOptions,
} from './storage-options.js'
export type { LogEntry } from './worker-protocol.js'
