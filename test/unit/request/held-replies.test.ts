/**
 * HeldReplies releases a failed-prep reply only once the local tree has
 * applied its barrier, in order, and releases everything as not-ok when
 * leadership changes; the leader's 'failed' message carries the barrier.
 */
import { describe, expect, it } from 'vitest'
import { decodeForward, encodeForward } from '../../../server/request/forwarding.js'
import { HeldReplies } from '../../../server/request/held-replies.js'
import { ProtocolError } from '../../../shared/jute.js'

describe('HeldReplies', () => {
  it('releases at once when the barrier is applied, else when applied() reaches it, in order', () => {
    const held = new HeldReplies()
    const out: string[] = []
    held.hold(5, 5, (ok) => out.push(`a:${ok}`))
    expect(out).toEqual(['a:true'])
    held.hold(7, 5, (ok) => out.push(`b:${ok}`))
    held.hold(9, 5, (ok) => out.push(`c:${ok}`))
    held.applied(6)
    expect(out).toEqual(['a:true'])
    held.applied(7)
    expect(out).toEqual(['a:true', 'b:true'])
    expect(held.size).toBe(1)
    held.applied(12)
    expect(out).toEqual(['a:true', 'b:true', 'c:true'])
    expect(held.size).toBe(0)
  })

  it('releases everything held as not-ok when leadership changes', () => {
    const held = new HeldReplies()
    const out: string[] = []
    held.hold(10, 1, (ok) => out.push(`a:${ok}`))
    held.hold(11, 1, (ok) => out.push(`b:${ok}`))
    held.dropAll()
    held.applied(100)
    expect(out).toEqual(['a:false', 'b:false'])
  })
})

describe("the leader's 'failed' answer", () => {
  it('round-trips the barrier and refuses one out of range', () => {
    const m = {
      kind: 'failed' as const,
      sessionId: 0x0100_0000_0000_0001n,
      cxid: 42,
      barrier: 2 ** 32 + 17,
      err: -110,
      body: new Uint8Array([1, 2, 3]),
    }
    expect(decodeForward(encodeForward(m))).toEqual(m)
    const bytes = encodeForward(m)
    // The barrier is the long after kind (4), sessionId (8) and cxid (4).
    new DataView(bytes.buffer, bytes.byteOffset).setBigInt64(16, -1n)
    expect(() => decodeForward(bytes)).toThrow(ProtocolError)
  })
})
