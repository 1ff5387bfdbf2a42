/**
 * PeerTransport following the membership, with real sockets on 127.0.0.1:
 * a proven dialer no configuration names (a joining server) is accepted, up
 * to outsiderLinksMax; one without the secret never is; setPeers dials a
 * peer at its new address and closes the link of a peer that left; incoming
 * connections in their handshake are bounded (handshakesMax). Every limit
 * hit is logged. A starting server with the lower id knocks, and is dialed
 * back at once.
 */
import { createServer, Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { type PeerAddress, PeerTransport } from '../../../server/net/peer-transport.js'
import { freePort, waitFor } from '../../helpers/wait.js'

interface Node {
  t: PeerTransport
  port: number
  up: Set<number>
  downs: number[]
  warnings: string[]
  /** Each linked peer's connection id (for send) and the messages received, as text. */
  conns: Map<number, number>
  got: string[]
}

const running: PeerTransport[] = []
const sockets: Socket[] = []

async function node(
  id: number,
  peers: PeerAddress[],
  o: { secret?: string; outsiderLinksMax?: number; handshakesMax?: number; port?: number } = {},
): Promise<Node> {
  const port = o.port ?? (await freePort())
  const n: Node = {
    t: undefined as unknown as PeerTransport,
    port,
    up: new Set(),
    downs: [],
    warnings: [],
    conns: new Map(),
    got: [],
  }
  n.t = new PeerTransport({
    selfId: id,
    listenHost: '127.0.0.1',
    listenPort: port,
    peers,
    secret: o.secret ?? 'unit-test-secret',
    messageBytesMax: 64 * 1024,
    outsiderLinksMax: o.outsiderLinksMax ?? 8,
    handshakesMax: o.handshakesMax ?? 64,
    onMessage: (_from, payload) => n.got.push(new TextDecoder().decode(payload)),
    onUp: (peer, conn) => {
      n.up.add(peer)
      n.conns.set(peer, conn)
    },
    onDown: (peer) => {
      n.up.delete(peer)
      n.downs.push(peer)
    },
    onWarn: (msg, detail) => n.warnings.push(`${msg} ${JSON.stringify(detail)}`),
  })
  await n.t.start()
  running.push(n.t)
  return n
}

const at = (id: number, n: { port: number }): PeerAddress => ({ id, host: '127.0.0.1', port: n.port })

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  for (const t of running.splice(0)) await t.close()
})

