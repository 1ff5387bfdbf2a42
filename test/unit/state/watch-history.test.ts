/**
 * The watch history after a fuzzy snapshot (server/request/watch-history.ts):
 * a tree rebuilt from a snapshot drained while the leader kept writing may
 * already hold any entry up to the snapshot's fuzzy end, and replaying those
 * entries changes nothing for what it caught. So the history starts at the
 * fuzzy end — after a SNAP (restartHistory) and at startup recovery, where
 * the log may end inside the window (ServerContext) — the replayed entries
 * are not recorded, and a resume from inside the window is 'compacted'
 * rather than a replay with a hole (simulation seed 423: a create caught by
 * the snapshot was never delivered to a watcher resuming from before it).
 */
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../../server/config.js'
import { ServerContext } from '../../../server/request/server-context.js'
import { newHistory, recordApplied, restartHistory } from '../../../server/request/watch-history.js'
import { recoverDb, TreeDb } from '../../../server/state/tree-db.js'
import type { Recovery } from '../../../server/storage/recovery.js'
import { DataTree } from '../../../server/tree/data-tree.js'
import { ChangeRing } from '../../../server/watch/change-ring.js'
import { planResume, type ResumedWatch } from '../../../server/watch/watch-resume.js'
import type { WatchChange } from '../../../server/watch/watch-table.js'
import { Leader } from './harness.js'

const BIG = { changesMax: 1_000_000, bytesMax: 1 << 30 }
const EVERYTHING: ResumedWatch[] = [{ kind: 'persistentRecursive', path: '/' }]

/**
 * A leader with some znodes takes a snapshot in 32-byte chunks and creates
 * and changes znodes between chunks (the snapshot visits some of them):
 * the chunks, the snapshot's zxid, its fuzzy end, and what each write changed.
 */
function fuzzySnapshot() {
  const l = new Leader()
  const changes = new Map<number, readonly WatchChange[]>()
  const write = (r: { zxid: number; events: readonly WatchChange[] }) => changes.set(r.zxid, r.events)
  write(l.create('/d'))
  for (let i = 0; i < 4; i++) write(l.create(`/d/a${i}`, 'x'))
  const snap = l.db.snapshot({ chunkBytes: 32 })
  const chunks: Uint8Array[] = []
  let i = 0
  for (const c of snap.chunks) {
    chunks.push(c)
    if (i >= 12) continue
    write(l.create(`/d/c${i}`, 'y'))
    write(l.run({ type: 'setData', path: `/d/a${i % 4}`, data: new Uint8Array([i]), version: -1 }))
    i++
  }
  const endZxid = l.db.lastZxid
  expect(endZxid).toBeGreaterThan(snap.zxid)
  return { l, chunks, snapZxid: snap.zxid, endZxid, changes }
}

