/**
 * Storage log and meta: appends become durable in order through group
 * commit; truncation; epochs and misc meta survive a reopen; ordering of mixed
 * operations; limits and use after close. Real SQLite files in a temp dir.
 *
 * Must not import: anything of server/ other than server/storage.
 */
import { statSync } from 'node:fs'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { StorageError, StorageErrorCode } from '../../../server/storage/index.js'
import {
  cleanup,
  closeStorage,
  dbFile,
  done,
  durable,
  entries,
  entry,
  openStorage,
  rawDb,
  recoveredZxids,
  tempDataDir,
} from './storage-helpers.js'

afterEach(cleanup)

describe('Storage log', () => {
  it('reports durable zxids in increasing order and keeps every entry', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    const reported: number[] = []
    storage.onDurable((z) => reported.push(z))
    for (let i = 0; i < 50; i++) storage.append(entries(i * 20 + 1, 20))
    await durable(storage, 1000)
    expect(reported.at(-1)).toBe(1000)
    for (let i = 1; i < reported.length; i++) expect(reported[i]!).toBeGreaterThan(reported[i - 1]!)
    // Group commit: far fewer commits than append calls when they arrive together.
    expect(reported.length).toBeLessThan(50)
    await closeStorage(storage)
    const { storage: again } = openStorage(dir)
    expect(again.recovery.lastLogZxid).toBe(1000)
    expect(recoveredZxids(again)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1))
    const back = again.readLogFrom(500, 3)
    expect(back.map((e) => e.zxid)).toEqual([500, 501, 502])
    expect(Buffer.from(back[0]!.data)).toEqual(Buffer.from(entry(500).data))
    expect(again.oldestLogZxid()).toBe(1)
  })

  it('groups appends that arrive while a commit waits, never reporting past what was issued', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append([entry(1)])
    await durable(storage, 1)
    const reported: number[] = []
    storage.onDurable((z) => {
      expect(z).toBeLessThanOrEqual(storage.lastZxid)
      reported.push(z)
    })
    // A second connection holds SQLite's write lock, so the worker's next
    // commit waits for it (busy_timeout) as if the disk stood still, while 300
    // appends arrive one per event-loop turn: each is its own message to the
    // worker, so only the worker's group commit can put them together.
    const raw = rawDb(dir)
    raw.pragma('busy_timeout = 10000')
    raw.exec('BEGIN IMMEDIATE')
    try {
      for (let z = 2; z <= 301; z++) {
        storage.append([entry(z)])
        await new Promise((r) => setImmediate(r))
      }
      expect(storage.durableZxid).toBe(1)
    } finally {
      raw.exec('ROLLBACK')
      raw.close()
    }
    await durable(storage, 301)
    expect(reported.at(-1)).toBe(301)
    for (let i = 1; i < reported.length; i++) expect(reported[i]!).toBeGreaterThan(reported[i - 1]!)
    // One commit per append would report 300 times. The commit that was
    // waiting takes what had reached the worker when it began (typically one
    // append), the next takes everything queued behind it.
    expect(reported.length).toBeLessThan(10)
  })

  it('commits on the worker for a while after a slow worker commit, not inline (issue 21)', async () => {
    const dir = tempDataDir()
    // Slow means over 200 ms here, so that a busy test machine's commits count as fast.
    const { storage } = openStorage(dir, { inlineCommitMsMax: 200 })
    // A lone append while the worker is idle is committed inline (the first may
    // meet the worker still opening: it goes to the worker).
    let z = 0
    while (storage.commitCounts.inline === 0 && z < 20) {
      storage.append([entry(++z)])
      await durable(storage, z)
    }
    const before = storage.commitCounts
    expect(before.inline).toBe(1)
    // A second connection holds SQLite's write lock past inlineCommitMsMax: the
    // next append finds it busy and goes to the worker, whose commit waits for
    // it (busy_timeout) as for a slow disk.
    const raw = rawDb(dir)
    raw.exec('BEGIN IMMEDIATE')
    try {
      storage.append([entry(++z)])
      await new Promise((r) => setTimeout(r, 300))
      expect(storage.durableZxid).toBe(z - 1)
    } finally {
      raw.exec('ROLLBACK')
      raw.close()
    }
    await durable(storage, z)
    expect(storage.commitCounts).toEqual({ inline: 1, worker: before.worker + 1 })
    // The worker is idle again, but its last commit was slow: an inline commit
    // now would likely block the event loop as long, so for the next second
    // the worker takes them all (five, lest one meet the worker holding the
    // lock for a step of its own and go there anyway).
    for (let i = 0; i < 5; i++) {
      storage.append([entry(++z)])
      await durable(storage, z)
    }
    expect(storage.commitCounts).toEqual({ inline: 1, worker: before.worker + 6 })
  })

  it('commits an append queued behind many snapshot chunks in the next group, ahead of them (issue 21)', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir, { snapshotBytesPerCommitMax: 1000 })
    let commits = 0
    storage.onGroupCommit(() => commits++)
    let commitsWhenDurable = 0
    storage.onDurable((z) => {
      if (z === 1) commitsWhenDurable = commits
    })
    // Issued in one turn, so the worker finds them all queued: ten chunks
    // (one group's share each), then an append, then the snapshot's finish.
    storage.beginSnapshot(0)
    for (let i = 0; i < 10; i++) storage.writeSnapshotChunk(new Uint8Array(1000).fill(i))
    storage.append([entry(1)])
    const finished = done((cb) => storage.finishSnapshot({ zxidEnd: 1, digest: '' }, cb))
    await durable(storage, 1)
    // Behind the chunks it would wait for ten commits of theirs.
    expect(commitsWhenDurable).toBe(1)
    await finished
    expect(commits).toBe(10)
    // The chunks, still in order, and the finish after the last of them.
    const raw = rawDb(dir)
    try {
      const chunks = raw.prepare('SELECT seq, data FROM snapshot_chunks ORDER BY seq').all() as {
        seq: number
        data: Buffer
      }[]
      expect(chunks.map((c) => [c.seq, c.data.length, c.data[0]])).toEqual(
        Array.from({ length: 10 }, (_, i) => [i, 1000, i]),
      )
      const snap = raw.prepare('SELECT state, chunk_count AS n FROM snapshots').all()
      expect(snap).toEqual([{ state: 'complete', n: 10 }])
    } finally {
      raw.close()
    }
  })

  it('splits a batch larger than batchBytesMax over several commits', async () => {
    const { storage } = openStorage(tempDataDir(), { batchBytesMax: 10_000 })
    const reported: number[] = []
    storage.onDurable((z) => reported.push(z))
    storage.append(entries(1, 100, 1000))
    await durable(storage, 100)
    expect(reported.length).toBeGreaterThanOrEqual(10)
    expect(reported.at(-1)).toBe(100)
  })

  it('truncates after a zxid, durably, and accepts appends from there', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append(entries(1, 10))
    await done((cb) => storage.truncateAfter(6, cb))
    expect(storage.lastZxid).toBe(6)
    storage.append([entry(7, 5), entry(20, 5)])
    await durable(storage, 20)
    expect(storage.readLogFrom(0, 100).map((e) => e.zxid)).toEqual([1, 2, 3, 4, 5, 6, 7, 20])
    expect(() => storage.append([entry(20)])).toThrow(/does not follow/)
    await closeStorage(storage)
    const { storage: again } = openStorage(dir)
    expect(recoveredZxids(again)).toEqual([1, 2, 3, 4, 5, 6, 7, 20])
    expect(again.readLogFrom(7, 1)[0]!.data.byteLength).toBe(5)
  })

  it('bounds readLogFrom by maxEntries, maxBytes and readLogBytesMax, returning at least one entry', async () => {
    const { storage } = openStorage(tempDataDir(), { readLogBytesMax: 2500 })
    storage.append(entries(1, 10, 1000))
    await durable(storage, 10)
    expect(storage.readLogFrom(1, 100).map((e) => e.zxid)).toEqual([1, 2])
    expect(storage.readLogFrom(4, 1).map((e) => e.zxid)).toEqual([4])
    expect(storage.readLogFrom(11, 5)).toEqual([])
    // A caller's own byte bound, never above readLogBytesMax.
    expect(storage.readLogFrom(1, 100, 1500).map((e) => e.zxid)).toEqual([1])
    expect(storage.readLogFrom(1, 100, 1_000_000).map((e) => e.zxid)).toEqual([1, 2])
    const big = openStorage(tempDataDir(), { readLogBytesMax: 10 }).storage
    big.append(entries(1, 2, 1000))
    await durable(big, 2)
    expect(big.readLogFrom(0, 5).map((e) => e.zxid)).toEqual([1])
  })

  it('applies mixed operations in issue order', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    const order: string[] = []
    storage.onDurable((z) => order.push(`durable ${z}`))
    storage.append(entries(1, 5))
    storage.truncateAfter(3, () => order.push('truncate'))
    storage.append(entries(4, 2))
    storage.setEpochs({ acceptedEpoch: 1 }, () => order.push('epochs'))
    await done((cb) => storage.setMeta('secret', 'abc', cb))
    expect(order.indexOf('truncate')).toBeGreaterThan(order.indexOf('durable 5'))
    expect(order.indexOf('epochs')).toBeGreaterThan(order.indexOf('truncate'))
    expect(storage.readLogFrom(0, 10).map((e) => e.zxid)).toEqual([1, 2, 3, 4, 5])
  })

  it('rejects an entry over entryBytesMax and a backlog over pendingBytesMax', async () => {
    const { storage } = openStorage(tempDataDir(), {
      entryBytesMax: 1000,
      pendingBytesMax: 5000,
      pendingBytesHighWater: 3000,
    })
    const tooBig = (): boolean => storage.append([entry(1, 1001)])
    expect(tooBig).toThrow(StorageError)
    expect(tooBig).toThrow(/entryBytesMax \(1000\)/)
    let drains = 0
    storage.onDrain(() => drains++)
    expect(storage.append(entries(1, 2, 1000))).toBe(true)
    // At or above the high water mark the caller is told to wait for onDrain.
    expect(storage.append(entries(3, 2, 1000))).toBe(false)
    expect(storage.pendingBytes).toBe(4000)
    expect(() => storage.append(entries(5, 2, 1000))).toThrow(/pendingBytesMax/)
    await durable(storage, 4)
    expect(storage.pendingBytes).toBe(0)
    expect(drains).toBe(1)
    storage.append(entries(5, 2, 1000))
    await durable(storage, 6)
  })

  it('refuses writes after close with a CLOSED error', async () => {
    const { storage } = openStorage(tempDataDir())
    storage.append([entry(1)])
    await closeStorage(storage)
    try {
      storage.append([entry(2)])
      expect.unreachable()
    } catch (err) {
      expect((err as StorageError).code).toBe(StorageErrorCode.CLOSED)
    }
  })

  it('close waits for everything issued to be durable', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    storage.append(entries(1, 2000))
    storage.setEpochs({ acceptedEpoch: 3 }, () => {})
    await closeStorage(storage)
    const { storage: again } = openStorage(dir)
    expect(again.recovery.lastLogZxid).toBe(2000)
    expect(again.epochs.acceptedEpoch).toBe(3)
  })

  it('keeps the WAL bounded while checkpoints run beside a steady stream of commits', async () => {
    // 80 MiB in commits of 1 MiB. Checkpoints (every 8 MiB) run on the checkpoint
    // worker while the writer goes on; SQLite restarts the WAL only once every
    // frame is copied, which the writer's short catch-up pass makes happen. If it
    // never did, the WAL would hold all 80 MiB. Bound: 8 MiB, plus 16 MiB more
    // while a checkpointer is still starting (cold TypeScript cache in tests).
    const dir = tempDataDir()
    const { storage, logs } = openStorage(dir)
    const size = 256 * 1024
    let walMax = 0
    for (let round = 0; round < 80; round++) {
      storage.append(entries(round * 4 + 1, 4, size))
      await durable(storage, round * 4 + 4)
      walMax = Math.max(walMax, walBytes(dir))
    }
    expect(walMax).toBeGreaterThan(0)
    expect(walMax).toBeLessThan(32 * 1024 * 1024)
    expect(logs.filter((l) => l.level !== 'info')).toEqual([])
    await closeStorage(storage)
    const { storage: again } = openStorage(dir)
    expect(recoveredZxids(again)).toEqual(Array.from({ length: 320 }, (_, i) => i + 1))
    expect(Buffer.from(again.readLogFrom(150, 1)[0]!.data)).toEqual(Buffer.from(entry(150, size).data))
  })
})