describe('PeerTransport follows the membership', () => {
  it('accepts a proven dialer that no configuration names (a joiner), never one without the secret', async () => {
    const a = await node(1, [])
    const joiner = await node(4, [at(1, a)])
    await waitFor(() => a.up.has(4) && joiner.up.has(1), { what: 'the joiner linked to server 1' })
    const stranger = await node(5, [at(1, a)], { secret: 'another-secret' })
    await waitFor(() => a.warnings.some((w) => w.includes('server 5 does not know the ensemble secret')), {
      what: 'the stranger refused',
    })
    expect(a.up.has(5)).toBe(false)
    expect(stranger.up.size).toBe(0)
  })

  it('keeps at most outsiderLinksMax links from servers outside the configuration, and says so', async () => {
    const a = await node(1, [], { outsiderLinksMax: 1 })
    await node(4, [at(1, a)])
    await waitFor(() => a.up.has(4), { what: 'the first outsider linked' })
    const second = await node(5, [at(1, a)])
    await waitFor(() => a.warnings.some((w) => w.includes('too many links from servers outside')), {
      what: 'the limit logged',
    })
    expect(a.warnings.filter((w) => w.includes('peerOutsiderLinksMax')).length).toBe(1)
    expect(a.up.has(5)).toBe(false)
    expect(second.up.size).toBe(0)
    // A server the configuration names is not an outsider: it links whatever the count.
    a.t.setPeers([{ id: 5, host: '127.0.0.1', port: second.port }])
    await waitFor(() => a.up.has(5), { timeoutMs: 10_000, what: 'server 5 linked once named' })
  })

  it('delivers the messages of one turn (gathered into one write) apart and in order, an empty one too', async () => {
    const one = await node(1, [])
    const two = await node(2, [at(1, one)])
    await waitFor(() => one.up.has(2) && two.up.has(1), { what: 'servers 1 and 2 linked' })
    const sent = ['a', '', 'x'.repeat(40_000), 'b']
    for (const m of sent) two.t.send(1, new TextEncoder().encode(m), two.conns.get(1)!)
    expect(two.t.bufferedBytes(1)).toBeGreaterThanOrEqual(40_000)
    await waitFor(() => one.got.length >= sent.length, { what: 'server 1 to get the four messages' })
    expect(one.got).toEqual(sent)
  })

  // The chaos harness's one-way partition (the fault hook's deafTo).
  it('drops what a peer it is deaf to sends, still sends to it, and ends that link when the partition heals', async () => {
    const text = (t: string) => new TextEncoder().encode(t)
    const one = await node(1, [])
    const two = await node(2, [at(1, one)])
    await waitFor(() => one.up.has(2) && two.up.has(1), { what: 'servers 1 and 2 linked' })
    one.t.setDeafTo([2])
    two.t.send(1, text('lost'), two.conns.get(1)!)
    one.t.send(2, text('heard'), one.conns.get(2)!)
    await waitFor(() => two.got.includes('heard'), { what: 'server 2 to hear server 1' })
    await new Promise((r) => setTimeout(r, 200))
    expect(one.got).not.toContain('lost')
    expect(one.downs).toEqual([])
    // Healed: the link that lost a message is ended (no gap in a stream), the peers link again.
    one.t.setDeafTo([])
    await waitFor(() => one.downs.includes(2), { what: 'the gapped link ended' })
    await waitFor(() => one.up.has(2) && two.up.has(1), { timeoutMs: 10_000, what: 'linked again' })
    two.t.send(1, text('after'), two.conns.get(1)!)
    await waitFor(() => one.got.includes('after'), { what: 'server 1 to hear server 2 again' })
    expect(one.got).not.toContain('lost')
  })

  it('dials a peer at the address a new configuration gives it, instead of its old one', async () => {
    const deadPort = await freePort()
    const two = await node(2, [{ id: 1, host: '127.0.0.1', port: deadPort }])
    const one = await node(1, [])
    expect(two.up.size).toBe(0)
    two.t.setPeers([at(1, one)])
    await waitFor(() => two.up.has(1) && one.up.has(2), {
      what: 'server 2 linked to server 1 at its new port',
    })
    expect(two.t.peers()).toEqual([at(1, one)])
  })

  it('a starting server with the lower id knocks: its peer dials it at once, not at its next retry', async () => {
    const port = await freePort()
    // Stands in for server 1 while it is down: counts server 2's dials and drops them.
    let dials = 0
    const standIn = createServer((s) => {
      dials++
      s.destroy()
    })
    await new Promise<void>((r) => standIn.listen(port, '127.0.0.1', () => r()))
    const two = await node(2, [{ id: 1, host: '127.0.0.1', port }])
    // Dials at about 0, 0.1, 0.3, 0.7, 1.5 and 3.1 s: after the sixth the next is 2 s away.
    await waitFor(() => dials >= 6, { what: "server 2's sixth dial", timeoutMs: 15_000 })
    await new Promise<void>((r) => standIn.close(() => r()))
    const started = performance.now()
    const one = await node(1, [at(2, two)], { port })
    await waitFor(() => one.up.has(2) && two.up.has(1), { what: 'the two linked', timeoutMs: 5000 })
    // Without the knock: at server 2's next retry, 2 s after its sixth dial.
    expect(performance.now() - started).toBeLessThan(1000)
    expect(one.warnings).toEqual([])
  })

  it('closes the link of a peer that left every configuration, and does not dial it again', async () => {
    const one = await node(1, [])
    const two = await node(2, [at(1, one)])
    await waitFor(() => two.up.has(1) && one.up.has(2), { what: 'the link' })
    // Sent in the same turn as the removal (the COMMIT of the change that removes a server): it still leaves.
    two.t.send(1, new TextEncoder().encode('last'), two.conns.get(1)!)
    two.t.setPeers([])
    expect(two.up.has(1)).toBe(false)
    expect(two.downs).toEqual([1])
    await waitFor(() => !one.up.has(2), { what: 'server 1 to see the link end' })
    expect(one.got).toEqual(['last'])
    // Server 1 does not dial (lower id) and server 2 no longer does: nothing comes back.
    await expect(waitFor(() => two.up.has(1), { timeoutMs: 600, what: 'a redial' })).rejects.toThrow(
      /timed out/,
    )
  })

  it('closes incoming connections past handshakesMax at once, and says so', async () => {
    const a = await node(1, [], { handshakesMax: 1 })
    const connect = () =>
      new Promise<Socket>((resolve, reject) => {
        const s = new Socket()
        sockets.push(s)
        s.once('error', reject)
        s.connect(a.port, '127.0.0.1', () => resolve(s))
      })
    const first = await connect()
    const second = await connect()
    let secondClosed = false
    second.once('close', () => {
      secondClosed = true
    })
    await waitFor(() => secondClosed, { what: 'the connection past the limit closed' })
    expect(first.destroyed).toBe(false)
    await waitFor(() => a.warnings.some((w) => w.includes('peerHandshakesMax')), { what: 'the limit logged' })
    // The first one's handshake ends (it is closed), and a new connection is taken again.
    first.destroy()
    await waitFor(
      async () => {
        const s = await connect()
        const gone = await Promise.race([
          new Promise<boolean>((r) => s.once('close', () => r(true))),
          new Promise<boolean>((r) => setTimeout(() => r(false), 100)),
        ])
        return !gone
      },
      { what: 'a connection accepted again' },
    )
  })
})
