/**
 * Storage recovery: snapshots written through the worker and read back with
 * checksums, the newest valid snapshot chosen (falling back past a damaged
 * one), replay after zxidStart, a torn last record truncated with a warning,
 * a flipped byte mid-log refusing start with the file and zxid, and the
 * schema version check. Damage is done with a second raw connection.
 *
 * Must not import: anything of server/ other than server/storage.
 */
import { afterEach, describe, expect, it } from 'vitest'
import {
  SCHEMA_VERSION,
  type Storage,
  StorageError,
  StorageErrorCode,
} from '../../../server/storage/index.js'
import {
  cleanup,
  closeStorage,
  dbFile,
  done,
  durable,
  entries,
  openStorage,
  rawDb,
  recoveredZxids,
  tempDataDir,
} from './storage-helpers.js'

afterEach(cleanup)

function chunk(seed: number, size: number): Uint8Array {
  const out = new Uint8Array(size)
  for (let i = 0; i < size; i++) out[i] = (seed * 7 + i * 13) & 0xff
  return out
}

async function writeSnapshot(
  storage: Storage,
  s: { zxidStart: number; zxidEnd: number; chunks: number; seed: number },
): Promise<void> {
  storage.beginSnapshot(s.zxidStart)
  for (let i = 0; i < s.chunks; i++) storage.writeSnapshotChunk(chunk(s.seed + i, 1000 + i))
  await done((cb) => storage.finishSnapshot({ zxidEnd: s.zxidEnd, digest: `digest-${s.seed}` }, cb))
}

function snapshotBytes(storage: Storage): Uint8Array[] {
  const snap = storage.recovery.snapshot
  expect(snap).toBeDefined()
  return [...snap!.chunks()]
}

function expectStorageError(fn: () => unknown, code: string, message: RegExp): StorageError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError)
    expect((err as StorageError).code).toBe(code)
    expect((err as Error).message).toMatch(message)
    return err as StorageError
  }
  return expect.unreachable('no error thrown')
}

describe('Storage snapshots', () => {
  it('writes chunks through the worker while appends continue, and recovers snapshot + log after zxidStart', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append(entries(1, 50))
    storage.beginSnapshot(40)
    storage.writeSnapshotChunk(chunk(1, 5000))
    storage.append(entries(51, 10))
    storage.writeSnapshotChunk(chunk(2, 7000))
    await done((cb) => storage.finishSnapshot({ zxidEnd: 55, digest: 'abc' }, cb))
    await durable(storage, 60)
    await closeStorage(storage)

    const { storage: again } = openStorage(dir)
    const snap = again.recovery.snapshot!
    expect(snap).toMatchObject({
      zxidStart: 40,
      zxidEnd: 55,
      digest: 'abc',
      chunkCount: 2,
      totalBytes: 12_000,
    })
    const got = snapshotBytes(again)
    expect(got.map((c) => Buffer.from(c))).toEqual([Buffer.from(chunk(1, 5000)), Buffer.from(chunk(2, 7000))])
    expect(again.recovery.replayAfterZxid).toBe(40)
    expect(recoveredZxids(again)).toEqual(Array.from({ length: 20 }, (_, i) => 41 + i))
  })

  it('chooses the newest complete snapshot and ignores an unfinished one', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append(entries(1, 30))
    await writeSnapshot(storage, { zxidStart: 10, zxidEnd: 12, chunks: 2, seed: 1 })
    await writeSnapshot(storage, { zxidStart: 20, zxidEnd: 22, chunks: 3, seed: 2 })
    storage.beginSnapshot(25)
    storage.writeSnapshotChunk(chunk(9, 100))
    await closeStorage(storage)
    const { storage: again } = openStorage(dir)
    expect(again.recovery.snapshot).toMatchObject({ zxidStart: 20, digest: 'digest-2', chunkCount: 3 })
    expect(snapshotBytes(again)).toHaveLength(3)
  })

  it('falls back to an older snapshot when a chunk of the newest does not verify', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append(entries(1, 30))
    await writeSnapshot(storage, { zxidStart: 10, zxidEnd: 12, chunks: 2, seed: 1 })
    await writeSnapshot(storage, { zxidStart: 20, zxidEnd: 22, chunks: 3, seed: 2 })
    await closeStorage(storage)
    const raw = rawDb(dir)
    const newest = raw.prepare('SELECT max(id) FROM snapshots').pluck().get() as number
    raw
      .prepare('UPDATE snapshot_chunks SET data = ? WHERE snapshot_id = ? AND seq = 1')
      .run(Buffer.from(chunk(99, 1001)), newest)
    raw.close()

    const { storage: again, logs } = openStorage(dir)
    expect(again.recovery.snapshot).toMatchObject({ zxidStart: 10, digest: 'digest-1' })
    expect(recoveredZxids(again)[0]).toBe(11)
    expect(logs.some((l) => l.level === 'warn' && /does not verify/.test(l.msg))).toBe(true)
  })

  it('treats a snapshot with a missing chunk as damaged; with none left, replays the whole log if it was never purged', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append(entries(1, 10))
    await writeSnapshot(storage, { zxidStart: 0, zxidEnd: 6, chunks: 3, seed: 1 })
    await closeStorage(storage)
    const raw = rawDb(dir)
    raw.prepare('DELETE FROM snapshot_chunks WHERE seq = 2').run()
    raw.close()
    const { storage: again, logs } = openStorage(dir)
    expect(again.recovery.snapshot).toBeUndefined()
    expect(recoveredZxids(again)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
    expect(logs.some((l) => (l.obj as { problem?: string }).problem === '2 chunks found, 3 expected')).toBe(
      true,
    )
  })

  it('refuses to start when no snapshot verifies and the log was purged past the start', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append(entries(1, 10))
    await writeSnapshot(storage, { zxidStart: 5, zxidEnd: 6, chunks: 2, seed: 1 })
    await closeStorage(storage)
    const raw = rawDb(dir)
    raw.prepare("UPDATE snapshots SET digest = 'tampered'").run()
    raw.close()
    expectStorageError(
      () => openStorage(dir),
      StorageErrorCode.CORRUPT,
      /no snapshot that verifies.*purged through 0x5/,
    )
  })
})

