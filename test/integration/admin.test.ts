/**
 * The admin surface on real server processes (issue 17):
 *
 * - Every four-letter word on a standalone server whose whitelist is `*`,
 *   in ZooKeeper's formats, about a real client's session, ephemeral and
 *   watches (cons, dump, wchs, wchc, wchp, conf without its secrets, crst,
 *   dirs…); a server with the default whitelist refuses the new words as
 *   ZooKeeper refuses them and answers the six it always did.
 * - Every admin command as JSON on the admin port, by ZooKeeper's
 *   AdminServer name and by its word; connection_stat_reset only by POST;
 *   an unknown command is 404.
 * - /livez and /readyz on a 3-server ensemble (read-only mode): all ready;
 *   a follower whose leader and other follower are gone is alive and
 *   serving reads (/health) but not ready, and ready again once a quorum
 *   is back.
 * - /metrics on the ensemble, scraped before and after traffic and parsed
 *   by a strict text-format parser: HELP and TYPE for every family,
 *   histograms consistent, counters monotonic; request, commit, fsync and
 *   election histograms observed, and a learner's rejoin counted (DIFF,
 *   TRUNC or SNAP).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import { ADMIN_COMMANDS } from '../../server/admin/admin-commands.js'
import { DEFAULT_WHITELIST, FOUR_LETTER_WORDS } from '../../server/admin/four-letter-words.js'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import {
  checkHistograms,
  checkMonotonic,
  type Family,
  parseExposition,
  sampleValue,
} from '../helpers/prometheus-text.js'
import { freePort, tempDir, waitFor } from '../helpers/wait.js'

const SECRET = 'admin-test-secret-not-to-be-shown'
const SUPER = 'super:QmFkQmFkQmFkQmFkQmFkQmFkQmE='
const clients: Client[] = []
const servers: ConclaveProcess[] = []
const dirs: { remove(): void }[] = []
let ensemble: Ensemble | undefined

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {})
  for (const s of servers.splice(0)) {
    await s.stop()
    s.remove()
  }
  await ensemble?.stop()
  ensemble = undefined
  for (const d of dirs.splice(0)) d.remove()
})

afterAll(stopAllConclave)

/** A standalone server with an admin port and, when given, a config file of key=value lines. */
async function standalone(configLines: string[] = []): Promise<{ server: ConclaveProcess; admin: number }> {
  const dir = tempDir('conclave-admin-cfg-')
  dirs.push(dir)
  const file = join(dir.path, 'zoo.cfg')
  writeFileSync(file, `${configLines.join('\n')}\n`)
  const admin = await freePort()
  const server = await startConclave({
    tickTime: 200,
    extraArgs: ['--config', file, '--admin-port', String(admin)],
  })
  servers.push(server)
  return { server, admin }
}

async function connect(connectString: string): Promise<Client> {
  const c = await Client.connect(connectString, { sessionTimeoutMs: 4000, connectTimeoutMs: 10_000 })
  clients.push(c)
  return c
}

function word(port: number, w: string): Promise<string> {
  return fourLetterWord('127.0.0.1', port, w, 5000)
}

