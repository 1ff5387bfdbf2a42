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
})
