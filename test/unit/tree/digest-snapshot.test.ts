/**
 * Digest and snapshot properties of the DataTree. Random trees are built
 * by random workloads through the server's write path
 * (test/unit/state/workload.ts: TreeDb, pipelined, with changes of leader).
 * - The same Txns give the same digest, at every step; the incremental
 *   digest always equals one computed from scratch; every logged Txn
 *   decodes and re-encodes to the same bytes.
 * - One more state-changing Txn on one replica makes the digests differ
 *   (exactly when the trees differ), whatever its kind; so does a difference
 *   in any single stored field of a node or session.
 * - A snapshot round-trips a tree (nodes, Stats, stored fields, sessions,
 *   indexes, digest, size estimate, what is reapable), and replaying the
 *   whole log over it changes nothing.
 * - A fuzzy snapshot (drained in small chunks while Txns keep being prepped
 *   and applied) plus a replay of the log after its start zxid gives the
 *   same tree, and so does a replay of ANY suffix starting at or before the
 *   first Txn after it; a TreeDb given the chunks as a SNAP replays through
 *   the fuzzy end, then applies strictly with the leader's digest at every zxid.
 * - Chunk sizes are bounded; malformed snapshots fail with
 *   SnapshotFormatError and nothing else.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { countSnapshot } from '../../../server/state/snapshot-file.js'
import { TreeDb } from '../../../server/state/tree-db.js'
import { DataTree } from '../../../server/tree/data-tree.js'
import { Kind } from '../../../server/tree/node-store.js'
import { type NodeRecord, SnapshotFormatError, writeSnapshot } from '../../../server/tree/snapshot.js'
import { decodeTxn, encodeTxn } from '../../../server/txn/codec.js'
import type { Txn } from '../../../server/txn/txn.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import type { ZnodeData } from '../../../shared/records.js'
import { enc, Leader, type Reply } from '../state/harness.js'
import { type Cmd, cmdArb, cmdsArb, Driver, runs } from '../state/workload.js'
import { expectSameDump, fullDump } from './compare.js'

function drive(cmds: readonly Cmd[], onApplied?: (d: Driver) => void): Driver {
  const d: Driver = new Driver(undefined, () => onApplied?.(d))
  for (const c of cmds) d.step(c)
  d.applyAll()
  return d
}

function copyOf(tree: DataTree, chunkBytes = 128): DataTree {
  return DataTree.fromSnapshot(tree.snapshot({ chunkBytes }).chunks)
}

function fromScratch(tree: DataTree): string {
  return copyOf(tree).digest()
}

const big = (_: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)

/** Txns that change nothing but lastZxid: a check, a multi of checks. */
function isNoOp(bytes: Uint8Array): boolean {
  const t = decodeTxn(bytes)
  return t.type === 'check' || (t.type === 'multi' && t.ops.every((o) => o.type === 'check'))
}

/** A change that succeeds on any tree, as the super user; its kind and target picked from what exists. */
const divergence = fc.record({ kind: fc.nat(5), pick: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) })

function diverge(l: Leader, d: { kind: number; pick: number; bytes: Uint8Array }): Reply {
  const paths = [...l.tree.paths()].filter((p) => !p.startsWith('/zookeeper'))
  const path = paths[d.pick % paths.length]!
  const leaves = paths.filter((p) => p !== '/' && l.tree.stat(p)!.numChildren === 0)
  const live = l.tree.sessions()[0]?.sessionId
  // Writes need a live session; as the super user, so ACLs the workload set do not refuse them.
  const su = { sessionId: live ?? 0n, authIds: [{ scheme: 'super', id: '' }] }
  const ephemeralParent = l.tree.nodeMeta(path)!.kind === 'ephemeral'
  switch (live === undefined ? 4 : ephemeralParent && d.kind === 0 ? 1 : d.kind) {
    case 0:
      return l.create(path === '/' ? '/new-node' : `${path}/new-node`, 'x', 'persistent', su)
    case 1: // The same bytes still move version and mzxid.
      return l.run(
        { type: 'setData', path, data: l.tree.getData(path)!.data?.slice() ?? null, version: -1 },
        su,
      )
    case 2: // The same ACL still moves aversion.
      return l.run({ type: 'setACL', path, acl: l.tree.getAcl(path)!.acl, version: -1 }, su)
    case 3:
      if (leaves.length === 0) return l.create('/leaf', '', 'persistent', su)
      return l.run({ type: 'delete', path: leaves[d.pick % leaves.length]!, version: -1 }, su)
    case 4:
      return l.run({ type: 'createSession', timeoutMs: 1234 }, { sessionId: 77n })
    default:
      return l.run({ type: 'setData', path, data: d.bytes, version: -1 }, su)
  }
}

