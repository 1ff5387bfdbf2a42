/**
 * The reconfig request (opcode 16) against real server processes: an
 * ensemble of three voters and an observer, started with
 * --reconfig-enabled and a super digest. A voter is removed under a write
 * load and added back, the observer is promoted and demoted; an observer
 * nobody runs is added (its line comes back verbatim, as kazoo expects) and
 * removed; a second change while one is in flight, malformed lines, ids
 * Conclave cannot run, participants nobody runs (NEW_CONFIG_NO_QUORUM), a
 * stale fromConfig and a caller without rights are refused; the answer carries
 * /zookeeper/config's data and Stat; /zookeeper/config shows the static
 * config before the first change; zkCli.sh's `reconfig` and `conclave
 * reconfig` work; a server without --reconfig-enabled refuses.
 */
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client, ZkError } from '../../client/index.js'
import { runCli } from '../helpers/cli.js'
import { startConclave } from '../helpers/conclave.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { canRun, ZKCLI, zkCliMissing } from '../helpers/prerequisites.js'
import { tempDir, waitFor } from '../helpers/wait.js'

const SUPER_PASSWORD = 'reconfig-test'
const AUTH = [{ scheme: 'digest', credentials: `super:${SUPER_PASSWORD}` }]

const dec = (b: Uint8Array) => new TextDecoder().decode(b)

/** The config's lines by id, and its version, from /zookeeper/config's data. */
function parse(data: Uint8Array): { lines: Map<number, string>; version: number } {
  const lines = new Map<number, string>()
  let version = -1
  for (const line of dec(data).split('\n')) {
    const m = /^server\.(\d+)=/.exec(line)
    if (m) lines.set(Number(m[1]), line)
    const v = /^version=([0-9a-f]+)$/.exec(line)
    if (v) version = Number.parseInt(v[1]!, 16)
  }
  return { lines, version }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'OK'
  } catch (err) {
    if (err instanceof ZkError) return err.code
    throw err
  }
}

let ens: Ensemble
const clients: Client[] = []

async function connect(url: string, auth = false): Promise<Client> {
  const c = await Client.connect(url, { connectTimeoutMs: 10_000, ...(auth ? { auth: AUTH } : {}) })
  clients.push(c)
  return c
}

/**
 * /zookeeper/config on every member `version` names (a removed server is not
 * asked: its links are closed, it may not be following), once they all show it.
 */
async function configEverywhere(version: number, data?: Uint8Array): Promise<string[]> {
  const ids = data === undefined ? [1, 2, 3, 4] : [...parse(data).lines.keys()]
  return waitFor(
    async () => {
      const out: string[] = []
      for (const m of ens.members.filter((x) => ids.includes(x.id))) {
        const c = await Client.connect(ens.url(m.id), { connectTimeoutMs: 5000 })
        try {
          const { data } = await c.getData('/zookeeper/config')
          if (parse(data).version !== version) return undefined
          out.push(dec(data))
        } finally {
          await c.close()
        }
      }
      return out
    },
    {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: `every member to show config version ${version.toString(16)}`,
    },
  )
}

beforeAll(async () => {
  ens = await startEnsemble({
    size: 3,
    observers: 1,
    superPassword: SUPER_PASSWORD,
    extraArgs: ['--reconfig-enabled'],
  })
}, 60_000)

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {})
  await ens?.stop()
})

