/**
 * Digest and snapshot properties of the DataTree:
 * - the same Txns give the same digest, at every step; the incremental
 *   digest always equals one computed from scratch;
 * - one more state-changing Txn on one replica makes the digests differ, and
 *   so does a difference in any single stored field of a node or session;
 * - a fuzzy snapshot (drained in small chunks while Txns keep being applied)
 *   plus a replay (applyReplay) of the log after its start zxid gives
 *   the same nodes, Stats, sessions, indexes and digest as the original —
 *   and so does a replay of ANY suffix starting at or before that zxid.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DataTree } from '../../../server/tree/data-tree.js'
import { SnapshotFormatError } from '../../../server/tree/snapshot.js'
import { decodeTxn } from '../../../server/txn/codec.js'
import type { Txn } from '../../../server/txn/txn.js'
import { fullDump } from './compare.js'
import { type Cmd, cmdArb, cmdsArb, Driver, runs } from './workload.js'

function drive(cmds: readonly Cmd[], onApplied?: (d: Driver) => void): Driver {
  const d: Driver = new Driver(undefined, () => onApplied?.(d))
  for (const c of cmds) d.run(c)
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

/** Txns that change nothing: a check, a multi of checks, an error. */
function isNoOp(bytes: Uint8Array): boolean {
  const t = decodeTxn(bytes)
  return (
    t.type === 'check' || t.type === 'error' || (t.type === 'multi' && t.ops.every((o) => o.type === 'check'))
  )
}