describe('digest', () => {
  it('is the same for two trees built by the same Txns, at every step, and equals a from-scratch digest; logged Txns re-encode to the same bytes', () => {
    fc.assert(
      fc.property(cmdsArb(120), (cmds) => {
        const digests = new Map<number, string>()
        const d = drive(cmds, (x) => {
          digests.set(x.tree.lastZxid, x.tree.digest())
          expect(fromScratch(x.tree)).toBe(x.tree.digest())
        })
        const other = new DataTree()
        expect(other.digest()).toBe(new DataTree().digest())
        for (const e of d.log) {
          const txn = decodeTxn(e.bytes)
          expect(encodeTxn(txn)).toEqual(e.bytes)
          other.apply(txn)
          expect(other.digest(), `after zxid ${e.zxid}`).toBe(digests.get(e.zxid))
        }
        expectSameDump(fullDump(other, d.timeMs), fullDump(d.tree, d.timeMs))
      }),
      { numRuns: runs(60) },
    )
  })

  it('differs once one replica applies one more state-changing Txn (random ones, and one of each kind as the super user)', () => {
    fc.assert(
      fc.property(
        cmdsArb(100),
        fc.array(cmdArb, { minLength: 1, maxLength: 8 }),
        divergence,
        (cmds, extra, change) => {
          const a = drive(cmds)
          const b = drive(cmds)
          expect(b.tree.digest()).toBe(a.tree.digest())

          // A change that always applies, on a replica of a.
          const c = new Leader(copyOf(a.tree), { zxid: a.zxid, timeMs: a.timeMs, sessions: [] })
          expect(c.tree.digest()).toBe(a.tree.digest())
          expect(diverge(c, change).result.type).not.toBe('error')
          expect(c.tree.digest()).not.toBe(a.tree.digest())

          // Random commands on b until one yields a Txn that changes something.
          const before = b.log.length
          for (const x of extra) {
            b.step(x)
            b.applyAll()
            if (b.log.length > before && !isNoOp(b.log.at(-1)!.bytes)) break
          }
          if (!b.log.slice(before).some((e) => !isNoOp(e.bytes))) return
          // Equal digests exactly when the trees are equal (a closeSession of a
          // session already gone, say, is a Txn that changes nothing).
          const state = (t: DataTree) => {
            const { lastZxid: _z, digest: _d, ...rest } = fullDump(t)
            return JSON.stringify(rest, big)
          }
          const same = state(b.tree) === state(a.tree)
          expect(b.tree.digest() === a.tree.digest(), `trees equal: ${same}`).toBe(same)
        },
      ),
      { numRuns: runs(250) },
    )
  })

  it('differs when any single stored field differs (data, each Stat field, kind, owner, TTL, ACL, session)', () => {
    const session: Txn = {
      sessionId: 7n,
      cxid: 0,
      zxid: 1,
      timeMs: 1000,
      type: 'createSession',
      timeoutMs: 5000,
    }
    const create: Txn = {
      sessionId: 7n,
      cxid: 1,
      zxid: 2,
      timeMs: 2000,
      type: 'create',
      path: '/n',
      data: Uint8Array.of(1, 2, 3),
      acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }],
      mode: 'persistent',
      ttlMs: 0,
      parentCversion: 1,
    }
    const build = (...txns: Txn[]): string => {
      const t = new DataTree()
      // Replay mode: some variants are not Txns a live leader would prep.
      for (const x of txns) t.applyReplay(x)
      return t.digest()
    }
    const base = build(session, create)
    expect(build(session, create)).toBe(base)
    const variants: [string, Txn[]][] = [
      ['path', [session, { ...create, path: '/m' }]],
      ['data', [session, { ...create, data: Uint8Array.of(1, 2, 4) }]],
      ['data length', [session, { ...create, data: Uint8Array.of(1, 2, 3, 0) }]],
      ['czxid/mzxid/pzxid', [session, { ...create, zxid: 3 }]],
      ['ctime/mtime', [session, { ...create, timeMs: 2001 }]],
      ['parent cversion', [session, { ...create, parentCversion: 2 }]],
      ['kind (container)', [session, { ...create, mode: 'container' }]],
      ['kind (ephemeral) and owner', [session, { ...create, mode: 'ephemeral' }]],
      ['ttl', [session, { ...create, mode: 'persistentWithTtl', ttlMs: 10 }]],
      ['acl perms', [session, { ...create, acl: [{ perms: 1, id: { scheme: 'world', id: 'anyone' } }] }]],
      ['acl id', [session, { ...create, acl: [{ perms: 31, id: { scheme: 'ip', id: '10.0.0.1' } }] }]],
      ['session timeout', [{ ...session, timeoutMs: 5001 }, create]],
      [
        'session id',
        [
          { ...session, sessionId: 8n },
          { ...create, sessionId: 8n },
        ],
      ],
    ]
    for (const [what, txns] of variants) expect(build(...txns), what).not.toBe(base)
    const ephemeralOf = (owner: bigint): string =>
      build(
        { ...session, sessionId: 7n },
        { ...session, sessionId: 8n, zxid: 2 },
        { ...create, sessionId: owner, zxid: 3, mode: 'ephemeral' },
      )
    expect(ephemeralOf(7n), 'ephemeral owner').not.toBe(ephemeralOf(8n))
    const set = (version: number): Txn => ({
      sessionId: 7n,
      cxid: 2,
      zxid: 3,
      timeMs: 3000,
      type: 'setData',
      path: '/n',
      data: Uint8Array.of(1, 2, 3),
      version,
    })
    expect(build(session, create, set(1)), 'setData changes mzxid, mtime, version').not.toBe(base)
    const acl = (aversion: number): Txn => ({
      sessionId: 7n,
      cxid: 2,
      zxid: 3,
      timeMs: 3000,
      type: 'setACL',
      path: '/n',
      acl: create.type === 'create' ? create.acl : [],
      aversion,
    })
    expect(build(session, create, acl(1)), 'aversion').not.toBe(base)
  })
})

