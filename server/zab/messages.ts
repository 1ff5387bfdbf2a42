/**
 * Peer messages: the discriminated union every ZAB step consumes and emits,
 * and their compact binary encoding for the peer transport.
 *
 * Wire format: [version u8 = 1][type u8][fields...], big-endian. Numbers that
 * may exceed 2**32 (zxids, rounds, request ids) are two u32 words (high, low)
 * and must decode to a safe integer; epochs are u32 below 2**21; byte strings
 * are a u32 length and the bytes. Type codes follow ZooKeeper's Leader.java
 * where a packet exists there, so a packet capture reads the same.
 *
 * Invariants: decode(encode(m)) deep-equals m for every valid m; decode of
 * any other input throws PeerMessageDecodeError (never a RangeError, never a
 * partial message); trailing bytes are an error.
 *
 * Must not import anything but shared/ and server/core (pure module); no
 * Buffer (DataView and Uint8Array only).
 */
import { ZXID_EPOCH_MAX } from '../../shared/zxid.js'
import { PEER_STATES, type PeerState, type ServerId } from './types.js'

export type PeerMessage =
  | {
      type: 'NOTIFICATION'
      leader: ServerId
      zxid: number
      peerEpoch: number
      round: number
      state: PeerState
      /**
       * The sender's committed membership config and its zxid (ZooKeeper's
       * notifications carry it too): a server that knows an older one adopts
       * it, so a new config's voters that missed the commit still learn it.
       */
      configZxid: number
      config: string
      /** The zxid of the newest config in the sender's view (accepted, maybe not committed). */
      viewZxid: number
    }
  | { type: 'FOLLOWERINFO'; acceptedEpoch: number }
  | { type: 'OBSERVERINFO'; acceptedEpoch: number }
  /**
   * `observer`: how the learner takes part in this session, as the leader's
   * membership view says (an observer gets INFORMs and never ACKs; anyone
   * else follows, counted only if a voter of that view).
   */
  | { type: 'LEADERINFO'; newEpoch: number; observer: boolean }
  /** `reAck`: the learner had already accepted `epoch` (ZooKeeper sends currentEpoch -1). */
  | { type: 'ACKEPOCH'; epoch: number; currentEpoch: number; lastZxid: number; reAck: boolean }
  | { type: 'DIFF'; lastZxid: number }
  | { type: 'TRUNC'; zxid: number }
  /**
   * A snapshot taken at `zxid` follows as SNAPCHUNKs (indexes 0, 1, …), then
   * SNAPEND. `config` is the membership config committed as of `zxid` (its
   * dynamic-config text) and `configZxid` the entry that made it (0: static).
   */
  | { type: 'SNAP'; zxid: number; configZxid: number; config: string }
  | { type: 'SNAPCHUNK'; index: number; data: Uint8Array }
  /**
   * The snapshot's end: `chunkCount` chunks were sent. It was written while
   * the leader kept applying (fuzzy): it may reflect entries up to `endZxid`
   * (>= the SNAP's zxid), which the learner applies idempotently.
   */
  | { type: 'SNAPEND'; chunkCount: number; endZxid: number }
  | { type: 'PROPOSAL'; zxid: number; data: Uint8Array }
  /**
   * The sync stream's end. `config` is the leader's committed membership
   * config (its dynamic-config text) and `configZxid` the entry that made it
   * (0: the static one): the learner takes it (ZooKeeper's NEWLEADER carries
   * the leader's quorum verifier too), so a joiner started with a config
   * naming itself ends with the ensemble's.
   */
  | { type: 'NEWLEADER'; epoch: number; configZxid: number; config: string }
  /** Cumulative: everything up to `zxid` is durable. newLeaderEpoch > 0 acknowledges NEWLEADER. */
  | { type: 'ACK'; zxid: number; newLeaderEpoch: number }
  | { type: 'UPTODATE'; commitZxid: number }
  /** Commit everything up to `zxid`: the leader's latest committed zxid. */
  | { type: 'COMMIT'; zxid: number }
  | { type: 'INFORM'; zxid: number; data: Uint8Array }
  | { type: 'PING'; round: number }
  | { type: 'SYNC'; requestId: number }
  | { type: 'SYNCREPLY'; requestId: number; zxid: number }
  | { type: 'APP'; payload: Uint8Array }

export type PeerMessageType = PeerMessage['type']

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

