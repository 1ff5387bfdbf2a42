/**
 * Exactly-once writes in the replicated state (TreeDb and the Txn and
 * result codecs), without a network: what the leader's prep finds for a
 * re-sent write (applied: its result, the same sequential name and Stat;
 * in flight; forgotten), that a failed exactly-once write is an error Txn
 * that is remembered too, that the memory goes with its session, and that
 * it survives everything the replicated state survives: a snapshot, a
 * fuzzy snapshot with the log replayed over it (recovery, SNAP), a replay
 * of the whole log.
 */
import { describe, expect, it } from 'vitest'
import { TreeDb } from '../../../server/state/tree-db.js'
import { DataTree } from '../../../server/tree/data-tree.js'
import { SnapshotFormatError } from '../../../server/tree/snapshot.js'
import type { TxnResult } from '../../../server/txn/apply.js'
import { decodeTxn, encodeTxn, TxnDecodeError } from '../../../server/txn/codec.js'
import type { PrepContext, PrepRequest } from '../../../server/txn/request.js'
import { decodeResult, encodeResult } from '../../../server/txn/result-codec.js'
import type { Txn } from '../../../server/txn/txn.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import { JuteWriter } from '../../../shared/jute.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const S = 0x101n
const RESULTS_MAX = 4

/** The leader's side of TreeDb as the write router drives it: prep at the next zxid, log, apply in order. */
class Leader {
  db = TreeDb.empty()
  readonly log: { zxid: number; bytes: Uint8Array }[] = []
  private applied = 0
  private timeMs = 1_700_000_000_000

  private ctx(sessionId: bigint, cxid: number, ackXid?: number): PrepContext {
    this.timeMs += 1
    const ctx: PrepContext = { zxid: this.nextZxid(), timeMs: this.timeMs, sessionId, cxid, authIds: [] }
    if (ackXid !== undefined) ctx.remember = { ackXid, resultsMax: RESULTS_MAX, resultBytesMax: 1 << 20 }
    return ctx
  }

  private nextZxid(): number {
    return (this.log.at(-1)?.zxid ?? 0) + 1
  }

  /** Preps and logs; undefined when prep refused it (a plain write that failed). */
  prep(req: PrepRequest, sessionId: bigint, cxid: number, ackXid?: number): number | undefined {
    const ctx = this.ctx(sessionId, cxid, ackXid)
    const out = this.db.prep(req, ctx)
    if (!out.ok) return undefined
    this.log.push({ zxid: ctx.zxid, bytes: out.txn })
    return ctx.zxid
  }

  /** Applies everything logged; returns the last outcome's result. */
  applyAll(): TxnResult | undefined {
    let last: TxnResult | undefined
    for (const e of this.log.slice(this.applied)) last = this.db.apply(e.zxid, e.bytes).result
    this.applied = this.log.length
    return last
  }

  /** A write the client sends (again): what prep finds, and the result it is answered with. */
  once(req: PrepRequest, sessionId: bigint, cxid: number, ackXid: number): TxnResult | string {
    const r = this.db.recallWrite(sessionId, cxid)
    if (r.kind === 'remembered') return decodeResult(r.result)
    if (r.kind !== 'unknown') return r.kind
    this.prep(req, sessionId, cxid, ackXid)
    return this.applyAll()!
  }

  session(id: bigint): void {
    this.prep({ type: 'createSession', timeoutMs: 30_000 }, id, 0)
    this.applyAll()
  }
}

const seq: PrepRequest = {
  type: 'create',
  path: '/q/s-',
  data: enc('x'),
  acl: OPEN_ACL_UNSAFE,
  mode: 'persistentSequential',
}

function leaderWithQueue(): Leader {
  const l = new Leader()
  l.session(S)
  l.prep({ type: 'create', path: '/q', data: null, acl: OPEN_ACL_UNSAFE, mode: 'persistent' }, S, 1, 1)
  l.applyAll()
  return l
}