interface FuzzyRun {
  d: Driver
  /** The snapshot's zxid: the last Txn applied when it was started. */
  zxid: number
  chunks: Uint8Array[]
  /** The last Txn applied when the chunks ran out (a SNAP's SNAPEND carries it). */
  endZxid: number
  /** The leader's digest after each Txn. */
  digestAt: Map<number, string>
}

/**
 * Runs a workload, starting a snapshot before command number `startAt`
 * (Txns may be prepped and not yet applied then) and draining a few of its
 * chunks (0–3, from `slices`) after every command and every Txn applied, as
 * a server does per event-loop turn: a fuzzy snapshot.
 */
function fuzzySnapshot(cmds: Cmd[], startAt: number, slices: number[], chunkBytes: number): FuzzyRun {
  let snap: { zxid: number; chunks: Generator<Uint8Array, void, void> } | undefined
  let endZxid: number | undefined
  const chunks: Uint8Array[] = []
  const digestAt = new Map<number, string>()
  let turn = 0
  const drain = (n: number) => {
    for (let i = 0; i < n && snap !== undefined && endZxid === undefined; i++) {
      const c = snap.chunks.next()
      if (c.done) endZxid = d.tree.lastZxid
      else chunks.push(c.value)
    }
  }
  const d: Driver = new Driver(undefined, () => {
    digestAt.set(d.tree.lastZxid, d.tree.digest())
    drain(slices[turn++ % slices.length]!)
  })
  const start = startAt % cmds.length
  cmds.forEach((c, i) => {
    if (i === start) snap = d.tree.snapshot({ chunkBytes })
    d.step(c)
    drain(slices[turn++ % slices.length]!)
  })
  d.applyAll()
  drain(Number.POSITIVE_INFINITY)
  return { d, zxid: snap!.zxid, chunks, endZxid: endZxid!, digestAt }
}

