/**
 * WriteMemory (server/tree/write-memory.ts), the per-session memory of
 * exactly-once writes' results, alone: what a re-sent write is answered
 * from. Examples pin the rules (the client's ack drops results below it,
 * resultsMax evicts the oldest and remembers the highest xid evicted, xids
 * compare in serial order across the int32 wrap, a live write is never
 * remembered twice, replay skips what the record reflects), and a property
 * test checks recall and the digest against a plain reference model over
 * random sequences of remembers and session ends.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  RESULT_OVERHEAD_BYTES,
  type RememberedWrite,
  WriteMemory,
  xidBefore,
} from '../../../server/tree/write-memory.js'
import { AssertionError } from '../../../shared/assert.js'

const S = 0x10n
const T = 0x20n
const res = (n: number): Uint8Array => Uint8Array.of(n & 0xff, (n >> 8) & 0xff)
const w = (xid: number, zxid = 100 + xid): RememberedWrite => ({ xid, zxid, result: res(xid) })
const spec = (ackXid: number, resultsMax = 10, resultBytesMax = 1 << 20) => ({
  ackXid,
  resultsMax,
  resultBytesMax,
})

describe('WriteMemory', () => {
  it('answers a remembered write with its zxid and result, and knows nothing of other xids or sessions', () => {
    const m = new WriteMemory()
    m.remember(S, w(1), spec(1), 'live')
    m.remember(S, w(2), spec(1), 'live')
    expect(m.recall(S, 2)).toEqual({ kind: 'remembered', zxid: 102, result: res(2) })
    expect(m.recall(S, 1)).toEqual({ kind: 'remembered', zxid: 101, result: res(1) })
    expect(m.recall(S, 3)).toEqual({ kind: 'unknown' })
    expect(m.recall(T, 1)).toEqual({ kind: 'unknown' })
    expect(m.size).toBe(2)
  })

  it("drops the results below the client's ack; an xid below it is forgotten (acknowledged)", () => {
    const m = new WriteMemory()
    for (const x of [1, 2, 3]) m.remember(S, w(x), spec(1), 'live')
    m.remember(S, w(4), spec(3), 'live')
    expect(m.recall(S, 1)).toEqual({ kind: 'forgotten', why: 'acknowledged' })
    expect(m.recall(S, 2)).toEqual({ kind: 'forgotten', why: 'acknowledged' })
    expect(m.recall(S, 3).kind).toBe('remembered')
    expect(m.size).toBe(2)
    // An older ack (a late copy of an earlier write's Txn cannot carry one, but replay may) never lowers it.
    m.remember(S, w(5), spec(2), 'live')
    expect(m.recall(S, 2)).toEqual({ kind: 'forgotten', why: 'acknowledged' })
  })

  it('keeps at most resultsMax results: the oldest go, and an evicted xid is forgotten (evicted), not unknown', () => {
    const m = new WriteMemory()
    for (let x = 1; x <= 5; x++) m.remember(S, w(x), spec(1, 3), 'live')
    expect(m.size).toBe(3)
    expect(m.recall(S, 1)).toEqual({ kind: 'forgotten', why: 'evicted' })
    expect(m.recall(S, 2)).toEqual({ kind: 'forgotten', why: 'evicted' })
    for (const x of [3, 4, 5]) expect(m.recall(S, x).kind).toBe('remembered')
    expect(m.recall(S, 6)).toEqual({ kind: 'unknown' })
  })

  it('keeps at most resultBytesMax bytes of results (each costs its bytes plus RESULT_OVERHEAD_BYTES), and always the newest', () => {
    const m = new WriteMemory()
    const big = (xid: number, n: number): RememberedWrite => ({
      xid,
      zxid: 100 + xid,
      result: new Uint8Array(n),
    })
    const limit = 3 * (RESULT_OVERHEAD_BYTES + 100)
    for (let x = 1; x <= 5; x++) m.remember(S, big(x, 100), spec(1, 1000, limit), 'live')
    expect(m.size).toBe(3)
    expect(m.bytes).toBe(limit)
    expect(m.recall(S, 2)).toEqual({ kind: 'forgotten', why: 'evicted' })
    // One result larger than the limit pushes out every other, and stays.
    m.remember(S, big(6, 10_000), spec(1, 1000, limit), 'live')
    expect(m.size).toBe(1)
    expect(m.recall(S, 6).kind).toBe('remembered')
    expect(m.recall(S, 5)).toEqual({ kind: 'forgotten', why: 'evicted' })
    m.drop(S)
    expect(m.bytes).toBe(0)
  })

  it('compares xids in serial order: a session past 2^31 - 1 wraps to 1 and goes on', () => {
    expect(xidBefore(0x7ffffffe, 0x7fffffff)).toBe(true)
    expect(xidBefore(0x7fffffff, 1)).toBe(true)
    expect(xidBefore(1, 0x7fffffff)).toBe(false)
    const m = new WriteMemory()
    m.remember(S, w(0x7ffffffe), spec(0x7ffffffe), 'live')
    m.remember(S, w(0x7fffffff), spec(0x7ffffffe), 'live')
    m.remember(S, w(1), spec(0x7fffffff), 'live')
    m.remember(S, w(2), spec(1), 'live')
    expect(m.recall(S, 0x7fffffff)).toEqual({ kind: 'forgotten', why: 'acknowledged' })
    expect(m.recall(S, 1).kind).toBe('remembered')
    expect(m.recall(S, 3)).toEqual({ kind: 'unknown' })
  })

  it('asserts when a live apply remembers a write twice (prep dedupes); replay skips it and changes nothing', () => {
    const m = new WriteMemory()
    m.remember(S, w(1), spec(1), 'live')
    m.remember(S, w(2), spec(2), 'live')
    const before = [m.sumA, m.sumB, m.size]
    expect(() => m.remember(S, w(2), spec(2), 'live')).toThrow(AssertionError)
    expect(() => m.remember(S, w(1), spec(1), 'live')).toThrow(AssertionError)
    m.remember(S, w(2, 999), spec(2), 'replay')
    m.remember(S, w(1, 999), spec(1), 'replay')
    expect([m.sumA, m.sumB, m.size]).toEqual(before)
    expect(m.recall(S, 2)).toEqual({ kind: 'remembered', zxid: 102, result: res(2) })
  })

  it('goes with its session: drop removes the record and its part of the digest', () => {
    const m = new WriteMemory()
    m.remember(T, w(7), spec(7), 'live')
    const onlyT = [m.sumA, m.sumB]
    m.remember(S, w(1), spec(1), 'live')
    m.remember(S, w(2), spec(1), 'live')
    m.drop(S)
    expect(m.recall(S, 1)).toEqual({ kind: 'unknown' })
    expect([m.sumA, m.sumB]).toEqual(onlyT)
    expect(m.sessionCount).toBe(1)
    m.drop(T)
    expect([m.sumA, m.sumB, m.size, m.sessionCount]).toEqual([0, 0, 0, 0])
  })

  it('round-trips through its records (a snapshot): same recalls, same digest', () => {
    const m = new WriteMemory()
    for (let x = 1; x <= 6; x++) m.remember(S, w(x), spec(x > 3 ? 3 : 1, 4), 'live')
    m.remember(T, w(9), spec(9), 'live')
    const copy = new WriteMemory()
    for (const r of m.records()) copy.load(r)
    expect([copy.sumA, copy.sumB, copy.size]).toEqual([m.sumA, m.sumB, m.size])
    for (const id of [S, T]) for (let x = 0; x <= 10; x++) expect(copy.recall(id, x)).toEqual(m.recall(id, x))
  })
})

/** The reference: per session, every remembered (xid, zxid) in order, the ack and the highest evicted xid. */
interface ModelSession {
  writes: { xid: number; zxid: number }[]
  ack: number
  evicted: number
}

