/**
 * Purger steps commit without an fsync (synchronous=NORMAL) and always hand
 * the connection back at synchronous=FULL — on success and when a step
 * throws — so the log commits that follow stay durable. A step deletes at
 * most purgeLogRowsPerBatch records and never one above the watermark.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { Purger } from '../../../server/storage/purger.js'
import { ensureSchema, MetaKey, openConnection, writeMeta } from '../../../server/storage/schema.js'

const FULL = 2
const opened: { db: Database.Database; dir: string }[] = []
afterEach(() => {
  for (const { db, dir } of opened.splice(0)) {
    if (db.open) db.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

function setup(rows: number, watermark: number): { db: Database.Database; purger: Purger } {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-purger-'))
  const file = join(dir, 'conclave.db')
  const db = openConnection(file, { dbBytesMax: 1 << 30 })
  opened.push({ db, dir })
  ensureSchema(db, file)
  const insert = db.prepare('INSERT INTO txnlog (zxid, data, crc) VALUES (?, ?, 0)')
  db.transaction(() => {
    for (let z = 1; z <= rows; z++) insert.run(z, Buffer.alloc(8))
  })()
  writeMeta(db, MetaKey.LOG_PURGED_THROUGH, String(watermark))
  const init = {
    file,
    dbBytesMax: 1 << 30,
    batchBytesMax: 1 << 20,
    snapshotBytesPerCommitMax: 1 << 20,
    snapshotsRetained: 3,
    purgeLogRowsPerBatch: 10,
    purgeChunksPerBatch: 2,
  }
  return { db, purger: new Purger(db, init, () => {}) }
}

const count = (db: Database.Database): number =>
  db.prepare('SELECT count(*) FROM txnlog').pluck().get() as number

describe('Purger', () => {
  it('deletes in bounded steps up to the watermark and leaves the connection at synchronous=FULL', () => {
    const { db, purger } = setup(100, 35)
    expect(db.pragma('synchronous', { simple: true })).toBe(FULL)
    purger.schedule()
    const seen: number[] = []
    for (let i = 0; i < 20 && purger.hasWork(); i++) {
      purger.step()
      seen.push(count(db))
      expect(db.pragma('synchronous', { simple: true })).toBe(FULL)
    }
    expect(purger.hasWork()).toBe(false)
    // The chunk phase first (nothing to delete), then 10, 10, 10 and the last 5 records.
    expect(seen).toEqual([100, 90, 80, 70, 65])
    expect(db.prepare('SELECT min(zxid) FROM txnlog').pluck().get()).toBe(36)
  })

  it('restores synchronous=FULL when a step throws', () => {
    const { db, purger } = setup(10, 5)
    purger.schedule()
    purger.step()
    db.exec('DROP TABLE txnlog')
    expect(() => purger.step()).toThrow()
    expect(db.pragma('synchronous', { simple: true })).toBe(FULL)
  })
})