async function get(admin: number, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${admin}${path}`, { method })
  return { status: res.status, body: await res.text() }
}

async function command(admin: number, name: string, method = 'GET'): Promise<Record<string, unknown>> {
  const res = await get(admin, `/commands/${name}`, method)
  expect(res.status, `${name}: ${res.body}`).toBe(200)
  return JSON.parse(res.body) as Record<string, unknown>
}

/** A client with a session, an ephemeral node and watches on two paths; returns it and its session id. */
async function busyClient(connectString: string): Promise<{ client: Client; sid: string }> {
  const client = await connect(connectString)
  await client.create('/a', 'x')
  await client.create('/b', 'y')
  await client.create('/e', 'ephemeral', { mode: 'ephemeral' })
  await client.getData('/a', { watch: () => {} })
  await client.exists('/b', { watch: () => {} })
  return { client, sid: client.sessionId }
}

describe('four-letter words on a real server', () => {
  it("answers every word in ZooKeeper's format when the whitelist is *", async () => {
    const { server } = await standalone([
      '4lw.commands.whitelist=*',
      `ensembleSecret=${SECRET}`,
      `superDigest=${SUPER}`,
    ])
    const port = server.port
    const { sid } = await busyClient(server.connectString)

    expect(await word(port, 'ruok')).toBe('imok')
    expect(await word(port, 'srvr')).toContain('Mode: standalone\n')
    const stat = await word(port, 'stat')
    expect(stat).toMatch(/\nClients:\n \/127\.0\.0\.1:\d+\[1\]\(queued=\d+,recved=\d+,sent=\d+\)\n\n$/)
    const mntr = await word(port, 'mntr')
    for (const line of mntr.trimEnd().split('\n')) expect(line).toMatch(/^conclave_[a-z_]+\t\S+$/)
    expect(mntr).toContain('conclave_server_state\tstandalone\n')
    expect(await word(port, 'isro')).toBe('rw')
    expect(await word(port, 'envi')).toMatch(/^Environment:\nzookeeper\.version=3\.8\.0\n/)

    const cons = await word(port, 'cons')
    expect(cons).toMatch(
      new RegExp(
        `^ /127\\.0\\.0\\.1:\\d+\\[1\\]\\(queued=0,recved=\\d+,sent=\\d+,sid=${sid},lop=[A-Z]{4},est=\\d{13},to=4000,` +
          'lcxid=0x[0-9a-f]+,lzxid=0x[0-9a-f]+,lresp=\\d{13},llat=\\d+,minlat=\\d+,avglat=\\d+,maxlat=\\d+\\)\\n\\n$',
      ),
    )

    const dump = await word(port, 'dump')
    expect(dump).toMatch(
      /^SessionTracker dump:\nSession Sets \(1\)\/\(1\):\n1 expire at \w{3} \w{3} \d\d \d\d:\d\d:\d\d UTC \d{4}:\n/,
    )
    expect(dump).toContain(
      `\t${sid}\nephemeral nodes dump:\nSessions with Ephemerals (1):\n${sid}:\n\t/e\nConnections dump:\n`,
    )

    expect(await word(port, 'wchs')).toBe('1 connections watching 2 paths\nTotal watches:2\n')
    expect(await word(port, 'wchc')).toBe(`${sid}\n\t/a\n\t/b\n\n`)
    expect(await word(port, 'wchp')).toBe(`/a\n\t${sid}\n/b\n\t${sid}\n\n`)

    const conf = await word(port, 'conf')
    expect(conf).toContain(`clientPort=${port}\n`)
    expect(conf).toContain(`dataDir=${server.dataDir}\n`)
    expect(conf).toContain(`fourLetterWordWhitelist=${FOUR_LETTER_WORDS.join(',')}\n`)
    expect(conf).not.toContain(SECRET)
    expect(conf).not.toContain(SUPER)

    const dirsText = await word(port, 'dirs')
    const m = /^datadir_size: (\d+)\nlogdir_size: (\d+)\n$/.exec(dirsText)
    expect(m, dirsText).not.toBeNull()
    expect(Number(m![1])).toBeGreaterThan(0)
    expect(Number(m![2])).toBeLessThanOrEqual(Number(m![1]))

    const recved = (text: string) => Number(/recved=(\d+)/.exec(text)![1])
    const before = recved(cons)
    expect(before).toBeGreaterThanOrEqual(6)
    expect(await word(port, 'crst')).toBe('Connection stats reset.\n')
    const after = await word(port, 'cons')
    // A ping may have arrived since the reset; the requests before it are gone from the count.
    expect(recved(after)).toBeLessThan(before)
    expect(after).toMatch(/lop=(NA|PING)/)
  })

  it('refuses the words outside the default whitelist as ZooKeeper does, and answers the six it always did', async () => {
    const { server } = await standalone()
    for (const w of FOUR_LETTER_WORDS) {
      const answer = await word(server.port, w)
      if ((DEFAULT_WHITELIST as readonly string[]).includes(w)) expect(answer, w).not.toMatch(/whitelist/)
      else expect(answer).toBe(`${w} is not executed because it is not in the whitelist.\n`)
    }
  })
})

describe('the admin port', () => {
  it('answers every command as JSON, by its AdminServer name and by its four-letter word', async () => {
    const { server, admin } = await standalone([`ensembleSecret=${SECRET}`, `superDigest=${SUPER}`])
    const { sid } = await busyClient(server.connectString)

    for (const c of ADMIN_COMMANDS) {
      const byName = await command(admin, c.name, c.changes ? 'POST' : 'GET')
      expect(byName.command).toBe(c.name)
      if (c.name !== 'leader') expect(byName.error, c.name).toBeNull()
      for (const alias of c.aliases)
        expect((await command(admin, alias, c.changes ? 'POST' : 'GET')).command).toBe(c.name)
    }
    const conns = (await command(admin, 'connections')).connections as Record<string, unknown>[]
    expect(conns).toHaveLength(1)
    expect(conns[0]).toMatchObject({
      session_id: sid,
      session_timeout: 4000,
      interest_ops: 1,
      outstanding_requests: 0,
    })
    expect(conns[0]!.remote_socket_address).toMatch(/^127\.0\.0\.1:\d+$/)
    const dump = await command(admin, 'dump')
    expect(dump.session_id_to_ephemeral_paths).toEqual({ [sid]: ['/e'] })
    expect(Object.values(dump.expiry_time_to_session_ids as object).flat()).toEqual([sid])
    expect(dump.session_id_to_timeout).toEqual({ [sid]: 4000 })
    expect(await command(admin, 'wchs')).toMatchObject({
      num_connections: 1,
      num_paths: 2,
      num_total_watches: 2,
    })
    expect((await command(admin, 'wchc')).session_id_to_watched_paths).toEqual({ [sid]: ['/a', '/b'] })
    expect((await command(admin, 'wchp')).path_to_session_ids).toEqual({ '/a': [sid], '/b': [sid] })
    const conf = await command(admin, 'configuration')
    expect(conf).toMatchObject({ clientPort: server.port, dataDir: server.dataDir, tickTime: 200 })
    expect(JSON.stringify(conf)).not.toContain(SECRET)
    expect(JSON.stringify(conf)).not.toContain(SUPER)
    expect((await command(admin, 'environment'))['zookeeper.version']).toBe('3.8.0')
    expect((await command(admin, 'is_read_only')).read_only).toBe(false)
    expect((await command(admin, 'monitor')).conclave_znode_count).toBeGreaterThanOrEqual(4)
    expect(((await command(admin, 'server_stats')).server_stats as Record<string, unknown>).Mode).toBe(
      'standalone',
    )
    expect((await command(admin, 'stats')).connections).toHaveLength(1)
    expect((await command(admin, 'dirs')).datadir_size).toBeGreaterThan(0)
    expect((await command(admin, 'leader')).error).toBe('server is not initialized')

    const reset = await get(admin, '/commands/connection_stat_reset')
    expect(reset.status).toBe(405)
    expect(JSON.parse(reset.body)).toMatchObject({ command: 'connection_stat_reset' })
    expect((await get(admin, '/commands/nope')).status).toBe(404)
    expect(JSON.parse((await get(admin, '/commands/nope')).body)).toEqual({
      command: 'nope',
      error: 'Unknown command: nope',
    })
    expect((await get(admin, '/metrics', 'PUT')).status).toBe(405)
    const list = JSON.parse((await get(admin, '/commands')).body) as { commands: { name: string }[] }
    expect(list.commands.map((c) => c.name)).toEqual(ADMIN_COMMANDS.map((c) => c.name))
    expect((await get(admin, '/livez')).status).toBe(200)
    expect((await get(admin, '/readyz')).status).toBe(200)
    expect((await get(admin, '/health')).status).toBe(200)
  })
})

describe('an ensemble', () => {
  it('is ready while in a quorum; a follower whose leader is gone is alive, serves reads, and is not ready', async () => {
    const admin = new Map<number, number>()
    for (const id of [1, 2, 3]) admin.set(id, await freePort())
    ensemble = await startEnsemble({
      extraArgs: ['--read-only'],
      memberArgs: (id) => ['--admin-port', String(admin.get(id))],
    })
    const e = ensemble
    const status = async (id: number, path: string) => (await get(admin.get(id)!, path)).status
    for (const id of [1, 2, 3]) {
      expect(await status(id, '/livez')).toBe(200)
      await waitFor(async () => (await status(id, '/readyz')) === 200, {
        timeoutMs: 20_000,
        what: `${id} ready`,
      })
    }
    const leader = await e.leader()
    const [f1, f2] = [1, 2, 3].filter((id) => id !== leader) as [number, number]
    expect(await command(admin.get(leader)!, 'leader')).toMatchObject({ is_leader: true, leader_id: leader })
    expect(await command(admin.get(f1)!, 'lead')).toMatchObject({ is_leader: false, leader_id: leader })

    await e.kill9(leader)
    await e.kill9(f1)
    await waitFor(async () => (await status(f2, '/readyz')) === 503, { timeoutMs: 20_000, what: 'not ready' })
    const readyz = JSON.parse((await get(admin.get(f2)!, '/readyz')).body)
    expect(readyz).toEqual({ status: 'not ready', mode: 'looking' })
    expect(await status(f2, '/livez')).toBe(200)
    // Read-only once without a quorum for its grace (1 s or half a tick): still serving reads.
    await waitFor(async () => (await status(f2, '/health')) === 200, { timeoutMs: 20_000, what: 'read-only' })
    expect(await word(e.members[f2 - 1]!.clientPort, 'isro')).toBe('ro')

    await e.start(f1)
    await waitFor(async () => (await status(f2, '/readyz')) === 200, {
      timeoutMs: 30_000,
      what: 'ready again',
    })
  })

  it('exposes Prometheus metrics: strict format, consistent histograms, monotonic counters, what happened', async () => {
    const admin = new Map<number, number>()
    for (const id of [1, 2, 3]) admin.set(id, await freePort())
    ensemble = await startEnsemble({ memberArgs: (id) => ['--admin-port', String(admin.get(id))] })
    const e = ensemble
    const leader = await e.leader()
    const follower = [1, 2, 3].find((id) => id !== leader)!
    const scrape = async (id: number): Promise<Map<string, Family>> => {
      const res = await fetch(`http://127.0.0.1:${admin.get(id)}/metrics`)
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
      const families = parseExposition(await res.text())
      checkHistograms(families)
      return families
    }
    const before = await scrape(leader)
    for (const f of before.values()) expect(f.help.trim(), f.name).not.toBe('')

    const client = await connect(e.url(leader))
    for (let i = 0; i < 20; i++) await client.create(`/m${i}`, `v${i}`)
    await client.getData('/m0', { watch: () => {} })
    await client.setData('/m0', 'changed')
    const after = await scrape(leader)
    checkMonotonic(before, after)
    expect(sampleValue(after, 'conclave_request_duration_seconds_count', { op: 'create' })).toBe(20)
    expect(sampleValue(after, 'conclave_request_duration_seconds_count', { op: 'getData' })).toBe(1)
    expect(sampleValue(after, 'conclave_commit_duration_seconds_count')).toBeGreaterThanOrEqual(22)
    expect(sampleValue(after, 'conclave_fsync_duration_seconds_count')).toBeGreaterThan(0)
    expect(sampleValue(after, 'conclave_election_duration_seconds_count')).toBeGreaterThanOrEqual(1)
    expect(sampleValue(after, 'conclave_sessions_opened_total')).toBe(1)
    expect(sampleValue(after, 'conclave_watch_notifications_total')).toBe(1)
    expect(sampleValue(after, 'conclave_server_state', { state: 'leading' })).toBe(1)
    expect(sampleValue(after, 'conclave_ready')).toBe(1)
    expect(sampleValue(after, 'conclave_znode_count')).toBeGreaterThanOrEqual(21)
    expect(after.get('conclave_sessions_opened_total')?.type).toBe('counter')
    expect(after.get('conclave_writes_in_flight')?.type).toBe('gauge')
    expect(after.get('process_resident_memory_bytes')?.type).toBe('gauge')

    // A follower is not the one proposing: no commit latency there, but it applied everything.
    const onFollower = await scrape(follower)
    expect(sampleValue(onFollower, 'conclave_commit_duration_seconds_count')).toBe(0)
    expect(sampleValue(onFollower, 'conclave_server_state', { state: 'following' })).toBe(1)

    // A learner that comes back is brought up to date by DIFF, TRUNC or SNAP: the leader counts it.
    const syncs = (f: Map<string, Family>) =>
      ['DIFF', 'TRUNC', 'SNAP'].reduce(
        (n, type) => n + (sampleValue(f, 'conclave_learner_syncs_total', { type }) ?? 0),
        0,
      )
    const syncsBefore = syncs(after)
    await e.kill9(follower)
    for (let i = 0; i < 5; i++) await client.create(`/n${i}`, 'while it was away')
    await e.start(follower)
    await waitFor(async () => (await get(admin.get(follower)!, '/readyz')).status === 200, {
      timeoutMs: 30_000,
      what: 'the follower back',
    })
    const last = await scrape(leader)
    checkMonotonic(after, last)
    expect(syncs(last)).toBeGreaterThan(syncsBefore)
  })
})
