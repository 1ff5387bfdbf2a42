/**
 * zk.watch() over the fake network (fake-net.ts): each event gets the zxid
 * of its own notification even when several notifications arrive in one
 * turn (the transport tap and the session's delivery microtasks interleave),
 * a server that sends -1 gives -1, and close() sends removeWatches.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Client, type WatchStreamEvent } from '../../../client/index.js'
import { JuteWriter } from '../../../shared/jute.js'
import { EventType, OpCode } from '../../../shared/opcodes.js'
import { writeReplyHeader, writeWatcherEvent } from '../../../shared/records.js'
import { type FakeConn, FakeNet } from './fake-net.js'

const clients: { c: Client; net: FakeNet }[] = []
afterEach(async () => {
  for (const { c, net } of clients.splice(0)) {
    const closed = c.close()
    await answer(net.last, OpCode.closeSession)
    await closed
  }
})

async function connect(net: FakeNet): Promise<Client> {
  const c = await Client.connect('ws://fake:1', { transport: net.factory, connectTimeoutMs: 2_000 })
  clients.push({ c, net })
  return c
}

/** Plays the server: answers the client's last request once it is `op` (after a few microtasks). */
async function answer(conn: FakeConn, op: number): Promise<void> {
  for (let i = 0; i < 50 && conn.requests().at(-1)?.req.op !== op; i++) await Promise.resolve()
  const last = conn.requests().at(-1)
  expect(last?.req.op).toBe(op)
  conn.reply(last!.xid, 200, 0)
}

function notification(zxid: number, type: number, path: string): Uint8Array {
  const w = new JuteWriter()
  writeReplyHeader(w, { xid: -1, zxid, err: 0 })
  writeWatcherEvent(w, { type, state: 3, path })
  return w.finish()
}

async function take(it: AsyncIterator<WatchStreamEvent>, n: number): Promise<WatchStreamEvent[]> {
  const out: WatchStreamEvent[] = []
  for (let i = 0; i < n; i++) {
    const r = await it.next()
    if (r.done) break
    out.push(r.value)
  }
  return out
}

/** Registers the watch: answers the addWatch the client just sent. */
async function registered(conn: FakeConn): Promise<void> {
  await Promise.resolve()
  const last = conn.requests().at(-1)!
  expect(last.req.op).toBe(OpCode.addWatch)
  conn.reply(last.xid, 100, 0)
  await Promise.resolve()
}

describe('zk.watch() zxids', () => {
  it('gives each event the zxid of its own notification, also for several in one turn', async () => {
    const net = new FakeNet()
    const zk = await connect(net)
    const conn = net.last
    const events = zk.watch('/app', { recursive: true })
    await registered(conn)
    // Three notifications in one synchronous burst (as from one socket read), then one more.
    conn.deliver(notification(101, EventType.nodeCreated, '/app/a'))
    conn.deliver(notification(102, EventType.nodeDataChanged, '/app/a'))
    conn.deliver(notification(103, EventType.nodeDeleted, '/app/a'))
    conn.deliver(notification(-1, EventType.nodeCreated, '/app/b'))
    expect(await take(events, 4)).toEqual([
      { type: 'created', path: '/app/a', zxid: 101 },
      { type: 'dataChanged', path: '/app/a', zxid: 102 },
      { type: 'deleted', path: '/app/a', zxid: 103 },
      { type: 'created', path: '/app/b', zxid: -1 },
    ])
    const closing = events.close()
    await answer(conn, OpCode.removeWatches)
    expect(conn.requests().at(-1)!.req).toMatchObject({ op: OpCode.removeWatches, path: '/app' })
    await closing
    expect(await events.next()).toEqual({ value: undefined, done: true })
  })

  it('an event for a path nobody watches does not shift the zxids of the next ones', async () => {
    const net = new FakeNet()
    const zk = await connect(net)
    const conn = net.last
    const events = zk.watch('/x')
    await registered(conn)
    conn.deliver(notification(7, EventType.nodeCreated, '/elsewhere'))
    conn.deliver(notification(8, EventType.nodeDataChanged, '/x'))
    expect(await take(events, 1)).toEqual([{ type: 'dataChanged', path: '/x', zxid: 8 }])
    const ended = events.return?.()
    await answer(conn, OpCode.removeWatches)
    await ended
  })
})
