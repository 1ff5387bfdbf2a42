/**
 * The session following the ensemble's membership (issue 19), against the
 * in-memory server of fake-net.ts: what it reads and when (no chroot, a
 * watch once the config names servers, again on its change), how the list
 * is replaced and exposed, how a session leaves a server no longer listed
 * (after the replies due there, with the same session), and what leaves the
 * list alone: a refused read, a malformed or foreign config, the option off.
 * And updateServerList. The real ensemble: integration/sdk-server-list.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { type Client, type ConnectOptions, ZkError } from '../../../client/index.js'
import { OpCode } from '../../../shared/opcodes.js'
import type { WireStat } from '../../../shared/stat.js'
import { waitFor } from '../../helpers/wait.js'
import { closeFakeClients, connectFake, type FakeConn, FakeNet } from './fake-net.js'

afterEach(closeFakeClients)

const stat: WireStat = {
  czxid: 0,
  mzxid: 9,
  ctime: 0,
  mtime: 0,
  version: 1,
  cversion: 0,
  aversion: 0,
  ephemeralOwner: 0n,
  dataLength: 0,
  numChildren: 0,
  pzxid: 0,
}

const CONFIG = '/zookeeper/config'
const NO_AUTH = -102

/** The config text naming these `fake` ports (server.N for port N). */
function config(ports: number[], version = 1): string {
  return `${ports.map((p) => `server.${p}=fake:9${p}:9${p}:participant;fake:${p}`).join('\n')}\nversion=${version.toString(16)}`
}

/** The getData requests of /zookeeper/config sent on `conn`: their xids and watch flags. */
function configReads(conn: FakeConn): { xid: number; watch: boolean }[] {
  return conn
    .requests()
    .flatMap(({ xid, req }) =>
      req.op === OpCode.getData && req.path === CONFIG ? [{ xid, watch: req.watch }] : [],
    )
}

/** Waits for the `n`th config read on `conn` and answers it with `text` (or an error code). */
async function answerConfig(conn: FakeConn, n: number, text: string | number): Promise<{ watch: boolean }> {
  const read = await waitFor(() => configReads(conn)[n - 1], { timeoutMs: 2_000, what: `config read ${n}` })
  if (typeof text === 'number') conn.reply(read.xid, 9, text)
  else conn.reply(read.xid, 9, 0, { op: OpCode.getData, data: new TextEncoder().encode(text), stat })
  return { watch: read.watch }
}

async function follow(net: FakeNet, connectString: string, opts: ConnectOptions = {}) {
  const c = await connectFake(net, { followMembership: true, random: () => 0, ...opts }, connectString)
  const warnings: string[] = []
  const lists: (readonly string[])[] = []
  c.on('warning', (m) => warnings.push(m))
  c.on('servers', (s) => lists.push(s))
  return { c, warnings, lists }
}

const portOf = (url: string | undefined) => Number(new URL(url ?? 'ws://x:0').port)
const sortedPorts = (c: Client) => c.servers.map(portOf).sort()

