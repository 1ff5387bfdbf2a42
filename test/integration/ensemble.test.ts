/**
 * A real 3-node ensemble on 127.0.0.1 with the real SDK: kill -9 of the
 * leader under a steady write load loses no acknowledged write, fails writes
 * only with CONNECTION_LOSS and only until a new leader serves writes (each
 * such write happened at most once), and a new leader serves writes; a follower killed and restarted catches up (by DIFF
 * when a little behind, by SNAP when far behind); a partitioned minority
 * commits nothing and stops serving; a session moves between servers
 * keeping its ephemerals; an expired session's ephemerals vanish on every
 * server; sync + read sees every write acknowledged before it; a create
 * refused with NODE_EXISTS on a follower is followed by a read that finds
 * the node there.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Client, ZkError } from '../../client/index.js'
import { OpCode, Xid } from '../../shared/opcodes.js'
import { createChildren } from '../helpers/bulk-create.js'
import { stopAllConclave } from '../helpers/conclave.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { createRaces } from '../helpers/races.js'
import { RawClient } from '../helpers/raw-client.js'
import { tempDir, waitFor } from '../helpers/wait.js'

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }]

let ensemble: Ensemble | undefined
const clients: Client[] = []

async function connect(connectString: string, sessionTimeoutMs = 6000): Promise<Client> {
  const c = await Client.connect(connectString, {
    sessionTimeoutMs,
    connectTimeoutMs: 15_000,
    reconnectDelayMs: 0,
  })
  clients.push(c)
  return c
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {})
  await ensemble?.stop()
  ensemble = undefined
  for (const d of configDirs.splice(0)) d.remove()
})

const configDirs: { remove(): void }[] = []

/** Starts an ensemble whose members also read `config` from a file (removed after the test). */
function startEnsembleWith(
  config: object,
  opts: Parameters<typeof startEnsemble>[0] = {},
): Promise<Ensemble> {
  const dir = tempDir('conclave-config-')
  configDirs.push(dir)
  const file = join(dir.path, 'conclave.json')
  writeFileSync(file, JSON.stringify(config))
  return startEnsemble({ ...opts, extraArgs: ['--config', file, ...(opts.extraArgs ?? [])] })
}

/** A log backlog of 256 KiB counts as behind: a few 100 KiB writes get a leader there. */
const SMALL_THROTTLE = JSON.stringify({ pendingBytesHighWater: 2 ** 16, writeThrottleBytes: 2 ** 18 })

afterAll(stopAllConclave)

/** The children of `path` as every live member sees them after a sync. */
async function viewsOf(e: Ensemble, path: string, ids: number[]): Promise<string[][]> {
  const out: string[][] = []
  for (const id of ids) {
    const c = await connect(e.url(id))
    await c.sync(path)
    out.push((await c.getChildren(path)).sort())
    await c.close()
  }
  return out
}