describe('reconfig on a 3-voter ensemble with an observer', () => {
  it('/zookeeper/config shows the static config (version 0) before any change, on every member', async () => {
    const all = await configEverywhere(0)
    expect(new Set(all).size).toBe(1)
    const { lines } = parse(new TextEncoder().encode(all[0]!))
    expect([...lines.keys()]).toEqual([1, 2, 3, 4])
    expect(lines.get(1)).toBe(ens.configLine(1, 'participant'))
    expect(lines.get(4)).toBe(ens.configLine(4, 'observer'))
    // Every read of the node shows the same static data: exists' Stat too (it said 0 once).
    const c = await connect(ens.url(3))
    const { data, stat } = await c.getData('/zookeeper/config')
    expect(stat.dataLength).toBe(data.length)
    expect((await c.exists('/zookeeper/config'))?.dataLength).toBe(data.length)
  })

  it('refuses a caller without rights, bad input, unknown servers and a stale fromConfig, changing nothing', async () => {
    const plain = await connect(ens.url(1))
    expect(await codeOf(plain.reconfig({ leaving: '3' }))).toBe('NO_AUTH')
    // ZooKeeper's order (kazoo's TestReconfig relies on it): the request's form is checked before the ACL.
    expect(await codeOf(plain.reconfig({ joining: 'some thing' }))).toBe('BAD_ARGUMENTS')
    expect(
      await codeOf(plain.reconfig({ joining: 'server.9=127.0.0.1:1234:1234:observer;127.0.0.1:1235' })),
    ).toBe('NO_AUTH')
    const su = await connect(ens.url(2), true)
    expect(await codeOf(su.reconfig({ joining: 'some thing' }))).toBe('BAD_ARGUMENTS')
    expect(await codeOf(su.reconfig({ leaving: '9' }))).toBe('BAD_ARGUMENTS')
    // A bad port, and an id Conclave cannot run (a session id carries it in a byte).
    expect(
      await codeOf(su.reconfig({ joining: 'server.9=127.0.0.1:1234:99999:participant;127.0.0.1:1235' })),
    ).toBe('BAD_ARGUMENTS')
    expect(
      await codeOf(su.reconfig({ joining: 'server.300=127.0.0.1:1234:1234:observer;127.0.0.1:1235' })),
    ).toBe('BAD_ARGUMENTS')
    // Three participants nobody runs: 6 voters, 3 synced, no quorum (ZooKeeper's isQuorumSynced).
    const ghosts = [9, 10, 11].map((id) => `server.${id}=127.0.0.1:1:2:participant;127.0.0.1:3`)
    expect(await codeOf(su.reconfig({ joining: ghosts.join(',') }))).toBe('NEW_CONFIG_NO_QUORUM')
    // Removing every voter leaves no participant.
    expect(await codeOf(su.reconfig({ leaving: '1,2,3' }))).toBe('BAD_ARGUMENTS')
    expect(await codeOf(su.reconfig({ leaving: '3', fromConfig: 0x100000001 }))).toBe('BAD_VERSION')
    // The SDK refuses both forms at once before sending.
    expect(await codeOf(su.reconfig({ leaving: '3', newMembers: ens.configLine(1, 'participant') }))).toBe(
      'BAD_ARGUMENTS',
    )
    expect(parse((await su.getData('/zookeeper/config')).data).version).toBe(0)
  })

  it('removes a voter under a write load and adds it back; the answer is the new config and its Stat', async () => {
    const leader = await ens.leader()
    const victim = [1, 2, 3].find((id) => id !== leader)!
    const other = [1, 2, 3].find((id) => id !== leader && id !== victim)!
    const loader = await connect(ens.url(leader))
    await loader.create('/load', '0')
    let writes = 0
    let failures = 0
    let stop = false
    const load = (async () => {
      while (!stop) {
        try {
          await loader.setData('/load', String(writes))
          writes++
        } catch {
          failures++
        }
      }
    })()
    try {
      const su = await connect(ens.url(other), true)
      const before = writes
      const removed = await su.reconfig({ leaving: String(victim), fromConfig: 0 })
      const r = parse(removed.data)
      expect([...r.lines.keys()]).toEqual([1, 2, 3, 4].filter((id) => id !== victim))
      expect(r.version).toBeGreaterThan(0)
      expect(removed.stat.mzxid).toBe(r.version)
      expect(removed.stat.dataLength).toBe(removed.data.length)
      await configEverywhere(r.version, removed.data)
      await waitFor(() => writes > before + 20, { timeoutMs: 10_000, what: 'writes after the removal' })

      const back = await su.reconfig({
        joining: ens.configLine(victim, 'participant'),
        fromConfig: r.version,
      })
      const b = parse(back.data)
      expect([...b.lines.keys()]).toEqual([1, 2, 3, 4])
      expect(b.lines.get(victim)).toBe(ens.configLine(victim, 'participant'))
      expect(b.version).toBeGreaterThan(r.version)
      expect(back.stat.version).toBe(removed.stat.version + 1)
      await configEverywhere(b.version, back.data)
      const mid = writes
      await waitFor(() => writes > mid + 20, { timeoutMs: 10_000, what: 'writes after adding it back' })
    } finally {
      stop = true
      await load
    }
    expect(failures).toBe(0)
    expect(Number(dec((await loader.getData('/load')).data))).toBe(writes - 1)
  }, 60_000)

  it('adds an observer nobody runs (its line verbatim, as ZooKeeper and kazoo) and removes it', async () => {
    const su = await connect(ens.url(1), true)
    const joining = 'server.100=0.0.0.0:1:2:observer;0.0.0.0:3'
    const added = await su.reconfig({ joining })
    expect(dec(added.data).split('\n')).toContain(joining)
    await configEverywhere(parse(added.data).version)
    // The ensemble goes on writing with it in the config (nobody dials an observer of a higher id).
    await su.create('/with-a-ghost', 'x')
    const removed = await su.reconfig({ leaving: '100' })
    expect(dec(removed.data)).not.toContain('server.100=')
    await configEverywhere(parse(removed.data).version)
  }, 60_000)

  it('a reconfig sent to the observer is forwarded to the leader and answered there once applied', async () => {
    const leader = await ens.leader()
    const voter = [1, 2, 3].find((id) => id !== leader)!
    const obs = await connect(ens.url(4), true)
    expect(await codeOf(obs.reconfig({ leaving: String(voter), fromConfig: 7 }))).toBe('BAD_VERSION')
    const out = await obs.reconfig({ leaving: String(voter) })
    expect(parse(out.data).lines.has(voter)).toBe(false)
    // Applied on the observer before it answered: its own read shows it.
    expect(dec((await obs.getData('/zookeeper/config')).data)).toBe(dec(out.data))
    const back = await obs.reconfig({ joining: ens.configLine(voter, 'participant') })
    expect(parse(back.data).lines.get(voter)).toBe(ens.configLine(voter, 'participant'))
    await configEverywhere(parse(back.data).version, back.data)
  }, 60_000)

  it('promotes the observer to a voter and demotes it again', async () => {
    const su = await connect(ens.url(1), true)
    const up = await su.reconfig({ joining: ens.configLine(4, 'participant') })
    expect(parse(up.data).lines.get(4)).toBe(ens.configLine(4, 'participant'))
    await configEverywhere(parse(up.data).version, up.data)
    await waitFor(
      async () => (await ens.status(4)).Mode === 'follower' || (await ens.status(4)).Mode === 'leader',
      {
        timeoutMs: 20_000,
        what: 'server 4 to take part as a voter',
      },
    )
    // Four voters: a write needs three of them.
    await su.create('/after-promotion', 'x')
    const down = await su.reconfig({ joining: ens.configLine(4, 'observer') })
    expect(parse(down.data).lines.get(4)).toBe(ens.configLine(4, 'observer'))
    await configEverywhere(parse(down.data).version, down.data)
    await waitFor(async () => (await ens.status(4)).Mode === 'observer', {
      timeoutMs: 20_000,
      what: 'server 4 to observe again',
    })
  }, 60_000)

  it('refuses a second change while one is in flight', async () => {
    const leader = await ens.leader()
    const su = await connect(ens.url(leader), true)
    const [a, b] = await Promise.all([
      codeOf(su.reconfig({ joining: ens.configLine(4, 'participant') })),
      codeOf(su.reconfig({ joining: ens.configLine(4, 'observer') })),
    ])
    expect([a, b]).toEqual(['OK', 'RECONFIG_IN_PROGRESS'])
    const { data } = await su.getData('/zookeeper/config')
    expect(parse(data).lines.get(4)).toBe(ens.configLine(4, 'participant'))
    await configEverywhere(parse(data).version, data)
    const down = await su.reconfig({ joining: ens.configLine(4, 'observer') })
    await configEverywhere(parse(down.data).version, down.data)
  }, 60_000)

  it('replaces a dead voter: removed, restarted with an empty data directory, added back', async () => {
    const leader = await ens.leader()
    const dead = [1, 2, 3].find((id) => id !== leader)!
    const m = ens.members.find((x) => x.id === dead)!
    const dataDir = m.proc!.dataDir
    await ens.kill9(dead)
    const su = await connect(ens.url(leader), true)
    const removed = await su.reconfig({ leaving: String(dead) })
    expect(parse(removed.data).lines.has(dead)).toBe(false)
    await su.create('/while-replaced', 'x')
    rmSync(dataDir, { recursive: true, force: true })
    await ens.start(dead)
    // Outside the config it follows (counted nowhere) and catches up; then it can be a voter again.
    const back = await waitFor(
      async () => {
        try {
          return await su.reconfig({ joining: ens.configLine(dead, 'participant') })
        } catch (err) {
          if (err instanceof ZkError && err.code === 'NEW_CONFIG_NO_QUORUM') return undefined
          throw err
        }
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `server ${dead} to be synced and added back` },
    )
    expect(parse(back.data).lines.get(dead)).toBe(ens.configLine(dead, 'participant'))
    await configEverywhere(parse(back.data).version, back.data)
    const c = await connect(ens.url(dead))
    expect(dec((await c.getData('/while-replaced')).data)).toBe('x')
  }, 90_000)

  it('conclave reconfig changes the membership and reports refusals', () => {
    const run = (...args: string[]) =>
      runCli('reconfig', '--server', `127.0.0.1:${ens.members[0]!.clientPort}`, ...args)
    const denied = run('--remove', '3')
    expect(denied.status).toBe(1)
    expect(denied.stderr).toContain('NO_AUTH')
    const ok = run(
      '--auth',
      `digest:super:${SUPER_PASSWORD}`,
      '--members',
      [1, 2, 3].map((i) => ens.configLine(i, 'participant')).join(','),
    )
    expect(ok.stderr).toBe('')
    expect(ok.status).toBe(0)
    expect(ok.stdout).toContain(ens.configLine(3, 'participant'))
    expect(ok.stdout).not.toContain('server.4=')
    const usage = run('--remove', 'x')
    expect(usage.status).toBe(2)
  }, 60_000)

  it.runIf(canRun("zkCli.sh's reconfig against Conclave (reconfig.test.ts)", zkCliMissing()))(
    "zkCli.sh's reconfig adds the observer back",
    async () => {
      const r = spawnSync(ZKCLI, ['-server', `127.0.0.1:${ens.members[0]!.clientPort}`], {
        encoding: 'utf8',
        timeout: 90_000,
        input: `addauth digest super:${SUPER_PASSWORD}\nreconfig -add ${ens.configLine(4, 'observer')}\nquit\n`,
        env: { ...process.env, JVMFLAGS: '-Xmx256m', ZOO_LOG4J_PROP: 'ERROR,CONSOLE' },
      })
      const out = `${r.stdout}${r.stderr}`
      expect(out).toContain('Committed new configuration')
      const su = await connect(ens.url(1), true)
      const { data } = await su.getData('/zookeeper/config')
      expect(parse(data).lines.get(4)).toBe(ens.configLine(4, 'observer'))
    },
    120_000,
  )
})

describe('reconfig disabled', () => {
  it('a server started without --reconfig-enabled answers RECONFIG_DISABLED', async () => {
    const d = tempDir('conclave-reconfig-off-')
    const server = await startConclave({ dataDir: join(d.path, 'data') })
    try {
      const c = await Client.connect(server.connectString, { connectTimeoutMs: 10_000 })
      try {
        expect(await codeOf(c.reconfig({ leaving: '3' }))).toBe('RECONFIG_DISABLED')
      } finally {
        await c.close()
      }
    } finally {
      await server.stop()
      d.remove()
    }
  })
})
