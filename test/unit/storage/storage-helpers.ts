/**
 * Helpers for the storage tests: temporary data directories (removed after
 * each test), opening Storage with a capturing logger, promise adapters for
 * its callbacks, and a second raw better-sqlite3 connection to damage a
 * database the way a disk would.
 *
 * Invariants: every Storage opened through `openStorage` is closed by
 * `cleanup()` even when the test failed; every wait has a deadline.
 *
 * Must not import: anything of server/ other than server/storage.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import {
  DB_FILE_NAME,
  type LogEntry,
  Storage,
  type StorageError,
  type StorageOptions,
} from '../../../server/storage/index.js'

export interface LogLine {
  level: 'info' | 'warn' | 'error'
  obj: object
  msg: string
}

const dirs: string[] = []
const opened: Storage[] = []

export function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-storage-'))
  dirs.push(dir)
  return dir
}

export function dbFile(dataDir: string): string {
  return join(dataDir, DB_FILE_NAME)
}

export function openStorage(
  dataDir: string,
  options: Partial<StorageOptions> = {},
): { storage: Storage; logs: LogLine[] } {
  const logs: LogLine[] = []
  const logger = {
    info: (obj: object, msg: string) => logs.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg: string) => logs.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg: string) => logs.push({ level: 'error', obj, msg }),
  }
  const storage = Storage.open({ dataDir, serverId: 1, logger, ...options })
  opened.push(storage)
  return { storage, logs }
}

/** Closes every Storage still open and removes the temp directories. */
export async function cleanup(): Promise<void> {
  const all = opened.splice(0)
  await Promise.all(all.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** Adapts a storage callback op to a promise (rejecting with the StorageError). */
export function done(start: (cb: (err: StorageError | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => start((err) => (err === undefined ? resolve() : reject(err))))
}

export function closeStorage(storage: Storage): Promise<void> {
  const i = opened.indexOf(storage)
  if (i >= 0) opened.splice(i, 1)
  return done((cb) => storage.close(cb))
}

/** Resolves when `storage` reports `zxid` durable (rejects after a deadline). */
export function durable(storage: Storage, zxid: number, timeoutMs = 10_000): Promise<void> {
  if (storage.durableZxid >= zxid) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`zxid ${zxid} not durable after ${timeoutMs} ms`)),
      timeoutMs,
    )
    storage.onDurable((upTo) => {
      if (upTo >= zxid) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
}

export function entry(zxid: number, size = 100): LogEntry {
  const data = new Uint8Array(size)
  for (let i = 0; i < size; i++) data[i] = (zxid * 31 + i) & 0xff
  return { zxid, data }
}

export function entries(from: number, count: number, size = 100): LogEntry[] {
  return Array.from({ length: count }, (_, i) => entry(from + i, size))
}

/** Collects the recovered log as zxids. */
export function recoveredZxids(storage: Storage): number[] {
  return [...storage.recovery.logEntries()].map((e) => e.zxid)
}

/** A second, raw connection to the database file (close it before reopening Storage). */
export function rawDb(dataDir: string): Database.Database {
  return new Database(dbFile(dataDir))
}
