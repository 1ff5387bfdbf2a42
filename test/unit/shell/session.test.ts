/**
 * The shell session against an in-memory client: each command's output in
 * zkCli's format, statuses (0 ok, 1 failed, 2 usage), watches, history and
 * redo, close and connect.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { parseServerList, type ShellClient } from '../../../client/shell/shell-client.js'
import { ShellHistory } from '../../../client/shell/shell-history.js'
import { connectFailure, ShellSession, stateWord } from '../../../client/shell/shell-session.js'
import { ZkError } from '../../../shared/errors.js'
import { FakeClient } from './fake-client.js'

interface Harness {
  session: ShellSession
  clients: FakeClient[]
  out: string[]
  err: string[]
  run: (line: string) => Promise<{ status: number; out: string; err: string }>
}

async function harness(failConnect = false): Promise<Harness> {
  const out: string[] = []
  const err: string[] = []
  const clients: FakeClient[] = []
  const session = new ShellSession({
    servers: parseServerList('127.0.0.1:2181'),
    connect: async (): Promise<ShellClient> => {
      if (failConnect) throw new Error('refused')
      const c = new FakeClient()
      clients.push(c)
      return c
    },
    connectOptions: { sessionTimeoutMs: 30_000, connectTimeoutMs: 1000 },
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    history: new ShellHistory(null),
    announceStates: true,
    timeZone: 'UTC',
  })
  if (!failConnect) await session.open()
  const run = async (line: string) => {
    out.length = 0
    err.length = 0
    const r = await session.runLine(line, true)
    return { status: r.status, out: out.join(''), err: err.join('') }
  }
  return { session, clients, out, err, run }
}

describe('ShellSession', () => {
  let h: Harness
  beforeEach(async () => {
    h = await harness()
  })

  it('creates, reads, writes and lists', async () => {
    expect(await h.run('create /a "hello world"')).toEqual({ status: 0, out: 'Created /a\n', err: '' })
    expect((await h.run('get /a')).out).toBe('hello world\n')
    expect(await h.run('set /a bye')).toEqual({ status: 0, out: '', err: '' })
    const g = await h.run('get -s /a')
    expect(g.out).toMatch(/^bye\ncZxid = 0x\w+\nctime = Thu Jan 01 00:00:00 UTC 1970\n/)
    expect(g.out).toContain('dataVersion = 1\n')
    await h.run('create /a/x')
    await h.run('create /a/y')
    expect((await h.run('ls /a')).out).toBe('[x, y]\n')
    expect((await h.run('ls -s /a')).out).toMatch(/^\[x, y\]\ncZxid = .*numChildren = 2\n$/s)
    expect((await h.run('ls -R /a')).out).toBe('/a\n/a/x\n/a/y\n')
    expect((await h.run('stat /a')).out).toContain('numChildren = 2\n')
    expect((await h.run('getAllChildrenNumber /')).out).toBe('3\n')
  })

  it('reports errors with zkCli messages and status 1', async () => {
    expect(await h.run('get /nope')).toEqual({ status: 1, out: '', err: 'Node does not exist: /nope\n' })
    expect(await h.run('stat /nope')).toEqual({ status: 1, out: '', err: 'Node does not exist: /nope\n' })
    await h.run('create /a')
    expect((await h.run('create /a')).err).toBe('Node already exists: /a\n')
    expect((await h.run('set -v 7 /a x')).err).toBe('version No is not valid : /a\n')
    await h.run('create /a/b')
    expect((await h.run('delete /a')).err).toBe('Node not empty: /a\n')
  })

  it('reports usage errors with status 2', async () => {
    const r = await h.run('set /a')
    expect(r.status).toBe(2)
    expect(r.err).toBe('missing argument\nusage: set [-s] [-v version] path data\n')
    expect((await h.run('get "/a')).status).toBe(2)
    expect((await h.run('bogus')).err).toBe("unknown command 'bogus' (try help)\n")
    expect((await h.run('deleteall /')).status).toBe(2)
  })

  it('creates sequential, ephemeral and ACL-restricted nodes', async () => {
    await h.run('create /q')
    expect((await h.run('create -s /q/item-')).out).toBe('Created /q/item-0000000000\n')
    expect((await h.run('create -e /q/eph data')).out).toBe('Created /q/eph\n')
    expect((await h.run('getEphemerals')).out).toBe('[/q/eph]\n')
    expect((await h.run('stat /q/eph')).out).toContain('ephemeralOwner = 0xfa4e\n')
    await h.run('create /r x world:anyone:r')
    expect((await h.run('getAcl /r')).out).toBe("'world,'anyone\n: r\n")
  })

  it('deletes subtrees and sets ACLs recursively', async () => {
    for (const p of ['/t', '/t/a', '/t/a/b', '/t/c']) await h.run(`create ${p}`)
    expect((await h.run('setAcl -R /t world:anyone:cr')).status).toBe(0)
    expect((await h.run('getAcl /t/a/b')).out).toBe("'world,'anyone\n: cr\n")
    expect((await h.run('deleteall /t')).status).toBe(0)
    expect((await h.run('ls /')).out).toBe('[]\n')
  })

  it('prints one-shot and persistent watch events', async () => {
    await h.run('create /w')
    await h.run('get -w /w')
    h.out.length = 0
    await h.clients[0]!.setData('/w', 'x')
    expect(h.out.join('')).toBe(
      '\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/w\n',
    )
    h.out.length = 0
    await h.clients[0]!.setData('/w', 'y')
    expect(h.out).toEqual([])
    await h.run('addWatch /w')
    await h.clients[0]!.create('/w/k')
    expect(h.out.join('')).toContain('type:NodeCreated path:/w/k')
    expect((await h.run('removewatches /w')).status).toBe(0)
    h.out.length = 0
    await h.clients[0]!.create('/w/k2')
    expect(h.out).toEqual([])
    expect((await h.run('removewatches /w')).err).toBe('KeeperErrorCode = NoWatcher for /w\n')
    await h.run('get -w /w')
    expect((await h.run('removewatches /w')).status).toBe(0)
    h.out.length = 0
    await h.clients[0]!.setData('/w', 'z')
    expect(h.out).toEqual([])
    expect((await h.run('removewatches -d /w')).err).toBe(
      'removewatches -c, -d or -l is not supported by this client\n',
    )
  })

  it('announces state changes', async () => {
    h.clients[0]!.setState('disconnected')
    expect(h.out.join('')).toContain('WatchedEvent state:Disconnected type:None path:null')
    expect(h.session.prompt()).toBe('[conclave: 127.0.0.1:2181(DISCONNECTED) 0] ')
  })

  it('adds auth and shows who it is', async () => {
    expect((await h.run('addauth digest alice:secret')).status).toBe(0)
    expect((await h.run('whoami')).out).toBe('Auth scheme: User\nip: 127.0.0.1\ndigest: alice\n')
    expect((await h.run('addauth bogus x')).err).toBe('KeeperErrorCode = AuthFailed\n')
    expect((await h.run('sync /')).out).toBe('Sync is OK\n')
  })

  it('keeps a history and redoes a command', async () => {
    await h.run('create /h 1')
    await h.run('get /h')
    expect((await h.run('history')).out).toBe('0 - create /h 1\n1 - get /h\n2 - history\n')
    expect(await h.run('redo 1')).toEqual({ status: 0, out: '1\n', err: '' })
    expect((await h.run('redo 99')).status).toBe(2)
    expect(h.session.prompt()).toBe('[conclave: 127.0.0.1:2181(CONNECTED) 6] ')
  })

  it('closes and reconnects', async () => {
    await h.run('create -e /e')
    await h.run('close')
    expect(h.clients[0]!.closed).toBe(true)
    expect(h.session.prompt()).toMatch(/\(CLOSED\)/)
    expect(await h.run('ls /')).toEqual({ status: 1, out: '', err: 'Not connected: use connect host:port\n' })
    expect((await h.run('connect 127.0.0.1:2182')).status).toBe(0)
    expect(h.clients).toHaveLength(2)
    expect(h.session.prompt()).toMatch(/^\[conclave: 127\.0\.0\.1:2182\(CONNECTED\) \d+\] $/)
    expect((await h.run('quit')).status).toBe(0)
  })

  it('completes command names and paths', async () => {
    await h.run('create /alpha')
    await h.run('create /alps')
    await h.run('create /beta')
    expect(await h.session.complete('cr')).toEqual([['create'], 'cr'])
    expect(await h.session.complete('get /al')).toEqual([['/alpha', '/alps'], '/al'])
    await h.run('close')
    expect(await h.session.complete('get /al')).toEqual([[], '/al'])
  })

  it('reports a failed connect', async () => {
    const f = await harness(true)
    const r = await f.run('connect 127.0.0.1:1')
    expect(r).toEqual({ status: 1, out: '', err: 'Unable to connect to 127.0.0.1:1: refused\n' })
  })
})

describe('stateWord', () => {
  it("spells SDK states the prompt's way", () => {
    expect(stateWord('connected')).toBe('CONNECTED')
    expect(stateWord('authFailed')).toBe('AUTH_FAILED')
  })
})

describe('connectFailure', () => {
  it('explains a connection loss', () => {
    const servers = parseServerList('a:1')
    expect(connectFailure(servers, new ZkError('CONNECTION_LOSS'), 500)).toBe(
      'Unable to connect to a:1: no session established within 500 ms (is a server listening there?)',
    )
    expect(connectFailure(servers, new ZkError('AUTH_FAILED'), 500)).toBe(
      'Unable to connect to a:1: KeeperErrorCode = AuthFailed',
    )
  })
})