describe('snapshot', () => {
  it('round-trips a tree (nodes, Stats, stored fields, sessions, indexes, digest, size, reapable); replaying the whole log over it changes nothing', () => {
    fc.assert(
      fc.property(cmdsArb(150), fc.integer({ min: 1, max: 600 }), (cmds, chunk) => {
        const d = drive(cmds)
        const want = fullDump(d.tree, d.timeMs)
        const copy = copyOf(d.tree, chunk)
        expectSameDump(fullDump(copy, d.timeMs), want)
        for (const e of d.log) copy.applyReplay(decodeTxn(e.bytes))
        expectSameDump(fullDump(copy, d.timeMs), want)
      }),
      { numRuns: runs(150) },
    )
  })

  it('fuzzy: the chunks plus a replay of the log after the start zxid (or from any earlier point) rebuild the tree; a TreeDb given them as a SNAP matches the leader from the fuzzy end on', () => {
    let fuzzy = 0
    const numRuns = runs(1000)
    fc.assert(
      fc.property(
        cmdsArb(120, { restarts: false }),
        fc.nat(),
        fc.array(fc.nat(3), { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 40, max: 400 }),
        fc.nat(),
        (cmds, startAt, slices, chunkBytes, suffixPick) => {
          const { d, zxid, chunks, endZxid, digestAt } = fuzzySnapshot(cmds, startAt, slices, chunkBytes)
          if (endZxid > zxid) fuzzy++
          const want = fullDump(d.tree, d.timeMs)
          const after = d.log.findIndex((e) => e.zxid > zxid)
          const firstAfter = after === -1 ? d.log.length : after

          // Recovery: the chunks, then the log after the snapshot's zxid, replayed.
          const restored = DataTree.fromSnapshot(chunks)
          expect(restored.lastZxid).toBe(zxid)
          for (const e of d.log.slice(firstAfter)) restored.applyReplay(decodeTxn(e.bytes))
          expectSameDump(fullDump(restored, d.timeMs), want)

          // Any suffix that starts at or before the first Txn after the snapshot's zxid.
          const again = DataTree.fromSnapshot(chunks)
          for (const e of d.log.slice(suffixPick % (firstAfter + 1))) again.applyReplay(decodeTxn(e.bytes))
          expectSameDump(fullDump(again, d.timeMs), want)

          // SNAP: a learner's TreeDb replays through the fuzzy end, then applies strictly.
          const db = new TreeDb(DataTree.fromSnapshot(chunks))
          db.replaceTree(db.tree, endZxid)
          // A snapshot of this tree, until it is replayed past the end, may reflect up to the end.
          expect(db.reflectsThrough).toBe(Math.max(zxid, endZxid))
          for (const e of d.log.slice(firstAfter)) {
            db.apply(e.zxid, e.bytes)
            expect(db.lastZxid).toBe(e.zxid)
            expect(db.reflectsThrough).toBe(Math.max(e.zxid, endZxid))
            // From the fuzzy end on, the learner is exactly the leader at every zxid.
            if (e.zxid >= endZxid) expect(db.digest()).toBe(digestAt.get(e.zxid))
          }
          expectSameDump(fullDump(db.tree, d.timeMs), want)
        },
      ),
      { numRuns },
    )
    // Many snapshots must really be fuzzy: Txns applied while the chunks were drained.
    expect(fuzzy).toBeGreaterThan(numRuns / 3)
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

/** The stream cut again at the given lengths (cycled), as a SNAP re-chunks it: boundaries anywhere. */
function recut(chunks: readonly Uint8Array[], sizes: readonly number[]): Uint8Array[] {
  const all = Buffer.concat(chunks)
  const out: Uint8Array[] = []
  for (let at = 0, i = 0; at < all.length; i++) {
    const n = sizes[i % sizes.length]!
    out.push(new Uint8Array(all.subarray(at, at + n)))
    at += n
  }
  return out
}

describe('snapshot loaded a piece at a time (DataTree.loader: SNAP install, recovery)', () => {
  it('any cut of the stream, pushed a piece at a time and finished in steps of any budget, rebuilds the same tree (in several steps when the budget is below the tree size)', () => {
    fc.assert(
      fc.property(
        cmdsArb(120),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 40 }),
        (cmds, sizes, budget) => {
          const d = drive(cmds)
          const want = fullDump(d.tree, d.timeMs)
          const loader = DataTree.loader()
          for (const c of recut([...d.tree.snapshot({ chunkBytes: 97 }).chunks], sizes)) loader.push(c)
          let tree: DataTree | undefined
          let steps = 0
          while (tree === undefined) {
            tree = loader.finish(budget)
            steps++
            expect(steps).toBeLessThanOrEqual(5 + Math.ceil((4 * d.tree.nodeCount()) / budget))
          }
          // Indexing, rooting, linking and hashing (and, for a path met twice, a check) are passes of `budget` znodes a step.
          if (budget < d.tree.nodeCount()) expect(steps).toBeGreaterThan(1)
          expectSameDump(fullDump(tree, d.timeMs), want)
        },
      ),
      { numRuns: runs(150) },
    )
  })

  it('reads paths with non-ASCII characters and data of every kind (null, empty, one byte, past the inline limit) as the tree wrote them, however the stream is cut; a record sink (countSnapshot) sees the same', () => {
    const l = new Leader()
    const paths = ['/é', '/é/Ωmega', '/日本', '/a¡', '/ascii', '/ascii/ü-tail']
    for (const p of paths) expect(l.createdPath(l.create(p, p.length % 2 === 0 ? 'x' : ''))).toBe(p)
    l.create('/big', 'b'.repeat(5000))
    l.run({ type: 'setData', path: '/ascii', data: null, version: -1 })
    l.run({ type: 'setData', path: '/日本', data: Uint8Array.of(0xff, 0x80, 0), version: -1 })
    const want = fullDump(l.tree, l.timeMs)
    const chunks = [...l.tree.snapshot({ chunkBytes: 64 }).chunks]
    for (const sizes of [[1 << 20], [1], [7, 3], [100]]) {
      const copy = DataTree.fromSnapshot(recut(chunks, sizes))
      expectSameDump(fullDump(copy, l.timeMs), want)
      expect(copy.digest()).toBe(l.tree.digest())
    }
    const seen = new Map<string, ZnodeData>()
    countSnapshot(chunks, { node: (r) => seen.set(r.path, r.data === null ? null : r.data.slice()) })
    for (const p of [...paths, '/big']) expect(seen.get(p), p).toEqual(l.tree.getData(p)!.data)
    expect(seen.get('/ascii')).toBeNull()
  })

  it('keeps the last record of a path a fuzzy snapshot holds twice (persistent or ephemeral, same or other session)', () => {
    const stat = { czxid: 1, mzxid: 1, pzxid: 1, ctime: 1, mtime: 1, version: 0, cversion: 0, aversion: 0 }
    const node = (path: string, data: string, kind: Kind, owner = 0n): NodeRecord => ({
      path,
      data: enc(data),
      acl: OPEN_ACL_UNSAFE,
      kind,
      owner,
      ttlMs: 0,
      ...stat,
    })
    const base = [
      node('/', '', Kind.persistent),
      node('/a', 'a', Kind.persistent),
      node('/a/x', 'old', Kind.persistent),
      node('/a/e', 'old', Kind.ephemeral, 7n),
      node('/a/f', 'old', Kind.ephemeral, 7n),
      node('/a/g', 'old', Kind.persistent),
    ]
    const later = [
      node('/a/x', 'new', Kind.persistent),
      node('/a/e', 'new', Kind.ephemeral, 7n),
      node('/a/f', 'new', Kind.ephemeral, 8n),
      node('/a/g', 'new', Kind.ephemeral, 8n),
    ]
    const sessions: [bigint, number][] = [
      [7n, 5000],
      [8n, 5000],
    ]
    const twice = DataTree.fromSnapshot(writeSnapshot(1, sessions, [...base, ...later], 64))
    const once = DataTree.fromSnapshot(
      writeSnapshot(
        1,
        sessions,
        [...base.filter((n) => !later.some((l) => l.path === n.path)), ...later],
        64,
      ),
    )
    expect(twice.digest()).toBe(once.digest())
    expect(twice.nodeCount()).toBe(6)
    expect(twice.getChildren('/a')).toEqual(['e', 'f', 'g', 'x'])
    expect(twice.ephemerals(7n)).toEqual(['/a/e'])
    expect(twice.ephemerals(8n)).toEqual(['/a/f', '/a/g'])
    expect(new TextDecoder().decode(twice.getData('/a/x')!.data!)).toBe('new')
    expect(twice.sizeEstimateBytes()).toBe(once.sizeEstimateBytes())
  })

  it('a stream cut short, or with junk in the middle, fails with SnapshotFormatError, however it is cut', () => {
    const l = new Leader()
    for (let i = 0; i < 200; i++) l.create(`/n${i}`, 'x'.repeat(i % 50))
    const whole = Buffer.concat([...l.tree.snapshot({ chunkBytes: 512 }).chunks])
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: whole.length - 1 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (at, sizes, junk) => {
          const bad = junk
            ? Buffer.concat([whole.subarray(0, at), Buffer.alloc(64, 0xee), whole.subarray(at)])
            : whole.subarray(0, at)
          const loader = DataTree.loader()
          expect(() => {
            for (const c of recut([bad], sizes)) loader.push(c)
            loader.finish()
          }).toThrow(SnapshotFormatError)
        },
      ),
      { numRuns: runs(300) },
    )
  })
})