describe('following the membership', () => {
  it('learns the servers a one-server connect string did not name, then watches the config', async () => {
    const net = new FakeNet()
    const { c, lists, warnings } = await follow(net, 'ws://fake:1', { chroot: '/app' })
    expect(c.servers).toEqual(['ws://fake:1/'])
    // The first read sets no watch (a standalone server's config is empty: no watch held for nothing).
    expect(await answerConfig(net.last, 1, config([1, 2, 3]))).toEqual({ watch: false })
    await waitFor(() => lists.length === 1, { timeoutMs: 2_000, what: 'the servers event' })
    expect(sortedPorts(c)).toEqual([1, 2, 3])
    expect(lists[0]!.map(portOf).sort()).toEqual([1, 2, 3])
    // An ensemble: read again with a watch; the chroot does not apply to it.
    expect(await answerConfig(net.last, 2, config([1, 2, 3]))).toEqual({ watch: true })
    expect(() => (c.servers as string[]).push('x')).toThrow()
    // A reconfig adds server 4: its event makes the SDK read again (with a watch).
    net.last.notify(3, CONFIG, 10)
    expect(await answerConfig(net.last, 3, config([1, 2, 3, 4], 2))).toEqual({ watch: true })
    await waitFor(() => c.servers.length === 4, { timeoutMs: 2_000, what: 'server 4 in the list' })
    // Joining the rotation is enough: no move off a server still listed.
    expect(c.server).toBe('ws://fake:1/')
    expect(net.conns).toHaveLength(1)
    expect(warnings).toEqual([])
  })

  it('leaves a server the config no longer lists, after the replies due there, keeping the session', async () => {
    const net = new FakeNet()
    const { c } = await follow(net, 'ws://fake:1,ws://fake:2,ws://fake:3')
    const first = net.last
    const on = portOf(c.server)
    await answerConfig(first, 1, config([1, 2, 3]))
    await answerConfig(first, 2, config([1, 2, 3]))
    // Server `on` is removed: the change's event, the read it makes, and a request after that read.
    first.notify(3, CONFIG, 10)
    await waitFor(() => configReads(first)[2], { timeoutMs: 2_000, what: 'the read after the change' })
    const inFlight = c.exists('/x')
    const sent = first.requests().at(-1)!
    await answerConfig(
      first,
      3,
      config(
        [1, 2, 3].filter((p) => p !== on),
        2,
      ),
    )
    await waitFor(() => c.servers.length === 2, { timeoutMs: 2_000, what: 'the shorter list' })
    // Leaving waits for the reply due; a request made meanwhile waits for the next server.
    const later = c.exists('/y')
    expect(first.closed).toBe(false)
    expect(first.requests().at(-1)!.req).not.toMatchObject({ path: '/y' })
    first.reply(sent.xid, 9, -101)
    expect(await inFlight).toBeNull()
    await waitFor(() => net.conns.length === 2 && c.state === 'connected', {
      timeoutMs: 2_000,
      what: 'the move',
    })
    expect(first.closed).toBe(true)
    expect(portOf(net.last.endpoint.url)).not.toBe(on)
    expect(net.last.connectRequest().sessionId).toBe(0x1234abcdn)
    const y = await waitFor(() => net.last.requests().find((r) => r.req.op === OpCode.exists), {
      timeoutMs: 2_000,
      what: 'the waiting request on the new server',
    })
    net.last.reply(y.xid, 9, -101)
    expect(await later).toBeNull()
  })

  it('keeps its list on a refused read, a malformed config and a foreign one, and says so once each', async () => {
    const net = new FakeNet()
    const { c, warnings, lists } = await follow(net, 'ws://fake:1,ws://fake:2')
    await answerConfig(net.last, 1, NO_AUTH)
    // The session goes on: a request after it is answered.
    const p = c.exists('/a')
    net.last.reply(net.last.requests().at(-1)!.xid, 9, -101)
    expect(await p).toBeNull()
    net.last.notify(3, CONFIG, 10)
    await answerConfig(net.last, 2, 'server.1=fake:1:1;fake:1\nnonsense')
    net.last.notify(3, CONFIG, 11)
    await answerConfig(net.last, 3, 'server.1=zoo1:1:1;zoo1:2181\nserver.2=zoo2:1:1;zoo2:2181\nversion=5')
    net.last.notify(3, CONFIG, 12)
    await answerConfig(net.last, 4, 'server.1=zoo1:1:1;zoo1:2181\nserver.2=zoo2:1:1;zoo2:2181\nversion=6')
    await waitFor(() => warnings.length === 3, { timeoutMs: 2_000, what: 'three warnings' })
    expect(warnings[0]).toContain('NO_AUTH')
    expect(warnings[1]).toContain('malformed')
    expect(warnings[2]).toContain('names none of')
    expect(lists).toEqual([])
    expect(sortedPorts(c)).toEqual([1, 2])
    expect(c.state).toBe('connected')
  })

  it('ignores a config older than one it adopted', async () => {
    const net = new FakeNet()
    const { c } = await follow(net, 'ws://fake:1')
    await answerConfig(net.last, 1, config([1, 2, 3], 5))
    await answerConfig(net.last, 2, config([1, 2, 3], 5))
    net.last.notify(3, CONFIG, 10)
    await answerConfig(net.last, 3, config([1, 2], 4))
    net.last.notify(3, CONFIG, 11)
    await answerConfig(net.last, 4, config([1, 2, 3, 4], 6))
    await waitFor(() => c.servers.length === 4, { timeoutMs: 2_000, what: 'the newer config' })
  })

  it('reads an empty config (a standalone server) once per session, not again on a reconnect', async () => {
    const net = new FakeNet()
    const { c, warnings, lists } = await follow(net, 'ws://fake:1')
    await answerConfig(net.last, 1, '')
    const p = c.exists('/a')
    net.last.reply(net.last.requests().at(-1)!.xid, 9, -101)
    await p
    net.last.drop()
    await waitFor(() => net.conns.length === 2 && c.state === 'connected', {
      timeoutMs: 2_000,
      what: 'reconnect',
    })
    const q = c.exists('/b')
    expect(net.last.requests().map((r) => r.req.op)).toEqual([OpCode.exists])
    net.last.reply(net.last.requests()[0]!.xid, 9, -101)
    await q
    expect(configReads(net.conns[0]!)).toHaveLength(1)
    expect([warnings, lists]).toEqual([[], []])
  })

  it('reads nothing with followMembership off, the default', async () => {
    for (const opts of [{ followMembership: false }, { followMembership: undefined }]) {
      const net = new FakeNet()
      const c = await connectFake(net, opts, 'ws://fake:1')
      const p = c.exists('/a')
      const sent = net.last.requests()
      expect(sent.map((r) => r.req.op)).toEqual([OpCode.exists])
      net.last.reply(sent[0]!.xid, 9, -101)
      await p
    }
  })
})

