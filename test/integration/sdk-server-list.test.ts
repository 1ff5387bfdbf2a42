/**
 * The SDK follows the ensemble's membership (issue 19), against a real
 * 3-server ensemble (--reconfig-enabled, a super digest): a client given
 * only one server's address learns the others from /zookeeper/config and,
 * when the server it is on is killed, carries on with the same session on
 * another; a reconfig that removes the server a client is on moves the
 * client, and adding it back puts it in the list again; a client that may
 * not read /zookeeper/config keeps its given list, says why, and works.
 * Each fails with followMembership off, the default (the client knows one
 * server only, or gives no warning).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client, type ConnectOptions, Perms, READ_ACL_UNSAFE, ZkError } from '../../client/index.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { waitFor } from '../helpers/wait.js'

const SUPER_PASSWORD = 'server-list-test'
const AUTH = [{ scheme: 'digest', credentials: `super:${SUPER_PASSWORD}` }]

let ens: Ensemble
const clients: Client[] = []

beforeAll(async () => {
  ens = await startEnsemble({ size: 3, superPassword: SUPER_PASSWORD, extraArgs: ['--reconfig-enabled'] })
}, 60_000)

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {})
  await ens?.stop()
})

async function connect(connectString: string, opts: ConnectOptions = {}): Promise<Client> {
  const c = await Client.connect(connectString, {
    connectTimeoutMs: 10_000,
    sessionTimeoutMs: 10_000,
    reconnectDelayMs: 100,
    followMembership: true,
    ...opts,
  })
  clients.push(c)
  return c
}

const portOf = (url: string | undefined): number => Number(new URL(url ?? 'ws://x:0').port)
const clientPort = (id: number): number => ens.members.find((m) => m.id === id)!.clientPort
/** The member ids a client's server list names (by client port). */
const idsOf = (c: Client): number[] =>
  c.servers.map((u) => ens.members.find((m) => m.clientPort === portOf(u))?.id ?? -1).sort()

async function learned(c: Client, ids: number[], what: string): Promise<void> {
  await waitFor(() => JSON.stringify(idsOf(c)) === JSON.stringify(ids), {
    timeoutMs: 15_000,
    intervalMs: 50,
    what: `${what}: the client's list to be servers ${ids.join(',')} (it is ${idsOf(c).join(',')})`,
  })
}

describe('the SDK follows the membership of a 3-server ensemble', () => {
  it('a client that may not read /zookeeper/config keeps its given list, warns, and works', async () => {
    const su = await connect(ens.url(1), { auth: AUTH })
    await su.setACL('/zookeeper/config', [{ perms: Perms.READ, id: { scheme: 'digest', id: 'nobody:x' } }])
    try {
      const c = await connect(`${ens.url(1)},${ens.url(2)}`)
      const warnings: string[] = []
      // Attached before the config read's reply can arrive (connect resolves in the handshake's turn).
      c.on('warning', (m) => warnings.push(m))
      await waitFor(() => warnings.find((w) => w.includes('NO_AUTH')), {
        timeoutMs: 10_000,
        what: 'the warning that /zookeeper/config cannot be read',
      })
      expect(await c.create('/acl-client', 'x')).toBe('/acl-client')
      expect(c.state).toBe('connected')
      expect(idsOf(c)).toEqual([1, 2])
      // The read was refused, not absent: the node is there and this client lacks READ.
      await expect(c.getData('/zookeeper/config')).rejects.toMatchObject({ code: 'NO_AUTH' })
    } finally {
      await su.setACL('/zookeeper/config', READ_ACL_UNSAFE)
    }
  })

  it('a reconfig that removes the server a client is on moves the client; adding it back lists it again', async () => {
    const leader = await ens.leader()
    const victim = [1, 2, 3].find((id) => id !== leader)!
    const c = await connect(ens.url(victim))
    await learned(c, [1, 2, 3], 'before the reconfig')
    expect(portOf(c.server)).toBe(clientPort(victim))
    const session = c.sessionId
    const su = await connect(ens.url(leader), { auth: AUTH })
    await su.reconfig({ leaving: String(victim) })
    await learned(
      c,
      [1, 2, 3].filter((id) => id !== victim),
      'after the removal',
    )
    await waitFor(() => c.state === 'connected' && portOf(c.server) !== clientPort(victim), {
      timeoutMs: 15_000,
      what: 'the client to move off the removed server',
    })
    expect(c.sessionId).toBe(session)
    expect(await c.create('/after-removal', 'x')).toBe('/after-removal')

    await waitFor(
      async () => {
        try {
          return await su.reconfig({ joining: ens.configLine(victim) })
        } catch (err) {
          if (ZkError.is(err) && err.code === 'NEW_CONFIG_NO_QUORUM') return undefined
          throw err
        }
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `server ${victim} to be added back` },
    )
    await learned(c, [1, 2, 3], 'after adding it back')
    expect(c.sessionId).toBe(session)
  }, 90_000)

  it("a client given only server 1's address learns 2 and 3, and outlives server 1 with its session", async () => {
    const c = await connect(ens.url(1))
    await learned(c, [1, 2, 3], 'after connecting')
    expect(portOf(c.server)).toBe(clientPort(1))
    const session = c.sessionId
    await c.create('/before-kill', 'x')
    await ens.kill9(1)
    expect(await c.create('/after-kill', 'y')).toBe('/after-kill')
    expect(c.sessionId).toBe(session)
    expect([clientPort(2), clientPort(3)]).toContain(portOf(c.server))
    expect(new TextDecoder().decode((await c.getData('/before-kill')).data)).toBe('x')
  }, 60_000)
})
