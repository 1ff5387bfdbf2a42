/**
 * PersistentNode, PersistentTtlNode and ServiceDiscovery (recipes/) against
 * real servers (Conclave and Apache ZooKeeper): a node kept in place when
 * deleted, across a cut connection (data set meanwhile is written after the
 * reconnect) and across session expiry (a new session re-creates it with
 * the latest data); sequential nodes; a start that cannot succeed; the TTL
 * node's container and touch child, and (Conclave, which reaps within a
 * second) its removal once its owner stops touching it. Service discovery:
 * registration in Curator's JSON, instances, round-robin and random
 * providers, a live cache as an iterator, registrations that survive their
 * session's expiry.
 *
 * Invariants: no mocks of the server; every wait has a deadline; loops are bounded.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { Client, ErrorCode, ZkError } from '../../client/index.js'
import {
  PersistentNode,
  PersistentTtlNode,
  parseInstance,
  ServiceDiscovery,
  type ServiceInstance,
} from '../../recipes/index.js'
import { startConclave, stopAllConclave } from '../helpers/conclave.js'
import { TcpProxy } from '../helpers/targets.js'
import { waitFor } from '../helpers/wait.js'
import { children, dec, enc, forEachTarget, SHORT_SESSION_MS } from '../unit/recipes/harness.js'

/** The node's data, or null if it is absent. */
async function read(zk: Client, path: string): Promise<string | null> {
  try {
    return dec((await zk.getData(path)).data)
  } catch (err) {
    if (ZkError.is(err, ErrorCode.NO_NODE)) return null
    throw err
  }
}

async function value<T>(it: AsyncIterator<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no value within 10 s')), 10_000)
  })
  try {
    const r = await Promise.race([it.next(), deadline])
    if (r.done) throw new Error('the iteration ended')
    return r.value
  } finally {
    clearTimeout(timer)
  }
}

const idsOf = (list: readonly ServiceInstance[]): string => list.map((i) => i.id).join(',')

