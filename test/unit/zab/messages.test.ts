/**
 * Peer message codec: every message type round-trips (examples and
 * fast-check), a fixed hex fixture pins the format, and every malformed
 * input (each truncation, unknown type or version, trailing bytes, bad
 * boolean, epoch or integer out of range) is a PeerMessageDecodeError.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  decodePeerMessage,
  encodePeerMessage,
  type PeerMessage,
  PeerMessageDecodeError,
} from '../../../server/zab/index.js'

const bytes = new Uint8Array([1, 2, 3, 250])
const Z = 5 * 2 ** 32 + 7

const EXAMPLES: PeerMessage[] = [
  {
    type: 'NOTIFICATION',
    leader: 3,
    zxid: Z,
    peerEpoch: 5,
    round: 2 ** 40,
    state: 'OBSERVING',
    configZxid: Z,
    config: 'server.3=h:1:2;h:3',
    viewZxid: Z + 1,
  },
  { type: 'FOLLOWERINFO', acceptedEpoch: 4 },
  { type: 'OBSERVERINFO', acceptedEpoch: 0 },
  { type: 'LEADERINFO', newEpoch: 2 ** 21 - 1, observer: true },
  { type: 'ACKEPOCH', epoch: 6, currentEpoch: 5, lastZxid: Z, reAck: true },
  { type: 'DIFF', lastZxid: Z },
  { type: 'TRUNC', zxid: 0 },
  { type: 'SNAP', zxid: Z, configZxid: Z, config: 'server.1=h:1:2:participant;h:3\nserver.2=ü:1:2:observer' },
  { type: 'SNAPCHUNK', index: 2, data: bytes },
  { type: 'SNAPEND', chunkCount: 3, endZxid: Z },
  { type: 'PROPOSAL', zxid: Z, data: new Uint8Array() },
  { type: 'NEWLEADER', epoch: 6, configZxid: 0, config: 'server.1=h:1:2:participant;h:3' },
  { type: 'ACK', zxid: Z, newLeaderEpoch: 0 },
  { type: 'UPTODATE', commitZxid: Z },
  { type: 'COMMIT', zxid: Z },
  { type: 'INFORM', zxid: Z, data: bytes },
  { type: 'PING', round: 17 },
  { type: 'SYNC', requestId: Number.MAX_SAFE_INTEGER },
  { type: 'SYNCREPLY', requestId: 1, zxid: Z },
  { type: 'APP', payload: bytes },
]

const zxid = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
const epoch = fc.integer({ min: 0, max: 2 ** 21 - 1 })
const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 })
const data = fc.uint8Array({ maxLength: 64 })

const arbMessage: fc.Arbitrary<PeerMessage> = fc.oneof(
  fc.record({
    type: fc.constant('NOTIFICATION' as const),
    leader: u32,
    zxid,
    peerEpoch: epoch,
    round: zxid,
    state: fc.constantFrom('LOOKING', 'FOLLOWING', 'LEADING', 'OBSERVING' as const),
    configZxid: zxid,
    config: fc.string({ maxLength: 40 }),
    viewZxid: zxid,
  }),
  fc.record({
    type: fc.constantFrom('FOLLOWERINFO' as const, 'OBSERVERINFO' as const),
    acceptedEpoch: epoch,
  }),
  fc.record({ type: fc.constant('LEADERINFO' as const), newEpoch: epoch, observer: fc.boolean() }),
  fc.record({
    type: fc.constant('ACKEPOCH' as const),
    epoch,
    currentEpoch: epoch,
    lastZxid: zxid,
    reAck: fc.boolean(),
  }),
  fc.record({ type: fc.constant('DIFF' as const), lastZxid: zxid }),
  fc.record({ type: fc.constantFrom('TRUNC' as const, 'COMMIT' as const), zxid }),
  fc.record({
    type: fc.constant('SNAP' as const),
    zxid,
    configZxid: zxid,
    config: fc.string({ maxLength: 40 }),
  }),
  fc.record({ type: fc.constant('SNAPEND' as const), chunkCount: u32, endZxid: zxid }),
  fc.record({ type: fc.constant('SNAPCHUNK' as const), index: u32, data }),
  fc.record({ type: fc.constantFrom('PROPOSAL' as const, 'INFORM' as const), zxid, data }),
  fc.record({
    type: fc.constant('NEWLEADER' as const),
    epoch,
    configZxid: zxid,
    config: fc.string({ maxLength: 40 }),
  }),
  fc.record({ type: fc.constant('ACK' as const), zxid, newLeaderEpoch: epoch }),
  fc.record({ type: fc.constant('UPTODATE' as const), commitZxid: zxid }),
  fc.record({ type: fc.constant('PING' as const), round: zxid }),
  fc.record({ type: fc.constant('SYNC' as const), requestId: zxid }),
  fc.record({ type: fc.constant('SYNCREPLY' as const), requestId: zxid, zxid }),
  fc.record({ type: fc.constant('APP' as const), payload: data }),
)

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
}

function expectDecodeError(b: Uint8Array): void {
  expect(() => decodePeerMessage(b)).toThrow(PeerMessageDecodeError)
}

/** The decode fails with exactly this reason at this offset (not just any decode error). */
function expectDecodeErrorWith(b: Uint8Array, reason: string, offset: number): void {
  let caught: unknown
  try {
    decodePeerMessage(b)
  } catch (e) {
    caught = e
  }
  expect(caught).toBeInstanceOf(PeerMessageDecodeError)
  expect({
    reason: (caught as PeerMessageDecodeError).reason,
    offset: (caught as PeerMessageDecodeError).offset,
  }).toEqual({
    reason,
    offset,
  })
}

