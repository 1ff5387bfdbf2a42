/**
 * The SDK's side of watches that resume (client/session.ts with
 * client/watch-position.ts), against a fake server played packet by packet:
 * after a lost connection the session sends one resumeWatches carrying every
 * watch and its position (the zxid before a Txn it got only part of), drops
 * the replayed events it had delivered already, hands every event its zxid,
 * turns a watchesCompacted notification into one 'resync' per persistent
 * listener, and against a server that cannot resume (ZooKeeper) re-adds the
 * watches with SetWatches2 and tells the persistent listeners to resync.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Client, type WatchEvent } from '../../../client/index.js'
import { ConclaveEventType, ConclaveOpCode, EventType, OpCode, Xid } from '../../../shared/opcodes.js'
import { ConclaveFeature, type SetWatchesRequest } from '../../../shared/records.js'
import { waitFor } from '../../helpers/wait.js'
import { type FakeConn, FakeNet, roundTrip } from './fake-net.js'

const SESSION = 0x1234abcdn
const RESUMES = { sessionId: SESSION, timeOut: 9_000, features: ConclaveFeature.resumableWatches }

const clients: Client[] = []
afterEach(() => {
  for (const c of clients.splice(0)) void c.close()
})

async function setup(net: FakeNet): Promise<{ c: Client; events: WatchEvent[]; conn: FakeConn }> {
  const c = await Client.connect('ws://fake:1', { transport: net.factory, reconnectDelayMs: 0 })
  clients.push(c)
  const events: WatchEvent[] = []
  const added = c.addWatch('/app', 'persistentRecursive', (ev) => events.push(ev))
  const conn = net.last
  const req = conn.requests().at(-1)!
  expect(req.req.op).toBe(OpCode.addWatch)
  conn.reply(req.xid, 5)
  await added
  return { c, events, conn }
}

async function reconnect(net: FakeNet, c: Client): Promise<FakeConn> {
  const before = net.conns.length
  net.last.drop()
  await waitFor(() => net.conns.length > before && c.state === 'connected', { what: 'reconnect' })
  return net.last
}

const show = (e: WatchEvent) => `${e.zxid} ${e.type} ${e.path}`

describe('watches that resume (SDK)', () => {
  it('resumes from before a Txn it got part of, and drops the replayed events it had', async () => {
    const net = new FakeNet()
    net.autoAccept = RESUMES
    const { c, events, conn } = await setup(net)
    conn.notify(EventType.nodeCreated, '/app/a', 6)
    // The Txn at 7 fired three events; the connection is lost after two of them.
    conn.notify(EventType.nodeCreated, '/app/b', 7)
    conn.notify(EventType.nodeDataChanged, '/app/a', 7)
    const next = await reconnect(net, c)
    const resume = next.requests().find((r) => r.req.op === ConclaveOpCode.resumeWatches)
    expect(resume).toBeDefined()
    expect(resume!.xid).toBe(Xid.setWatches)
    const req = resume!.req as SetWatchesRequest
    expect(req.relativeZxid).toBe(6)
    expect(req.persistentRecursiveWatches).toEqual(['/app'])
    expect(next.requests().some((r) => r.req.op === OpCode.setWatches2)).toBe(false)
    // The replay: all of 7's events again, then 8's; then the reply.
    next.notify(EventType.nodeCreated, '/app/b', 7)
    next.notify(EventType.nodeDataChanged, '/app/a', 7)
    next.notify(EventType.nodeCreated, '/app/c', 7)
    next.notify(EventType.nodeDeleted, '/app/b', 8)
    next.reply(Xid.setWatches, 8)
    await roundTrip(c, next)
    expect(events.map(show)).toEqual([
      '6 created /app/a',
      '7 created /app/b',
      '7 dataChanged /app/a',
      '7 created /app/c',
      '8 deleted /app/b',
    ])
    // A later loss resumes from the reply's zxid: everything up to it was delivered.
    const third = await reconnect(net, c)
    const again = third.requests().find((r) => r.req.op === ConclaveOpCode.resumeWatches)!
    expect((again.req as SetWatchesRequest).relativeZxid).toBe(8)
    // The ConnectRequest says what the session has seen, so a server behind it refuses it.
    expect(third.connectRequest().lastZxidSeen).toBe(8n)
  })

  it('a one-shot set after a change it read resumes from past that read: the replay fires it at the next change, not that one', async () => {
    // test/integration/watch-failover.test.ts's flake: a change to /app/x (6) lands after the
    // recursive watch's registration (5), then a getData sets a one-shot on /app/x on the state
    // it made (reply 7, mzxid 6). The one-shot's event is the first change after 6 (10, in the
    // reconnect gap, replayed), never 6 itself — whatever the recursive watch saw.
    const net = new FakeNet()
    net.autoAccept = RESUMES
    const { c, events, conn } = await setup(net)
    conn.notify(EventType.nodeDataChanged, '/app/x', 6)
    const oneShot: WatchEvent[] = []
    const read = c.getData('/app/x', { watch: (ev) => oneShot.push(ev) })
    const get = conn.requests().at(-1)!
    expect(get.req.op).toBe(OpCode.getData)
    const stat = { czxid: 3, mzxid: 6, ctime: 0, mtime: 0, version: 1, cversion: 0, aversion: 0 }
    conn.reply(get.xid, 7, 0, {
      op: OpCode.getData,
      data: new TextEncoder().encode('55'),
      stat: { ...stat, ephemeralOwner: 0n, dataLength: 2, numChildren: 0, pzxid: 3 },
    })
    expect((await read).stat.mzxid).toBe(6)
    conn.notify(EventType.nodeCreated, '/app/n8', 8)
    conn.notify(EventType.nodeCreated, '/app/n9', 9)
    const next = await reconnect(net, c)
    const req = next.requests().find((r) => r.req.op === ConclaveOpCode.resumeWatches)!
      .req as SetWatchesRequest
    // From before the last Txn it got events of (9, perhaps partly): past the read that set the
    // one-shot (7), so 6 is not replayed.
    expect(req.relativeZxid).toBe(8)
    expect(req.dataWatches).toEqual(['/app/x'])
    expect(req.persistentRecursiveWatches).toEqual(['/app'])
    // The server's replay after 8 (planResume): 9 again (dropped: delivered), then /app/x's
    // change at 10 (one event for both watches).
    next.notify(EventType.nodeCreated, '/app/n9', 9)
    next.notify(EventType.nodeDataChanged, '/app/x', 10)
    next.notify(EventType.nodeCreated, '/app/n11', 11)
    next.reply(Xid.setWatches, 11)
    // Live: /app/x again; the one-shot is spent.
    next.notify(EventType.nodeDataChanged, '/app/x', 12)
    await roundTrip(c, next)
    expect(oneShot.map(show)).toEqual(['10 dataChanged /app/x'])
    expect(events.map(show)).toEqual([
      '6 dataChanged /app/x',
      '8 created /app/n8',
      '9 created /app/n9',
      '10 dataChanged /app/x',
      '11 created /app/n11',
      '12 dataChanged /app/x',
    ])
  })

  it("a watchesCompacted answer gives each persistent listener one 'resync', then live events", async () => {
    const net = new FakeNet()
    net.autoAccept = RESUMES
    const { c, events } = await setup(net)
    const next = await reconnect(net, c)
    next.notify(ConclaveEventType.watchesCompacted, '/', 40)
    next.reply(Xid.setWatches, 40)
    next.notify(EventType.nodeCreated, '/app/z', 41)
    await roundTrip(c, next)
    expect(events.map(show)).toEqual(['40 resync /app', '41 created /app/z'])
  })

  it("a server that cannot resume (ZooKeeper): SetWatches2, and a 'resync' for persistent listeners only", async () => {
    const net = new FakeNet()
    const { c, events } = await setup(net)
    const oneShot: WatchEvent[] = []
    const read = c.exists('/x', { watch: (ev) => oneShot.push(ev) })
    const conn = net.last
    conn.reply(conn.requests().at(-1)!.xid, 5, -101)
    await read
    const next = await reconnect(net, c)
    expect(next.requests().map((r) => r.req.op)).toContain(OpCode.setWatches2)
    expect(next.requests().some((r) => r.req.op === ConclaveOpCode.resumeWatches)).toBe(false)
    next.reply(Xid.setWatches, 9)
    await roundTrip(c, next)
    expect(events).toEqual([{ type: 'resync', path: '/app', zxid: -1 }])
    expect(oneShot).toEqual([])
  })
})