forEachTarget('PersistentNode and ServiceDiscovery', (env) => {
  describe('PersistentNode', () => {
    it('is re-created when deleted, keeps data set while cut off, and outlives its session', async () => {
      const path = `${env.root('pnode')}/svc/a`
      const admin = await env.connect()
      const { zk, proxy } = await env.connectProxied({ sessionTimeoutMs: SHORT_SESSION_MS })
      const node = new PersistentNode(zk, path, 'v1', { mode: 'ephemeral' })
      const sessions: Client[] = []
      node.on('session', (c) => sessions.push(c))
      await node.start()
      expect(await read(admin, path)).toBe('v1')
      expect((await admin.exists(path))!.ephemeralOwner).toBe(zk.sessionId)
      // Deleted by someone: back at once.
      await admin.delete(path)
      await waitFor(async () => (await read(admin, path)) === 'v1', { what: 'the node to come back' })
      // Cut off (not long enough to expire): data set meanwhile is written after the reconnect.
      proxy.cut()
      await node.setData('v2')
      await waitFor(async () => (await read(admin, path)) === 'v2', { what: 'v2 after the reconnect' })
      // Session expired: a new session creates the node again, with the latest data.
      proxy.stall()
      await node.setData('v3')
      await waitFor(() => zk.state === 'disconnected', { what: 'the cut' })
      await waitFor(async () => (await admin.exists(path)) === null, {
        timeoutMs: SHORT_SESSION_MS + 10_000,
        what: 'the old session to expire',
      })
      proxy.resume()
      await waitFor(async () => (await read(admin, path)) === 'v3', {
        timeoutMs: 20_000,
        what: 'the node to be re-created by a new session',
      })
      expect(zk.state).toBe('expired')
      expect(sessions).toHaveLength(1)
      expect(node.client).toBe(sessions[0])
      expect((await admin.exists(path))!.ephemeralOwner).toBe(sessions[0]!.sessionId)
      await node.close()
      expect(await admin.exists(path)).toBe(null)
      expect(sessions[0]!.state).toBe('closed')
    })

    it('sequential: a deleted node is replaced by a new one; a start that cannot succeed rejects', async () => {
      const dir = env.root('pnode-seq')
      const admin = await env.connect()
      const node = new PersistentNode(await env.connect(), `${dir}/worker-`, 'w', {
        mode: 'ephemeralSequential',
      })
      const created: string[] = []
      node.on('created', (p) => created.push(p))
      await node.start()
      const first = node.actualPath!
      expect(first).toMatch(/\/_c_[0-9a-f-]{36}-worker-\d{10}$/)
      await admin.delete(first)
      await waitFor(() => node.actualPath !== undefined && node.actualPath !== first, { what: 'a new node' })
      expect(await read(admin, node.actualPath!)).toBe('w')
      expect(created).toEqual([first, node.actualPath])
      await node.close()
      // The directory is a container: the server may already have reaped it.
      expect(await children(admin, dir)).toEqual([])

      // Under an ephemeral node no child can ever be created: start() says so.
      await admin.create(`${dir}-eph`, '', { mode: 'ephemeral' })
      const doomed = new PersistentNode(await env.connect(), `${dir}-eph/x`, 'x', { mode: 'persistent' })
      const err = await doomed.start().then(
        () => 'started',
        (e: unknown) => e,
      )
      expect(ZkError.is(err, ErrorCode.NO_CHILDREN_FOR_EPHEMERALS)).toBe(true)
      await doomed.close()
    })

    it('PersistentTtlNode keeps a container with a touched TTL child, removed by close()', async () => {
      const path = `${env.root('ttl')}/lease`
      const admin = await env.connect()
      const node = new PersistentTtlNode(await env.connect(), path, 'held', { ttlMs: 2_000 })
      await node.start()
      expect(await read(admin, path)).toBe('held')
      const touch = (await admin.exists(`${path}/touch`))!
      expect(touch).not.toBe(null)
      // Touched again within ttlMs / 2.
      await waitFor(async () => (await admin.exists(`${path}/touch`))!.mzxid > touch.mzxid, {
        timeoutMs: 5_000,
        what: 'a touch',
      })
      await node.setData('still held')
      expect(await read(admin, path)).toBe('still held')
      await node.close()
      expect(await admin.exists(path)).toBe(null)
    })
  })

  describe('ServiceDiscovery', () => {
    it('registers instances as Curator JSON, lists them, and provides them round-robin or at random', async () => {
      const base = env.root('services')
      const zk1 = await env.connect()
      const zk2 = await env.connect()
      const d1 = new ServiceDiscovery<{ zone: string }>(zk1, base)
      const d2 = new ServiceDiscovery<{ zone: string }>(zk2, base)
      await d1.register({ name: 'api', id: 'b', address: '10.0.0.2', port: 8080, payload: { zone: 'eu' } })
      await d2.register({ name: 'api', id: 'a', address: '10.0.0.1', port: 8080, payload: { zone: 'us' } })
      await d2.register({ name: 'api', id: 'c', address: '10.0.0.3', port: 8081, sslPort: 8443 })
      await d2.register({ name: 'db', id: 'x', address: '10.0.1.1', port: 5432 })
      const instances = await d1.instances('api')
      expect(idsOf(instances)).toBe('a,b,c')
      expect(instances[1]).toMatchObject({
        name: 'api',
        id: 'b',
        address: '10.0.0.2',
        port: 8080,
        sslPort: null,
        payload: { zone: 'eu' },
        serviceType: 'DYNAMIC',
      })
      expect(instances[2]!.sslPort).toBe(8443)
      expect((await d1.names()).sort()).toEqual(['api', 'db'])
      expect((await d1.instance('db', 'x'))?.port).toBe(5432)
      expect(await d1.instance('db', 'nope')).toBe(null)
      // The node holds Curator's JSON: its ServiceDiscovery can read it.
      const raw = JSON.parse(dec((await zk1.getData(`${base}/api/b`)).data)) as Record<string, unknown>
      expect(Object.keys(raw).sort()).toEqual(
        [
          'address',
          'id',
          'name',
          'payload',
          'port',
          'registrationTimeUTC',
          'serviceType',
          'sslPort',
          'uriSpec',
        ].sort(),
      )

      const rr = d1.provider('api', { strategy: 'roundRobin' })
      const picks: string[] = []
      for (let i = 0; i < 6; i++) picks.push((await rr.next())!.id)
      expect(picks).toEqual(['a', 'b', 'c', 'a', 'b', 'c'])
      const rolls = [0.1, 0.5, 0.9, 0.0]
      const rnd = d1.provider('api', { strategy: 'random', random: () => rolls.shift() ?? 0 })
      const randomPicks: string[] = []
      for (let i = 0; i < 4; i++) randomPicks.push((await rnd.next())!.id)
      expect(randomPicks).toEqual(['a', 'b', 'c', 'a'])
      expect(await d1.provider('none').next()).toBe(null)
      expect(() => d1.provider('api', { strategy: 'sticky' as 'random' })).toThrow(/BAD_ARGUMENTS/)

      // A registration's update and removal reach the provider's live view.
      await d2.update({ name: 'api', id: 'a', address: '10.0.0.9', port: 9090 })
      await waitFor(async () => (await rr.all()).find((i) => i.id === 'a')?.port === 9090, {
        what: 'the update',
      })
      await d2.unregister('api', 'a')
      await waitFor(async () => idsOf(await rr.all()) === 'b,c', { what: 'the removal' })
      await d1.close()
      await d2.close()
      expect(await d1.instances('api')).toEqual([])
    })

    it('a cache yields every change; a registration outlives its session', async () => {
      const base = env.root('services-live')
      const watcher = new ServiceDiscovery(await env.connect(), base)
      const { zk, proxy } = await env.connectProxied({ sessionTimeoutMs: SHORT_SESSION_MS })
      const owner = new ServiceDiscovery(zk, base)
      const changes = watcher.cache('api')[Symbol.asyncIterator]()
      expect(idsOf(await value(changes))).toBe('')
      await owner.register({ name: 'api', id: 'one', address: 'h1', port: 1 })
      expect(idsOf(await value(changes))).toBe('one')
      const other = new ServiceDiscovery(await env.connect(), base)
      await other.register({ name: 'api', id: 'two', address: 'h2', port: 2 })
      expect(idsOf(await value(changes))).toBe('one,two')
      // The owner's session expires: its instance goes, and comes back with a new session.
      proxy.stall()
      expect(idsOf(await value(changes))).toBe('two')
      proxy.resume()
      expect(idsOf(await value(changes))).toBe('one,two')
      expect(zk.state).toBe('expired')
      await changes.return?.()
      await owner.close()
      await other.close()
      await watcher.close()
      // Instances written by others in Curator's format are read too; junk is left out.
      const curator = parseInstance(
        enc(
          '{"name":"api","id":"j","address":"10.0.0.5","port":8080,"sslPort":null,"payload":{"@class":"x.Y","v":1},"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":{"parts":[]},"enabled":true}',
        ),
      )
      expect(curator).toMatchObject({ id: 'j', port: 8080, payload: { '@class': 'x.Y', v: 1 } })
      expect(parseInstance(enc('not json'))).toBeUndefined()
      expect(parseInstance(enc('{"id":"j"}'))).toBeUndefined()
    })
  })
})