/**
 * 2: SNAP is streamed (no chunk count up front; SNAPEND closes it). 3: SNAP
 * carries the membership config. 4: NEWLEADER carries the leader's committed
 * config. A server decodes only its own version (any other is a decode error
 * and the link is dropped): servers of different versions cannot form an
 * ensemble, so an upgrade across a version change stops every server first.
 */
const VERSION = 4

const TYPE_CODES: Record<PeerMessageType, number> = {
  PROPOSAL: 2,
  ACK: 3,
  COMMIT: 4,
  PING: 5,
  SYNC: 7,
  INFORM: 8,
  NEWLEADER: 10,
  FOLLOWERINFO: 11,
  UPTODATE: 12,
  DIFF: 13,
  TRUNC: 14,
  SNAP: 15,
  OBSERVERINFO: 16,
  LEADERINFO: 17,
  ACKEPOCH: 18,
  NOTIFICATION: 32,
  SNAPCHUNK: 33,
  SYNCREPLY: 34,
  APP: 35,
  SNAPEND: 36,
}

const TYPE_BY_CODE = new Map<number, PeerMessageType>(
  (Object.entries(TYPE_CODES) as [PeerMessageType, number][]).map(([t, c]) => [c, t]),
)

export class PeerMessageDecodeError extends Error {
  override name = 'PeerMessageDecodeError'
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`bad peer message at byte ${offset}: ${reason}`)
  }
}

/**
 * Writers start in a shared slab: a message is a view of SLAB_BYTES
 * allocated once, not an ArrayBuffer and a DataView of its own (~0.6 µs per
 * message, most of encoding a COMMIT). A full slab is replaced, never
 * reused, so a message's bytes never change after done(); a message kept
 * keeps its slab alive (messages leave within a turn: the transport copies
 * them into its write). A message larger than SLAB_PIECE_BYTES_MAX gets a
 * buffer of its own.
 */
const SLAB_BYTES = 64 * 1024
const SLAB_PIECE_BYTES_MAX = SLAB_BYTES / 4
let slab = new Uint8Array(SLAB_BYTES)
let slabView = new DataView(slab.buffer)
let slabUsed = 0

class Writer {
  private buf: Uint8Array
  private view: DataView
  /** The message is buf[start, len); buf[len, end) is reserved for it. */
  private start: number
  private len: number
  private end: number

  constructor(size: number) {
    if (size <= SLAB_PIECE_BYTES_MAX) {
      if (slabUsed + size > SLAB_BYTES) {
        slab = new Uint8Array(SLAB_BYTES)
        slabView = new DataView(slab.buffer)
        slabUsed = 0
      }
      this.buf = slab
      this.view = slabView
      this.start = slabUsed
      slabUsed += size
    } else {
      this.buf = new Uint8Array(size)
      this.view = new DataView(this.buf.buffer)
      this.start = 0
    }
    this.len = this.start
    this.end = this.start + size
  }

  private reserve(n: number): void {
    if (this.len + n <= this.end) return
    const used = this.len - this.start
    let size = (this.end - this.start) * 2
    while (size < used + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(this.start, this.len))
    this.buf = next
    this.view = new DataView(next.buffer)
    this.start = 0
    this.len = used
    this.end = size
  }

  u8(v: number): void {
    this.reserve(1)
    this.view.setUint8(this.len, v)
    this.len += 1
  }