type Op = { kind: 'remember'; s: number; xid: number; ack: number; max: number } | { kind: 'drop'; s: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 9,
    arbitrary: fc.record({
      kind: fc.constant('remember' as const),
      s: fc.integer({ min: 1, max: 3 }),
      xid: fc.integer({ min: 1, max: 30 }),
      ack: fc.integer({ min: 0, max: 30 }),
      max: fc.integer({ min: 1, max: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('drop' as const), s: fc.integer({ min: 1, max: 3 }) }),
  },
)

describe('WriteMemory against a reference model', () => {
  it('recalls what the model says for every session and xid, with equal digests for equal histories', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        const m = new WriteMemory()
        const twin = new WriteMemory()
        const model = new Map<number, ModelSession>()
        let zxid = 0
        for (const op of ops) {
          const id = BigInt(op.s)
          if (op.kind === 'drop') {
            m.drop(id)
            twin.drop(id)
            model.delete(op.s)
            continue
          }
          const ms = model.get(op.s) ?? { writes: [], ack: 0, evicted: 0 }
          // What prep lets through: a write neither remembered nor forgotten, whose ack is at most its xid.
          const ack = Math.min(op.ack, op.xid)
          const known = ms.writes.some((x) => x.xid === op.xid) || op.xid < ms.ack || op.xid <= ms.evicted
          if (known) continue
          zxid++
          model.set(op.s, ms)
          ms.writes.push({ xid: op.xid, zxid })
          if (ack > ms.ack) {
            ms.ack = ack
            ms.writes = ms.writes.filter((x) => x.xid >= ack)
          }
          while (ms.writes.length > op.max) ms.evicted = Math.max(ms.evicted, ms.writes.shift()!.xid)
          const write = { xid: op.xid, zxid, result: res(op.xid) }
          m.remember(id, write, { ackXid: ack, resultsMax: op.max, resultBytesMax: 1 << 20 }, 'live')
          twin.remember(id, write, { ackXid: ack, resultsMax: op.max, resultBytesMax: 1 << 20 }, 'live')
          // Replaying what was just applied changes nothing.
          m.remember(id, write, { ackXid: ack, resultsMax: op.max, resultBytesMax: 1 << 20 }, 'replay')
        }
        expect([m.sumA, m.sumB]).toEqual([twin.sumA, twin.sumB])
        for (let s = 1; s <= 3; s++) {
          const ms = model.get(s)
          for (let xid = 1; xid <= 31; xid++) {
            const got = m.recall(BigInt(s), xid)
            const hit = ms?.writes.find((x) => x.xid === xid)
            if (ms === undefined) expect(got).toEqual({ kind: 'unknown' })
            else if (hit !== undefined)
              expect(got).toEqual({ kind: 'remembered', zxid: hit.zxid, result: res(xid) })
            else if (xid < ms.ack) expect(got).toEqual({ kind: 'forgotten', why: 'acknowledged' })
            else if (xid <= ms.evicted) expect(got).toEqual({ kind: 'forgotten', why: 'evicted' })
            else expect(got).toEqual({ kind: 'unknown' })
          }
        }
        const copy = new WriteMemory()
        for (const r of m.records()) copy.load(r)
        expect([copy.sumA, copy.sumB, copy.size]).toEqual([m.sumA, m.sumB, m.size])
      }),
      { numRuns: 300 },
    )
  })
})
