/**
 * The SDK's side of exactly-once writes (issue 16), against the in-memory
 * server (fake-net.ts): it asks in its ConnectRequest and uses the feature
 * only where the ConnectResponse grants it; granted, every write goes as
 * ConclaveOpCode.exactlyOnce with the oldest xid still unanswered; a write
 * whose connection is lost, or that is answered CONNECTION_LOSS, is not
 * failed but sent again on the next connection (after auth and watches,
 * before new requests, same xid, in order) and its promise settles with that
 * answer; reads in flight still fail; a server that does not grant it, the
 * session's end or EXACTLY_ONCE_SENDS_MAX end the wait; a write larger than
 * the server's frameBytesMax is refused before it is sent.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { type Client, type TransportFactory, ZkError } from '../../../client/index.js'
import { EXACTLY_ONCE_SENDS_MAX } from '../../../client/session.js'
import { OpCode, Xid } from '../../../shared/opcodes.js'
import { ConclaveFeature, decodeRequest } from '../../../shared/records.js'
import { waitFor } from '../../helpers/wait.js'
import { closeFakeClients, connectFake as connect, type FakeConn, FakeNet } from './fake-net.js'

const SESSION = 0x1234abcdn
const GRANT = {
  sessionId: SESSION,
  timeOut: 9_000,
  features: ConclaveFeature.exactlyOnce,
  requestBytesMax: 4096,
}

afterEach(closeFakeClients)

/** The requests a connection carried (no pings), with their exactly-once headers. */
function sent(conn: FakeConn) {
  return conn.sent
    .slice(1)
    .map((p) => decodeRequest(p))
    .filter((r) => r.xid !== Xid.ping)
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'resolved'
  } catch (err) {
    if (!ZkError.is(err)) throw err
    return err.code
  }
}

/** Waits for the next connection (after a drop) to be established. */
async function reconnected(net: FakeNet, c: Client, before: number): Promise<FakeConn> {
  await waitFor(() => net.conns.length > before && c.state === 'connected', { what: 'reconnect' })
  return net.last
}

