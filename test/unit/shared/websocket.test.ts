/**
 * The RFC 6455 framing shared by the server's client port and the SDK's
 * Node transport: frames of every length class round-trip (masked and not,
 * fed whole and one byte at a time), fragments are reassembled around an
 * interleaved ping, and every rule the decoder enforces throws the close
 * code to answer with — a length over the limit before any of its payload
 * is buffered; and what a peer can make the decoder hold: nothing for empty
 * fragments, the bytes themselves for one-byte ones (issue 15).
 */

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  applyMask,
  CloseCode,
  closePayload,
  encodeFrame,
  Opcode,
  type WsEvent,
  WsFrameDecoder,
  WsProtocolError,
} from '../../../shared/websocket.js'

const KEY = new Uint8Array([0x37, 0xfa, 0x21, 0x3d])

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff
  return out
}

function server(max = 1 << 20): WsFrameDecoder {
  return new WsFrameDecoder({ expectMasked: true, messageBytesMax: max })
}

function client(max = 1 << 20): WsFrameDecoder {
  return new WsFrameDecoder({ expectMasked: false, messageBytesMax: max })
}

/** A frame with explicit header bits, for the frames a well-behaved encoder never makes. */
function rawFrame(b0: number, payload: Uint8Array, key?: Uint8Array): Uint8Array {
  const f = encodeFrame(b0 & 0x0f, payload, key)
  f[0] = b0
  return f
}

function errorOf(fn: () => unknown): WsProtocolError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(WsProtocolError)
    return err as WsProtocolError
  }
  throw new Error('expected a WsProtocolError')
}

