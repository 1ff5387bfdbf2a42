/**
 * The SDK's read-only mode (canBeReadOnly), against the in-memory server
 * (fake-net.ts): the ConnectRequest says readOnly; a readOnly answer is the
 * state 'connectedReadOnly' (zk.readOnly); until the session has been on a
 * read-write server every connect asks for a new session (a read-only
 * server's own session is unknown elsewhere), after that it resumes the
 * session; exactly-once writes a lost connection left unanswered wait on a
 * read-only connection and go on the next read-write one; without
 * canBeReadOnly nothing changes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Client, ClientState } from '../../../client/index.js'
import { OpCode, Xid } from '../../../shared/opcodes.js'
import { ConclaveFeature, decodeRequest } from '../../../shared/records.js'
import { waitFor } from '../../helpers/wait.js'
import { closeFakeClients, connectFake as connect, type FakeConn, FakeNet } from './fake-net.js'

afterEach(closeFakeClients)

function writes(conn: FakeConn) {
  return conn.sent
    .slice(1)
    .map((p) => decodeRequest(p))
    .filter((r) => r.xid !== Xid.ping && r.req.op === OpCode.create)
}

/** Drops the connection and waits for the next one to be established (answered by autoAccept). */
async function reconnect(net: FakeNet, c: Client, want: ClientState): Promise<FakeConn> {
  const before = net.conns.length
  net.last.drop()
  await waitFor(() => net.conns.length > before && c.state === want, { timeoutMs: 5_000, what: want })
  return net.last
}

describe('canBeReadOnly in the SDK', () => {
  it('asks for read-only; a read-only answer is connectedReadOnly; a new session until a read-write server, then the same session', async () => {
    const net = new FakeNet()
    net.autoAccept = { sessionId: 0x51n, timeOut: 9_000, readOnly: true }
    const states: ClientState[] = []
    const c = await connect(net, { canBeReadOnly: true })
    c.on('state', (s) => states.push(s))
    expect(net.last.connectRequest()).toMatchObject({ readOnly: true, sessionId: 0n })
    expect(c.state).toBe('connectedReadOnly')
    expect(c.readOnly).toBe(true)
    expect(c.sessionId).toBe('0x51')

    // Still read-only: the server's own session is not resumed elsewhere; a new one is asked for.
    net.autoAccept = { sessionId: 0x52n, timeOut: 9_000, readOnly: true }
    await reconnect(net, c, 'connectedReadOnly')
    expect(net.last.connectRequest()).toMatchObject({ readOnly: true, sessionId: 0n })
    expect(c.sessionId).toBe('0x52')

    // A read-write server: a new session, the ensemble's.
    net.autoAccept = { sessionId: 0x99n, timeOut: 9_000 }
    await reconnect(net, c, 'connected')
    expect(net.last.connectRequest()).toMatchObject({ readOnly: true, sessionId: 0n })
    expect(c.sessionId).toBe('0x99')
    expect(c.readOnly).toBe(false)

    // From now on the session is resumed, read-only or not.
    net.autoAccept = { sessionId: 0x99n, timeOut: 9_000, readOnly: true }
    await reconnect(net, c, 'connectedReadOnly')
    expect(net.last.connectRequest()).toMatchObject({ readOnly: true, sessionId: 0x99n })
    expect(c.sessionId).toBe('0x99')
    expect(states).toEqual([
      'disconnected',
      'connectedReadOnly',
      'disconnected',
      'connected',
      'disconnected',
      'connectedReadOnly',
    ])
  })

  it('holds exactly-once re-sends on a read-only connection and sends them on the next read-write one', async () => {
    const net = new FakeNet()
    const rw = { sessionId: 0x77n, timeOut: 9_000, features: ConclaveFeature.exactlyOnce }
    net.autoAccept = rw
    const c = await connect(net, { canBeReadOnly: true })
    expect(c.exactlyOnce).toBe(true)
    const created = c.create('/a')
    const first = writes(net.last)
    expect(first).toHaveLength(1)
    expect(first[0]!.once).toBeDefined()

    // Lost; the next server is read-only (grants no exactly-once): the write waits, unsent.
    net.autoAccept = { sessionId: 0x77n, timeOut: 9_000, readOnly: true }
    const ro = await reconnect(net, c, 'connectedReadOnly')
    expect(writes(ro)).toEqual([])

    // Read-write again: sent with the same xid, and its answer settles the promise.
    net.autoAccept = rw
    const back = await reconnect(net, c, 'connected')
    const again = writes(back)
    expect(again).toHaveLength(1)
    expect(again[0]!.xid).toBe(first[0]!.xid)
    back.reply(again[0]!.xid, 10, 0, { op: OpCode.create, path: '/a' })
    expect(await created).toBe('/a')
  })

  it('without canBeReadOnly: readOnly false, the session resumed, a readOnly answer ignored', async () => {
    const net = new FakeNet()
    net.autoAccept = { sessionId: 0x42n, timeOut: 9_000 }
    const c = await connect(net)
    expect(net.last.connectRequest()).toMatchObject({ readOnly: false, sessionId: 0n })
    net.autoAccept = { sessionId: 0x42n, timeOut: 9_000, readOnly: true }
    await reconnect(net, c, 'connected')
    expect(net.last.connectRequest()).toMatchObject({ readOnly: false, sessionId: 0x42n })
    expect(c.readOnly).toBe(false)
  })
})