describe('peer message codec', () => {
  it('round-trips one example of every message type', () => {
    const types = new Set(EXAMPLES.map((m) => m.type))
    expect(types.size).toBe(20)
    for (const m of EXAMPLES) expect(decodePeerMessage(encodePeerMessage(m))).toEqual(m)
  })

  it('round-trips arbitrary messages', () => {
    fc.assert(
      fc.property(arbMessage, (m) => {
        expect(decodePeerMessage(encodePeerMessage(m))).toEqual(m)
      }),
    )
  })

  it('pins the wire format (hex fixture)', () => {
    expect(hex(encodePeerMessage({ type: 'PROPOSAL', zxid: Z, data: bytes }))).toBe(
      '04020000000500000007000000040102 03fa'.replace(' ', ''),
    )
    expect(hex(encodePeerMessage({ type: 'ACK', zxid: 1, newLeaderEpoch: 2 }))).toBe(
      '0403000000000000000100000002',
    )
    // Version 4: NEWLEADER carries the leader's committed config (zxid, then the text).
    expect(hex(encodePeerMessage({ type: 'NEWLEADER', epoch: 2, configZxid: 1, config: 'ab' }))).toBe(
      '040a 00000002 0000000000000001 00000002 6162'.replaceAll(' ', ''),
    )
  })

  it('rejects every truncation of every example', () => {
    for (const m of EXAMPLES) {
      const b = encodePeerMessage(m)
      for (let n = 0; n < b.length; n++) expectDecodeError(b.subarray(0, n))
    }
  })

  it('rejects unknown versions and types, trailing bytes and out-of-range fields', () => {
    const ack = encodePeerMessage({ type: 'ACK', zxid: 1, newLeaderEpoch: 0 })
    expectDecodeError(Uint8Array.of(3, ...ack.subarray(1)))
    expectDecodeError(Uint8Array.of(5, ...ack.subarray(1)))
    expectDecodeError(Uint8Array.of(4, 99))
    expectDecodeError(Uint8Array.of(...ack, 0))
    const ackEpoch = encodePeerMessage({
      type: 'ACKEPOCH',
      epoch: 1,
      currentEpoch: 1,
      lastZxid: 1,
      reAck: false,
    })
    const badBool = Uint8Array.from(ackEpoch)
    badBool[badBool.length - 1] = 2
    expectDecodeError(badBool)
    // The range checks, each reached with the current version byte (taken from
    // an encoded message, so a version bump cannot turn these into "unknown
    // version" refusals again) and each answered by its own specific error.
    const v = ack[0] as number
    // LEADERINFO with the largest epoch decodes; one more is refused as too large.
    expect(decodePeerMessage(Uint8Array.of(v, 17, 0x00, 0x1f, 0xff, 0xff, 0))).toEqual({
      type: 'LEADERINFO',
      newEpoch: 2 ** 21 - 1,
      observer: false,
    })
    expectDecodeErrorWith(Uint8Array.of(v, 17, 0x00, 0x20, 0x00, 0x00, 0), 'epoch 2097152 too large', 2)
    // COMMIT with the largest safe zxid decodes; 2**53 is refused.
    expect(decodePeerMessage(Uint8Array.of(v, 4, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))).toEqual({
      type: 'COMMIT',
      zxid: Number.MAX_SAFE_INTEGER,
    })
    expectDecodeErrorWith(Uint8Array.of(v, 4, 0x00, 0x20, 0, 0, 0, 0, 0, 0), 'integer beyond 2**53', 2)
    // APP claiming a 4 GiB payload with none following: refused by the length
    // check before anything is allocated or read.
    expectDecodeErrorWith(Uint8Array.of(v, 35, 0xff, 0xff, 0xff, 0xff), 'truncated: need 4294967295 more', 6)
    // A SNAP's config text must be UTF-8.
    expectDecodeErrorWith(
      Uint8Array.of(v, 15, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff),
      'bad UTF-8',
      18,
    )
    // Unknown versions name themselves.
    expectDecodeErrorWith(Uint8Array.of(v + 1, ...ack.subarray(1)), `unknown version ${v + 1}`, 0)
  })

  it('never throws anything but PeerMessageDecodeError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
        try {
          decodePeerMessage(b)
        } catch (e) {
          expect(e).toBeInstanceOf(PeerMessageDecodeError)
        }
      }),
    )
  })

  it('keeps every encoded message intact while later ones are encoded (shared slab: no overlap, no reuse)', () => {
    // Sizes from a COMMIT to past the slab's piece limit (16 KiB), enough of them to fill several 64 KiB slabs,
    // and a throw half-way through an encoding (it must not leave a hole that a later message shares).
    const kept: { m: PeerMessage; b: Uint8Array }[] = []
    for (let i = 0; i < 600; i++) {
      const size = [0, 1, 40, 1024, 5000, 20_000][i % 6]!
      const m: PeerMessage =
        i % 7 === 0
          ? { type: 'COMMIT', zxid: i }
          : { type: 'PROPOSAL', zxid: i, data: new Uint8Array(size).fill(i & 0xff) }
      kept.push({ m, b: encodePeerMessage(m) })
      if (i % 50 === 0) expect(() => encodePeerMessage({ type: 'COMMIT', zxid: -1 })).toThrow(RangeError)
    }
    for (const { m, b } of kept) expect(decodePeerMessage(b)).toEqual(m)
  })

  it('refuses to encode out-of-range fields', () => {
    expect(() => encodePeerMessage({ type: 'NEWLEADER', epoch: 2 ** 21, configZxid: 0, config: '' })).toThrow(
      RangeError,
    )
    expect(() => encodePeerMessage({ type: 'COMMIT', zxid: -1 })).toThrow(RangeError)
  })
})
