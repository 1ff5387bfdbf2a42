/**
 * The session machine against an in-memory server (fake-net.ts): handshake,
 * validation without sending, pipelining and reply order, lastZxid, watch
 * registration and event ordering, reconnect priming (auth, SetWatches with
 * batching, queued requests), expiry, auth failure, close, timers, and the
 * persistent-watch removal and ZOOKEEPER-4466 repair.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  Client,
  type ClientState,
  type ConnectOptions,
  type WatchEvent,
  ZkError,
} from '../../../client/index.js'
import { SET_WATCHES_BYTES_MAX } from '../../../client/session.js'
import { EventType, OpCode, WatcherType, Xid } from '../../../shared/opcodes.js'
import type { Request, SetWatchesRequest } from '../../../shared/records.js'
import type { WireStat } from '../../../shared/stat.js'
import { waitFor } from '../../helpers/wait.js'
import { closeFakeClients, connectFake, type FakeConn, FakeNet, roundTrip } from './fake-net.js'

const stat: WireStat = {
  czxid: 5,
  mzxid: 6,
  ctime: 1,
  mtime: 2,
  version: 1,
  cversion: 0,
  aversion: 0,
  ephemeralOwner: 0n,
  dataLength: 1,
  numChildren: 0,
  pzxid: 5,
}

const clients: Client[] = []
afterEach(async () => {
  closeFakeClients()
  for (const c of clients.splice(0)) {
    // Close without waiting on a server that may never answer.
    void c.close()
  }
  vi.useRealTimers()
})

/**
 * The test drives the session's clock itself (its timers and performance.now,
 * and Date): timing claims are exact and do not depend on the machine's load.
 * Microtasks stay real, so the fake network still answers. (waitFor polls with
 * setTimeout: not for these tests; vi.advanceTimersByTimeAsync instead.)
 */
function useFakeClock(): void {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
  })
}

/** A client on one fake server unless told (connectFake's, closed after each test). */
const connect = (net: FakeNet, opts: ConnectOptions = {}, connectString = 'ws://fake:1'): Promise<Client> =>
  connectFake(net, opts, connectString)

/**
 * connect() on the fake clock: the first attempt takes no time (no delay
 * before it), so the session is there without moving the clock; a build that
 * delayed it fails here, at once, instead of hanging until the test timeout.
 */
async function connectOnFakeClock(
  net: FakeNet,
  opts: ConnectOptions = {},
  connectString = 'ws://fake:1',
): Promise<Client> {
  let client: Client | undefined
  let error: unknown
  connect(net, opts, connectString).then(
    (c) => (client = c),
    (e: unknown) => (error = e),
  )
  await vi.advanceTimersByTimeAsync(0)
  if (error !== undefined) throw error
  if (client === undefined) throw new Error('the first connection took time on the fake clock')
  return client
}