describe('exactly-once writes in the replicated state', () => {
  it('a re-sent sequential create is answered with its first result: the same name and Stat, and one node', () => {
    const l = leaderWithQueue()
    const first = l.once(seq, S, 2, 2)
    expect(first).toMatchObject({ type: 'create', path: '/q/s-0000000000' })
    const again = l.once(seq, S, 2, 2)
    expect(again).toEqual(first)
    expect(l.db.children('/q')).toEqual(['s-0000000000'])
    // A new write (the next xid) is a new node.
    expect(l.once(seq, S, 3, 3)).toMatchObject({ path: '/q/s-0000000001' })
  })

  it('a write prepped and not yet applied is in flight: prep must not run it again', () => {
    const l = leaderWithQueue()
    const zxid = l.prep(seq, S, 2, 2)!
    expect(l.db.recallWrite(S, 2)).toEqual({ kind: 'inFlight', zxid })
    l.applyAll()
    expect(l.db.recallWrite(S, 2).kind).toBe('remembered')
    // A change of leader drops what was in flight: the new leader knows only what was applied.
    l.prep(seq, S, 3, 3)
    l.db.dropOutstanding()
    expect(l.db.recallWrite(S, 3)).toEqual({ kind: 'unknown' })
  })

  it('a failed exactly-once write is an error Txn: logged, and its error is remembered', () => {
    const l = leaderWithQueue()
    const exists: PrepRequest = {
      type: 'create',
      path: '/q',
      data: null,
      acl: OPEN_ACL_UNSAFE,
      mode: 'persistent',
    }
    // Plain (a ZooKeeper client's write): refused at prep, nothing logged.
    expect(l.prep(exists, S, 2)).toBeUndefined()
    expect(l.once(exists, S, 3, 3)).toEqual({ type: 'error', code: 'NODE_EXISTS' })
    // Even if /q is gone by the time the write comes again, the answer stays the one given.
    l.prep({ type: 'delete', path: '/q', version: -1 }, S, 4, 3)
    l.applyAll()
    expect(l.once(exists, S, 3, 3)).toEqual({ type: 'error', code: 'NODE_EXISTS' })
    const failedMulti: PrepRequest = {
      type: 'multi',
      ops: [
        { type: 'create', path: '/m', data: null, acl: OPEN_ACL_UNSAFE, mode: 'persistent' },
        { type: 'delete', path: '/missing', version: -1 },
      ],
    }
    const r = l.once(failedMulti, S, 5, 5)
    expect(r).toEqual({ type: 'error', code: 'NO_NODE', results: ['OK', 'NO_NODE'] })
    expect(l.once(failedMulti, S, 5, 5)).toEqual(r)
    expect(l.db.get('/m')).toBeUndefined()
  })

  it('forgets what the client acknowledged and what resultsMax pushes out, and says so', () => {
    const l = leaderWithQueue()
    for (let x = 2; x <= 8; x++) l.once(seq, S, x, 2)
    // Acked below 2 only: 4 results kept (5..8), 2..4 evicted.
    expect(l.db.recallWrite(S, 4)).toEqual({ kind: 'forgotten', why: 'evicted' })
    expect(l.db.recallWrite(S, 5).kind).toBe('remembered')
    l.once(seq, S, 9, 8)
    expect(l.db.recallWrite(S, 7)).toEqual({ kind: 'forgotten', why: 'acknowledged' })
    expect(l.db.recallWrite(S, 8).kind).toBe('remembered')
    expect(l.db.tree.writeMemoryStats()).toMatchObject({ sessions: 1, results: 2 })
  })

  it('goes with its session: a closed session leaves no memory, and the digest is as if it never wrote', () => {
    const l = leaderWithQueue()
    const other = new Leader()
    other.session(S)
    l.once(seq, S, 2, 2)
    l.prep({ type: 'closeSession' }, S, 3)
    l.applyAll()
    expect(l.db.recallWrite(S, 2)).toEqual({ kind: 'unknown' })
    expect(l.db.tree.writeMemoryStats()).toEqual({ sessions: 0, results: 0, bytes: 0 })
    // A write of a session that has ended fails at prep with SESSION_EXPIRED, logged or not: nothing to remember.
    expect(l.prep({ type: 'delete', path: '/q/none', version: -1 }, S, 4, 4)).toBeUndefined()
    expect(l.db.recallWrite(S, 4)).toEqual({ kind: 'unknown' })
    expect(l.db.tree.writeMemoryStats()).toEqual({ sessions: 0, results: 0, bytes: 0 })
  })

  it('survives a snapshot and a replay of the whole log over it', () => {
    const l = leaderWithQueue()
    for (let x = 2; x <= 6; x++) l.once(seq, S, x, x - 1)
    const copy = DataTree.fromSnapshot(l.db.snapshot({ chunkBytes: 64 }).chunks)
    expect(copy.digest()).toBe(l.db.digest())
    for (let x = 0; x <= 7; x++) expect(copy.recallWrite(S, x)).toEqual(l.db.tree.recallWrite(S, x))
    const replayed = new TreeDb(copy)
    for (const e of l.log) replayed.replay(e.zxid, e.bytes)
    expect(replayed.digest()).toBe(l.db.digest())
    // Recovery from the log alone (no snapshot) rebuilds the same memory.
    const fromLog = TreeDb.empty()
    for (const e of l.log) fromLog.replay(e.zxid, e.bytes)
    expect(fromLog.digest()).toBe(l.db.digest())
  })

  it('survives a fuzzy snapshot: writes applied while it is drained, then the log after its zxid replayed (recovery and SNAP)', () => {
    for (const chunkBytes of [1, 40, 200, 4096]) {
      const l = leaderWithQueue()
      for (let x = 2; x <= 5; x++) l.once(seq, S, x, x - 1)
      const snap = l.db.snapshot({ chunkBytes })
      const chunks: Uint8Array[] = []
      let x = 6
      for (const c of snap.chunks) {
        chunks.push(c)
        // Between chunks (the first 30: the snapshot visits the nodes created meanwhile too):
        // more exactly-once writes (some acking, some evicting) and plain ones.
        if (x >= 36) continue
        l.once(seq, S, x, x % 2 === 0 ? x - 1 : 2)
        l.prep({ type: 'setData', path: '/q', data: enc(String(x)), version: -1 }, S, 1000 + x)
        l.applyAll()
        x++
      }
      const endZxid = l.db.lastZxid
      const after = l.log.filter((e) => e.zxid > snap.zxid)
      // Recovery: replay the log after the snapshot's zxid.
      const restored = new TreeDb(DataTree.fromSnapshot(chunks))
      for (const e of after) restored.replay(e.zxid, e.bytes)
      expect(restored.digest()).toBe(l.db.digest())
      // SNAP: a learner replays through the fuzzy end, then applies; it answers as the leader does.
      const learner = new TreeDb(DataTree.fromSnapshot(chunks))
      learner.replaceTree(learner.tree, endZxid)
      for (const e of after) learner.apply(e.zxid, e.bytes)
      expect(learner.digest()).toBe(l.db.digest())
      for (let y = 0; y < x + 1; y++) expect(learner.recallWrite(S, y)).toEqual(l.db.recallWrite(S, y))
    }
  })

  it('reads a format 1 snapshot (no write memories) and refuses an unknown format with a clear error', () => {
    const w = new JuteWriter()
    w.int(0x434e534e).int(3).long(7)
    expect(() => DataTree.fromSnapshot([w.finish()])).toThrow(SnapshotFormatError)
    expect(() => DataTree.fromSnapshot([w.finish()])).toThrow(/unsupported snapshot format 3/)
  })
})