describe('PersistentTtlNode on Conclave (TTL and containers reaped within a second)', () => {
  afterAll(stopAllConclave)

  it('goes away ttlMs after its owner stops touching it', async () => {
    const server = await startConclave({ tickTime: 500 })
    const proxy = await TcpProxy.start(server.connectString)
    const clients: Client[] = []
    try {
      const admin = await Client.connect(server.connectString, { connectTimeoutMs: 15_000 })
      clients.push(admin)
      const owner = await Client.connect(proxy.connectString(server.connectString), {
        sessionTimeoutMs: 10_000,
        connectTimeoutMs: 15_000,
      })
      clients.push(owner)
      const node = new PersistentTtlNode(owner, '/leases/job', 'mine', {
        ttlMs: 1_500,
        // The "process" is gone: no new session either.
        newSession: () => Promise.reject(new ZkError(ErrorCode.CONNECTION_LOSS, undefined, 'gone')),
      })
      node.on('error', () => {})
      await node.start()
      expect(await read(admin, '/leases/job')).toBe('mine')
      // The owner stops touching: cut off for good.
      proxy.stall()
      await waitFor(async () => (await admin.exists('/leases/job')) === null, {
        timeoutMs: 15_000,
        what: 'the TTL child to expire and the container to be reaped',
      })
      await node.close()
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => {})))
      await proxy.stop()
      await server.stop()
      server.remove()
    }
  })
})