function reqs(conn: FakeConn): { xid: number; req: Request }[] {
  return conn.requests().filter((r) => r.xid !== Xid.ping)
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

describe('handshake', () => {
  it('sends a ConnectRequest for a new session and takes the negotiated values', async () => {
    const net = new FakeNet()
    net.autoAccept = { sessionId: 0xabcn, timeOut: 4_000, passwd: new Uint8Array([1, 2, 3]) }
    const c = await connect(net, { sessionTimeoutMs: 12_345 })
    const cr = net.last.connectRequest()
    expect(cr).toMatchObject({
      protocolVersion: 0,
      lastZxidSeen: 0n,
      timeOut: 12_345,
      sessionId: 0n,
      readOnly: false,
    })
    expect(cr.passwd).toEqual(new Uint8Array(16))
    expect(c.sessionId).toBe('0xabc')
    expect(c.sessionTimeoutMs).toBe(4_000)
    expect([...c.sessionPassword]).toEqual([1, 2, 3])
    expect(c.state).toBe('connected')
  })

  it('resumes a session given its id and password', async () => {
    const net = new FakeNet()
    net.autoAccept = { sessionId: 0x77n, timeOut: 4_000 }
    await connect(net, { sessionId: '0x77', sessionPassword: new Uint8Array([9, 9]) })
    expect(net.last.connectRequest()).toMatchObject({ sessionId: 0x77n, passwd: new Uint8Array([9, 9]) })
    expect(await code(Client.connect('ws://fake:1', { transport: net.factory, sessionId: '0x77' }))).toBe(
      'BAD_ARGUMENTS',
    )
  })

  it('rejects with CONNECTION_LOSS after connectTimeoutMs when no server answers', async () => {
    useFakeClock()
    const net = new FakeNet()
    net.autoAccept = undefined
    let outcome: string | undefined
    const t0 = performance.now()
    void code(Client.connect('ws://fake:1', { transport: net.factory, connectTimeoutMs: 300 })).then(
      (c) => (outcome = c),
    )
    await vi.advanceTimersByTimeAsync(299)
    expect(outcome).toBeUndefined()
    expect(net.conns).toHaveLength(1)
    // Then it gives up, at the deadline, and leaves no timer behind.
    await vi.runAllTimersAsync()
    expect(outcome).toBe('CONNECTION_LOSS')
    expect(performance.now() - t0).toBe(300)
    expect(net.conns.every((c) => c.closed)).toBe(true)
    // Refused at once, every time: it goes on trying (paced) until the same deadline.
    net.refuse = true
    outcome = undefined
    const t1 = performance.now()
    void code(Client.connect('ws://fake:1', { transport: net.factory, connectTimeoutMs: 300 })).then(
      (c) => (outcome = c),
    )
    await vi.advanceTimersByTimeAsync(299)
    expect(outcome).toBeUndefined()
    await vi.runAllTimersAsync()
    expect(outcome).toBe('CONNECTION_LOSS')
    expect(performance.now() - t1).toBe(300)
  })

  it('rejects SESSION_EXPIRED when the server no longer knows the session', async () => {
    const net = new FakeNet()
    net.autoAccept = { sessionId: 0n, timeOut: 0 }
    const p = Client.connect('ws://fake:1', {
      transport: net.factory,
      sessionId: '0x5',
      sessionPassword: new Uint8Array(16),
    })
    expect(await code(p)).toBe('SESSION_EXPIRED')
  })

  it('gives up when aborted', async () => {
    const net = new FakeNet()
    net.autoAccept = undefined
    const ac = new AbortController()
    const p = Client.connect('ws://fake:1', { transport: net.factory, signal: ac.signal })
    await waitFor(() => net.conns.length === 1, { what: 'the connection attempt' })
    ac.abort()
    expect(await code(p)).toBe('CONNECTION_LOSS')
    expect(net.last.closed).toBe(true)
  })

  it('tries every server of the connect string', async () => {
    const net = new FakeNet()
    net.autoAccept = undefined
    const p = Client.connect('ws://a:1,ws://b:2,tcp://c:3', {
      transport: net.factory,
      connectTimeoutMs: 5_000,
      sessionTimeoutMs: 3_000,
    })
    await waitFor(() => net.conns.length === 3, { timeoutMs: 5_000, what: 'three attempts' })
    expect(new Set(net.conns.map((c) => c.endpoint.url))).toEqual(
      new Set(['ws://a:1/', 'ws://b:2/', 'tcp://c:3']),
    )
    net.last.accept({ sessionId: 1n, timeOut: 3_000 })
    clients.push(await p)
  })
})

describe('reconnect pacing', () => {
  it('waits like ZooKeeper before reconnecting to the server it just lost', async () => {
    useFakeClock()
    const net = new FakeNet()
    const c = await connectOnFakeClock(net, { reconnectDelayMs: 300, random: () => 0.5 })
    net.last.drop()
    // Spin delay (300, same server) plus jitter (0.5 x 300): nothing before 450 ms, then at once.
    await vi.advanceTimersByTimeAsync(449)
    expect(net.conns).toHaveLength(1)
    expect(c.state).toBe('disconnected')
    await vi.advanceTimersByTimeAsync(1)
    expect(net.conns).toHaveLength(2)
    expect(c.state).toBe('connected')
  })

  it('moves to another server at once, with only the jitter', async () => {
    useFakeClock()
    const net = new FakeNet()
    const c = await connectOnFakeClock(
      net,
      { reconnectDelayMs: 2_000, random: () => 0.25 },
      'ws://a:1,ws://b:2',
    )
    const first = net.last.endpoint.url
    net.last.drop()
    // The jitter (0.25 x 2,000), without the 2,000 ms spin delay of coming back to the same server.
    await vi.advanceTimersByTimeAsync(499)
    expect(net.conns).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(net.conns).toHaveLength(2)
    expect(c.state).toBe('connected')
    expect(net.last.endpoint.url).not.toBe(first)
  })
})

describe('requests', () => {
  it('validates before sending: nothing goes on the wire', async () => {
    const net = new FakeNet()
    const c = await connect(net)
    const bad = [
      c.create('no-slash'),
      c.create('/a', new Uint8Array(1024 * 1024 + 1)),
      c.create('/a', '', { mode: 'persistentWithTtl' }),
      c.create('/a', '', { ttlMs: 5 }),
      c.getData('/a/'),
      c.setData('/a', 'x', -3),
      c.delete('/'),
      c.exists(''),
      c.getChildren('/a//b'),
      c.getChildrenWithStat('/.'),
      c.multi([{ op: 'check', path: '/a' } as never]),
      c.sync('x'),
      c.getACL('/a/'),
      c.setACL('/a', [{ perms: 'x' } as never]),
      c.addWatch('/a/', 'persistent', () => {}),
      c.addWatch('/a', 'sometimes' as never, () => {}),
      c.getData('/a', { watch: 'nope' as never }),
      c.addAuth('', 'x'),
    ]
    for (const p of bad) expect(await code(p)).toBe('BAD_ARGUMENTS')
    expect(net.last.requests()).toEqual([])
  })

  it('pipelines with increasing xids, resolves in order, and tracks lastZxid', async () => {
    const net = new FakeNet()
    const c = await connect(net, { chroot: '/app' })
    const order: string[] = []
    const a = c.create('/x', 'v').then((v) => order.push(`create:${v}`))
    const b = c.getData('/x').then((v) => order.push(`get:${new TextDecoder().decode(v.data)}`))
    const d = c.exists('/y').then((v) => order.push(`exists:${v}`))
    const sent = reqs(net.last)
    expect(sent.map((r) => r.xid)).toEqual([1, 2, 3])
    expect(sent.map((r) => (r.req as { path: string }).path)).toEqual(['/app/x', '/app/x', '/app/y'])
    net.last.reply(1, 100, 0, { op: OpCode.create, path: '/app/x' })
    expect(c.lastZxid).toBe(100)
    net.last.reply(2, 0, 0, { op: OpCode.getData, data: new TextEncoder().encode('v'), stat })
    expect(c.lastZxid).toBe(100)
    net.last.reply(3, 101, -101)
    await Promise.all([a, b, d])
    expect(order).toEqual(['create:/x', 'get:v', 'exists:null'])
    expect(c.lastZxid).toBe(101)
  })

  it('drops the connection on a reply out of order; in-flight requests get CONNECTION_LOSS', async () => {
    const net = new FakeNet()
    const c = await connect(net)
    const states: ClientState[] = []
    c.on('state', (s) => states.push(s))
    const first = net.last
    first.reply(999, 50, 0) // nothing pending: protocol error
    // At once: the packet path is synchronous (session.ts), and a wait could mistake the read timeout's drop for this one.
    expect(first.closed).toBe(true)
    const p1 = c.getData('/a')
    const p2 = c.getData('/b')
    await waitFor(() => net.conns.length === 2 && c.state === 'connected', { what: 'reconnect' })
    const second = net.last
    second.reply(2, 60, 0, { op: OpCode.getData, data: new Uint8Array(), stat }) // xid 1 is first in line
    expect(await code(p1)).toBe('CONNECTION_LOSS')
    expect(await code(p2)).toBe('CONNECTION_LOSS')
    expect(states.slice(0, 2)).toEqual(['disconnected', 'connected'])
  })

  it('maps a failed multi, naming the failing op', async () => {
    const net = new FakeNet()
    const c = await connect(net)
    const p = c.multi([
      { op: 'create', path: '/a' },
      { op: 'delete', path: '/b' },
    ])
    net.last.reply(1, 7, 0, {
      op: OpCode.multi,
      results: [
        { type: OpCode.error, err: 0 },
        { type: OpCode.error, err: -101 },
      ],
    })
    const err = (await p.catch((e: unknown) => e)) as ZkError
    expect(err.code).toBe('NO_NODE')
    expect(err.path).toBe('/b')
    expect(err.results).toEqual([
      { op: 'error', code: 'OK' },
      { op: 'error', code: 'NO_NODE' },
    ])
  })
})

describe('watches', () => {
  it('registers on the reply and delivers events between the replies around them', async () => {
    const net = new FakeNet()
    const c = await connect(net, { chroot: '/app' })
    const log: string[] = []
    const w = (e: WatchEvent): number => log.push(`event:${e.type}:${e.path}`)
    const p1 = c.getData('/d', { watch: w }).then(() => log.push('reply1'))
    const p2 = c.getData('/d').then(() => log.push('reply2'))
    const conn = net.last
    expect(reqs(conn)[0]?.req).toMatchObject({ op: OpCode.getData, watch: true })
    expect(reqs(conn)[1]?.req).toMatchObject({ op: OpCode.getData, watch: false })
    conn.reply(1, 10, 0, { op: OpCode.getData, data: new Uint8Array(), stat })
    conn.notify(EventType.nodeDataChanged, '/app/d')
    conn.notify(EventType.nodeDataChanged, '/app/d') // one-shot: already gone
    conn.notify(EventType.nodeDataChanged, '/elsewhere') // outside the chroot
    conn.reply(2, 11, 0, { op: OpCode.getData, data: new Uint8Array(), stat })
    await Promise.all([p1, p2])
    // Any event still to come (the one-shot firing twice, the path outside the chroot) would come before this.
    await roundTrip(c, conn)
    expect(log).toEqual(['reply1', 'event:dataChanged:/d', 'reply2'])
  })

  it('re-registers watches on reconnect: auth first, then SetWatches, then queued requests', async () => {
    const net = new FakeNet()
    const c = await connect(net, { chroot: '/app', auth: [{ scheme: 'digest', credentials: 'u:p' }] })
    let conn = net.last
    const watch = (): void => {}
    const r1 = c.getData('/d', { watch })
    const r2 = c.exists('/e', { watch })
    const r3 = c.getChildren('/k', { watch })
    conn.reply(1, 40, 0, { op: OpCode.getData, data: new Uint8Array(), stat })
    conn.reply(2, 41, -101)
    conn.reply(3, 42, 0, { op: OpCode.getChildren, children: [] })
    await Promise.all([r1, r2, r3])
    net.autoAccept = undefined
    conn.drop()
    const queued = c.getData('/q')
    await waitFor(() => net.conns.length === 2, { what: 'reconnect attempt' })
    conn = net.last
    expect(conn.connectRequest()).toMatchObject({ sessionId: 0x1234abcdn, lastZxidSeen: 42n })
    conn.accept({ sessionId: 0x1234abcdn, timeOut: 9_000 })
    const sent = reqs(conn)
    expect(sent.map((r) => r.xid)).toEqual([Xid.auth, Xid.setWatches, 4])
    expect(sent[0]?.req).toMatchObject({ op: OpCode.auth, scheme: 'digest' })
    expect(sent[1]?.req).toEqual({
      op: OpCode.setWatches,
      relativeZxid: 42,
      dataWatches: ['/app/d'],
      existWatches: ['/app/e'],
      childWatches: ['/app/k'],
      persistentWatches: [],
      persistentRecursiveWatches: [],
    })
    conn.reply(Xid.setWatches, 43, 0)
    conn.reply(4, 43, 0, { op: OpCode.getData, data: new Uint8Array(), stat })
    await queued
  })

  it('batches SetWatches near 128 KB and uses SetWatches2 when persistent watches exist', async () => {
    const net = new FakeNet()
    const c = await connect(net)
    let conn = net.last
    const long = 'x'.repeat(1_000)
    const reads: Promise<unknown>[] = []
    for (let i = 0; i < 300; i++) reads.push(c.exists(`/${long}${i}`, { watch: () => {} }))
    const added = c.addWatch('/p', 'persistentRecursive', () => {})
    for (let xid = 1; xid <= 300; xid++) conn.reply(xid, xid, -101)
    conn.reply(301, 301, 0)
    await Promise.all([...reads, added])
    conn.drop()
    await waitFor(() => net.conns.length === 2 && c.state === 'connected', { what: 'reconnect' })
    conn = net.last
    const batches = reqs(conn).map((r) => r.req)
    expect(batches.length).toBeGreaterThanOrEqual(3)
    for (const b of batches) {
      expect(b.op).toBe(OpCode.setWatches2)
      const sw = b as SetWatchesRequest
      const bytes = [...sw.existWatches, ...sw.persistentRecursiveWatches].reduce((n, p) => n + p.length, 0)
      expect(bytes).toBeLessThanOrEqual(SET_WATCHES_BYTES_MAX + 1_100)
    }
    const all = batches.flatMap((b) => (b as SetWatchesRequest).existWatches)
    expect(all).toHaveLength(300)
    expect(batches.at(-1)).toMatchObject({ persistentRecursiveWatches: ['/p'] })
  })

  it('stops a persistent watch with removeWatches(any) and restores the path’s other watches', async () => {
    const net = new FakeNet()
    const c = await connect(net)
    const conn = net.last
    const events: string[] = []
    const added = c.addWatch('/p', 'persistent', (e) => events.push(`p:${e.type}`))
    conn.reply(1, 5, 0)
    const stop = await added
    const addedR = c.addWatch('/p', 'persistentRecursive', (e) => events.push(`r:${e.type}`))
    conn.reply(2, 6, 0)
    await addedR
    const read = c.getData('/p', { watch: (e) => events.push(`once:${e.type}`) })
    conn.reply(3, 7, 0, { op: OpCode.getData, data: new Uint8Array(), stat })
    await read
    // ZOOKEEPER-4466 repair: both persistent modes are set again after the one-shot registration.
    expect(
      reqs(conn)
        .slice(3)
        .map((r) => r.req),
    ).toEqual([
      { op: OpCode.addWatch, path: '/p', mode: 0 },
      { op: OpCode.addWatch, path: '/p', mode: 1 },
    ])
    conn.reply(4, 7, 0)
    conn.reply(5, 7, 0)
    const stopping = stop()
    const sent = reqs(conn).slice(5)
    expect(sent.map((r) => r.req)).toEqual([
      { op: OpCode.removeWatches, path: '/p', type: WatcherType.any },
      expect.objectContaining({ op: OpCode.setWatches, relativeZxid: 7, dataWatches: ['/p'] }),
      { op: OpCode.addWatch, path: '/p', mode: 1 },
    ])
    conn.reply(6, 8, 0)
    conn.reply(Xid.setWatches, 8, 0)
    conn.reply(7, 8, 0)
    await stopping
    conn.notify(EventType.nodeDataChanged, '/p')
    await roundTrip(c, conn)
    expect(events.sort()).toEqual(['once:dataChanged', 'r:dataChanged'])
  })
})

describe('session end', () => {
  it('expires when a reconnect finds the session gone: final state, SESSION_EXPIRED everywhere', async () => {
    useFakeClock()
    const net = new FakeNet()
    const c = await connectOnFakeClock(net)
    const states: ClientState[] = []
    c.on('state', (s) => states.push(s))
    const inFlight = c.getData('/a')
    net.autoAccept = { sessionId: 0n, timeOut: 0 }
    net.last.drop()
    expect(await code(inFlight)).toBe('CONNECTION_LOSS')
    await vi.advanceTimersByTimeAsync(0)
    expect(c.state).toBe('expired')
    expect(states).toEqual(['disconnected', 'expired'])
    expect(await code(c.getData('/a'))).toBe('SESSION_EXPIRED')
    expect(await code(c.addAuth('digest', 'a:b'))).toBe('SESSION_EXPIRED')
    // No attempt ever again: a minute of the session's clock passes without one.
    const n = net.conns.length
    await vi.advanceTimersByTimeAsync(60_000)
    expect(net.conns.length).toBe(n)
    await c.close()
    expect(c.state).toBe('closed')
  })

  it('fails for good after an auth failure', async () => {
    const net = new FakeNet()
    const c = await connect(net)
    net.autoAuth = false
    const pending = c.getData('/a')
    const auth = c.addAuth('weird', 'x')
    net.last.reply(Xid.auth, 0, -115)
    expect(await code(auth)).toBe('AUTH_FAILED')
    expect(await code(pending)).toBe('AUTH_FAILED')
    expect(c.state).toBe('authFailed')
    expect(await code(c.exists('/a'))).toBe('AUTH_FAILED')
    expect(net.last.closed).toBe(true)
  })

  it('close() sends closeSession, waits for it, and is idempotent', async () => {
    const net = new FakeNet()
    const c = await connect(net)
    const conn = net.last
    const before = c.getData('/a')
    const closing = c.close()
    expect(await code(c.getData('/b'))).toBe('SESSION_EXPIRED')
    const sent = reqs(conn)
    expect(sent.map((r) => r.req.op)).toEqual([OpCode.getData, OpCode.closeSession])
    conn.reply(1, 3, 0, { op: OpCode.getData, data: new Uint8Array(), stat })
    conn.reply(2, 4, 0)
    await closing
    await before
    expect(c.state).toBe('closed')
    expect(conn.closed).toBe(true)
    await c.close()
  })
})

describe('timers', () => {
  // A 300 ms session: read timeout 200 ms (2/3), a ping after 100 ms idle (half of it), as ClientCnxn.
  it('pings when idle and drops a connection that stays silent, then reconnects', async () => {
    useFakeClock()
    const net = new FakeNet()
    net.autoAccept = { sessionId: 9n, timeOut: 300 }
    const c = await connectOnFakeClock(net)
    const first = net.last
    const pings = (): number => first.requests().filter((r) => r.xid === Xid.ping).length
    await vi.advanceTimersByTimeAsync(99)
    expect(pings()).toBe(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(pings()).toBe(1)
    expect(first.requests().find((r) => r.xid === Xid.ping)?.req).toEqual({ op: OpCode.ping })
    await vi.advanceTimersByTimeAsync(99)
    expect(first.closed).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(first.closed).toBe(true)
    await vi.advanceTimersByTimeAsync(0)
    expect(net.conns).toHaveLength(2)
    expect(c.state).toBe('connected')
  })

  it('keeps a connection whose pings are answered', async () => {
    useFakeClock()
    const net = new FakeNet()
    net.autoAccept = { sessionId: 9n, timeOut: 300 }
    const c = await connectOnFakeClock(net)
    const conn = net.last
    let answered = 0
    // 3 s of the session's clock, 15 read timeouts, every ping answered 10 ms after it was sent.
    for (let t = 0; t < 3_000; t += 10) {
      const pings = conn.requests().filter((r) => r.xid === Xid.ping).length
      while (answered < pings) {
        conn.reply(Xid.ping, 0, 0)
        answered++
      }
      await vi.advanceTimersByTimeAsync(10)
    }
    expect(answered).toBeGreaterThanOrEqual(20)
    expect(conn.closed).toBe(false)
    expect(c.state).toBe('connected')
    expect(net.conns).toHaveLength(1)
  })
})
