/**
 * The jute codec: every request and response record round-trips; truncated,
 * oversized and garbage frames give a clean ProtocolError (fuzzed with
 * fast-check), never another exception and never a huge allocation.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  decodeConnectRequest,
  decodeConnectResponse,
  decodeRequest,
  encodeConnectRequest,
  encodeConnectResponse,
  encodeRequest,
  FrameDecoder,
  frame,
  JuteReader,
  JuteWriter,
  OpCode,
  ProtocolError,
  type Request,
  type Response,
  readReplyHeader,
  readResponseBody,
  readWatcherEvent,
  writeReplyHeader,
  writeResponseBody,
  writeWatcherEvent,
} from '../../../shared/index.js'

const str = fc.string({ maxLength: 40 })
const path = fc.string({ maxLength: 30 }).map((s) => `/${s}`)
const bytes = fc.uint8Array({ maxLength: 64 })
/** Znode data: bytes, or null (no data: length -1 on the wire). */
const data = fc.option(bytes, { nil: null, freq: 5 })
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
const acl = fc.record({ perms: fc.integer({ min: 0, max: 31 }), id: fc.record({ scheme: str, id: str }) })
const stat = fc.record({
  czxid: fc.nat(),
  mzxid: fc.nat(),
  ctime: fc.nat(),
  mtime: fc.nat(),
  version: int32,
  cversion: int32,
  aversion: int32,
  ephemeralOwner: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  dataLength: fc.nat(),
  numChildren: fc.nat(),
  pzxid: fc.nat(),
})

const create = fc.record({
  op: fc.constantFrom(OpCode.create, OpCode.create2, OpCode.createContainer),
  path,
  data,
  acl: fc.array(acl, { maxLength: 3 }),
  flags: fc.integer({ min: 0, max: 6 }),
  ttl: fc.constant(0),
})
const createTtl = fc.record({
  op: fc.constant(OpCode.createTTL),
  path,
  data,
  acl: fc.array(acl, { maxLength: 3 }),
  flags: fc.integer({ min: 5, max: 6 }),
  ttl: fc.integer({ min: 1, max: 2 ** 40 }),
})
const versioned = fc.record({ op: fc.constantFrom(OpCode.delete, OpCode.check), path, version: int32 })
const setData = fc.record({ op: fc.constant(OpCode.setData), path, data, version: int32 })
const multiOp = fc.oneof(create, createTtl, versioned, setData)

const request: fc.Arbitrary<Request> = fc.oneof(
  create,
  createTtl,
  versioned,
  setData,
  fc.record({
    op: fc.constantFrom(OpCode.exists, OpCode.getData, OpCode.getChildren, OpCode.getChildren2),
    path,
    watch: fc.boolean(),
  }),
  fc.record({
    op: fc.constantFrom(OpCode.getACL, OpCode.sync, OpCode.getEphemerals, OpCode.getAllChildrenNumber),
    path,
  }),
  fc.record({ op: fc.constant(OpCode.setACL), path, acl: fc.array(acl, { maxLength: 3 }), version: int32 }),
  fc.record({ op: fc.constant(OpCode.multi), ops: fc.array(multiOp, { maxLength: 5 }) }),
  fc.record({
    op: fc.constant(OpCode.multiRead),
    ops: fc.array(
      fc.record({ op: fc.constantFrom(OpCode.getData, OpCode.getChildren), path, watch: fc.constant(false) }),
      { maxLength: 5 },
    ),
  }),
  fc.record({ op: fc.constantFrom(OpCode.ping, OpCode.closeSession, OpCode.whoAmI) }),
  fc.record({
    op: fc.constantFrom(OpCode.setWatches2),
    relativeZxid: fc.nat(),
    dataWatches: fc.array(path, { maxLength: 3 }),
    existWatches: fc.array(path, { maxLength: 3 }),
    childWatches: fc.array(path, { maxLength: 3 }),
    persistentWatches: fc.array(path, { maxLength: 3 }),
    persistentRecursiveWatches: fc.array(path, { maxLength: 3 }),
  }),
  fc.record({ op: fc.constant(OpCode.addWatch), path, mode: fc.integer({ min: 0, max: 1 }) }),
  fc.record({
    op: fc.constantFrom(OpCode.removeWatches, OpCode.checkWatches),
    path,
    type: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ op: fc.constant(OpCode.auth), authType: fc.constant(0), scheme: str, auth: bytes }),
) as fc.Arbitrary<Request>

const STAT0 = {
  czxid: 1,
  mzxid: 2,
  ctime: 3,
  mtime: 4,
  version: 5,
  cversion: 6,
  aversion: 7,
  ephemeralOwner: 0n,
  dataLength: 0,
  numChildren: 0,
  pzxid: 8,
}

function encode(xid: number, req: Request): Uint8Array {
  const w = new JuteWriter(16)
  encodeRequest(w, xid, req)
  return w.finish()
}