function walBytes(dir: string): number {
  try {
    return statSync(`${dbFile(dir)}-wal`).size
  } catch {
    return 0
  }
}

describe('Storage meta', () => {
  it('keeps epochs and misc meta across reopen, with a checksum on each row', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir)
    expect(storage.epochs).toEqual({ acceptedEpoch: 0, currentEpoch: 0 })
    await done((cb) => storage.setEpochs({ acceptedEpoch: 5 }, cb))
    expect(storage.epochs).toEqual({ acceptedEpoch: 5, currentEpoch: 0 })
    await done((cb) => storage.setEpochs({ currentEpoch: 5 }, cb))
    await done((cb) => storage.setMeta('ensembleSecret', 's3cret', cb))
    expect(storage.getMeta('ensembleSecret')).toBe('s3cret')
    expect(() => storage.setEpochs({ acceptedEpoch: 4 }, () => {})).toThrow(/never decrease/)
    await closeStorage(storage)

    const { storage: again } = openStorage(dir)
    expect(again.recovery.epochs).toEqual({ acceptedEpoch: 5, currentEpoch: 5 })
    expect(again.getMeta('ensembleSecret')).toBe('s3cret')
    await closeStorage(again)

    const raw = rawDb(dir)
    raw.prepare("UPDATE meta SET value = '6' WHERE key = 'accepted_epoch'").run()
    raw.close()
    expect(() => openStorage(dir)).toThrow(/checksum mismatch in meta key "accepted_epoch"/)
  })

  it('never loses an epoch: each callback means the value survives a reopen (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(3), fc.nat(3)), { minLength: 1, maxLength: 8 }),
        async (steps) => {
          const dir = tempDataDir()
          const { storage } = openStorage(dir)
          let accepted = 0
          let current = 0
          for (const [da, dc] of steps) {
            accepted += da
            current = Math.min(accepted, current + dc)
            await done((cb) => storage.setEpochs({ acceptedEpoch: accepted, currentEpoch: current }, cb))
          }
          await closeStorage(storage)
          const { storage: again } = openStorage(dir)
          expect(again.epochs).toEqual({ acceptedEpoch: accepted, currentEpoch: current })
          await closeStorage(again)
        },
      ),
      { numRuns: 10 },
    )
  })

  it('refuses a data directory that belongs to another server id', async () => {
    const dir = tempDataDir()
    const { storage } = openStorage(dir, { serverId: 1 })
    await closeStorage(storage)
    try {
      openStorage(dir, { serverId: 2 })
      expect.unreachable()
    } catch (err) {
      expect((err as StorageError).code).toBe(StorageErrorCode.SERVER_ID_MISMATCH)
      expect((err as Error).message).toMatch(/belongs to server id 1, not 2/)
    }
  })
})