describe('Storage log recovery', () => {
  async function logOf(count: number): Promise<string> {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append(entries(1, count))
    await durable(storage, count)
    await closeStorage(storage)
    return dir
  }

  it('truncates a torn last record (bad bytes) with a warning and keeps going', async () => {
    const dir = await logOf(20)
    const raw = rawDb(dir)
    raw.prepare('UPDATE txnlog SET data = substr(data, 1, 50) WHERE zxid = 20').run()
    raw.close()
    const { storage, logs } = openStorage(dir)
    expect(storage.recovery.tornTailZxid).toBe(20)
    expect(storage.recovery.lastLogZxid).toBe(19)
    expect(recoveredZxids(storage)).toHaveLength(19)
    expect(logs.find((l) => l.level === 'warn')?.msg).toMatch(/torn/)
    storage.append(entries(20, 5))
    await durable(storage, 24)
    await closeStorage(storage)
    const { storage: again } = openStorage(dir)
    expect(recoveredZxids(again)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1))
  })

  it('truncates a torn last record (bad crc)', async () => {
    const dir = await logOf(5)
    const raw = rawDb(dir)
    raw.prepare('UPDATE txnlog SET crc = (crc + 1) % 4294967296 WHERE zxid = 5').run()
    raw.close()
    const { storage } = openStorage(dir)
    expect(storage.recovery.tornTailZxid).toBe(5)
    expect(recoveredZxids(storage)).toEqual([1, 2, 3, 4])
  })

  it('refuses to start on a flipped byte mid-log, naming the file and the zxid', async () => {
    const dir = await logOf(50)
    const raw = rawDb(dir)
    const row = raw.prepare('SELECT data FROM txnlog WHERE zxid = 17').get() as { data: Buffer }
    row.data[10] = row.data[10]! ^ 0x04
    raw.prepare('UPDATE txnlog SET data = ? WHERE zxid = 17').run(row.data)
    raw.close()
    const { storage } = openStorage(dir)
    expect(storage.recovery.tornTailZxid).toBeUndefined()
    const err = expectStorageError(
      () => recoveredZxids(storage),
      StorageErrorCode.CORRUPT,
      /zxid 0x11 \(17\)/,
    )
    expect(err.message).toContain(dbFile(dir))
    expect(err.zxid).toBe(17)
    expect(err.file).toBe(dbFile(dir))
    // The damaged record is also refused when read for DIFF.
    expectStorageError(() => storage.readLogFrom(10, 20), StorageErrorCode.CORRUPT, /zxid 0x11/)
  })

  it('verifies the retained log before the snapshot too, but not records below the purge watermark', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append(entries(1, 30))
    await writeSnapshot(storage, { zxidStart: 10, zxidEnd: 10, chunks: 1, seed: 1 })
    await writeSnapshot(storage, { zxidStart: 20, zxidEnd: 20, chunks: 1, seed: 2 })
    await closeStorage(storage)
    // The retention rule keeps the log after zxid 10 (the oldest retained snapshot's start).
    const raw = rawDb(dir)
    raw.prepare('UPDATE txnlog SET crc = (crc + 2) % 4294967296 WHERE zxid IN (5, 15)').run()
    raw.close()
    const { storage: again } = openStorage(dir)
    expect(again.recovery.replayAfterZxid).toBe(20)
    expectStorageError(() => recoveredZxids(again), StorageErrorCode.CORRUPT, /zxid 0xf \(15\)/)
  })
})

describe('Storage schema', () => {
  it('refuses a newer schema version with a clear message', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    await closeStorage(storage)
    const raw = rawDb(dir)
    // Written the way a future release would write it (value and checksum agree).
    const { metaCrc } = await import('../../../server/storage/checksum.js')
    const next = String(SCHEMA_VERSION + 1)
    raw
      .prepare("UPDATE meta SET value = ?, crc = ? WHERE key = 'schema_version'")
      .run(next, metaCrc('schema_version', next))
    raw.close()
    const err = expectStorageError(
      () => openStorage(dir),
      StorageErrorCode.SCHEMA,
      /schema version 2, newer than/,
    )
    expect(err.message).toContain(dbFile(dir))
  })

  it('refuses a SQLite file that is not a Conclave database', () => {
    const dir = tempDataDir()
    const raw = rawDb(dir)
    raw.exec('CREATE TABLE other (x)')
    raw.close()
    expectStorageError(() => openStorage(dir), StorageErrorCode.SCHEMA, /is not a Conclave database/)
  })
})