describe('digest', () => {
  it('is the same for two trees built by the same Txns, at every step, and equals a from-scratch digest', () => {
    fc.assert(
      fc.property(cmdsArb(120), (cmds) => {
        const digests: string[] = []
        const d = drive(cmds, (x) => {
          digests.push(x.db.tree.digest())
          expect(fromScratch(x.db.tree)).toBe(x.db.tree.digest())
        })
        const other = new DataTree()
        expect(other.digest()).toBe(new DataTree().digest())
        d.log.forEach((e, i) => {
          other.apply(decodeTxn(e.bytes))
          expect(other.digest(), `after zxid ${e.zxid}`).toBe(digests[i])
        })
        expect(fullDump(other)).toEqual(fullDump(d.db.tree))
      }),
      { numRuns: runs(60) },
    )
  })

  it('differs once one replica applies one more state-changing Txn', () => {
    fc.assert(
      fc.property(cmdsArb(100), fc.array(cmdArb, { minLength: 1, maxLength: 8 }), (cmds, extra) => {
        const a = drive(cmds)
        const b = drive(cmds)
        expect(b.db.tree.digest()).toBe(a.db.tree.digest())
        // Run extra commands on b until one yields a Txn that changes something.
        const before = b.log.length
        for (const c of extra) {
          b.run(c)
          b.applyAll()
          if (b.log.length > before && !isNoOp(b.log[b.log.length - 1]!.bytes)) break
        }
        fc.pre(b.log.slice(before).some((e) => !isNoOp(e.bytes)))
        // Equal digests exactly when the trees are equal (a closeSession of a
        // session already gone, say, is a Txn that changes nothing).
        const state = (t: DataTree) => {
          const { lastZxid: _z, digest: _d, ...rest } = fullDump(t)
          return JSON.stringify(rest, big)
        }
        const same = state(b.db.tree) === state(a.db.tree)
        expect(b.db.tree.digest() === a.db.tree.digest(), `trees equal: ${same}`).toBe(same)
      }),
      { numRuns: runs(200) },
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

describe('snapshot', () => {
  it('round-trips a tree: same dump, same digest, same stored fields', () => {
    fc.assert(
      fc.property(cmdsArb(150), fc.integer({ min: 1, max: 600 }), (cmds, chunk) => {
        const d = drive(cmds)
        const copy = copyOf(d.db.tree, chunk)
        expect(fullDump(copy, d.time)).toEqual(fullDump(d.db.tree, d.time))
      }),
      { numRuns: runs(100) },
    )
  })

  it('fuzzy: chunks drained while Txns are applied, then replay after the start zxid (or from any earlier point) rebuilds the tree', () => {
    fc.assert(
      fc.property(
        cmdsArb(120),
        cmdsArb(120),
        fc.array(fc.nat(4), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 40, max: 400 }),
        fc.nat(),
        (before, during, gaps, chunkBytes, suffixPick) => {
          const d = new Driver()
          for (const c of before) d.run(c)
          // Some Txns stay prepped-but-unapplied when the snapshot begins.
          const snap = d.db.tree.snapshot({ chunkBytes })
          const gen = snap.chunks
          const startZxid = snap.zxid
          expect(startZxid).toBe(d.db.tree.lastZxid)
          const chunks: Uint8Array[] = []
          let next = 0
          let g = 0
          for (let r = gen.next(); !r.done; r = gen.next()) {
            chunks.push(r.value)
            const k = gaps[g++ % gaps.length]!
            for (let i = 0; i < k && next < during.length; i++) d.run(during[next++]!)
            if (k === 4) d.applyAll()
          }
          while (next < during.length) d.run(during[next++]!)
          d.applyAll()
          const want = fullDump(d.db.tree, d.time)

          const restored = DataTree.fromSnapshot(chunks)
          expect(restored.lastZxid).toBe(startZxid)
          for (const e of d.log) if (e.zxid > startZxid) restored.applyReplay(decodeTxn(e.bytes))
          expect(fullDump(restored, d.time)).toEqual(want)

          // Any suffix that starts at or before the snapshot's start zxid.
          const eligible = d.log.filter((e) => e.zxid <= startZxid + 1).length
          const from = eligible === 0 ? 0 : suffixPick % eligible
          const again = DataTree.fromSnapshot(chunks)
          for (const e of d.log.slice(from)) again.applyReplay(decodeTxn(e.bytes))
          expect(fullDump(again, d.time)).toEqual(want)
        },
      ),
      { numRuns: runs(200) },
    )
  })

  it('replaying the whole log over a snapshot taken at the end changes nothing', () => {
    fc.assert(
      fc.property(cmdsArb(150), (cmds) => {
        const d = drive(cmds)
        const copy = copyOf(d.db.tree, 100)
        for (const e of d.log) copy.applyReplay(decodeTxn(e.bytes))
        expect(fullDump(copy, d.time)).toEqual(fullDump(d.db.tree, d.time))
      }),
      { numRuns: runs(60) },
    )
  })

  it('rejects malformed snapshots with SnapshotFormatError', () => {
    const d = drive([])
    const good = [...d.db.tree.snapshot().chunks]
    const bytes = good[0]!
    const treeFromSnapshot = (c: Uint8Array[]) => DataTree.fromSnapshot(c)
    const ProtocolError = SnapshotFormatError
    expect(() => treeFromSnapshot([])).toThrow(ProtocolError)
    expect(() => treeFromSnapshot([bytes.subarray(0, bytes.length - 1)])).toThrow(ProtocolError)
    expect(() => treeFromSnapshot([bytes.subarray(0, 20)])).toThrow(ProtocolError)
    const badMagic = bytes.slice()
    badMagic[0] = badMagic[0]! ^ 0xff
    expect(() => treeFromSnapshot([badMagic])).toThrow(ProtocolError)
    const trailing = new Uint8Array(bytes.length + 1)
    trailing.set(bytes)
    expect(() => treeFromSnapshot([trailing])).toThrow(ProtocolError)
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (junk, at) => {
        const mangled = bytes.slice()
        mangled.set(
          junk.subarray(0, Math.max(0, mangled.length - (at % mangled.length))),
          at % mangled.length,
        )
        try {
          treeFromSnapshot([mangled])
        } catch (e) {
          expect(e).toBeInstanceOf(ProtocolError)
        }
      }),
    )
  })
})
