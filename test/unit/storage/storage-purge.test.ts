/**
 * Storage retention and failure: the newest N complete snapshots and the log
 * after the oldest retained zxidStart are kept, the rest purged in bounded
 * batches while appends continue; truncation drops snapshots past the
 * truncation point; an aborted snapshot is collected; a full database is a
 * fatal FULL StorageError delivered to onFatal and pending callbacks.
 *
 * Must not import: anything of server/ other than server/storage.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { type Storage, type StorageError, StorageErrorCode } from '../../../server/storage/index.js'
import {
  cleanup,
  closeStorage,
  done,
  durable,
  entries,
  openStorage,
  rawDb,
  tempDataDir,
} from './storage-helpers.js'

afterEach(cleanup)

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function snapshot(storage: Storage, zxidStart: number, chunks: number): Promise<void> {
  storage.beginSnapshot(zxidStart)
  for (let i = 0; i < chunks; i++) storage.writeSnapshotChunk(new Uint8Array(4096).fill(i))
  await done((cb) => storage.finishSnapshot({ zxidEnd: zxidStart, digest: `d${zxidStart}` }, cb))
}

function countRows(dir: string): { snapshots: number; chunks: number; log: number; states: string[] } {
  const raw = rawDb(dir)
  try {
    return {
      snapshots: raw.prepare('SELECT count(*) FROM snapshots').pluck().get() as number,
      chunks: raw.prepare('SELECT count(*) FROM snapshot_chunks').pluck().get() as number,
      log: raw.prepare('SELECT count(*) FROM txnlog').pluck().get() as number,
      states: raw.prepare('SELECT state FROM snapshots ORDER BY id').pluck().all() as string[],
    }
  } finally {
    raw.close()
  }
}

describe('Storage retention', () => {
  it('keeps the newest N snapshots and the log after the oldest one, purging in small batches', async () => {
    const dir = tempDataDir()
    const { storage, logs } = openStorage(dir, {
      snapshotsRetained: 2,
      purgeLogRowsPerBatch: 7,
      purgeChunksPerBatch: 2,
    })
    for (let round = 0; round < 5; round++) {
      storage.append(entries(round * 100 + 1, 100))
      await snapshot(storage, round * 100 + 50, 5)
    }
    // Snapshots at zxidStart 50, 150, 250, 350, 450: keep 350 and 450, log after 350.
    await until(() => storage.oldestLogZxid() === 351, 'log purge')
    await until(() => countRows(dir).chunks === 10, 'chunk purge')
    const rows = countRows(dir)
    expect(rows).toMatchObject({ snapshots: 2, log: 150, states: ['complete', 'complete'] })
    // The worker reports the purge by message after its last delete: it may land just after the rows are gone.
    await until(() => logs.some((l) => l.msg === 'storage purge finished'), 'the purge report')
    storage.append(entries(501, 5))
    await durable(storage, 505)
    await closeStorage(storage)

    const { storage: again } = openStorage(dir)
    expect(again.recovery.snapshot).toMatchObject({ zxidStart: 450 })
    expect([...again.recovery.logEntries()].map((e) => e.zxid)).toEqual(
      Array.from({ length: 55 }, (_, i) => 451 + i),
    )
  })

  it('collects an aborted snapshot and one abandoned by a crash', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.beginSnapshot(0)
    storage.writeSnapshotChunk(new Uint8Array(100))
    await done((cb) => storage.abortSnapshot(cb))
    await until(() => countRows(dir).snapshots === 0, 'aborted snapshot purge')
    storage.beginSnapshot(0)
    storage.writeSnapshotChunk(new Uint8Array(100))
    await closeStorage(storage)
    expect(countRows(dir)).toMatchObject({ snapshots: 1, states: ['writing'] })
    const { storage: again } = openStorage(dir)
    expect(again.recovery.snapshot).toBeUndefined()
    // Leftovers are purged once the server is serving (after its first commit), not during recovery.
    await done((cb) => again.setEpochs({ acceptedEpoch: 1 }, cb))
    await until(() => countRows(dir).snapshots === 0, 'abandoned snapshot purge')
  })

  it('truncateAfter drops complete snapshots that end past the truncation point', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append(entries(1, 20))
    await snapshot(storage, 5, 1)
    await snapshot(storage, 15, 1)
    await done((cb) => storage.truncateAfter(10, cb))
    await until(() => countRows(dir).snapshots === 1, 'snapshot drop')
    await closeStorage(storage)
    const { storage: again } = openStorage(dir)
    expect(again.recovery.snapshot).toMatchObject({ zxidStart: 5 })
    expect(again.recovery.lastLogZxid).toBe(10)
  })

  it('rejects a chunk over snapshotChunkBytesMax', () => {
    const { storage } = openStorage(tempDataDir(), { snapshotChunkBytesMax: 1000 })
    storage.beginSnapshot(0)
    expect(() => storage.writeSnapshotChunk(new Uint8Array(1001))).toThrow(/snapshotChunkBytesMax \(1000\)/)
  })
})

describe('Storage failure', () => {
  it('makes a full database a fatal FULL error for onFatal and every pending callback', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir, { dbBytesMax: 512 * 1024 })
    const fatal: StorageError[] = []
    storage.onFatal((err) => fatal.push(err))
    const callbackErrors: (StorageError | undefined)[] = []
    for (let i = 0; i < 20; i++) storage.append(entries(i * 10 + 1, 10, 10_000))
    storage.setEpochs({ acceptedEpoch: 1 }, (err) => callbackErrors.push(err))
    await until(() => fatal.length > 0, 'fatal error')
    expect(fatal).toHaveLength(1)
    expect(fatal[0]!.code).toBe(StorageErrorCode.FULL)
    expect(fatal[0]!.message).toContain(dir)
    expect(callbackErrors.map((e) => e?.code)).toEqual([StorageErrorCode.FULL])
    expect(() => storage.append(entries(1000, 1))).toThrow(/FULL/)
    const closeErr = await new Promise<StorageError | undefined>((resolve) => storage.close(resolve))
    expect(closeErr?.code).toBe(StorageErrorCode.FULL)
    // What was durable before the failure is still there.
    const { storage: again } = openStorage(dir, { dbBytesMax: 64 * 1024 * 1024 })
    expect(again.recovery.lastLogZxid).toBeLessThan(200)
    expect([...again.recovery.logEntries()].length).toBe(again.recovery.lastLogZxid)
  })
})