describe('masking', () => {
  it('applyMask equals the byte-wise XOR of RFC 6455 section 5.3 for every length, key and buffer offset, and is its own inverse', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300, size: 'max' }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 7 }),
        (payload, key, offset) => {
          // The payload sits at `offset` in a larger buffer, as a frame's payload does in a chunk.
          const backing = new Uint8Array(offset + payload.length + 5).fill(0xa5)
          const view = backing.subarray(offset, offset + payload.length)
          view.set(payload)
          applyMask(view, key)
          const expected = payload.map((b, i) => b ^ key[i & 3]!)
          expect(Array.from(view)).toEqual(Array.from(expected))
          // Nothing outside the view was touched.
          expect(backing.subarray(0, offset).every((b) => b === 0xa5)).toBe(true)
          expect(backing.subarray(offset + payload.length).every((b) => b === 0xa5)).toBe(true)
          applyMask(view, key)
          expect(Array.from(view)).toEqual(Array.from(payload))
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('frames', () => {
  it.each([0, 1, 125, 126, 65535, 65536, 70_000])(
    'round-trip a %i-byte binary message, masked and unmasked, whole and byte by byte',
    (n) => {
      const payload = bytes(n)
      const masked = encodeFrame(Opcode.binary, payload, KEY)
      const plain = encodeFrame(Opcode.binary, payload)
      expect(plain.length - n).toBe(n < 126 ? 2 : n < 65536 ? 4 : 10)
      expect(masked.length - plain.length).toBe(4)
      // encodeFrame never touches its input.
      expect(payload).toEqual(bytes(n))
      expect(server().push(masked.slice())).toEqual([{ kind: 'message', data: payload }])
      expect(client().push(plain.slice())).toEqual([{ kind: 'message', data: payload }])
      if (n > 65535) return
      const d = server()
      const events: WsEvent[] = []
      for (const b of masked) events.push(...d.push(new Uint8Array([b])))
      expect(events).toEqual([{ kind: 'message', data: payload }])
      expect(d.pendingBytes).toBe(0)
    },
  )

  it('decodes several frames from one chunk, and a frame split across chunks', () => {
    const a = encodeFrame(Opcode.binary, bytes(10, 1))
    const b = encodeFrame(Opcode.binary, bytes(300, 2))
    const all = new Uint8Array([...a, ...b])
    const d = client()
    expect(d.push(all.slice(0, a.length + 3))).toEqual([{ kind: 'message', data: bytes(10, 1) }])
    expect(d.pendingBytes).toBe(3)
    expect(d.push(all.slice(a.length + 3))).toEqual([{ kind: 'message', data: bytes(300, 2) }])
  })

  it('reassembles a fragmented message around an interleaved ping', () => {
    const whole = bytes(1000)
    const parts = [
      rawFrame(Opcode.binary, whole.subarray(0, 300), KEY),
      encodeFrame(Opcode.ping, bytes(5, 9), KEY),
      rawFrame(Opcode.continuation, whole.subarray(300, 700), KEY),
      rawFrame(0x80 | Opcode.continuation, whole.subarray(700), KEY),
    ]
    const d = server()
    const events = parts.flatMap((p) => d.push(p))
    expect(events).toEqual([
      { kind: 'ping', data: bytes(5, 9) },
      { kind: 'message', data: whole },
    ])
  })

  it('reads close frames: code and reason, no status, and a reason cut to fit 125 bytes', () => {
    expect(client().push(encodeFrame(Opcode.close, closePayload(4001, 'gone away')))).toEqual([
      { kind: 'close', code: 4001, reason: 'gone away' },
    ])
    expect(client().push(encodeFrame(Opcode.close, new Uint8Array(0)))).toEqual([
      { kind: 'close', code: CloseCode.noStatus, reason: '' },
    ])
    const long = closePayload(1000, 'é'.repeat(100))
    expect(long.length).toBeLessThanOrEqual(125)
    const [ev] = client().push(encodeFrame(Opcode.close, long))
    expect(ev).toMatchObject({ kind: 'close', code: 1000, reason: 'é'.repeat(61) })
    expect(client().push(encodeFrame(Opcode.pong, bytes(3)))).toEqual([{ kind: 'pong' }])
  })
})

describe('rule breaches', () => {
  const cases: [string, () => Uint8Array, number, boolean][] = [
    [
      'an unmasked frame from a client',
      () => encodeFrame(Opcode.binary, bytes(4)),
      CloseCode.protocolError,
      true,
    ],
    [
      'a masked frame from a server',
      () => encodeFrame(Opcode.binary, bytes(4), KEY),
      CloseCode.protocolError,
      false,
    ],
    ['reserved bits', () => rawFrame(0xc0 | Opcode.binary, bytes(4), KEY), CloseCode.protocolError, true],
    ['an unknown data opcode', () => rawFrame(0x83, bytes(4), KEY), CloseCode.protocolError, true],
    ['an unknown control opcode', () => rawFrame(0x8b, bytes(4), KEY), CloseCode.protocolError, true],
    ['a fragmented control frame', () => rawFrame(Opcode.ping, bytes(4), KEY), CloseCode.protocolError, true],
    [
      'a control frame over 125 bytes',
      () => encodeFrame(Opcode.ping, bytes(126), KEY),
      CloseCode.protocolError,
      true,
    ],
    ['a text message', () => encodeFrame(Opcode.text, bytes(4), KEY), CloseCode.unsupportedData, true],
    [
      'a continuation with nothing to continue',
      () => rawFrame(0x80, bytes(4), KEY),
      CloseCode.protocolError,
      true,
    ],
    [
      'a close frame of one byte',
      () => encodeFrame(Opcode.close, bytes(1), KEY),
      CloseCode.protocolError,
      true,
    ],
    [
      'a close code that may not be sent',
      () => encodeFrame(Opcode.close, closePayload(1005, ''), KEY),
      CloseCode.protocolError,
      true,
    ],
    [
      'a close reason that is not UTF-8',
      () => encodeFrame(Opcode.close, new Uint8Array([0x03, 0xe8, 0xff, 0xfe]), KEY),
      CloseCode.invalidPayload,
      true,
    ],
  ]
  it.each(cases)('%s', (_what, make, code, isServer) => {
    const d = isServer ? server() : client()
    expect(errorOf(() => d.push(make())).closeCode).toBe(code)
  })

  it('a new message before the fragmented one is finished', () => {
    const d = server()
    d.push(rawFrame(Opcode.binary, bytes(4), KEY))
    expect(errorOf(() => d.push(encodeFrame(Opcode.binary, bytes(4), KEY))).closeCode).toBe(
      CloseCode.protocolError,
    )
  })

  it('a length over the limit, from the header alone (nothing of the payload buffered)', () => {
    // A 64-bit length of 2 GiB, masked: the header and key only.
    const head = new Uint8Array([0x82, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0, 1, 2, 3, 4])
    const err = errorOf(() => server(1 << 20).push(head))
    expect(err.closeCode).toBe(CloseCode.tooBig)
    expect(err.message).toContain('exceeds the limit')
    const huge = new Uint8Array([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    expect(errorOf(() => server().push(huge)).closeCode).toBe(CloseCode.tooBig)
  })

  it('fragments that together exceed the limit', () => {
    const d = server(1000)
    d.push(rawFrame(Opcode.binary, bytes(600), KEY))
    expect(errorOf(() => d.push(rawFrame(0x80, bytes(600), KEY))).closeCode).toBe(CloseCode.tooBig)
  })
})

describe('what a peer can make the decoder hold (issue 15)', () => {
  it('holds nothing for empty continuation frames, however many', () => {
    const d = server()
    d.push(rawFrame(Opcode.binary, new Uint8Array(0), KEY))
    const empty = rawFrame(Opcode.continuation, new Uint8Array(0), KEY)
    let events = 0
    for (let i = 0; i < 100_000; i++) events += d.push(empty.slice()).length
    expect(events).toBe(0)
    expect(d.pendingBytes).toBe(0)
    expect(d.push(rawFrame(0x80, bytes(3), KEY))).toEqual([{ kind: 'message', data: bytes(3) }])
  })

  it('gathers one-byte fragments into one buffer, and the limit counts their bytes', () => {
    const d = server(5000)
    const whole = bytes(4000)
    d.push(rawFrame(Opcode.binary, whole.subarray(0, 1), KEY))
    let events = 0
    for (let i = 1; i < whole.length - 1; i++)
      events += d.push(rawFrame(Opcode.continuation, whole.subarray(i, i + 1), KEY)).length
    expect(events).toBe(0)
    expect(d.pendingBytes).toBe(whole.length - 1)
    const [ev] = d.push(rawFrame(0x80, whole.subarray(whole.length - 1), KEY))
    expect(ev).toEqual({ kind: 'message', data: whole })
    const over = server(100)
    over.push(rawFrame(Opcode.binary, bytes(1), KEY))
    for (let i = 1; i < 100; i++) over.push(rawFrame(Opcode.continuation, bytes(1), KEY))
    expect(errorOf(() => over.push(rawFrame(Opcode.continuation, bytes(1), KEY))).closeCode).toBe(
      CloseCode.tooBig,
    )
  })

  it('carries the events before a breach on its error, then refuses everything', () => {
    const d = server()
    const chunk = new Uint8Array([
      ...encodeFrame(Opcode.binary, bytes(5), KEY),
      ...encodeFrame(Opcode.ping, bytes(2), KEY),
      ...rawFrame(0x83, bytes(1), KEY),
    ])
    const err = errorOf(() => d.push(chunk))
    expect(err.closeCode).toBe(CloseCode.protocolError)
    expect(err.events).toEqual([
      { kind: 'message', data: bytes(5) },
      { kind: 'ping', data: bytes(2) },
    ])
    expect(errorOf(() => d.push(encodeFrame(Opcode.binary, bytes(1), KEY))).events).toEqual([])
  })

  it('ignores every byte after a close frame', () => {
    const d = server()
    const chunk = new Uint8Array([
      ...encodeFrame(Opcode.close, closePayload(1000, ''), KEY),
      ...rawFrame(0x83, bytes(1), KEY),
    ])
    expect(d.push(chunk)).toEqual([{ kind: 'close', code: 1000, reason: '' }])
    expect(d.push(new Uint8Array([0xff, 0xff, 0xff]))).toEqual([])
    expect(d.pendingBytes).toBe(0)
  })

  it.each([
    ['a close frame of one byte', new Uint8Array([0x88, 0x81])],
    ['a continuation with nothing to continue', new Uint8Array([0x80, 0xff])],
    ['a text frame', new Uint8Array([0x81, 0xff])],
  ])('refuses %s from its first two bytes', (_what, head) => {
    expect(errorOf(() => server().push(head)).closeCode).toBeGreaterThan(1000)
  })
})