describe('snapshot format errors', () => {
  /** A small tree (nodes, an ephemeral, sessions) in one chunk. */
  const good = (): Uint8Array => {
    const l = new Leader()
    l.session(7n)
    l.create('/a', 'hello')
    l.create('/a/b', 'world')
    l.create('/e', '', 'ephemeral', { sessionId: 7n })
    const chunks = [...l.tree.snapshot({ chunkBytes: 1 << 20 }).chunks]
    expect(chunks).toHaveLength(1)
    return chunks[0]!
  }

  it('rejects no chunks, truncation, garbage, a wrong magic and trailing data', () => {
    const one = good()
    const bad: [string, Uint8Array[]][] = [
      ['no chunks', []],
      ['one byte short', [one.subarray(0, one.length - 1)]],
      ['3 bytes short', [one.subarray(0, one.length - 3)]],
      ['16 bytes short', [one.subarray(0, one.length - 16)]],
      ['the first 20 bytes', [one.subarray(0, 20)]],
      ['garbage', [enc('not a snapshot at all')]],
      ['a wrong magic', [Uint8Array.from(one, (b, i) => (i === 0 ? b ^ 0xff : b))]],
      ['a trailing byte', [Uint8Array.from([...one, 0])]],
      ['a second snapshot after the end', [one, one]],
    ]
    for (const [what, chunks] of bad)
      expect(() => DataTree.fromSnapshot(chunks), what).toThrow(SnapshotFormatError)
  })

  it('throws only SnapshotFormatError on corrupted bytes (a byte flipped, or junk written over a stretch)', () => {
    const one = good()
    const load = (bytes: Uint8Array) => {
      try {
        DataTree.fromSnapshot([bytes])
      } catch (e) {
        expect(e).toBeInstanceOf(SnapshotFormatError)
      }
    }
    fc.assert(
      fc.property(fc.nat(one.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const bad = one.slice()
        bad[at]! ^= x
        load(bad)
      }),
      { numRuns: 500 },
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (junk, at) => {
        const bad = one.slice()
        const from = at % bad.length
        bad.set(junk.subarray(0, bad.length - from), from)
        load(bad)
      }),
      { numRuns: 200 },
    )
  })
})