describe('exactly-once writes in the SDK', () => {
  it('asks in the ConnectRequest; against a server that does not grant it (ZooKeeper), writes go as before and fail with CONNECTION_LOSS', async () => {
    const net = new FakeNet()
    const c = await connect(net)
    // Asked for with the other features (paginated getChildren, resumable watches).
    expect(net.last.connectRequest().features).toBe(
      ConclaveFeature.exactlyOnce | ConclaveFeature.childrenPage | ConclaveFeature.resumableWatches,
    )
    expect(c.exactlyOnce).toBe(false)
    const w = c.create('/a', 'x')
    expect(sent(net.last)[0]).toEqual({ xid: 1, req: expect.objectContaining({ op: OpCode.create }) })
    expect(sent(net.last)[0]!.once).toBeUndefined()
    net.last.drop()
    expect(await code(w)).toBe('CONNECTION_LOSS')
    // exactlyOnce: false does not even ask (only for the other features: paginated getChildren, resumable watches).
    const off = new FakeNet()
    off.autoAccept = GRANT
    const z = await connect(off, { exactlyOnce: false })
    expect(off.last.connectRequest().features).toBe(
      ConclaveFeature.childrenPage | ConclaveFeature.resumableWatches,
    )
    expect(z.exactlyOnce).toBe(false)
  })

  it('granted: writes carry the oldest unanswered xid; a lost connection re-sends them (same xids, in order, after SetWatches, before new requests) and their promises get those answers', async () => {
    const net = new FakeNet()
    net.autoAccept = GRANT
    const c = await connect(net)
    expect(c.exactlyOnce).toBe(true)
    const first = net.last
    const watched = c.exists('/w', { watch: () => {} })
    first.reply(1, 10, -101)
    await watched
    const a = c.create('/q/s-', 'a', { mode: 'persistentSequential' })
    const read = c.getData('/q')
    const b = c.setData('/q', 'b')
    expect(sent(first).slice(1)).toEqual([
      { xid: 2, req: expect.objectContaining({ op: OpCode.create }), once: { ackXid: 2 } },
      { xid: 3, req: expect.objectContaining({ op: OpCode.getData }) },
      { xid: 4, req: expect.objectContaining({ op: OpCode.setData }), once: { ackXid: 2 } },
    ])
    first.drop()
    // The read's outcome is simply unknown; the writes wait for the next connection.
    expect(await code(read)).toBe('CONNECTION_LOSS')
    const later = c.delete('/q/x')
    const second = await reconnected(net, c, 1)
    const again = sent(second)
    expect(again.map((r) => [r.xid, r.req.op, r.once?.ackXid])).toEqual([
      [Xid.setWatches, OpCode.setWatches, undefined],
      [2, OpCode.create, 2],
      [4, OpCode.setData, 2],
      [5, OpCode.delete, 2],
    ])
    second.reply(Xid.setWatches, 11)
    second.reply(2, 12, 0, { op: OpCode.create, path: '/q/s-0000000007' })
    second.reply(4, 13, 0, { op: OpCode.setData, stat: statOf(13) })
    second.reply(5, 14, 0, { op: OpCode.delete })
    expect(await a).toBe('/q/s-0000000007')
    expect((await b).mzxid).toBe(13)
    await later
    // Answered: the next write acknowledges them all.
    void c.create('/z', '').catch(() => {}) // failed by the close in afterEach
    expect(sent(second).at(-1)).toEqual({
      xid: 6,
      req: expect.objectContaining({ op: OpCode.create }),
      once: { ackXid: 6 },
    })
  })

  it("keeps at most the server's writeResultsMax exactly-once writes unanswered: the rest wait (with whatever was issued after them) and go as replies come, re-sends included", async () => {
    const net = new FakeNet()
    net.autoAccept = { ...GRANT, writeResultsMax: 2 }
    const c = await connect(net)
    const first = net.last
    const w = [0, 1, 2].map((i) => c.create(`/n${i}`, ''))
    const read = c.getData('/n0')
    const w3 = c.setData('/n0', 'x')
    // Two in flight; the third write, and the read and write issued after it, wait their turn.
    expect(sent(first).map((r) => [r.xid, r.req.op, r.once?.ackXid])).toEqual([
      [1, OpCode.create, 1],
      [2, OpCode.create, 1],
    ])
    first.reply(1, 10, 0, { op: OpCode.create, path: '/n0' })
    expect(await w[0]).toBe('/n0')
    // Room for one: the third write goes, and the read behind it; the next write waits again.
    expect(
      sent(first)
        .slice(2)
        .map((r) => [r.xid, r.req.op, r.once?.ackXid]),
    ).toEqual([
      [3, OpCode.create, 2],
      [4, OpCode.getData, undefined],
    ])
    // Lost with two writes unanswered: both go again (the server holds both results), then the rest.
    first.drop()
    expect(await code(read)).toBe('CONNECTION_LOSS')
    const second = await reconnected(net, c, 1)
    expect(sent(second).map((r) => [r.xid, r.req.op, r.once?.ackXid])).toEqual([
      [2, OpCode.create, 2],
      [3, OpCode.create, 2],
    ])
    second.reply(2, 11, 0, { op: OpCode.create, path: '/n1' })
    expect(await w[1]).toBe('/n1')
    await waitFor(() => sent(second).length === 3, { what: 'the waiting write' })
    expect(sent(second)[2]).toEqual({
      xid: 5,
      req: expect.objectContaining({ op: OpCode.setData }),
      once: { ackXid: 3 },
    })
    second.reply(3, 12, 0, { op: OpCode.create, path: '/n2' })
    second.reply(5, 13, 0, { op: OpCode.setData, stat: statOf(13) })
    expect(await w[2]).toBe('/n2')
    expect((await w3).mzxid).toBe(13)
  })

  it('a write answered CONNECTION_LOSS drops the connection and goes again, with every write after it', async () => {
    const net = new FakeNet()
    net.autoAccept = GRANT
    const c = await connect(net)
    const first = net.last
    const a = c.create('/a', '')
    const b = c.create('/b', '')
    first.reply(1, 5, -4)
    const second = await reconnected(net, c, 1)
    expect(first.closed).toBe(true)
    expect(sent(second).map((r) => r.xid)).toEqual([1, 2])
    second.reply(1, 6, 0, { op: OpCode.create, path: '/a' })
    second.reply(2, 7, -110)
    expect(await a).toBe('/a')
    expect(await code(b)).toBe('NODE_EXISTS')
  })

  it("the history test's rare failure: a reply and the server's close read in one go make the caller's next write one issued while disconnected; it is kept through a failed attempt and goes on the next connection", async () => {
    const net = new FakeNet()
    net.autoAccept = GRANT
    const c = await connect(net)
    const first = net.last
    const a = c.create('/a', '')
    // The caller's next write goes as soon as the first is answered: in its continuation.
    const b = a.then(() => c.create('/b', '').catch((e: unknown) => e))
    // The next server takes the connection but never answers it (it is looking for a leader).
    net.autoAccept = undefined
    // A follower answers, then closes on losing its leader; both arrive in one read, so the
    // loss is handled before the continuation runs.
    first.reply(1, 5, 0, { op: OpCode.create, path: '/a' })
    first.drop('websocket closed (1008 server lost its leader)')
    expect(await a).toBe('/a')
    expect(c.state).toBe('disconnected')
    await waitFor(() => net.conns.length === 2, { what: 'the next attempt' })
    // That server closes the connection unanswered: a failed attempt, another server left.
    net.autoAccept = GRANT
    net.last.drop('websocket closed (1008 this server is not serving clients)')
    const third = await reconnected(net, c, 2)
    expect(sent(third).map((r) => [r.xid, r.req.op, r.once?.ackXid])).toEqual([[2, OpCode.create, 2]])
    third.reply(2, 6, 0, { op: OpCode.create, path: '/b' })
    expect(await b).toBe('/b')
  })

  it('backs off while servers keep answering CONNECTION_LOSS (25 ms doubling), even with reconnectDelayMs 0, and stops backing off after an answer', async () => {
    const net = new FakeNet()
    net.autoAccept = GRANT
    const c = await connect(net)
    const w = c.create('/a', '')
    const gaps: number[] = []
    for (let i = 0; i < 5; i++) {
      const before = net.conns.length
      const at = Date.now()
      net.last.reply(1, 5, -4)
      await reconnected(net, c, before)
      gaps.push(Date.now() - at)
    }
    // 25, 50, 100, 200, 400 ms (timers fire no earlier than asked).
    expect(gaps[3]).toBeGreaterThanOrEqual(195)
    expect(gaps[4]).toBeGreaterThanOrEqual(395)
    net.last.reply(1, 6, 0, { op: OpCode.create, path: '/a' })
    expect(await w).toBe('/a')
    // Answered: the next lost connection is reconnected at once again.
    const before = net.conns.length
    const at = Date.now()
    net.last.drop()
    await reconnected(net, c, before)
    expect(Date.now() - at).toBeLessThan(150)
  })

  it('keeps a write issued while disconnected through failed attempts (a read fails): a dead server tried first, and every server failing in a row within the session timeout; it goes on the next connection', async () => {
    const net = new FakeNet()
    net.autoAccept = GRANT
    let refuse = 0
    const transport: TransportFactory = async (endpoint, handlers, options) => {
      if (refuse > 0) {
        refuse--
        throw new Error('connection refused (test)')
      }
      return net.factory(endpoint, handlers, options)
    }
    const c = await connect(net, { transport }, 'ws://fake:1,ws://fake:2,ws://fake:3')
    // A dead server tried first: the read fails, the write (never sent) goes to the next one.
    refuse = 1
    net.last.drop()
    const w = c.create('/w', 'x')
    const r = c.exists('/r')
    expect(await code(r)).toBe('CONNECTION_LOSS')
    const next = await reconnected(net, c, 1)
    expect(sent(next).map((x) => [x.xid, x.req.op, x.once?.ackXid])).toEqual([[1, OpCode.create, 1]])
    next.reply(1, 12, 0, { op: OpCode.create, path: '/w' })
    expect(await w).toBe('/w')
    // Every server refuses once (a round of failed attempts, well within the 9 s session): the
    // write was never sent, so it still waits, and goes on the connection after them.
    refuse = 3
    next.drop()
    const all = c.create('/all', 'x')
    const last = await reconnected(net, c, 2)
    expect(refuse).toBe(0)
    expect(sent(last).map((x) => [x.xid, x.req.op, x.once?.ackXid])).toEqual([[2, OpCode.create, 2]])
    last.reply(2, 13, 0, { op: OpCode.create, path: '/all' })
    expect(await all).toBe('/all')
  })

  it('gives a write issued while disconnected up once no server was reached for the session timeout (CONNECTION_LOSS, never sent), so a caller does not wait on an ensemble that may not come back', async () => {
    const net = new FakeNet()
    net.autoAccept = { ...GRANT, timeOut: 300 }
    const c = await connect(net)
    // The server takes connections and never answers: each attempt fails at its timeout (1 s).
    net.autoAccept = undefined
    net.last.drop()
    const err = await c.create('/late', '').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'CONNECTION_LOSS' })
    expect(String(err)).toMatch(/never sent: no server was reached within the session timeout \(300 ms\)/)
    // Nothing but ConnectRequests went out after the loss.
    expect(net.conns.length).toBeGreaterThan(1)
    expect(net.conns.slice(1).every((conn) => conn.sent.length <= 1)).toBe(true)
  })

  it('past the session timeout, still keeps a write issued while disconnected until every server was tried once (a long list outlasts the timeout)', async () => {
    const net = new FakeNet()
    const grant = { ...GRANT, timeOut: 300 }
    net.autoAccept = grant
    let attempts = 0
    const transport: TransportFactory = async (endpoint, handlers, options) => {
      // After the loss the first two servers take the connection and never answer (1 s each,
      // past the 300 ms session timeout); the third answers.
      attempts++
      net.autoAccept = attempts === 1 || attempts >= 4 ? grant : undefined
      return net.factory(endpoint, handlers, options)
    }
    const c = await connect(net, { transport }, 'ws://fake:1,ws://fake:2,ws://fake:3')
    net.last.drop()
    const w = c.create('/w', 'x')
    const next = await reconnected(net, c, 3)
    expect(attempts).toBe(4)
    expect(sent(next).map((x) => [x.xid, x.req.op])).toEqual([[1, OpCode.create]])
    next.reply(1, 12, 0, { op: OpCode.create, path: '/w' })
    expect(await w).toBe('/w')
  })

  it('fails the writes it was re-sending when the next server does not grant it, or the session has expired', async () => {
    const net = new FakeNet()
    net.autoAccept = GRANT
    const c = await connect(net)
    const failed = c.setData('/a', 'x').catch((e: unknown) => e)
    net.autoAccept = { sessionId: SESSION, timeOut: 9_000 }
    net.last.drop()
    await reconnected(net, c, 1)
    const err = await failed
    expect(err).toMatchObject({ code: 'CONNECTION_LOSS' })
    expect(String(err)).toMatch(/does not offer exactly-once writes: outcome unknown/)
    expect(c.exactlyOnce).toBe(false)

    const net2 = new FakeNet()
    net2.autoAccept = GRANT
    const d = await connect(net2)
    const expired = code(d.setData('/a', 'x'))
    net2.autoAccept = { sessionId: 0n, timeOut: 0 }
    net2.last.drop()
    expect(await expired).toBe('SESSION_EXPIRED')
    expect(d.state).toBe('expired')
  })

  it(`gives a write up after ${EXACTLY_ONCE_SENDS_MAX} sends whose connections were all lost (CONNECTION_LOSS)`, async () => {
    const net = new FakeNet()
    net.autoAccept = GRANT
    const c = await connect(net)
    const w = c.create('/poison', '')
    let outcome: string | undefined
    void code(w).then((o) => (outcome = o))
    for (let i = 1; i < EXACTLY_ONCE_SENDS_MAX; i++) {
      const before = net.conns.length
      net.last.drop()
      const next = await reconnected(net, c, before)
      expect(sent(next).map((r) => r.xid)).toEqual([1])
    }
    expect(outcome).toBeUndefined()
    net.last.drop()
    await waitFor(() => outcome !== undefined, { what: 'the write to fail' })
    expect(outcome).toBe('CONNECTION_LOSS')
  })

  it("refuses a write larger than the server's frameBytesMax before sending it (BAD_ARGUMENTS), the connection kept", async () => {
    const net = new FakeNet()
    net.autoAccept = GRANT
    const c = await connect(net)
    const err = await c.create('/big', new Uint8Array(8192)).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'BAD_ARGUMENTS' })
    expect(String(err)).toMatch(/more than the server's frameBytesMax \(4096\)/)
    expect(sent(net.last)).toEqual([])
    expect(c.state).toBe('connected')
  })
})

function statOf(zxid: number) {
  return {
    czxid: 1,
    mzxid: zxid,
    ctime: 1,
    mtime: 2,
    version: 1,
    cversion: 0,
    aversion: 0,
    ephemeralOwner: 0n,
    dataLength: 1,
    numChildren: 0,
    pzxid: 1,
  }
}