  u32(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`not a u32: ${v}`)
    this.reserve(4)
    this.view.setUint32(this.len, v)
    this.len += 4
  }

  /** A safe non-negative integer as two u32 words. */
  u53(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a safe non-negative integer: ${v}`)
    this.u32(Math.floor(v / 2 ** 32))
    this.u32(v % 2 ** 32)
  }

  epoch(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > ZXID_EPOCH_MAX) throw new RangeError(`not an epoch: ${v}`)
    this.u32(v)
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length)
    this.reserve(b.length)
    this.buf.set(b, this.len)
    this.len += b.length
  }

  /** The bytes written; the writer must not be used afterwards (no copy is made). */
  done(): Uint8Array {
    // The newest piece of the slab gives back what it reserved and did not use.
    if (this.buf === slab && slabUsed === this.end) slabUsed = this.len
    return this.buf.subarray(this.start, this.len)
  }
}

class Reader {
  private readonly view: DataView
  pos = 0

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length)
      throw new PeerMessageDecodeError(`truncated: need ${n} more`, this.pos)
  }

  u8(): number {
    this.need(1)
    return this.view.getUint8(this.pos++)
  }

  u32(): number {
    this.need(4)
    const v = this.view.getUint32(this.pos)
    this.pos += 4
    return v
  }

  u53(): number {
    const at = this.pos
    const hi = this.u32()
    const lo = this.u32()
    if (hi >= 2 ** 21) throw new PeerMessageDecodeError('integer beyond 2**53', at)
    return hi * 2 ** 32 + lo
  }

  epoch(): number {
    const at = this.pos
    const v = this.u32()
    if (v > ZXID_EPOCH_MAX) throw new PeerMessageDecodeError(`epoch ${v} too large`, at)
    return v
  }

  bool(): boolean {
    const at = this.pos
    const v = this.u8()
    if (v > 1) throw new PeerMessageDecodeError(`bad boolean ${v}`, at)
    return v === 1
  }

  bytes(): Uint8Array {
    const n = this.u32()
    this.need(n)
    // A copy (Uint8Array's slice, even when buf is a Buffer, whose slice is a view): a
    // logged entry must not pin, or share the fate of, the whole chunk it was read in.
    const out = Uint8Array.prototype.slice.call(this.buf, this.pos, this.pos + n)
    this.pos += n
    return out
  }

  utf8(): string {
    const at = this.pos
    try {
      return utf8Strict.decode(this.bytes())
    } catch (e) {
      if (e instanceof PeerMessageDecodeError) throw e
      throw new PeerMessageDecodeError('bad UTF-8', at)
    }
  }

  end(): void {
    if (this.pos !== this.buf.length) {
      throw new PeerMessageDecodeError(`${this.buf.length - this.pos} trailing bytes`, this.pos)
    }
  }
}

function writeFields(w: Writer, m: PeerMessage): void {
  switch (m.type) {
    case 'NOTIFICATION':
      w.u32(m.leader)
      w.u53(m.zxid)
      w.epoch(m.peerEpoch)
      w.u53(m.round)
      w.u8(PEER_STATES.indexOf(m.state))
      w.u53(m.configZxid)
      w.bytes(utf8.encode(m.config))
      return w.u53(m.viewZxid)
    case 'FOLLOWERINFO':
    case 'OBSERVERINFO':
      return w.epoch(m.acceptedEpoch)
    case 'LEADERINFO':
      w.epoch(m.newEpoch)
      return w.u8(m.observer ? 1 : 0)
    case 'ACKEPOCH':
      w.epoch(m.epoch)
      w.epoch(m.currentEpoch)
      w.u53(m.lastZxid)
      return w.u8(m.reAck ? 1 : 0)
    case 'DIFF':
      return w.u53(m.lastZxid)
    case 'TRUNC':
      return w.u53(m.zxid)
    case 'SNAP':
      w.u53(m.zxid)
      w.u53(m.configZxid)
      return w.bytes(utf8.encode(m.config))
    case 'SNAPEND':
      w.u32(m.chunkCount)
      return w.u53(m.endZxid)
    case 'SNAPCHUNK':
      w.u32(m.index)
      return w.bytes(m.data)
    case 'PROPOSAL':
    case 'INFORM':
      w.u53(m.zxid)
      return w.bytes(m.data)
    case 'NEWLEADER':
      w.epoch(m.epoch)
      w.u53(m.configZxid)
      return w.bytes(utf8.encode(m.config))
    case 'ACK':
      w.u53(m.zxid)
      return w.epoch(m.newLeaderEpoch)
    case 'UPTODATE':
      return w.u53(m.commitZxid)
    case 'COMMIT':
      return w.u53(m.zxid)
    case 'PING':
      return w.u53(m.round)
    case 'SYNC':
      return w.u53(m.requestId)
    case 'SYNCREPLY':
      w.u53(m.requestId)
      return w.u53(m.zxid)
    case 'APP':
      return w.bytes(m.payload)
  }
}

/** Throws RangeError if a field is out of range (a programmer error: we never build such a message). */
export function encodePeerMessage(m: PeerMessage): Uint8Array {
  // Fixed fields fit in 64 bytes; a payload-carrying message is sized for its payload up front.
  const w = new Writer(64 + payloadBytes(m))
  w.u8(VERSION)
  w.u8(TYPE_CODES[m.type])
  writeFields(w, m)
  return w.done()
}

/** The bytes a message carries beyond its fixed fields (entry data, chunk, app payload). */
export function payloadBytes(m: PeerMessage): number {
  switch (m.type) {
    case 'PROPOSAL':
    case 'INFORM':
    case 'SNAPCHUNK':
      return m.data.length
    case 'SNAP':
    case 'NOTIFICATION':
    case 'NEWLEADER':
      return m.config.length * 3
    case 'APP':
      return m.payload.length
    default:
      return 0
  }
}

function readState(r: Reader): PeerState {
  const at = r.pos
  const s = PEER_STATES[r.u8()]
  if (s === undefined) throw new PeerMessageDecodeError('bad peer state', at)
  return s
}

function readFields(r: Reader, type: PeerMessageType): PeerMessage {
  switch (type) {
    case 'NOTIFICATION': {
      const leader = r.u32()
      const zxid = r.u53()
      const peerEpoch = r.epoch()
      const round = r.u53()
      const state = readState(r)
      const configZxid = r.u53()
      const config = r.utf8()
      return { type, leader, zxid, peerEpoch, round, state, configZxid, config, viewZxid: r.u53() }
    }
    case 'FOLLOWERINFO':
    case 'OBSERVERINFO':
      return { type, acceptedEpoch: r.epoch() }
    case 'LEADERINFO': {
      const newEpoch = r.epoch()
      return { type, newEpoch, observer: r.bool() }
    }
    case 'ACKEPOCH': {
      const epoch = r.epoch()
      const currentEpoch = r.epoch()
      const lastZxid = r.u53()
      return { type, epoch, currentEpoch, lastZxid, reAck: r.bool() }
    }
    case 'DIFF':
      return { type, lastZxid: r.u53() }
    case 'TRUNC':
      return { type, zxid: r.u53() }
    case 'SNAP': {
      const zxid = r.u53()
      const configZxid = r.u53()
      return { type, zxid, configZxid, config: r.utf8() }
    }
    case 'SNAPEND': {
      const chunkCount = r.u32()
      return { type, chunkCount, endZxid: r.u53() }
    }
    case 'SNAPCHUNK': {
      const index = r.u32()
      return { type, index, data: r.bytes() }
    }
    case 'PROPOSAL':
    case 'INFORM': {
      const zxid = r.u53()
      return { type, zxid, data: r.bytes() }
    }
    case 'NEWLEADER': {
      const epoch = r.epoch()
      const configZxid = r.u53()
      return { type, epoch, configZxid, config: r.utf8() }
    }
    case 'ACK': {
      const zxid = r.u53()
      return { type, zxid, newLeaderEpoch: r.epoch() }
    }
    case 'UPTODATE':
      return { type, commitZxid: r.u53() }
    case 'COMMIT':
      return { type, zxid: r.u53() }
    case 'PING':
      return { type, round: r.u53() }
    case 'SYNC':
      return { type, requestId: r.u53() }
    case 'SYNCREPLY': {
      const requestId = r.u53()
      return { type, requestId, zxid: r.u53() }
    }
    case 'APP':
      return { type, payload: r.bytes() }
  }
}

/** Decodes one whole message; throws PeerMessageDecodeError on anything malformed. */
export function decodePeerMessage(bytes: Uint8Array): PeerMessage {
  const r = new Reader(bytes)
  const version = r.u8()
  if (version !== VERSION) throw new PeerMessageDecodeError(`unknown version ${version}`, 0)
  const code = r.u8()
  const type = TYPE_BY_CODE.get(code)
  if (type === undefined) throw new PeerMessageDecodeError(`unknown message type ${code}`, 1)
  const m = readFields(r, type)
  r.end()
  return m
}

/** A short human-readable form for traces and logs. */
export function describePeerMessage(m: PeerMessage): string {
  const hex = (z: number) => `0x${z.toString(16)}`
  switch (m.type) {
    case 'NOTIFICATION':
      return `NOTIFICATION(${m.state} vote=${m.leader}/${m.peerEpoch}/${hex(m.zxid)} round=${m.round} config=${hex(m.configZxid)})`
    case 'PROPOSAL':
    case 'INFORM':
      return `${m.type}(${hex(m.zxid)} ${m.data.length}B)`
    case 'ACK':
      return m.newLeaderEpoch > 0
        ? `ACK(NEWLEADER e${m.newLeaderEpoch} ${hex(m.zxid)})`
        : `ACK(${hex(m.zxid)})`
    case 'COMMIT':
    case 'TRUNC':
      return `${m.type}(${hex(m.zxid)})`
    case 'SNAPCHUNK':
      return `SNAPCHUNK(#${m.index} ${m.data.length}B)`
    case 'NEWLEADER':
      return `NEWLEADER(e${m.epoch} config=${hex(m.configZxid)})`
    case 'APP':
      return `APP(${m.payload.length}B)`
    default: {
      const { type, ...rest } = m
      return `${type}${JSON.stringify(rest)}`
    }
  }
}
