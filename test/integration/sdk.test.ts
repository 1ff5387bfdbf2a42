/**
 * Differential tests of the client SDK: the same tests, written against the
 * contract (shared/spec/client-api.md), run against every server target of
 * test/helpers/targets.ts (Apache ZooKeeper now; Conclave when the lead adds
 * it). Where ZooKeeper and the contract differ, a target flag says so and a
 * comment names the difference.
 *
 * Invariants: one server per target (beforeAll), tickTime 500 ms so session
 * timeouts clamp to [1 s, 10 s]; every test works under its own root znode;
 * every wait has a deadline (no sleeps); every client is closed in afterEach.
 * Imports the SDK only through client/index.ts.
 */
import { createHash } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  type Acl,
  Client,
  type ClientState,
  type ConnectOptions,
  CREATOR_ALL_ACL,
  OPEN_ACL_UNSAFE,
  Perms,
  READ_ACL_UNSAFE,
  type Stat,
  type WatchEvent,
  ZkError,
} from '../../client/index.js'
import {
  type Target,
  type TargetInstance,
  TcpProxy,
  targetCanRun,
  targets,
  targetTitle,
} from '../helpers/targets.js'
import { freePort, waitFor } from '../helpers/wait.js'

const MiB = 1024 * 1024
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

function digestAcl(user: string, password: string, perms: number = Perms.ALL): Acl {
  const hash = createHash('sha1').update(`${user}:${password}`).digest('base64')
  return { perms, id: { scheme: 'digest', id: `${user}:${hash}` } }
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

describe.each(targets.map((t) => ({ target: t, title: targetTitle(t) })))(
  'SDK against $title',
  ({ target }) => {
    describe.runIf(targetCanRun(target, 'SDK contract (sdk.test.ts)'))('contract', () => {
      suite(target)
    })
  },
)

function suite(target: Target): void {
  let server: TargetInstance
  const clients: Client[] = []
  const proxies: TcpProxy[] = []
  let roots = 0

  beforeAll(async () => {
    server = await target.start({ tickTimeMs: 500 })
  })

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await Promise.all(proxies.splice(0).map((p) => p.stop()))
  })

  afterAll(async () => {
    await server?.stop()
  })

  async function connect(opts: ConnectOptions = {}, connectString = server.connectString): Promise<Client> {
    const c = await Client.connect(connectString, {
      sessionTimeoutMs: 10_000,
      connectTimeoutMs: 15_000,
      ...opts,
    })
    clients.push(c)
    return c
  }

  async function viaProxy(opts: ConnectOptions = {}): Promise<{ c: Client; proxy: TcpProxy }> {
    const proxy = await TcpProxy.start(server.connectString)
    proxies.push(proxy)
    const c = await connect(opts, proxy.connectString(server.connectString))
    return { c, proxy }
  }

  /** A fresh root znode for one test. */
  async function root(c: Client): Promise<string> {
    return c.create(`/t${++roots}`)
  }

  /** Cuts the client's connection and waits until it is connected again. */
  async function cutAndReconnect(c: Client, proxy: TcpProxy): Promise<void> {
    const states: ClientState[] = []
    const off = c.on('state', (s) => states.push(s))
    proxy.cut()
    await waitFor(() => states.includes('disconnected') && c.state === 'connected', { what: 'reconnect' })
    off()
  }

  /**
   * Waits until every event caused by changes made so far reached `watcher`:
   * events arrive in the order of the changes, so once a later change's event
   * arrives, the earlier ones have too.
   */
  async function barrier(watcher: Client, writer: Client, base: string): Promise<void> {
    const path = `${base}-barrier-${++roots}`
    let seen = false
    await watcher.exists(path, { watch: () => (seen = true) })
    await writer.create(path)
    await waitFor(() => seen, { timeoutMs: 10_000, what: 'barrier event' })
  }

  describe('sessions and state', () => {
    it('connects with a session id in ZooKeeper format and closes for good', async () => {
      const c = await connect()
      expect(c.state).toBe('connected')
      expect(c.sessionId).toMatch(/^0x[1-9a-f][0-9a-f]*$/)
      expect(c.sessionTimeoutMs).toBeGreaterThan(0)
      expect(c.sessionPassword.length).toBeGreaterThan(0)
      const states: ClientState[] = []
      c.on('state', (s) => states.push(s))
      await c.close()
      expect(c.state).toBe('closed')
      expect(states).toEqual(['closed'])
      expect(await code(c.getData('/'))).toBe('SESSION_EXPIRED')
      expect(await code(c.create('/x'))).toBe('SESSION_EXPIRED')
      await c.close()
      expect(states).toEqual(['closed'])
    })

    it('rejects with CONNECTION_LOSS when no server answers within connectTimeoutMs', async () => {
      const port = await freePort()
      const scheme = new URL(server.connectString).protocol
      const url = `${scheme}//127.0.0.1:${port}`
      // Ordered, not timed: the same attempt with a 60 s deadline, started first, is still trying when
      // the 700 ms one gives up (a wall-time bound would fail on a loaded machine).
      const ac = new AbortController()
      let longOutcome: string | undefined
      const long = code(Client.connect(url, { connectTimeoutMs: 60_000, signal: ac.signal })).then(
        (c) => (longOutcome = c),
      )
      const err = await code(Client.connect(url, { connectTimeoutMs: 700 }))
      expect(err).toBe('CONNECTION_LOSS')
      expect(longOutcome).toBeUndefined()
      ac.abort()
      expect(await long).toBe('CONNECTION_LOSS')
    })

    it('rejects a bad connect string or bad options with BAD_ARGUMENTS', async () => {
      expect(await code(Client.connect('http://127.0.0.1:1'))).toBe('BAD_ARGUMENTS')
      expect(await code(Client.connect(''))).toBe('BAD_ARGUMENTS')
      expect(await code(Client.connect(server.connectString, { chroot: 'app' }))).toBe('BAD_ARGUMENTS')
      expect(await code(Client.connect(server.connectString, { sessionTimeoutMs: -1 }))).toBe('BAD_ARGUMENTS')
    })

    it('deletes ephemeral nodes as soon as their session closes', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      await a.create(`${base}/e`, 'x', { mode: 'ephemeral' })
      const stat = await b.exists(`${base}/e`)
      expect(stat?.ephemeralOwner).toBe(a.sessionId)
      await a.close()
      expect(await b.exists(`${base}/e`)).toBeNull()
    })

    it('keeps its session across a lost connection, failing the requests in flight', async () => {
      const { c, proxy } = await viaProxy()
      const base = await root(c)
      await c.create(`${base}/e`, '', { mode: 'ephemeral' })
      const id = c.sessionId
      const states: ClientState[] = []
      c.on('state', (s) => states.push(s))
      const inFlight = c.getData(base)
      proxy.cut()
      expect(await code(inFlight)).toBe('CONNECTION_LOSS')
      await waitFor(() => c.state === 'connected', { what: 'reconnect' })
      expect(states).toEqual(['disconnected', 'connected'])
      expect(c.sessionId).toBe(id)
      expect((await c.exists(`${base}/e`))?.ephemeralOwner).toBe(id)
    })

    it('learns of expiry on reconnecting: state expired, stays, every op SESSION_EXPIRED', async () => {
      const b = await connect()
      const { c: a, proxy } = await viaProxy({ sessionTimeoutMs: 2_000 })
      const base = await root(b)
      await a.create(`${base}/e`, '', { mode: 'ephemeral' })
      let gone = false
      await b.exists(`${base}/e`, { watch: (e) => (gone = e.type === 'deleted') })
      const states: ClientState[] = []
      a.on('state', (s) => states.push(s))
      proxy.stall()
      await waitFor(() => gone, { timeoutMs: 20_000, what: "the expired session's ephemeral to go" })
      expect(a.state).toBe('disconnected')
      proxy.resume()
      await waitFor(() => a.state === 'expired', { timeoutMs: 15_000, what: 'expired state' })
      expect(await code(a.getData('/'))).toBe('SESSION_EXPIRED')
      expect(await code(a.create(`${base}/x`))).toBe('SESSION_EXPIRED')
      expect(a.state).toBe('expired')
      expect(states[0]).toBe('disconnected')
      expect(states.at(-1)).toBe('expired')
      await a.close()
      expect(a.state).toBe('closed')
    })

    it('lets another client resume a session with its id and password', async () => {
      const observer = await connect()
      const { c: a, proxy } = await viaProxy()
      const base = await root(a)
      await a.create(`${base}/e`, '', { mode: 'ephemeral' })
      proxy.stall()
      await waitFor(() => a.state === 'disconnected', { what: 'disconnected' })
      const b = await connect({ sessionId: a.sessionId, sessionPassword: a.sessionPassword })
      expect(b.sessionId).toBe(a.sessionId)
      expect((await b.exists(`${base}/e`))?.ephemeralOwner).toBe(a.sessionId)
      await b.close()
      expect(await observer.exists(`${base}/e`)).toBeNull()
      proxy.resume()
      await waitFor(() => a.state === 'expired', { timeoutMs: 15_000, what: 'expired state' })
    })

    it('refuses to resume a session with a wrong password (SESSION_EXPIRED)', async () => {
      const a = await connect()
      const base = await root(a)
      await a.create(`${base}/e`, '', { mode: 'ephemeral' })
      const bad = a.sessionPassword.map((x) => x ^ 0xff)
      expect(
        await code(Client.connect(server.connectString, { sessionId: a.sessionId, sessionPassword: bad })),
      ).toBe('SESSION_EXPIRED')
      // ZooKeeper drops the session's current connection before it checks the
      // password (processConnectRequest); the owner reconnects with its session.
      // The drop may reach the owner only after a request went out on the old
      // connection (CONNECTION_LOSS): ask until the answer comes back.
      // (waitFor retries a check that throws, and names the last error if it times out.)
      const owner = await waitFor(async () => (await a.exists(`${base}/e`))?.ephemeralOwner, {
        what: 'the owner to read its ephemeral again',
      })
      expect(owner).toBe(a.sessionId)
    })
  })

  describe('create, read, write, delete', () => {
    it('creates nodes with a complete initial Stat', async () => {
      const c = await connect()
      const base = await root(c)
      expect(await c.create(`${base}/a`, 'hello')).toBe(`${base}/a`)
      const { data, stat } = await c.getData(`${base}/a`)
      expect(dec(data)).toBe('hello')
      expect(stat).toEqual({
        czxid: stat.czxid,
        mzxid: stat.czxid,
        pzxid: stat.czxid,
        ctime: stat.ctime,
        mtime: stat.ctime,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeralOwner: '0x0',
        dataLength: 5,
        numChildren: 0,
      } satisfies Stat)
      expect(stat.czxid).toBeGreaterThan(0)
      expect(Math.abs(stat.ctime - Date.now())).toBeLessThan(60_000)
      await c.create(`${base}/bytes`, new Uint8Array([0, 1, 255]))
      expect([...(await c.getData(`${base}/bytes`)).data]).toEqual([0, 1, 255])
      await c.create(`${base}/empty`)
      expect((await c.getData(`${base}/empty`)).data.length).toBe(0)
      const eph = await c.create(`${base}/eph`, '', { mode: 'ephemeral' })
      expect((await c.exists(eph))?.ephemeralOwner).toBe(c.sessionId)
    })

    it('reports NODE_EXISTS, NO_NODE and NO_CHILDREN_FOR_EPHEMERALS on create', async () => {
      const c = await connect()
      const base = await root(c)
      await c.create(`${base}/a`)
      expect(await code(c.create(`${base}/a`))).toBe('NODE_EXISTS')
      expect(await code(c.create(`${base}/missing/child`))).toBe('NO_NODE')
      await c.create(`${base}/eph`, '', { mode: 'ephemeral' })
      expect(await code(c.create(`${base}/eph/child`))).toBe('NO_CHILDREN_FOR_EPHEMERALS')
      expect(await code(c.create('/'))).toBe('NODE_EXISTS')
      const err = await c.create(`${base}/a`).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ZkError)
      expect((err as ZkError).path).toBe(`${base}/a`)
    })

    it('setData bumps version, mzxid and mtime; honours expected versions', async () => {
      const c = await connect()
      const base = await root(c)
      await c.create(`${base}/a`, 'one')
      const before = (await c.exists(`${base}/a`))!
      const s1 = await c.setData(`${base}/a`, 'two!')
      expect(s1.version).toBe(1)
      expect(s1.mzxid).toBeGreaterThan(before.mzxid)
      expect(s1.czxid).toBe(before.czxid)
      expect(s1.pzxid).toBe(before.pzxid)
      expect(s1.mtime).toBeGreaterThanOrEqual(before.mtime)
      expect(s1.ctime).toBe(before.ctime)
      expect(s1.dataLength).toBe(4)
      expect(await code(c.setData(`${base}/a`, 'x', 0))).toBe('BAD_VERSION')
      const s2 = await c.setData(`${base}/a`, 'two!', 1)
      expect(s2.version).toBe(2)
      expect(s2.mzxid).toBeGreaterThan(s1.mzxid)
      expect((await c.setData(`${base}/a`, 'any', -1)).version).toBe(3)
      expect(await code(c.setData(`${base}/missing`, 'x'))).toBe('NO_NODE')
      expect(dec((await c.getData(`${base}/a`)).data)).toBe('any')
    })

    it('delete honours versions, refuses non-empty nodes and the root', async () => {
      const c = await connect()
      const base = await root(c)
      await c.create(`${base}/a`)
      await c.create(`${base}/a/b`)
      expect(await code(c.delete(`${base}/a`))).toBe('NOT_EMPTY')
      expect(await code(c.delete(`${base}/a/b`, 3))).toBe('BAD_VERSION')
      await c.delete(`${base}/a/b`, 0)
      await c.delete(`${base}/a`)
      expect(await c.exists(`${base}/a`)).toBeNull()
      expect(await code(c.delete(`${base}/a`))).toBe('NO_NODE')
      expect(await code(c.delete('/'))).toBe('BAD_ARGUMENTS')
      expect(await code(c.getData(`${base}/a`))).toBe('NO_NODE')
    })

    it('maintains parent stats: cversion counts creates and deletes, pzxid follows them', async () => {
      const c = await connect()
      const base = await root(c)
      const p0 = (await c.getChildrenWithStat(base)).stat
      await c.create(`${base}/a`)
      await c.create(`${base}/b`)
      const p1 = (await c.getChildrenWithStat(base)).stat
      const child = (await c.exists(`${base}/b`))!
      expect(p1.cversion).toBe(2)
      expect(p1.numChildren).toBe(2)
      expect(p1.pzxid).toBe(child.czxid)
      expect(p1.mzxid).toBe(p0.mzxid)
      expect(p1.version).toBe(0)
      await c.setData(`${base}/a`, 'x')
      expect((await c.exists(base))!.pzxid).toBe(p1.pzxid)
      await c.delete(`${base}/a`)
      const p2 = (await c.getChildrenWithStat(base)).stat
      expect(p2.cversion).toBe(3)
      expect(p2.numChildren).toBe(1)
      expect(p2.pzxid).toBeGreaterThan(p1.pzxid)
      expect(p2.mzxid).toBe(p0.mzxid)
    })

    it('lists children sorted in JavaScript order', async () => {
      const c = await connect()
      const base = await root(c)
      const names = ['b', 'a', 'B', '10', '9', 'é', 'a-1', 'Z']
      for (const n of names) await c.create(`${base}/${n}`)
      expect(await c.getChildren(base)).toEqual([...names].sort())
      const { children, stat } = await c.getChildrenWithStat(base)
      expect(children).toEqual([...names].sort())
      expect(stat.numChildren).toBe(names.length)
      expect(await code(c.getChildren(`${base}/missing`))).toBe('NO_NODE')
      expect(await c.getChildren(`${base}/a`)).toEqual([])
    })

    it('numbers sequential nodes per parent; deletes and failed multis free no number', async () => {
      const c = await connect()
      const base = await root(c)
      await c.create(`${base}/q`)
      expect(await c.create(`${base}/q/`, '', { mode: 'persistentSequential' })).toBe(`${base}/q/0000000000`)
      expect(await c.create(`${base}/q/item-`, '', { mode: 'persistentSequential' })).toBe(
        `${base}/q/item-0000000001`,
      )
      const e = await c.create(`${base}/q/e-`, '', { mode: 'ephemeralSequential' })
      expect(e).toBe(`${base}/q/e-0000000002`)
      expect((await c.exists(e))?.ephemeralOwner).toBe(c.sessionId)
      await c.delete(e)
      const failed = c.multi([
        { op: 'create', path: `${base}/q/m-`, mode: 'persistentSequential' },
        { op: 'check', path: `${base}/q`, version: 99 },
      ])
      expect(await code(failed)).toBe('BAD_VERSION')
      expect(await c.create(`${base}/q/x-`, '', { mode: 'persistentSequential' })).toBe(
        `${base}/q/x-0000000003`,
      )
      expect(await c.getChildren(`${base}/q`)).toEqual(['0000000000', 'item-0000000001', 'x-0000000003'])
    })

    it('exists returns null or the Stat', async () => {
      const c = await connect()
      const base = await root(c)
      expect(await c.exists(`${base}/nope`)).toBeNull()
      const s = await c.exists(base)
      expect(s?.numChildren).toBe(0)
    })

    it('accepts 1 MiB of data and refuses one byte more without sending it', async () => {
      const c = await connect()
      const base = await root(c)
      expect(await code(c.create(`${base}/big`, new Uint8Array(MiB + 1)))).toBe('BAD_ARGUMENTS')
      expect(await code(c.setData(base, new Uint8Array(MiB + 1)))).toBe('BAD_ARGUMENTS')
      expect(await code(c.multi([{ op: 'setData', path: base, data: new Uint8Array(MiB + 1) }]))).toBe(
        'BAD_ARGUMENTS',
      )
      expect(await c.exists(`${base}/big`)).toBeNull()
      expect(c.state).toBe('connected')
      // ZooKeeper's default jute.maxbuffer (0xfffff) refuses a packet carrying exactly 1 MiB.
      if (!target.acceptsOneMiB) return
      const data = new Uint8Array(MiB).fill(7)
      await c.create(`${base}/big`, data)
      const got = await c.getData(`${base}/big`)
      expect(got.stat.dataLength).toBe(MiB)
      expect(got.data).toEqual(data)
    })

    it('validates paths before sending (BAD_ARGUMENTS)', async () => {
      const c = await connect()
      for (const bad of [
        '',
        'a',
        '/a/',
        '//a',
        '/a/./b',
        '/a/../b',
        '/a\u0000',
        '/a\u0001',
        '/\ud800',
        '/\ufff0',
      ]) {
        expect(await code(c.getData(bad)), JSON.stringify(bad)).toBe('BAD_ARGUMENTS')
        expect(await code(c.create(bad)), JSON.stringify(bad)).toBe('BAD_ARGUMENTS')
        expect(await code(c.exists(bad)), JSON.stringify(bad)).toBe('BAD_ARGUMENTS')
      }
      expect(await code(c.setData('/a/', 'x'))).toBe('BAD_ARGUMENTS')
      expect(await code(c.delete('/a/'))).toBe('BAD_ARGUMENTS')
      expect(await code(c.getChildren('/a/'))).toBe('BAD_ARGUMENTS')
      expect(c.state).toBe('connected')
    })

    it('sync resolves, after which reads see earlier writes', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      await a.setData(base, 'synced')
      await b.sync(base)
      expect(dec((await b.getData(base)).data)).toBe('synced')
    })

    it('pipelines 1,000 requests and answers them in order', async () => {
      const c = await connect()
      const base = await root(c)
      const order: number[] = []
      const ops: Promise<unknown>[] = []
      for (let i = 0; i < 1000; i++) {
        const p =
          i % 2 === 0
            ? c.create(`${base}/s-`, String(i), { mode: 'persistentSequential' })
            : c.setData(base, String(i))
        ops.push(p.then(() => order.push(i)))
      }
      const results = await Promise.all(ops)
      expect(results).toHaveLength(1000)
      expect(order).toEqual([...Array(1000).keys()])
      const children = await c.getChildren(base)
      expect(children).toHaveLength(500)
      for (const [k, name] of children.entries()) {
        expect(name).toBe(`s-${String(k).padStart(10, '0')}`)
        expect(dec((await c.getData(`${base}/${name}`)).data)).toBe(String(2 * k))
      }
      expect((await c.exists(base))!.version).toBe(500)
    })
  })

  describe('extras', () => {
    it('getEphemerals, getAllChildrenNumber and whoAmI', async () => {
      const c = await connect({ auth: [{ scheme: 'digest', credentials: 'alice:secret' }] })
      const base = await root(c)
      await c.create(`${base}/a`)
      await c.create(`${base}/a/b`)
      await c.create(`${base}/e1`, '', { mode: 'ephemeral' })
      await c.create(`${base}/a/e2`, '', { mode: 'ephemeral' })
      expect(await c.getAllChildrenNumber(base)).toBe(4)
      expect(await c.getEphemerals(base)).toEqual([`${base}/a/e2`, `${base}/e1`])
      const me = await c.whoAmI()
      expect(me.some((i) => i.scheme === 'digest' && i.id.startsWith('alice'))).toBe(true)
    })
  })

  describe('multi', () => {
    it('applies every op and maps the results', async () => {
      const c = await connect()
      const base = await root(c)
      await c.create(`${base}/old`)
      const results = await c.multi([
        { op: 'create', path: `${base}/a`, data: 'x' },
        { op: 'create', path: `${base}/s-`, mode: 'persistentSequential' },
        { op: 'setData', path: `${base}/a`, data: 'yy', version: 0 },
        { op: 'check', path: `${base}/a`, version: 1 },
        { op: 'delete', path: `${base}/old` },
      ])
      expect(results[0]).toEqual({ op: 'create', path: `${base}/a` })
      expect(results[1]).toEqual({ op: 'create', path: `${base}/s-0000000002` })
      expect(results[2]).toMatchObject({ op: 'setData', stat: { version: 1, dataLength: 2 } })
      expect(results.slice(3)).toEqual([{ op: 'check' }, { op: 'delete' }])
      expect(dec((await c.getData(`${base}/a`)).data)).toBe('yy')
      expect(await c.exists(`${base}/old`)).toBeNull()
      expect(await c.multi([])).toEqual([])
    })

    it('applies nothing when one op fails, and reports every op', async () => {
      const c = await connect()
      const base = await root(c)
      await c.create(`${base}/keep`, 'k')
      const err = (await c
        .multi([
          { op: 'create', path: `${base}/new` },
          { op: 'setData', path: `${base}/keep`, data: 'changed' },
          { op: 'delete', path: `${base}/missing` },
          { op: 'create', path: `${base}/later` },
        ])
        .catch((e: unknown) => e)) as ZkError
      expect(err).toBeInstanceOf(ZkError)
      expect(err.code).toBe('NO_NODE')
      expect(err.path).toBe(`${base}/missing`)
      expect(err.results).toEqual([
        { op: 'error', code: 'OK' },
        { op: 'error', code: 'OK' },
        { op: 'error', code: 'NO_NODE' },
        { op: 'error', code: 'RUNTIME_INCONSISTENCY' },
      ])
      expect(await c.exists(`${base}/new`)).toBeNull()
      expect(dec((await c.getData(`${base}/keep`)).data)).toBe('k')
      const e2 = (await c
        .multi([
          { op: 'check', path: `${base}/keep`, version: 5 },
          { op: 'create', path: `${base}/keep` },
        ])
        .catch((e: unknown) => e)) as ZkError
      expect(e2.code).toBe('BAD_VERSION')
      expect(e2.results).toEqual([
        { op: 'error', code: 'BAD_VERSION' },
        { op: 'error', code: 'RUNTIME_INCONSISTENCY' },
      ])
    })

    it('validates every op before sending', async () => {
      const c = await connect()
      const base = await root(c)
      const bad = c.multi([
        { op: 'create', path: `${base}/ok` },
        { op: 'delete', path: 'no-slash' },
      ])
      expect(await code(bad)).toBe('BAD_ARGUMENTS')
      expect(await c.exists(`${base}/ok`)).toBeNull()
    })
  })

  describe('ACLs and auth', () => {
    it('defaults to world:anyone ALL; setACL bumps aversion and checks it', async () => {
      const c = await connect()
      const base = await root(c)
      const { acl, stat } = await c.getACL(base)
      expect(acl).toEqual([...OPEN_ACL_UNSAFE])
      expect(stat.aversion).toBe(0)
      expect(await code(c.setACL(base, [...READ_ACL_UNSAFE], 1))).toBe('BAD_VERSION')
      const s = await c.setACL(base, [...READ_ACL_UNSAFE], 0)
      expect(s.aversion).toBe(1)
      expect(s.version).toBe(0)
      expect(s.mzxid).toBe(stat.mzxid)
      expect(await code(c.setACL(base, [...OPEN_ACL_UNSAFE]))).toBe('NO_AUTH')
      expect(await code(c.setData(base, 'x'))).toBe('NO_AUTH')
      expect(await code(c.create(`${base}/child`))).toBe('NO_AUTH')
      expect((await c.getACL(base)).acl).toEqual([...READ_ACL_UNSAFE])
    })

    it('protects nodes with digest ACLs; addAuth grants access', async () => {
      const owner = await connect({ auth: [{ scheme: 'digest', credentials: 'alice:secret' }] })
      const other = await connect()
      const base = await root(owner)
      await owner.create(`${base}/private`, 'p', { acl: [digestAcl('alice', 'secret')] })
      expect(await code(other.getData(`${base}/private`))).toBe('NO_AUTH')
      expect(await code(other.setData(`${base}/private`, 'x'))).toBe('NO_AUTH')
      expect(dec((await owner.getData(`${base}/private`)).data)).toBe('p')
      await other.addAuth('digest', 'bob:pw')
      expect(await code(other.getData(`${base}/private`))).toBe('NO_AUTH')
      await other.addAuth('digest', 'alice:secret')
      expect(dec((await other.getData(`${base}/private`)).data)).toBe('p')
    })

    it('creator ACLs need an authenticated id (INVALID_ACL otherwise); empty ACLs are invalid', async () => {
      const anon = await connect()
      const base = await root(anon)
      expect(await code(anon.create(`${base}/c`, '', { acl: [...CREATOR_ALL_ACL] }))).toBe('INVALID_ACL')
      expect(await code(anon.create(`${base}/c`, '', { acl: [] }))).toBe('INVALID_ACL')
      const alice = await connect({ auth: [{ scheme: 'digest', credentials: 'alice:secret' }] })
      await alice.create(`${base}/c`, '', { acl: [...CREATOR_ALL_ACL] })
      expect((await alice.getACL(`${base}/c`)).acl).toEqual([digestAcl('alice', 'secret')])
      expect(await code(anon.getData(`${base}/c`))).toBe('NO_AUTH')
    })

    it('re-sends credentials after a reconnect', async () => {
      const { c, proxy } = await viaProxy({ auth: [{ scheme: 'digest', credentials: 'alice:secret' }] })
      const base = await root(c)
      await c.create(`${base}/private`, 'p', { acl: [digestAcl('alice', 'secret')] })
      await cutAndReconnect(c, proxy)
      expect(dec((await c.getData(`${base}/private`)).data)).toBe('p')
    })

    it('fails auth with an unknown scheme: AUTH_FAILED, state authFailed', async () => {
      const c = await connect()
      const states: ClientState[] = []
      c.on('state', (s) => states.push(s))
      expect(await code(c.addAuth('no-such-scheme', 'x'))).toBe('AUTH_FAILED')
      expect(c.state).toBe('authFailed')
      expect(states).toEqual(['authFailed'])
      expect(await code(c.getData('/'))).toBe('AUTH_FAILED')
      const err = await code(
        Client.connect(server.connectString, { auth: [{ scheme: 'no-such-scheme', credentials: 'x' }] }),
      )
      expect(err).toBe('AUTH_FAILED')
    })
  })

  describe('chroot', () => {
    it('prefixes paths going out and strips them coming back', async () => {
      const plain = await connect()
      const base = await root(plain)
      const c = await connect({ chroot: base })
      expect(await c.create('/x', 'in chroot')).toBe('/x')
      expect(dec((await plain.getData(`${base}/x`)).data)).toBe('in chroot')
      expect(await c.getChildren('/')).toEqual(['x'])
      expect((await c.exists('/'))?.czxid).toBe((await plain.exists(base))?.czxid)
      expect(await c.create('/s-', '', { mode: 'persistentSequential' })).toBe('/s-0000000001')
      expect(await c.multi([{ op: 'create', path: '/m' }])).toEqual([{ op: 'create', path: '/m' }])
      const events: WatchEvent[] = []
      await c.getData('/x', { watch: (e) => events.push(e) })
      await c.addWatch('/', 'persistentRecursive', (e) => events.push(e))
      await plain.setData(`${base}/x`, 'changed')
      await waitFor(() => events.length === 2, { what: 'chroot events' })
      expect(events).toEqual([
        { type: 'dataChanged', path: '/x' },
        { type: 'dataChanged', path: '/x' },
      ])
      const err = (await c.getData('/missing').catch((e: unknown) => e)) as ZkError
      expect(err.path).toBe('/missing')
    })
  })

  describe('one-shot watches', () => {
    it('fire exactly once, with the right type', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      await a.create(`${base}/d`, '0')
      const events: WatchEvent[] = []
      await a.getData(`${base}/d`, { watch: (e) => events.push(e) })
      await b.setData(`${base}/d`, '1')
      await b.setData(`${base}/d`, '2')
      await barrier(a, b, base)
      expect(events).toEqual([{ type: 'dataChanged', path: `${base}/d` }])
    })

    it('route each event to the watch kinds ZooKeeper fires', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      const log: string[] = []
      const w = (tag: string) => (e: WatchEvent) => log.push(`${tag}:${e.type}:${e.path.slice(base.length)}`)
      await a.create(`${base}/n`)
      await a.exists(`${base}/new`, { watch: w('exist') })
      await a.getData(`${base}/n`, { watch: w('data') })
      await a.getChildren(`${base}/n`, { watch: w('child') })
      await a.getChildrenWithStat(base, { watch: w('child2') })
      await b.create(`${base}/new`)
      await b.create(`${base}/n/kid`)
      await b.setData(`${base}/n/kid`, 'not a child event')
      await b.setData(`${base}/n`, 'x')
      await barrier(a, b, base)
      expect(log).toEqual([
        'exist:created:/new',
        'child2:childrenChanged:',
        'child:childrenChanged:/n',
        'data:dataChanged:/n',
      ])
      log.length = 0
      await a.getData(`${base}/n/kid`, { watch: w('data') })
      await a.getChildren(`${base}/n/kid`, { watch: w('child') })
      await a.exists(`${base}/n`, { watch: w('exist') })
      await b.delete(`${base}/n/kid`)
      await b.delete(`${base}/n`)
      await barrier(a, b, base)
      expect(log.slice().sort()).toEqual(['child:deleted:/n/kid', 'data:deleted:/n/kid', 'exist:deleted:/n'])
    })

    it('fire a listener once per event even when set by several calls', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      let same = 0
      let other = 0
      const listener = (): void => {
        same++
      }
      await a.getData(base, { watch: listener })
      await a.exists(base, { watch: listener })
      await a.getData(base, { watch: listener })
      await a.exists(base, { watch: () => other++ })
      await b.setData(base, 'x')
      await barrier(a, b, base)
      expect(same).toBe(1)
      expect(other).toBe(1)
    })

    it('are not set by a failed read, but exists sets one on a missing node', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      const log: string[] = []
      expect(await code(a.getData(`${base}/x`, { watch: () => log.push('getData') }))).toBe('NO_NODE')
      expect(await code(a.getChildren(`${base}/x`, { watch: () => log.push('getChildren') }))).toBe('NO_NODE')
      expect(await a.exists(`${base}/x`, { watch: (e) => log.push(e.type) })).toBeNull()
      await b.create(`${base}/x`)
      await b.setData(`${base}/x`, 'x')
      await barrier(a, b, base)
      expect(log).toEqual(['created'])
    })

    it('deliver the event before the data that changed after it', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      await a.create(`${base}/d`, 'old')
      const log: string[] = []
      await a.getData(`${base}/d`, { watch: (e) => log.push(e.type) })
      await b.setData(`${base}/d`, 'new')
      await waitFor(
        async () => {
          const { data } = await a.getData(`${base}/d`)
          if (dec(data) !== 'new') return false
          log.push('new data')
          return true
        },
        { what: 'new data' },
      )
      expect(log).toEqual(['dataChanged', 'new data'])
    })

    it('deliver events in the order of the changes', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      const paths = Array.from({ length: 20 }, (_, i) => `${base}/n${i}`)
      const seen: string[] = []
      for (const p of paths) await a.exists(p, { watch: (e) => seen.push(e.path) })
      const order = [...paths].reverse()
      await Promise.all(order.map((p) => b.create(p)))
      await waitFor(() => seen.length === paths.length, { what: 'all events' })
      expect(seen).toEqual(order)
    })

    it('survive a reconnect; a change missed while away fires at once', async () => {
      const b = await connect()
      const { c: a, proxy } = await viaProxy()
      const base = await root(b)
      await b.create(`${base}/d`, 'old')
      await b.create(`${base}/kids`)
      const log: string[] = []
      const w = (e: WatchEvent): number => log.push(`${e.type}:${e.path.slice(base.length)}`)
      await a.getData(`${base}/d`, { watch: w })
      await a.exists(`${base}/later`, { watch: w })
      await a.getChildren(`${base}/kids`, { watch: w })
      await a.exists(`${base}/untouched`, { watch: w })
      proxy.stall()
      await waitFor(() => a.state === 'disconnected', { what: 'disconnected' })
      await b.setData(`${base}/d`, 'new')
      await b.create(`${base}/later`)
      proxy.resume()
      await waitFor(() => log.length === 2, { what: 'missed events' })
      expect(log.sort()).toEqual(['created:/later', 'dataChanged:/d'])
      await b.create(`${base}/kids/k`)
      await waitFor(() => log.length === 3, { what: 'child event after reconnect' })
      expect(log[2]).toBe('childrenChanged:/kids')
      await b.create(`${base}/untouched`)
      await waitFor(() => log.length === 4, { what: 'exist event after reconnect' })
    })
  })

  describe('persistent watches', () => {
    it('persistent: every event on the path, until stopped', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      const p = `${base}/p`
      const events: WatchEvent[] = []
      const stop = await a.addWatch(p, 'persistent', (e) => events.push(e))
      await b.create(p)
      await b.setData(p, '1')
      await b.setData(p, '2')
      await b.create(`${p}/kid`)
      await b.setData(`${p}/kid`, 'not on the path')
      await b.delete(`${p}/kid`)
      await b.delete(p)
      await barrier(a, b, base)
      expect(events.map((e) => e.type)).toEqual([
        'created',
        'dataChanged',
        'dataChanged',
        'childrenChanged',
        'childrenChanged',
        'deleted',
      ])
      expect(events.every((e) => e.path === p)).toBe(true)
      await stop()
      await stop()
      await b.create(p)
      await barrier(a, b, base)
      expect(events).toHaveLength(6)
    })

    it('persistentRecursive: the path and its subtree, never childrenChanged', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      const events: string[] = []
      const stop = await a.addWatch(`${base}/r`, 'persistentRecursive', (e) =>
        events.push(`${e.type}:${e.path.slice(base.length)}`),
      )
      await b.create(`${base}/r`)
      await b.create(`${base}/r/a`)
      await b.create(`${base}/r/a/b`, 'x')
      await b.setData(`${base}/r/a/b`, 'y')
      await b.create(`${base}/rr`)
      await b.delete(`${base}/r/a/b`)
      await barrier(a, b, base)
      expect(events).toEqual([
        'created:/r',
        'created:/r/a',
        'created:/r/a/b',
        'dataChanged:/r/a/b',
        'deleted:/r/a/b',
      ])
      await stop()
      await b.setData(`${base}/r/a`, 'after stop')
      await barrier(a, b, base)
      expect(events).toHaveLength(5)
    })

    it('coexist with a one-shot watch on the same path', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      const persistent: string[] = []
      const oneShot: string[] = []
      await a.addWatch(base, 'persistent', (e) => persistent.push(e.type))
      await a.getData(base, { watch: (e) => oneShot.push(e.type) })
      // A round trip, so the SDK's repair for ZOOKEEPER-4466 (see watchModesInterfere) is in place.
      await a.exists(base)
      await b.setData(base, '1')
      await b.setData(base, '2')
      await barrier(a, b, base)
      expect(oneShot).toEqual(['dataChanged'])
      expect(persistent).toEqual(['dataChanged', 'dataChanged'])
    })

    it('stopping one persistent listener keeps the others and the one-shot watches', async () => {
      const a = await connect()
      const b = await connect()
      const base = await root(a)
      const log: string[] = []
      const stop1 = await a.addWatch(base, 'persistent', () => log.push('p1'))
      await a.addWatch(base, 'persistent', () => log.push('p2'))
      const stopR = await a.addWatch(base, 'persistentRecursive', () => log.push('r'))
      await a.getData(base, { watch: () => log.push('once') })
      await a.exists(base)
      await stop1()
      await b.setData(base, '1')
      await barrier(a, b, base)
      expect(log.sort()).toEqual(['once', 'p2', 'r'])
      log.length = 0
      await stopR()
      await b.setData(base, '2')
      await barrier(a, b, base)
      expect(log).toEqual(['p2'])
    })

    it('are re-registered after a reconnect', async () => {
      const b = await connect()
      const { c: a, proxy } = await viaProxy()
      const base = await root(b)
      await b.create(`${base}/r`)
      await b.create(`${base}/p`)
      const events: string[] = []
      await a.addWatch(`${base}/r`, 'persistentRecursive', (e) =>
        events.push(`${e.type}:${e.path.slice(base.length)}`),
      )
      await a.addWatch(`${base}/p`, 'persistent', (e) => events.push(`p-${e.type}`))
      await cutAndReconnect(a, proxy)
      await b.create(`${base}/r/after`)
      await b.create(`${base}/p/after`)
      // Conclave resumes them (nothing was missed); ZooKeeper re-adds them without the events
      // missed meanwhile, so each listener is told to resync first (docs/api.md).
      const resyncs = target.name === 'conclave' ? [] : ['p-resync', 'resync:/r']
      await waitFor(() => events.length === 2 + resyncs.length, { what: 'events after reconnect' })
      expect(events).toEqual([...resyncs, 'created:/r/after', 'p-childrenChanged'])
    })

    // ZooKeeper before 3.9 keeps one watch mode per (session, path): the later mode replaces the other.
    it.skipIf(target.watchModesInterfere)(
      'persistent and persistentRecursive coexist on one path',
      async () => {
        const a = await connect()
        const b = await connect()
        const base = await root(a)
        const events: string[] = []
        await a.addWatch(base, 'persistentRecursive', (e) =>
          events.push(`r-${e.type}:${e.path.slice(base.length)}`),
        )
        await a.addWatch(base, 'persistent', (e) => events.push(`p-${e.type}:${e.path.slice(base.length)}`))
        await b.create(`${base}/kid`)
        // The barrier node is a sibling of base, outside both watches.
        await barrier(a, b, `${base}-sync`)
        expect(events.sort()).toEqual(['p-childrenChanged:', 'r-created:/kid'])
      },
    )
  })

  describe('TTL and container nodes', () => {
    it('creates TTL nodes (ttlMs required by, and only allowed with, the TTL modes)', async () => {
      const c = await connect()
      const base = await root(c)
      expect(await c.create(`${base}/ttl`, 'x', { mode: 'persistentWithTtl', ttlMs: 500 })).toBe(
        `${base}/ttl`,
      )
      const s = (await c.exists(`${base}/ttl`))!
      expect(s.ephemeralOwner).toBe('0x0')
      expect(s.version).toBe(0)
      const seq = await c.create(`${base}/ttl-`, '', { mode: 'persistentSequentialWithTtl', ttlMs: 60_000 })
      expect(seq).toBe(`${base}/ttl-0000000001`)
      expect(await code(c.create(`${base}/x`, '', { mode: 'persistentWithTtl' }))).toBe('BAD_ARGUMENTS')
      expect(await code(c.create(`${base}/x`, '', { mode: 'persistentWithTtl', ttlMs: 0 }))).toBe(
        'BAD_ARGUMENTS',
      )
      expect(await code(c.create(`${base}/x`, '', { mode: 'persistent', ttlMs: 10 }))).toBe('BAD_ARGUMENTS')
      expect(await code(c.create(`${base}/x`, '', { mode: 'ephemeral', ttlMs: 10 }))).toBe('BAD_ARGUMENTS')
      const res = await c.multi([
        { op: 'create', path: `${base}/mttl`, mode: 'persistentWithTtl', ttlMs: 1000 },
      ])
      expect(res).toEqual([{ op: 'create', path: `${base}/mttl` }])
    })

    it('creates container nodes', async () => {
      const c = await connect()
      const base = await root(c)
      expect(await c.create(`${base}/box`, '', { mode: 'container' })).toBe(`${base}/box`)
      expect((await c.exists(`${base}/box`))?.ephemeralOwner).toBe('0x0')
      await c.create(`${base}/box/item`)
      expect((await c.exists(`${base}/box`))?.numChildren).toBe(1)
    })

    // Removal timing differs: ZooKeeper's ContainerManager polls every 60 s.
    it.skipIf(!target.fastReaping)('removes an expired TTL node and an emptied container', async () => {
      const c = await connect()
      const base = await root(c)
      await c.create(`${base}/ttl`, '', { mode: 'persistentWithTtl', ttlMs: 300 })
      await c.create(`${base}/box`, '', { mode: 'container' })
      await c.create(`${base}/never-used`, '', { mode: 'container' })
      await c.create(`${base}/box/item`)
      await c.delete(`${base}/box/item`)
      await waitFor(async () => (await c.exists(`${base}/ttl`)) === null, {
        timeoutMs: 10_000,
        what: 'TTL removal',
      })
      await waitFor(async () => (await c.exists(`${base}/box`)) === null, {
        timeoutMs: 10_000,
        what: 'container',
      })
      expect(await c.exists(`${base}/never-used`)).not.toBeNull()
    })
  })
}