describe('updateServerList', () => {
  it('replaces the list; a bad one throws BAD_ARGUMENTS and changes nothing', async () => {
    const net = new FakeNet()
    const c = await connectFake(net, { random: () => 0 }, 'ws://fake:1')
    let err: unknown
    try {
      c.updateServerList('ws://fake:1,http://nope:2')
    } catch (e) {
      err = e
    }
    expect(ZkError.is(err) && err.code).toBe('BAD_ARGUMENTS')
    expect(c.servers).toEqual(['ws://fake:1/'])
    expect(() =>
      c.updateServerList(Array.from({ length: 256 }, (_, i) => `fake:${i + 1}`).join(',')),
    ).toThrow(/more than 255/)
    c.updateServerList('ws://fake:1,ws://fake:2')
    expect(sortedPorts(c)).toEqual([1, 2])
    expect(net.conns).toHaveLength(1)
  })

  it('leaves a server reached by an attempt that began before the list was replaced without it', async () => {
    const net = new FakeNet()
    const c = await connectFake(net, {}, 'ws://fake:1')
    const accept = net.autoAccept!
    net.autoAccept = undefined
    net.last.drop()
    await waitFor(() => net.conns[1]?.sent.length === 1, { timeoutMs: 2_000, what: 'the reconnect attempt' })
    c.updateServerList('ws://fake:9')
    net.autoAccept = accept
    net.conns[1]!.accept(accept)
    await waitFor(() => c.state === 'connected' && c.server === 'ws://fake:9/', {
      timeoutMs: 2_000,
      what: 'the move to fake:9',
    })
    expect(net.conns[1]!.closed).toBe(true)
    expect(net.last.connectRequest().sessionId).toBe(0x1234abcdn)
  })

  it('judges the next config afresh: one that names none of the new servers is not taken', async () => {
    const net = new FakeNet()
    const { c, warnings } = await follow(net, 'ws://fake:1')
    await answerConfig(net.last, 1, config([1, 2]))
    await answerConfig(net.last, 2, config([1, 2]))
    expect(sortedPorts(c)).toEqual([1, 2])
    c.updateServerList('ws://other:7')
    await waitFor(() => net.conns.length === 2 && c.state === 'connected', {
      timeoutMs: 2_000,
      what: 'the move',
    })
    // The same ensemble's config, as the new server shows it: other names than the list's.
    await answerConfig(net.last, 1, config([1, 2], 3))
    await waitFor(() => warnings.length === 1, { timeoutMs: 2_000, what: 'the warning' })
    expect(warnings[0]).toContain('names none of')
    expect(c.servers).toEqual(['ws://other:7/'])
  })

  it('moves off the connected server when the new list does not hold it, with the same session', async () => {
    const net = new FakeNet()
    const c = await connectFake(net, {}, 'ws://fake:1')
    const first = net.last
    c.updateServerList('tcp://fake:7')
    await waitFor(() => net.conns.length === 2 && c.state === 'connected', {
      timeoutMs: 2_000,
      what: 'the move',
    })
    expect(first.closed).toBe(true)
    expect(net.last.endpoint.url).toBe('tcp://fake:7')
    expect(c.server).toBe('tcp://fake:7')
    expect(net.last.connectRequest().sessionId).toBe(0x1234abcdn)
  })
})