describe('jute codec', () => {
  it('round-trips every request record', () => {
    fc.assert(
      fc.property(int32, request, (xid, req) => {
        const out = decodeRequest(encode(xid, req))
        expect(out.xid).toBe(xid)
        expect(out.req).toEqual(req)
      }),
      { numRuns: 500 },
    )
  })

  it('round-trips setWatches (v1) without the persistent lists', () => {
    const req: Request = {
      op: OpCode.setWatches,
      relativeZxid: 42,
      dataWatches: ['/a'],
      existWatches: [],
      childWatches: ['/b', '/c'],
      persistentWatches: [],
      persistentRecursiveWatches: [],
    }
    expect(decodeRequest(encode(-8, req)).req).toEqual(req)
  })

  it('round-trips connect request and response, with and without the readOnly byte', () => {
    for (const readOnly of [true, false, undefined]) {
      const w = new JuteWriter()
      const req = {
        protocolVersion: 0,
        lastZxidSeen: 7n,
        timeOut: 30000,
        sessionId: -5n,
        passwd: new Uint8Array(16).fill(3),
        readOnly,
      }
      encodeConnectRequest(w, req)
      expect(decodeConnectRequest(w.finish())).toEqual(req)
    }
    const w = new JuteWriter()
    const res = {
      protocolVersion: 0,
      timeOut: 4000,
      sessionId: 2n ** 62n,
      passwd: new Uint8Array(16),
      readOnly: false,
    }
    encodeConnectResponse(w, res)
    expect(decodeConnectResponse(w.finish())).toEqual(res)
  })

  it('round-trips responses, reply headers and watcher events', () => {
    const responses: fc.Arbitrary<Response> = fc.oneof(
      fc.record({ op: fc.constant(OpCode.create), path }),
      fc.record({
        op: fc.constantFrom(OpCode.create2, OpCode.createTTL, OpCode.createContainer),
        path,
        stat,
      }),
      fc.record({ op: fc.constantFrom(OpCode.exists, OpCode.setData, OpCode.setACL), stat }),
      fc.record({ op: fc.constant(OpCode.getData), data, stat }),
      fc.record({ op: fc.constant(OpCode.getChildren), children: fc.array(str, { maxLength: 4 }) }),
      fc.record({ op: fc.constant(OpCode.getChildren2), children: fc.array(str, { maxLength: 4 }), stat }),
      fc.record({ op: fc.constant(OpCode.getACL), acl: fc.array(acl, { maxLength: 3 }), stat }),
      fc.record({ op: fc.constant(OpCode.getEphemerals), paths: fc.array(path, { maxLength: 3 }) }),
      fc.record({ op: fc.constant(OpCode.getAllChildrenNumber), total: fc.nat() }),
      fc.record({
        op: fc.constant(OpCode.whoAmI),
        clientInfo: fc.array(fc.record({ authScheme: str, user: str }), { maxLength: 3 }),
      }),
      fc.record({
        op: fc.constant(OpCode.multi),
        results: fc.array(
          fc.oneof(
            fc.record({ type: fc.constant(OpCode.create), path }),
            fc.record({ type: fc.constant(OpCode.create2), path, stat }),
            fc.record({ type: fc.constant(OpCode.setData), stat }),
            fc.record({ type: fc.constantFrom(OpCode.delete, OpCode.check) }),
            fc.record({ type: fc.constant(OpCode.error), err: int32 }),
          ),
          { maxLength: 4 },
        ),
      }),
    ) as fc.Arbitrary<Response>
    fc.assert(
      fc.property(int32, fc.nat(), int32, responses, (xid, zxid, err, res) => {
        const w = new JuteWriter(8)
        writeReplyHeader(w, { xid, zxid, err })
        writeResponseBody(w, res)
        const r = new JuteReader(w.finish())
        expect(readReplyHeader(r)).toEqual({ xid, zxid, err })
        expect(readResponseBody(r, res.op)).toEqual(res)
        r.done('response')
      }),
      { numRuns: 300 },
    )
    const w = new JuteWriter()
    writeWatcherEvent(w, { type: 3, state: 3, path: '/x/ü' })
    expect(readWatcherEvent(new JuteReader(w.finish()))).toEqual({ type: 3, state: 3, path: '/x/ü' })
  })

  it('keeps null data (length -1) distinct from empty data (length 0), as ZooKeeper does', () => {
    const createWith = (len: number[]) =>
      Uint8Array.from([
        ...[0, 0, 0, 7, 0, 0, 0, 1], // xid 7, create
        ...[0, 0, 0, 2, 0x2f, 0x61], // '/a'
        ...len, // data length (and no bytes)
        ...[0, 0, 0, 0], // no ACLs
        ...[0, 0, 0, 0], // persistent
      ])
    expect(decodeRequest(createWith([0xff, 0xff, 0xff, 0xff])).req).toMatchObject({ path: '/a', data: null })
    expect(decodeRequest(createWith([0, 0, 0, 0])).req).toMatchObject({ path: '/a', data: new Uint8Array(0) })
    const setData = (d: Uint8Array | null) =>
      encode(1, { op: OpCode.setData, path: '/a', data: d, version: -1 })
    expect([...setData(null).subarray(14, 18)]).toEqual([0xff, 0xff, 0xff, 0xff])
    expect(decodeRequest(setData(null)).req).toMatchObject({ data: null })
    expect(decodeRequest(setData(new Uint8Array(0))).req).toMatchObject({ data: new Uint8Array(0) })
    // A getData reply: null goes out as length -1 and reads back as null.
    for (const d of [null, new Uint8Array(0)]) {
      const w = new JuteWriter()
      writeResponseBody(w, { op: OpCode.getData, data: d, stat: STAT0 })
      const out = w.finish()
      expect([...out.subarray(0, 4)]).toEqual(d === null ? [0xff, 0xff, 0xff, 0xff] : [0, 0, 0, 0])
      expect(readResponseBody(new JuteReader(out), OpCode.getData)).toEqual({
        op: OpCode.getData,
        data: d,
        stat: STAT0,
      })
    }
  })

  it("reads an ACL id's null strings as '' (kazoo sends Id('auth', '') with a null id)", () => {
    const req = Uint8Array.from([
      ...[0, 0, 0, 7, 0, 0, 0, 1], // xid 7, create
      ...[0, 0, 0, 2, 0x2f, 0x61], // '/a'
      ...[0, 0, 0, 0], // empty data
      ...[0, 0, 0, 1, 0, 0, 0, 31], // one ACL: perms ALL
      ...[0, 0, 0, 4, 0x61, 0x75, 0x74, 0x68], // scheme 'auth'
      ...[0xff, 0xff, 0xff, 0xff], // id: null
      ...[0, 0, 0, 0], // persistent
    ])
    expect(decodeRequest(req).req).toMatchObject({ acl: [{ perms: 31, id: { scheme: 'auth', id: '' } }] })
  })

  it('rejects every truncation of a valid request with ProtocolError', () => {
    fc.assert(
      fc.property(request, fc.nat(), (req, cut) => {
        const full = encode(1, req)
        const n = cut % full.length
        expect(() => decodeRequest(full.subarray(0, n))).toThrow(ProtocolError)
      }),
      { numRuns: 500 },
    )
  })

  it('gives only ProtocolError on garbage, and trailing bytes are an error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
        try {
          decodeRequest(garbage)
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError)
        }
      }),
      { numRuns: 2000 },
    )
    const ok = encode(1, { op: OpCode.sync, path: '/' })
    const extra = new Uint8Array(ok.length + 1)
    extra.set(ok)
    expect(() => decodeRequest(extra)).toThrow(/trailing/)
  })

  it('does not allocate for a huge declared length', () => {
    const w = new JuteWriter()
    w.int(1).int(OpCode.getChildren).int(0x7fffffff) // path length 2 GiB in an 12-byte frame
    expect(() => decodeRequest(w.finish())).toThrow(/truncated/)
    const v = new JuteWriter()
    v.int(1).int(OpCode.setWatches).long(0).int(0x7fffffff)
    expect(() => decodeRequest(v.finish())).toThrow(/does not fit/)
  })

  it('rejects unknown opcodes and ops not allowed inside multi', () => {
    const w = new JuteWriter()
    w.int(5).int(9999)
    expect(() => decodeRequest(w.finish())).toThrow(/unknown opcode 9999/)
    const m = new JuteWriter()
    m.int(5).int(OpCode.multi).int(OpCode.sync).bool(false).int(-1).ustring('/')
    expect(() => decodeRequest(m.finish())).toThrow(/not allowed/)
  })
})

