/**
 * Servers that join and servers that move (issues 19 and 22), with real
 * processes: one 3-voter ensemble (--reconfig-enabled, a super digest).
 *
 * (a) A brand-new server 4 (empty data dir, fresh ports, --servers: the
 * members and itself) is started under a small write load, follows as a
 * non-voter and takes its leader's config (all four show the same
 * /zookeeper/config, without server 4), is added by `conclave reconfig
 * --add`, and becomes a voter (all four show that one); an
 * old server is removed and stopped; the leader is killed: the two left (one
 * of them server 4) elect a leader and writes go on, and they hold the same
 * data. Then every server restarts with its ORIGINAL flags (the old ones'
 * --servers do not name server 4) and comes back with the membership on its
 * disk.
 *
 * (b) A server moves: stopped, started on new ports (its --servers names it
 * there), its new address reconfigured; the others reach it there (it has
 * the lowest id, so they dial it), and it is then needed for a quorum.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import { runCliAsync } from '../helpers/cli.js'
import { type Ensemble, type Member, startEnsemble } from '../helpers/ensemble.js'
import { waitFor } from '../helpers/wait.js'

const SUPER_PASSWORD = 'join-test'
/** The load's bound: it stops after this many writes whatever happens. */
const LOAD_WRITES_MAX = 20_000
/** Pacing between the load's writes, so that the load stays small on a shared machine. */
const LOAD_PACE_MS = 5

const dec = (b: Uint8Array) => new TextDecoder().decode(b)

let ens: Ensemble
const clients: Client[] = []

async function connect(connectString: string, auth = false): Promise<Client> {
  const c = await Client.connect(connectString, {
    connectTimeoutMs: 10_000,
    ...(auth ? { auth: [{ scheme: 'digest', credentials: `super:${SUPER_PASSWORD}` }] } : {}),
  })
  clients.push(c)
  return c
}

const url = (m: Member) => `ws://127.0.0.1:${m.clientPort}`
const member = (id: number) => ens.members.find((m) => m.id === id)!

function versionOf(data: string): number {
  const v = /(?:^|\n)version=([0-9a-f]+)(?:\n|$)/.exec(data)
  if (v === null) throw new Error(`no version in ${data}`)
  return Number.parseInt(v[1]!, 16)
}

/** `conclave reconfig` as the super user against one member, without blocking the event loop (the load goes on). */
async function reconfigCli(via: Member, ...args: string[]): Promise<string> {
  const r = await runCliAsync(
    'reconfig',
    '--server',
    `127.0.0.1:${via.clientPort}`,
    '--auth',
    `digest:super:${SUPER_PASSWORD}`,
    ...args,
  )
  expect(r.stderr).toBe('')
  expect(r.status).toBe(0)
  return r.stdout
}

/** Waits until every one of `ids` serves and shows config `version` in /zookeeper/config. */
async function configOn(ids: number[], version: number): Promise<string[]> {
  return waitFor(
    async () => {
      const out: string[] = []
      for (const id of ids) {
        const c = await Client.connect(url(member(id)), { connectTimeoutMs: 5000 })
        try {
          const data = dec((await c.getData('/zookeeper/config')).data)
          if (versionOf(data) !== version) return undefined
          out.push(data)
        } finally {
          await c.close()
        }
      }
      return out
    },
    {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: `servers ${ids} to show config version ${version.toString(16)}`,
    },
  )
}

/** Waits until `ids` all serve (leader or follower) at one zxid with one tree digest; returns them. */
async function sameData(ids: number[]): Promise<{ zxid: string; digest: string }> {
  return waitFor(
    async () => {
      const st = await Promise.all(ids.map((id) => ens.status(id)))
      if (!st.every((s) => s.Mode === 'leader' || s.Mode === 'follower')) return undefined
      const zxids = new Set(st.map((s) => s.Zxid))
      const digests = new Set(st.map((s) => s.Digest))
      if (zxids.size !== 1 || digests.size !== 1) return undefined
      return { zxid: st[0]!.Zxid!, digest: st[0]!.Digest! }
    },
    { timeoutMs: 30_000, intervalMs: 100, what: `servers ${ids} at one zxid and digest` },
  )
}

/** A small write load (paced, bounded): setData on /load from one session, counting writes and failures. */
async function startLoad(connectString: string) {
  const c = await connect(connectString)
  await c.create('/load', '0').catch(() => {})
  const counts = { writes: 0, failures: 0 }
  let stop = false
  const done = (async () => {
    while (!stop && counts.writes < LOAD_WRITES_MAX) {
      try {
        await c.setData('/load', String(counts.writes))
        counts.writes++
      } catch {
        counts.failures++
      }
      await new Promise((r) => setTimeout(r, LOAD_PACE_MS))
    }
  })()
  const progress = async (n: number, what: string) => {
    const from = counts.writes
    await waitFor(() => counts.writes >= from + n, { timeoutMs: 20_000, what: `${n} writes ${what}` })
  }
  return {
    counts,
    progress,
    async stop() {
      stop = true
      await done
    },
  }
}

