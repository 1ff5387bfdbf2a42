/**
 * PreppedTxns (server/txn/prepped-txns.ts): apply takes a Txn as prepped
 * only for the very bytes it was encoded to, at its zxid; anything else is
 * decoded. The model test (test/unit/state/model.test.ts) checks that what
 * is applied this way agrees with the model; these pin the matching rules.
 */
import { describe, expect, it } from 'vitest'
import { encodeTxn } from '../../../server/txn/codec.js'
import { PreppedTxns } from '../../../server/txn/prepped-txns.js'
import { type Txn, withHeader } from '../../../server/txn/txn.js'

function txn(zxid: number, path = `/n${zxid}`): Txn {
  return withHeader(
    { type: 'setData', path, data: new Uint8Array([1, 2, 3]), version: 0 },
    { sessionId: 7n, cxid: zxid, zxid, timeMs: 1 },
  )
}

function kept(p: PreppedTxns, zxid: number): { t: Txn; bytes: Uint8Array } {
  const t = txn(zxid)
  const bytes = encodeTxn(t)
  p.keep(t, bytes)
  return { t, bytes }
}

describe('PreppedTxns', () => {
  it('gives back the prepped Txn for the bytes it was encoded to, at its zxid, once', () => {
    const p = new PreppedTxns()
    const a = kept(p, 1)
    const b = kept(p, 2)
    expect(p.take(1, a.bytes)).toBe(a.t)
    expect(p.take(2, b.bytes)).toBe(b.t)
    expect(p.size).toBe(0)
    expect(p.take(2, b.bytes)).toBeUndefined()
  })

  it('does not match equal bytes that are another object (a log read back, a follower copy)', () => {
    const p = new PreppedTxns()
    const a = kept(p, 1)
    expect(p.take(1, new Uint8Array(a.bytes))).toBeUndefined()
    expect(p.size).toBe(0)
  })

  it('does not match the bytes at another zxid, and drops entries at or below the applied zxid', () => {
    const p = new PreppedTxns()
    const a = kept(p, 1)
    const b = kept(p, 2)
    kept(p, 5)
    expect(p.take(3, a.bytes)).toBeUndefined()
    expect(p.size).toBe(1)
    expect(p.take(2, b.bytes)).toBeUndefined()
  })

  it('starts over when a zxid does not increase (a new leadership preps from an older zxid)', () => {
    const p = new PreppedTxns()
    kept(p, 5)
    const again = kept(p, 3)
    expect(p.size).toBe(1)
    expect(p.take(3, again.bytes)).toBe(again.t)
  })

  it('holds nothing after clear', () => {
    const p = new PreppedTxns()
    const a = kept(p, 1)
    p.clear()
    expect(p.take(1, a.bytes)).toBeUndefined()
  })
})
