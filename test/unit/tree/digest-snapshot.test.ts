/**
 * Digest and snapshot properties:
 * - two trees built by the same Txns have equal digests at every step;
 *   any further change to one of them makes the digests differ;
 * - a fuzzy snapshot (sliced while Txns keep being applied) plus a replay
 *   of the log after its zxid rebuilds exactly the same tree and digest;
 * - malformed snapshots fail with SnapshotFormatError.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TreeDb } from '../../../server/state/tree-db.js'
import { DataTree } from '../../../server/tree/data-tree.js'
import { SnapshotFormatError } from '../../../server/tree/snapshot.js'
import { encodeTxn } from '../../../server/txn/codec.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import { dumpTree, enc, Leader, sizeFromContents } from './harness.js'
import { ALICE, type Step, workload } from './workload.js'

/** Runs a workload; `onCommit` runs after each Txn is applied. */
function build(steps: Step[], onCommit?: (l: Leader) => void): Leader {
  const l = new Leader()
  let pending = []
  for (const s of steps) {
    pending.push(l.prep(s.req, { sessionId: s.sessionId, authIds: s.alice ? [ALICE] : [], dtMs: s.dtMs }))
    if (!s.flush) continue
    for (const t of pending) {
      l.commit(t)
      onCommit?.(l)
    }
    pending = []
  }
  for (const t of pending) {
    l.commit(t)
    onCommit?.(l)
  }
  return l
}

/** A change that always succeeds on any tree (its target is picked from what exists). */
const divergence = fc.record({ kind: fc.nat(5), pick: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) })

describe('digest', () => {
  it('is equal for trees built by the same Txns and differs after any divergence', () => {
    fc.assert(
      fc.property(workload, divergence, (steps, d) => {
        const a = build(steps)
        const twin = new DataTree()
        for (const t of a.log) twin.apply(t)
        expect(twin.digest()).toBe(a.tree.digest())
        expect(dumpTree(twin)).toEqual(dumpTree(a.tree))
        const b = new Leader(twin, a.zxid, a.timeMs)
        const paths = [...b.tree.paths()].filter((p) => !p.startsWith('/zookeeper'))
        const path = paths[d.pick % paths.length]!
        const leaves = paths.filter((p) => p !== '/' && b.tree.stat(p)!.numChildren === 0)
        const ephemeralParent = b.tree.nodeMeta(path)!.kind === 'ephemeral'
        // As the super user, so ACLs the workload set do not refuse the change.
        const su = { authIds: [{ scheme: 'super', id: '' }] }
        switch (ephemeralParent && d.kind === 0 ? 1 : d.kind) {
          case 0:
            b.create(path === '/' ? '/new-node' : `${path}/new-node`, 'x', 'persistent', su)
            break
          case 1: // Same bytes still moves version and mzxid.
            b.run(
              { type: 'setData', path, data: b.tree.getData(path)!.data?.slice() ?? null, version: -1 },
              su,
            )
            break
          case 2:
            b.run({ type: 'setACL', path, acl: OPEN_ACL_UNSAFE, version: -1 }, su)
            break
          case 3:
            if (leaves.length === 0) b.create('/leaf', '', 'persistent', su)
            else b.run({ type: 'delete', path: leaves[d.pick % leaves.length]!, version: -1 }, su)
            break
          case 4:
            b.run({ type: 'createSession', timeoutMs: 1234 }, { sessionId: 77n })
            break
          default:
            b.run({ type: 'setData', path, data: d.bytes, version: -1 }, su)
        }
        expect(b.log.at(-1)!.type).not.toBe('error')
        expect(b.tree.digest()).not.toBe(a.tree.digest())
      }),
      { numRuns: 300 },
    )
  })

  it('is the same for a tree loaded from a snapshot', () => {
    fc.assert(
      fc.property(workload, (steps) => {
        const a = build(steps)
        const copy = DataTree.fromSnapshot(a.tree.snapshot({ chunkBytes: 1024 }).chunks)
        expect(copy.digest()).toBe(a.tree.digest())
        expect(dumpTree(copy)).toEqual(dumpTree(a.tree))
        expect(copy.lastZxid).toBe(a.tree.lastZxid)
        expect(copy.reapable(a.timeMs)).toEqual(a.tree.reapable(a.timeMs))
        expect(copy.nextReapAtMs()).toBe(a.tree.nextReapAtMs())
      }),
      { numRuns: 150 },
    )
  })
})

interface FuzzyRun {
  leader: Leader
  /** The snapshot's zxid: the last Txn applied when it was started. */
  zxid: number
  chunks: Uint8Array[]
  /** The last Txn applied when the chunks ran out (a SNAP's SNAPEND carries it). */
  endZxid: number
  /** The leader's digest after each Txn. */
  digestAt: Map<number, string>
}

/**
 * Runs a workload, starting a snapshot after Txn number `startAt` and
 * draining a few of its chunks (0-3, from `slices`) between the Txns that
 * follow, as a server does per event-loop turn: a fuzzy snapshot.
 */