describe('replay over a snapshot: regressions', () => {
  /**
   * Found by the replay properties above. An ephemeral /x gets a setACL and
   * a setData, its session closes, and /x is created again (by another
   * session) before the snapshot. Replaying the log over that snapshot: the
   * first create is skipped (/x exists: the later one), the setACL and
   * setData land on the later /x, and closeSession must still delete every
   * path its Txn lists, or the later /x keeps aversion 1 and the old data
   * (the creates later in the log rebuild the re-created node).
   */
  it('a closeSession replayed over a re-created ephemeral path leaves no stale setACL/setData', () => {
    const l = new Leader(undefined, { sessions: [1n, 2n] })
    const acl = [...OPEN_ACL_UNSAFE]
    l.run({ type: 'create', path: '/x', data: Uint8Array.of(1), acl, mode: 'ephemeral' }, { sessionId: 2n })
    l.run({ type: 'setACL', path: '/x', acl, version: -1 })
    l.run({ type: 'setData', path: '/x', data: Uint8Array.of(2), version: -1 })
    l.run({ type: 'closeSession' }, { sessionId: 2n })
    l.run({ type: 'create', path: '/x', data: Uint8Array.of(3), acl, mode: 'ephemeral' })
    const copy = DataTree.fromSnapshot(l.tree.snapshot().chunks)
    for (const e of l.log) copy.applyReplay(decodeTxn(e.bytes))
    expect(copy.getData('/x')).toEqual(l.tree.getData('/x'))
    expectSameDump(fullDump(copy, l.timeMs), fullDump(l.tree, l.timeMs))
  })
})