describe('JuteWriter.finishPooled', () => {
  it('gives copies that later writes, resets and other writers never change, each an aligned view', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 12_000 }), { maxLength: 80 }), (parts) => {
        const w = new JuteWriter(16)
        const other = new JuteWriter(16)
        const outs = parts.map((p) => {
          other.reset().buffer(p)
          const out = w.reset().buffer(p).finishPooled()
          other.finishPooled()
          return out
        })
        outs.forEach((out, i) => {
          expect(out.byteOffset % 8).toBe(0)
          const r = new JuteReader(out)
          expect(r.buffer()).toEqual(parts[i])
          r.done('pooled copy')
        })
      }),
      { numRuns: 50 },
    )
  })
})

describe('TCP framing', () => {
  it('reassembles packets split at every byte boundary', () => {
    fc.assert(
      fc.property(
        fc.array(bytes, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (packets, cuts) => {
          const stream = new Uint8Array(packets.reduce((n, p) => n + p.length + 4, 0))
          let at = 0
          for (const p of packets) {
            stream.set(frame(p), at)
            at += p.length + 4
          }
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)
          const dec = new FrameDecoder(1024)
          const out: Uint8Array[] = []
          let prev = 0
          for (const p of [...points, stream.length]) {
            out.push(...dec.push(stream.slice(prev, p)))
            prev = p
          }
          expect(out).toEqual(packets)
          expect(dec.pendingBytes).toBe(0)
        },
      ),
    )
  })

  it('rejects a length prefix over the limit before buffering', () => {
    const dec = new FrameDecoder(100)
    expect(() => dec.push(new Uint8Array([0, 0, 0, 101]))).toThrow(/exceeds the limit/)
    expect(() => new FrameDecoder().push(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toThrow(/negative/)
  })
})