function fuzzySnapshot(steps: Step[], startAt: number, slices: number[]): FuzzyRun {
  let commits = 0
  let snap: { zxid: number; chunks: Generator<Uint8Array, void, void> } | undefined
  let endZxid: number | undefined
  const chunks: Uint8Array[] = []
  const digestAt = new Map<number, string>()
  const drain = (n: number, applied: number) => {
    for (let i = 0; i < n && snap !== undefined && endZxid === undefined; i++) {
      const c = snap.chunks.next()
      if (c.done) endZxid = applied
      else chunks.push(c.value)
    }
  }
  const leader = build(steps, (l) => {
    digestAt.set(l.tree.lastZxid, l.tree.digest())
    // Tiny chunks (about one record each) so a snapshot spans many Txns.
    if (commits++ === startAt % (steps.length + 1)) snap = l.tree.snapshot({ chunkBytes: 64 })
    else drain(slices[commits % slices.length]!, l.tree.lastZxid)
  })
  snap ??= leader.tree.snapshot({ chunkBytes: 64 })
  drain(Number.POSITIVE_INFINITY, leader.tree.lastZxid)
  return { leader, zxid: snap.zxid, chunks, endZxid: endZxid!, digestAt }
}

const slicing = [workload, fc.nat(), fc.array(fc.nat(3), { minLength: 1, maxLength: 50 })] as const

describe('fuzzy snapshot + log replay', () => {
  it('rebuilds the same tree and digest, whenever the snapshot starts and however it is sliced', () => {
    let fuzzy = 0
    fc.assert(
      fc.property(...slicing, (steps, startAt, slices) => {
        const { leader: l, zxid, chunks } = fuzzySnapshot(steps, startAt, slices)
        if (l.log.at(-1)!.zxid > zxid + 5) fuzzy++
        const restored = DataTree.fromSnapshot(chunks)
        expect(restored.lastZxid).toBe(zxid)
        for (const t of l.log) if (t.zxid > zxid) restored.applyReplay(t)
        expect(dumpTree(restored)).toEqual(dumpTree(l.tree))
        expect(restored.digest()).toBe(l.tree.digest())
        expect(restored.sizeEstimateBytes()).toBe(l.tree.sizeEstimateBytes())
        expect(restored.sizeEstimateBytes()).toBe(sizeFromContents(restored))
        expect(restored.lastZxid).toBe(l.tree.lastZxid)
        expect(restored.reapable(l.timeMs)).toEqual(l.tree.reapable(l.timeMs))
      }),
      { numRuns: 1500 },
    )
    expect(fuzzy).toBeGreaterThan(500)
  })

  it('gives a TreeDb that replays through the fuzzy end, then applies strictly, the same digests (SNAP)', () => {
    let fuzzy = 0
    fc.assert(
      fc.property(...slicing, (steps, startAt, slices) => {
        const { leader: l, zxid, chunks, endZxid, digestAt } = fuzzySnapshot(steps, startAt, slices)
        if (endZxid > zxid) fuzzy++
        const db = new TreeDb(DataTree.fromSnapshot(chunks))
        db.replaceTree(db.tree, endZxid)
        // A snapshot of this tree, until it is replayed past the end, may reflect up to the end.
        expect(db.reflectsThrough).toBe(Math.max(zxid, endZxid))
        for (const t of l.log) {
          if (t.zxid <= zxid) continue
          db.apply(t.zxid, encodeTxn(t))
          expect(db.lastZxid).toBe(t.zxid)
          expect(db.reflectsThrough).toBe(Math.max(t.zxid, endZxid))
          // From the fuzzy end on, the learner is exactly the leader at every zxid.
          if (t.zxid >= endZxid) expect(db.digest()).toBe(digestAt.get(t.zxid))
        }
        expect(dumpTree(db.tree)).toEqual(dumpTree(l.tree))
      }),
      { numRuns: 1000 },
    )
    expect(fuzzy).toBeGreaterThan(300)
  })

  it('bounds chunk sizes (a record larger than the bound gets its own chunk)', () => {
    const l = new Leader()
    for (let i = 0; i < 100; i++) l.create(`/n${i}`, 'x'.repeat(100))
    l.run({
      type: 'create',
      path: '/big',
      data: new Uint8Array(5000),
      acl: OPEN_ACL_UNSAFE,
      mode: 'persistent',
    })
    const chunks = [...l.tree.snapshot({ chunkBytes: 1024 }).chunks]
    expect(chunks.length).toBeGreaterThan(10)
    for (const c of chunks) expect(c.length <= 1024 || c.length < 5200).toBe(true)
    expect(chunks.filter((c) => c.length > 1024)).toHaveLength(1)
    expect(DataTree.fromSnapshot(chunks).digest()).toBe(l.tree.digest())
  })
})

describe('snapshot format errors', () => {
  const good = () => {
    const l = new Leader()
    l.create('/a', 'hello')
    l.create('/a/b', 'world')
    return [...l.tree.snapshot({ chunkBytes: 1024 }).chunks]
  }

  it('rejects truncation, garbage, a wrong magic and trailing data', () => {
    const [one] = good()
    expect(() => DataTree.fromSnapshot([])).toThrow(SnapshotFormatError)
    expect(() => DataTree.fromSnapshot([one!.subarray(0, one!.length - 3)])).toThrow(SnapshotFormatError)
    expect(() => DataTree.fromSnapshot([one!.subarray(0, one!.length - 16)])).toThrow(SnapshotFormatError)
    expect(() => DataTree.fromSnapshot([enc('not a snapshot at all')])).toThrow(SnapshotFormatError)
    expect(() => DataTree.fromSnapshot([one!, one!])).toThrow(SnapshotFormatError)
  })

  it('throws only SnapshotFormatError on corrupted bytes', () => {
    const [one] = good()
    fc.assert(
      fc.property(fc.nat(one!.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const bad = one!.slice()
        bad[at]! ^= x
        try {
          DataTree.fromSnapshot([bad])
        } catch (e) {
          expect(e).toBeInstanceOf(SnapshotFormatError)
        }
      }),
      { numRuns: 500 },
    )
  })
})