beforeAll(async () => {
  ens = await startEnsemble({ size: 3, superPassword: SUPER_PASSWORD, extraArgs: ['--reconfig-enabled'] })
}, 60_000)

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {})
  await ens?.stop()
})

describe('servers join and move', () => {
  let version = 0
  /** The members of the configuration, as the first test leaves it. */
  let current: number[] = []

  it('a new server joins under a write load and votes; an old one leaves; the leader dies; all restart with their original flags', async () => {
    const leader = await ens.leader()
    const [kept, removed] = [1, 2, 3].filter((id) => id !== leader) as [number, number]
    // The load's session is on servers that stay until the leader is killed: no failure is excused before.
    const load = await startLoad(`${url(member(leader))},${url(member(kept))}`)
    try {
      await load.progress(20, 'before the join')
      const m4 = await ens.add()
      expect(m4.id).toBe(4)
      await ens.start(4)
      // It follows before any config names it: it catches up (the load's writes reach it).
      await waitFor(async () => Number.parseInt((await ens.status(4)).Zxid ?? '0x0', 16) > 0, {
        timeoutMs: 30_000,
        what: 'server 4 to catch up as a non-voting follower',
      })
      // Its own --servers names it, but it took its leader's config with the sync: every server,
      // server 4 too (a non-voting follower serves, as ZooKeeper's does), shows the same one.
      const before = await configOn([1, 2, 3, 4], 0)
      expect(new Set(before).size).toBe(1)
      expect(before[0]).not.toContain('server.4=')
      expect(m4.proc!.output()).toContain("took the leader's static config")
      const added = await reconfigCli(member(removed), '--add', ens.configLine(m4.id))
      expect(added).toContain(ens.configLine(m4.id))
      version = versionOf(added)
      const after = await configOn([1, 2, 3, 4], version)
      expect(new Set(after).size).toBe(1)
      await load.progress(20, 'with server 4 a voter')

      const left = await reconfigCli(member(kept), '--remove', String(removed))
      expect(left).not.toContain(`server.${removed}=`)
      version = versionOf(left)
      await configOn([leader, kept, 4], version)
      await member(removed).proc!.stop()
      await load.progress(20, `without server ${removed}`)
      expect(load.counts.failures).toBe(0)

      // Two of {leader, kept, 4} are a quorum only if server 4 votes.
      await ens.kill9(leader)
      const next = await ens.leader(30_000)
      expect([kept, 4]).toContain(next)
      await load.progress(20, `after the leader ${leader} was killed`)
    } finally {
      await load.stop()
    }
    const live = await sameData([kept, 4])
    const c = await connect(url(member(4)))
    expect(dec((await c.getData('/load')).data)).toBe(String(load.counts.writes - 1))

    // Every server restarts with the flags it was first started with.
    for (const id of [kept, 4]) await member(id).proc!.stop()
    await Promise.all([leader, kept, 4].map((id) => ens.start(id)))
    await ens.leader(30_000)
    const configs = await configOn([leader, kept, 4], version)
    expect(new Set(configs).size).toBe(1)
    expect(configs[0]).toContain(ens.configLine(4))
    expect(configs[0]).not.toContain(`server.${removed}=`)
    const after = await connect(`${url(member(leader))},${url(member(kept))},${url(member(4))}`)
    await after.create('/after-restart', 'x')
    const back = await sameData([leader, kept, 4])
    expect(back.zxid).not.toBe(live.zxid)
    // The old servers' --servers does not name server 4: they followed the configuration on disk, and said so.
    expect(member(kept).proc!.output()).toContain('the membership on disk differs from --servers')
    current = [leader, kept, 4]
  }, 180_000)

  it('a server moves to new ports: its new address is reconfigured and the others reach it there', async () => {
    const running = [...current].sort((a, b) => a - b)
    expect(running.length).toBe(3)
    // The lowest id: nobody dials it but the others (the higher id dials), so they must use the new address.
    const mover = running[0]!
    const others = running.slice(1)
    await member(mover).proc!.stop()
    await ens.move(mover)
    await ens.start(mover)
    await waitFor(() => member(mover).proc!.output().includes('listens at another peer address'), {
      timeoutMs: 10_000,
      what: 'the moved server to say its configuration names another address',
    })
    const su = await connect(others.map((id) => url(member(id))).join(','), true)
    const moved = await su.reconfig({ joining: ens.configLine(mover) })
    expect(dec(moved.data)).toContain(ens.configLine(mover))
    version = versionOf(dec(moved.data))
    await configOn(running, version)
    await sameData(running)
    // Now it is needed: with one of the others gone, it and the last one are the quorum.
    await member(others[0]!).proc!.stop()
    await waitFor(
      async () => {
        const c = await Client.connect(url(member(mover)), { connectTimeoutMs: 5000 })
        try {
          await c.create(`/moved-${Date.now()}`, 'x')
          return true
        } finally {
          await c.close()
        }
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'a write with the moved server in the quorum' },
    )
    await sameData([mover, others[1]!])
  }, 120_000)
})