describe('watch history over a fuzzy snapshot', () => {
  it('after a SNAP it starts at the fuzzy end: a resume from inside the window is compacted, one from its end replays what followed', () => {
    const { l, chunks, snapZxid, endZxid, changes } = fuzzySnapshot()
    const learner = new TreeDb(DataTree.fromSnapshot(chunks))
    learner.replaceTree(learner.tree, endZxid)
    expect(learner.lastZxid).toBe(snapZxid)
    // The server's history before the SNAP, whatever it held, is gone.
    const history = new ChangeRing(BIG, 0)
    history.append(1, [{ type: 'created', path: '/old' }])
    restartHistory(history, learner)
    expect(history.startZxid).toBe(endZxid)
    expect(history.length).toBe(0)
    // The leader sends the entries after the snapshot's zxid: replayed through the fuzzy end.
    let lossy = 0
    for (const e of l.log.filter((p) => p.zxid > snapZxid)) {
      const out = learner.apply(e.zxid, e.bytes)
      expect(out.replayed).toBe(true)
      // What the snapshot caught changes nothing again: the replay's changes are not the Txn's.
      if (out.changes.length < changes.get(e.zxid)!.length) lossy++
      recordApplied(history, e.zxid, out)
    }
    expect(lossy).toBeGreaterThan(0)
    expect(learner.digest()).toBe(l.db.digest())
    expect(history.startZxid).toBe(endZxid)
    expect(history.length).toBe(0)
    // Past the fuzzy end, writes are applied and recorded as on every server.
    const after = l.create('/d/after', 'z')
    const out = learner.apply(after.zxid, l.log.at(-1)!.bytes)
    expect(out.replayed).toBeUndefined()
    recordApplied(history, after.zxid, out)
    for (let from = snapZxid; from < endZxid; from++)
      expect(planResume(history, from, EVERYTHING)).toEqual({ kind: 'compacted' })
    expect(planResume(history, endZxid, EVERYTHING)).toEqual({
      kind: 'replay',
      // (A recursive watch is told of no childrenChanged: its created event says it.)
      events: after.events
        .filter((c) => c.type !== 'childrenChanged')
        .map((c) => ({ type: c.type, path: c.path, zxid: after.zxid })),
      register: EVERYTHING,
    })
  })

  it('at startup recovery it starts at the fuzzy end even when the log stops inside the window', () => {
    const { l, chunks, snapZxid, endZxid } = fuzzySnapshot()
    const middle = snapZxid + Math.floor((endZxid - snapZxid) / 2)
    // A learner's stored SNAP whose log holds only part of the window (the rest comes from the leader).
    const logged = l.log.filter((p) => p.zxid > snapZxid && p.zxid <= middle)
    const recovery = {
      snapshot: { zxidStart: snapZxid, zxidEnd: endZxid, chunks: () => chunks },
      replayAfterZxid: snapZxid,
      logEntries: () => logged.map((p) => ({ zxid: p.zxid, data: p.bytes })),
    } as unknown as Recovery
    const { db } = recoverDb(recovery, pino({ level: 'silent' }))
    expect(db.lastZxid).toBe(middle)
    expect(db.reflectsThrough).toBe(endZxid)
    const ctx = new ServerContext(
      parseConfig({ serverId: 1 }),
      { now: () => 0 },
      { after: () => ({ cancel() {} }) } as unknown as ConstructorParameters<typeof ServerContext>[2],
      pino({ level: 'silent' }),
      db,
    )
    expect(ctx.watchHistory.startZxid).toBe(endZxid)
    // The rest of the window arrives from the leader, replayed, not recorded.
    for (const e of l.log.filter((p) => p.zxid > middle))
      recordApplied(ctx.watchHistory, e.zxid, db.apply(e.zxid, e.bytes))
    expect(db.digest()).toBe(l.db.digest())
    expect(planResume(ctx.watchHistory, middle, EVERYTHING)).toEqual({ kind: 'compacted' })
    expect(planResume(ctx.watchHistory, endZxid, EVERYTHING)).toEqual({
      kind: 'replay',
      events: [],
      register: EVERYTHING,
    })
  })

  it('a tree never rebuilt from a fuzzy snapshot: the history starts at its last zxid', () => {
    const l = new Leader()
    l.create('/a')
    const history = newHistory(BIG, l.db)
    expect(history.startZxid).toBe(l.db.lastZxid)
  })

  it('an entry replayed above where the history claims to be complete ends that claim', () => {
    const { l, chunks, snapZxid, endZxid } = fuzzySnapshot()
    const learner = new TreeDb(DataTree.fromSnapshot(chunks))
    learner.replaceTree(learner.tree, endZxid)
    // A history that (wrongly) started at the snapshot's zxid.
    const history = new ChangeRing(BIG, snapZxid)
    const first = l.log.find((p) => p.zxid > snapZxid)!
    recordApplied(history, first.zxid, learner.apply(first.zxid, first.bytes))
    expect(history.startZxid).toBe(first.zxid)
    expect(planResume(history, snapZxid, EVERYTHING)).toEqual({ kind: 'compacted' })
  })
})