describe('3-node ensemble', () => {
  it('loses no acknowledged write when the leader is killed under load, and elects a new leader', async () => {
    ensemble = await startEnsemble()
    const e = ensemble
    const leader = await e.leader()
    const followers = e.members.map((m) => m.id).filter((id) => id !== leader)
    const writer = await connect(followers.map((id) => e.url(id)).join(','), 10_000)
    await writer.create('/load', '')
    // Write i creates a node holding String(i). A write that failed may still have happened only
    // if it failed with CONNECTION_LOSS (its outcome unknown); then it happened at most once.
    const acked: string[] = []
    const ackedData = new Set<string>()
    const unknownOutcome = new Set<string>()
    // Which failures the fault allows: CONNECTION_LOSS (the writer's server loses its leader and
    // closes its connections, or refuses writes while it looks for one), and only from the kill
    // until a write issued after the kill has succeeded (a new leader serves). Any other error, or
    // any failure before the kill or once writes go through again, is a bug.
    const illegitimate: string[] = []
    let killing = false
    let killed = false
    let resumed = false
    let stop = false
    let failures = 0
    const load = (async () => {
      for (let i = 0; i < 20_000 && !stop; i++) {
        const issuedAfterKill = killed
        const issuedAfterResume = resumed
        try {
          acked.push(await writer.create('/load/w-', String(i), { mode: 'persistentSequential' }))
          ackedData.add(String(i))
          if (issuedAfterKill) resumed = true
        } catch (err) {
          failures++
          const code = ZkError.is(err) ? err.code : String(err)
          if (code !== 'CONNECTION_LOSS') illegitimate.push(`write ${i}: ${code}`)
          else if (!killing) illegitimate.push(`write ${i}: CONNECTION_LOSS before the leader was killed`)
          else if (issuedAfterResume) illegitimate.push(`write ${i}: CONNECTION_LOSS after writes resumed`)
          else unknownOutcome.add(String(i))
          await new Promise((r) => setTimeout(r, 20))
        }
      }
    })()
    await waitFor(() => acked.length >= 100, { timeoutMs: 20_000, what: '100 acknowledged writes' })
    const killedAt = Date.now()
    killing = true
    await e.kill9(leader)
    killed = true
    const before = acked.length
    await waitFor(() => acked.length > before + 20, { timeoutMs: 30_000, what: 'writes after the failover' })
    const failoverMs = Date.now() - killedAt
    stop = true
    await load
    expect(resumed).toBe(true)
    expect(illegitimate).toEqual([])
    expect(failures).toBe(unknownOutcome.size)
    const newLeader = await e.leader()
    expect(newLeader).not.toBe(leader)
    const views = await viewsOf(e, '/load', followers)
    for (const v of views) {
      const have = new Set(v.map((n) => `/load/${n}`))
      expect(acked.filter((p) => !have.has(p))).toEqual([])
    }
    expect(views[0]).toEqual(views[1])
    // Every node is an acknowledged write or one whose outcome was unknown, each at most once:
    // between acked.length and acked.length + failures nodes, and nothing else.
    const reader = await connect(e.url(followers[0]!))
    await reader.sync('/load')
    const data = await Promise.all(
      views[0]!.map(async (n) => new TextDecoder().decode((await reader.getData(`/load/${n}`)).data)),
    )
    expect(new Set(data).size).toBe(data.length)
    expect(data.filter((d) => !ackedData.has(d) && !unknownOutcome.has(d))).toEqual([])
    expect(data.length).toBeGreaterThanOrEqual(acked.length)
    expect(data.length).toBeLessThanOrEqual(acked.length + unknownOutcome.size)
    console.log(
      `failover: ${failoverMs} ms from kill -9 to 20 more writes; ${failures} writes failed meanwhile ` +
        `(all CONNECTION_LOSS), ${data.length - acked.length} of them happened`,
    )
  })

  it('brings a restarted follower up to date by DIFF, from memory and from the durable log', async () => {
    // Debug logs: the leader's ZAB events say how it synced the follower.
    ensemble = await startEnsemble({ extraArgs: ['--log-level', 'debug'] })
    const e = ensemble
    const leader = await e.leader()
    const follower = e.members.map((m) => m.id).find((id) => id !== leader)!
    const c = await connect(e.url(leader))
    await c.create('/catch', '')
    await e.kill9(follower)
    for (let i = 0; i < 50; i++) await c.create(`/catch/a${i}`, '')
    await e.start(follower)
    const f = await connect(e.url(follower))
    await f.sync('/catch')
    expect((await f.getChildren('/catch')).length).toBe(50)
    // Far behind (more than the leader's 500 in-memory committed entries): DIFF from its durable log.
    await e.kill9(follower)
    const pending: Promise<unknown>[] = []
    for (let i = 0; i < 1200; i++) pending.push(c.create(`/catch/b${i}`, ''))
    await Promise.all(pending)
    await e.start(follower)
    const g = await connect(e.url(follower))
    await g.sync('/catch')
    expect((await g.getChildren('/catch')).length).toBe(1250)
    const syncs = e.members
      .find((m) => m.id === leader)!
      .proc!.output()
      .split('\n')
      .filter((l) => l.includes(`leader: sync ${follower} by`))
    expect(syncs.some((l) => l.includes('from durable history'))).toBe(true)
    expect(syncs.some((l) => l.includes('by SNAP'))).toBe(false)
    const s = await e.status(follower)
    const l = await e.status(leader)
    expect(s.Zxid).toBe(l.Zxid)
    expect(s.Digest).toBe(l.Digest)
  })

  it('streams a SNAP while writes go on (a fuzzy snapshot, larger than the storage pending limit); the follower converges, and again after a restart', async () => {
    // Frequent snapshots: the leader's log is one stretch only after its newest snapshot's
    // start, which passes the follower while it is down, so it needs a SNAP (not a DIFF).
    // Storage limits far below the snapshot's ~4 MB: the follower installs it with flow control.
    ensemble = await startEnsemble({
      extraArgs: ['--log-level', 'info', '--snap-count', '200'],
      env: {
        CONCLAVE_STORAGE_LIMITS: JSON.stringify({ pendingBytesMax: 2 ** 21, pendingBytesHighWater: 2 ** 19 }),
      },
    })
    const e = ensemble
    const leader = await e.leader()
    const follower = e.members.map((m) => m.id).find((id) => id !== leader)!
    const c = await connect(e.url(leader))
    await c.create('/fz', '')
    // 20,000 znodes of 100 bytes: a snapshot of a few MB, streamed over many slices.
    const N = 20_000
    const data = 'x'.repeat(100)
    await createChildren(c, '/fz', N, data)
    await e.kill9(follower)
    // A session the follower learns of only from the SNAP: it must be able to move there.
    const moving = await connect(e.url(leader), 20_000)
    await moving.create('/fz-eph', 'mine', { mode: 'ephemeral' })
    // More than the leader's 500 in-memory committed entries: the follower will need a SNAP.
    const pending: Promise<unknown>[] = []
    for (let i = 0; i < 700; i++) pending.push(c.setData(`/fz/n${i}`, `before ${i}`))
    await Promise.all(pending)
    // Writes all over the tree while the snapshot is written out: what the stream has
    // already passed and what it has not (bounded: at most 20,000 writes, 60 s).
    let stop = false
    let writes = 0
    const churn = (async () => {
      const deadline = Date.now() + 60_000
      for (let i = 0; !stop && i < 20_000 && Date.now() < deadline; i++) {
        const n = (i * 7919) % N
        const batch = [
          c.setData(`/fz/n${n}`, `during ${i}`),
          c.create(`/fz/new${i}`, 'x'),
          i >= 50 ? c.delete(`/fz/new${i - 50}`) : Promise.resolve(),
        ]
        await Promise.all(batch)
        writes += 3
      }
    })()
    await waitFor(() => writes >= 300, { timeoutMs: 20_000, what: 'writes before the restart' })
    await e.start(follower)
    const sent = () =>
      e.members
        .find((m) => m.id === leader)!
        .proc!.output()
        .split('\n')
        .filter((l) => l.includes('"snapshot sent"'))
        .map((l) => JSON.parse(l) as { peer: number; zxid: string; endZxid: string; chunks: number })
    await waitFor(() => sent().some((x) => x.peer === follower), { timeoutMs: 30_000, what: 'the SNAP' })
    await waitFor(async () => (await e.status(follower).catch(() => ({ Mode: '' }))).Mode === 'follower', {
      timeoutMs: 30_000,
      what: 'the follower to serve again',
    }).catch((err) => {
      for (const m of e.members) console.log(`--- server ${m.id}\n${m.proc?.output().slice(-4000)}`)
      throw err
    })
    stop = true
    await churn
    const snap = sent().find((x) => x.peer === follower)!
    expect(snap.chunks).toBeGreaterThan(20)
    const converged = async () => {
      const f = await connect(e.url(follower))
      await f.sync('/fz')
      await waitFor(async () => (await e.status(follower)).Zxid === (await e.status(leader)).Zxid, {
        timeoutMs: 20_000,
        what: 'the follower at the leader zxid',
      })
      expect((await e.status(follower)).Digest).toBe((await e.status(leader)).Digest)
      expect((await f.getChildren('/fz')).length).toBe((await c.getChildren('/fz')).length)
      await f.close()
    }
    await converged()
    const moved = await Client.connect(e.url(follower), {
      sessionId: moving.sessionId,
      sessionPassword: moving.sessionPassword,
      connectTimeoutMs: 10_000,
    })
    clients.push(moved)
    expect(moved.sessionId).toBe(moving.sessionId)
    expect((await moved.getData('/fz-eph')).stat.ephemeralOwner).toBe(moving.sessionId)
    // Restarted from what it persisted (the fuzzy snapshot and the log after it): still the same tree.
    await e.kill9(follower)
    await e.start(follower)
    await converged()
    console.log(
      `SNAP at ${snap.zxid} ended at ${snap.endZxid} (${snap.chunks} chunks) with ${writes} writes going on`,
    )
  })

  it('a leader whose log is behind defers writes; followers forwarding them stop reading at their in-flight limit; all land in order', async () => {
    ensemble = await startEnsembleWith(
      { globalOutstandingLimit: 8 },
      { extraArgs: ['--log-level', 'info'], env: { CONCLAVE_STORAGE_LIMITS: SMALL_THROTTLE } },
    )
    const e = ensemble
    const leader = await e.leader()
    const follower = e.members.map((m) => m.id).find((id) => id !== leader)!
    // Two sessions on a follower (their writes are forwarded), one on the leader.
    const sessions = [
      await connect(e.url(follower)),
      await connect(e.url(follower)),
      await connect(e.url(leader)),
    ]
    await sessions[2]!.create('/thr', '')
    const N = 30
    const big = 'x'.repeat(100 * 1024)
    await Promise.all(
      sessions.map((zk, k) =>
        Promise.all(
          Array.from({ length: N }, (_, i) =>
            zk.create(`/thr/s${k}-`, `${i}:${big}`, { mode: 'persistentSequential' }),
          ),
        ),
      ),
    )
    const output = (id: number) => e.members.find((m) => m.id === id)!.proc!.output()
    expect(output(leader)).toContain("this server's log is behind; deferring writes")
    expect(output(follower)).toContain('too many writes in flight; not reading from clients')
    await sessions[0]!.sync('/thr')
    const children = await sessions[0]!.getChildren('/thr')
    expect(children.length).toBe(3 * N)
    for (let k = 0; k < 3; k++) {
      const mine = children.filter((c) => c.startsWith(`s${k}-`)).sort()
      const order: string[] = []
      for (const c of mine)
        order.push(new TextDecoder().decode((await sessions[0]!.getData(`/thr/${c}`)).data).split(':')[0]!)
      expect(order).toEqual(Array.from({ length: N }, (_, i) => String(i)))
    }
  })

  it('while the leader disk stalls, writes wait and paused followers keep their clients’ sessions alive', async () => {
    ensemble = await startEnsembleWith(
      { globalOutstandingLimit: 8 },
      {
        extraArgs: ['--log-level', 'info'],
        env: { CONCLAVE_STORAGE_STALL_FILE: 'stall.json', CONCLAVE_STORAGE_LIMITS: SMALL_THROTTLE },
      },
    )
    const e = ensemble
    const leaderId = await e.leader()
    const lead = e.members.find((m) => m.id === leaderId)!
    const follower = e.members.find((m) => m.id !== leaderId)!
    // An idle ZooKeeper client with a 1 s session on the follower, pinging every 300 ms.
    const idle = await RawClient.session(follower.clientPort, 1000)
    const writer = await connect(e.url(follower.id))
    await writer.create('/stall', '')
    // The leader's disk stands still for 2 s: followers ACK, so the first writes commit, but
    // the leader's log backlog passes 256 KiB and it defers the rest; the follower, with
    // more than 8 writes in flight, stops reading from its clients, the idle one included.
    writeFileSync(join(lead.proc!.dataDir, 'stall.json'), JSON.stringify({ until: Date.now() + 2000 }))
    let pinging = true
    const pinger = (async () => {
      while (pinging && !idle.closed) {
        idle.sendRequest(Xid.ping, { op: OpCode.ping })
        await new Promise((r) => setTimeout(r, 300))
      }
    })()
    const big = 'x'.repeat(100 * 1024)
    const t0 = Date.now()
    await Promise.all(Array.from({ length: 40 }, (_, i) => writer.create(`/stall/n${i}`, big)))
    const tookMs = Date.now() - t0
    pinging = false
    await pinger
    expect(tookMs).toBeGreaterThan(1500)
    expect(lead.proc!.output()).toContain("this server's log is behind; deferring writes")
    expect(follower.proc!.output()).toContain('too many writes in flight; not reading from clients')
    // Unread for ~2 s, twice its timeout, the idle session is alive: it answers a read.
    // (The writer's session has the 4 s maximum: it hears no ping reply for 2 s, under
    // the 2/3 of it after which a client gives up on a connection.)
    expect(idle.closed).toBe(false)
    idle.sendRequest(7, { op: OpCode.exists, path: '/stall', watch: false })
    expect((await idle.reply(7, 5000)).err).toBe(0)
    expect(lead.proc!.output()).not.toContain('"session expired"')
    idle.close()
  })

  it('a follower that loses its leader closes a connection still waiting for its session', async () => {
    ensemble = await startEnsemble()
    // Once the follower gives up on the frozen leader (syncLimit), the connection closes
    // (the client then tries another server) rather than wait forever.
    await askFollowerWhileLeaderFrozen(ensemble, 10_000, async (raw) => {
      await raw.waitClosed(15_000)
      expect(raw.packets.length).toBe(0)
    })
  })

  it('closes a connection whose session is not created within its session timeout', async () => {
    // A follower slow to notice its leader is gone (syncLimit of 50 ticks = 10 s): the
    // pending connect's own deadline (the negotiated 1 s session timeout) ends it first.
    ensemble = await startEnsembleWith({ syncLimit: 50 })
    const e = ensemble
    await askFollowerWhileLeaderFrozen(e, 1000, async (raw, follower) => {
      await raw.waitClosed(5000)
      expect(raw.packets.length).toBe(0)
      expect((await e.status(follower)).Mode).toBe('follower')
    })
  })

  it('a partitioned minority commits nothing and stops serving; the majority goes on', async () => {
    ensemble = await startEnsemble()
    const e = ensemble
    const leader = await e.leader()
    const others = e.members.map((m) => m.id).filter((id) => id !== leader)
    const c = await connect(e.url(others[0]!))
    await c.create('/part', 'before')
    // Isolate the leader: it must step down and stop serving.
    e.partition(leader, others)
    await waitFor(async () => (await e.status(leader).catch(() => ({ Mode: 'gone' }))).Mode !== 'leader', {
      timeoutMs: 20_000,
      what: 'the isolated leader to step down',
    })
    const newLeader = await e.leader()
    expect(others).toContain(newLeader)
    // c's own server went LOOKING with the rest of the majority: a request sent while c
    // reconnects fails with CONNECTION_LOSS (ZooKeeper's semantics), so retry until it lands.
    await waitFor(async () => (await c.setData('/part', 'during')) !== undefined, {
      timeoutMs: 10_000,
      what: 'the majority to accept a write',
    })
    await expect(Client.connect(e.url(leader), { connectTimeoutMs: 1500 })).rejects.toMatchObject({
      code: 'CONNECTION_LOSS',
    })
    expect((await e.status(leader)).Mode).toBe('looking')
    e.heal()
    await waitFor(async () => ['follower', 'leader'].includes((await e.status(leader)).Mode ?? ''), {
      timeoutMs: 20_000,
      what: 'the old leader to rejoin',
    })
    const back = await connect(e.url(leader))
    await back.sync('/part')
    expect(new TextDecoder().decode((await back.getData('/part')).data)).toBe('during')
  })

  it('moves a session to another server, keeping its ephemerals; an expired session’s ephemerals vanish everywhere', async () => {
    ensemble = await startEnsemble()
    const e = ensemble
    const leader = await e.leader()
    const [a, b] = e.members.map((m) => m.id).filter((id) => id !== leader) as [number, number]
    // Clients on both followers race creates: the loser's NODE_EXISTS waits for the winner's commit.
    const [ra, rb] = [await connect(e.url(a)), await connect(e.url(b))]
    await ra.create('/races', '')
    await rb.sync('/races')
    const races = await createRaces(ra, rb, '/races', 30)
    expect(races.unseen).toEqual([])
    expect(races.refused).toBe(30)

    const mover = await connect(`${e.url(a)},${e.url(b)}`, 8000)
    await mover.create('/moving', '', { mode: 'ephemeral' })
    const id = mover.sessionId
    const before = mover.server
    const portOf = (id: number) => e.members.find((m) => m.id === id)!.clientPort
    await e.kill9(before?.includes(`:${portOf(a)}`) ? a : b)
    await waitFor(() => mover.state === 'connected' && mover.server !== before, {
      timeoutMs: 20_000,
      what: 'the session to move',
    })
    expect(mover.sessionId).toBe(id)
    const watcher = await connect(e.url(leader))
    expect((await watcher.exists('/moving'))?.ephemeralOwner).toBe(id)

    // A session whose client vanishes (its socket just closes): its ephemerals go once it expires.
    const port = e.members.find((m) => m.id === leader)!.clientPort
    const raw = await RawClient.session(port, 2000)
    raw.sendRequest(1, {
      op: OpCode.create,
      path: '/short-lived',
      data: new Uint8Array(0),
      acl: OPEN,
      flags: 1,
      ttl: 0,
    })
    expect((await raw.reply(1)).err).toBe(0)
    raw.close()
    const vanishedAt = Date.now()
    const live = e.members.filter((m) => m.proc?.child.exitCode === null && m.proc.child.signalCode === null)
    for (const m of live) {
      const c = await connect(e.url(m.id))
      await waitFor(async () => (await c.exists('/short-lived')) === null, {
        timeoutMs: 15_000,
        what: `the ephemeral to vanish on server ${m.id}`,
      })
    }
    // Not before the session timeout (2 s, rounded to ticks), and not long after.
    expect(Date.now() - vanishedAt).toBeGreaterThanOrEqual(1500)
  })
})

/**
 * Freezes the leader (SIGSTOP), has a ZooKeeper client (TCP framing) ask a
 * follower for a session with this timeout (its createSession goes to the
 * frozen leader), runs `check`, and thaws the leader.
 */
async function askFollowerWhileLeaderFrozen(
  e: Ensemble,
  sessionTimeoutMs: number,
  check: (raw: RawClient, follower: number) => Promise<void>,
): Promise<void> {
  const leader = await e.leader()
  const follower = e.members.find((m) => m.id !== leader)!
  const frozen = e.members.find((m) => m.id === leader)!.proc!.child
  frozen.kill('SIGSTOP')
  try {
    const raw = await RawClient.askSession(follower.clientPort, sessionTimeoutMs)
    await check(raw, follower.id)
    raw.close()
  } finally {
    frozen.kill('SIGCONT')
  }
}