describe('codecs of exactly-once writes', () => {
  it('a remembered write is a format-2 Txn carrying its RememberSpec; other Txns stay format 1', () => {
    const base: Txn = { sessionId: S, cxid: 7, zxid: 9, timeMs: 11, type: 'delete', path: '/a' }
    const plain = encodeTxn(base)
    expect(plain[3]).toBe(1)
    expect(decodeTxn(plain)).toEqual(base)
    const remembered: Txn = { ...base, remember: { ackXid: 5, resultsMax: 1000, resultBytesMax: 4096 } }
    const bytes = encodeTxn(remembered)
    expect(bytes[3]).toBe(2)
    expect(decodeTxn(bytes)).toEqual(remembered)
    const error: Txn = {
      sessionId: S,
      cxid: 7,
      zxid: 9,
      timeMs: 11,
      type: 'error',
      code: 'NODE_EXISTS',
      remember: { ackXid: 1, resultsMax: 3, resultBytesMax: 2048 },
    }
    expect(decodeTxn(encodeTxn(error))).toEqual(error)
    for (let n = 0; n < bytes.length; n++)
      expect(() => decodeTxn(bytes.subarray(0, n))).toThrow(TxnDecodeError)
  })

  it('round-trips every result a remembered write can have, and throws only TxnDecodeError on garbage', () => {
    const stat = {
      czxid: 1,
      mzxid: 2,
      ctime: 3,
      mtime: 4,
      version: 5,
      cversion: 6,
      aversion: 7,
      ephemeralOwner: -2n,
      dataLength: 8,
      numChildren: 9,
      pzxid: 10,
    }
    const results: TxnResult[] = [
      { type: 'create', path: '/a/s-0000000001', stat },
      { type: 'delete' },
      { type: 'setData', stat },
      { type: 'check' },
      { type: 'setACL', stat },
      {
        type: 'multi',
        results: [{ type: 'create', path: '/x', stat }, { type: 'delete' }, { type: 'check' }],
      },
      { type: 'error', code: 'BAD_VERSION' },
      { type: 'error', code: 'NO_NODE', results: ['OK', 'NO_NODE', 'RUNTIME_INCONSISTENCY'] },
    ]
    for (const r of results) {
      const bytes = encodeResult(r)
      expect(decodeResult(bytes)).toEqual(r)
      for (let n = 0; n < bytes.length; n++)
        expect(() => decodeResult(bytes.subarray(0, n))).toThrow(TxnDecodeError)
      expect(() => decodeResult(Uint8Array.of(...bytes, 0))).toThrow(TxnDecodeError)
    }
    expect(() => decodeResult(Uint8Array.of(0, 0, 0, 9))).toThrow(TxnDecodeError)
  })
})
