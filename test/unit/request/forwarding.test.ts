/**
 * Forwarded writes between a follower and its leader: a local session's
 * write travels as its own kind (7) and decodes with `local: true`; a plain
 * write keeps kind 1 and its bytes (no field added to every forward).
 */
import { describe, expect, it } from 'vitest'
import { decodeForward, encodeForward, type ForwardMessage } from '../../../server/request/forwarding.js'

const write: ForwardMessage = {
  kind: 'write',
  sessionId: 0x02cfe5719c000002n,
  cxid: 7,
  authIds: [{ scheme: 'ip', id: '127.0.0.1' }],
  packet: new Uint8Array([1, 2, 3]),
}

describe('forwarded writes', () => {
  it('a local session write round-trips with its mark; a plain one without', () => {
    expect(decodeForward(encodeForward({ ...write, local: true }))).toEqual({ ...write, local: true })
    const plain = decodeForward(encodeForward(write))
    expect(plain).toEqual(write)
    expect('local' in plain).toBe(false)
  })

  it('the mark is the kind: the rest of the bytes are a plain write’s', () => {
    const a = encodeForward(write)
    const b = encodeForward({ ...write, local: true })
    expect(new DataView(a.buffer, a.byteOffset).getInt32(0)).toBe(1)
    expect(new DataView(b.buffer, b.byteOffset).getInt32(0)).toBe(7)
    expect(b.subarray(4)).toEqual(a.subarray(4))
  })

  it('every kind round-trips, small and large payloads, each intact while later ones are encoded', () => {
    const big = (n: number, v: number) => new Uint8Array(n).fill(v)
    const kept: { m: ForwardMessage; b: Uint8Array }[] = []
    for (let i = 0; i < 300; i++) {
      const n = [0, 3, 64, 65, 1024, 20_000][i % 6]!
      const msgs: ForwardMessage[] = [
        { ...write, cxid: i, packet: big(n, i & 0xff) },
        { kind: 'failed', sessionId: 5n, cxid: i, barrier: 2 ** 33 + i, err: -101, body: big(n, 1) },
        { kind: 'answered', sessionId: 5n, cxid: i, barrier: i, result: big(n, 2) },
        { kind: 'reconfigured', sessionId: 5n, cxid: i, barrier: i },
        { kind: 'createSession', sessionId: BigInt(i), timeoutMs: 4000 },
        { kind: 'touch', sessionIds: [1n, BigInt(i)] },
      ]
      for (const m of msgs) kept.push({ m, b: encodeForward(m) })
    }
    for (const { m, b } of kept) expect(decodeForward(b)).toEqual(m)
  })
})
