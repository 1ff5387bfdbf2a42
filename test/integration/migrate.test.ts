/**
 * `conclave migrate` against the real Apache ZooKeeper the tests start
 * (Debian's package, test/helpers/zookeeper.ts) and a real Conclave server:
 * clear errors for an unreachable source or target; a target path with
 * other data refused before anything is written (and replaced with
 * --overwrite); a tree with data, ACLs, sequential names, a container, a
 * TTL node and an ephemeral (reported, not copied) copied; changes made in
 * ZooKeeper during the follow phase (create, set, delete, a sequential
 * create) appear in Conclave; after SIGINT the whole tree is equal (paths,
 * data, ACLs; kinds read from Conclave's data directory with `snapshot
 * inspect`); a znode over Conclave's limits is named with the reason.
 */
import type { ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Acl, Client, OPEN_ACL_UNSAFE, Perms } from '../../client/index.js'
import { runCli as conclave, startCli } from '../helpers/cli.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { canRun, zookeeperMissing } from '../helpers/prerequisites.js'
import { generateDigest } from '../helpers/sha1.js'
import { TcpProxy } from '../helpers/targets.js'
import { tempDir, waitFor } from '../helpers/wait.js'
import { startZooKeeper, type ZooKeeperProcess } from '../helpers/zookeeper.js'

const AUTH = 'digest:admin:admin-pw'

function digestAcl(user: string, password: string, perms: number): Acl {
  return { perms, id: { scheme: 'digest', id: generateDigest(`${user}:${password}`) } }
}

const run = canRun('conclave migrate from ZooKeeper', zookeeperMissing())

let zk: ZooKeeperProcess | undefined
let server: ConclaveProcess | undefined
const clients: Client[] = []
const tmp = tempDir('conclave-migrate-test-')
const children = new Set<ChildProcess>()
const proxies: TcpProxy[] = []

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const c of clients) await c.close().catch(() => {})
  for (const p of proxies) await p.stop()
  await zk?.stop()
  await server?.stop()
  server?.remove()
  await stopAllConclave()
  tmp.remove()
})

async function connect(connectString: string): Promise<Client> {
  const c = await Client.connect(connectString, {
    auth: [{ scheme: 'digest', credentials: 'admin:admin-pw' }],
    // The test blocks its event loop while a command runs (spawnSync): sessions must outlast that.
    sessionTimeoutMs: 30_000,
    frameBytesMax: 4 * 1024 * 1024,
  })
  clients.push(c)
  return c
}

/** Every znode under `path`: data (hex), ACL and children, keyed by path; ephemerals left out. */
async function tree(c: Client, path: string): Promise<Map<string, { data: string; acl: Acl[] }>> {
  const out = new Map<string, { data: string; acl: Acl[] }>()
  const walk = async (p: string): Promise<void> => {
    const { data, stat } = await c.getData(p)
    if (
      stat.ephemeralOwner !== '0x0' &&
      stat.ephemeralOwner !== '0x8000000000000000' &&
      !stat.ephemeralOwner.startsWith('0xff')
    )
      return
    const { acl } = await c.getACL(p)
    out.set(p, { data: Buffer.from(data).toString('hex'), acl })
    for (const child of (await c.getChildren(p)).sort()) await walk(`${p}/${child}`)
  }
  await walk(path)
  return out
}

describe.runIf(run)('conclave migrate from a real ZooKeeper', () => {
  let src: Client
  let dst: Client

  beforeAll(async () => {
    zk = await startZooKeeper()
    // A 64 KiB packet limit on the target: ZooKeeper's znodes of up to 1 MiB are then over it.
    const config = join(tmp.path, 'conclave.json')
    writeFileSync(config, JSON.stringify({ frameBytesMax: 64 * 1024 }))
    server = await startConclave({ extraArgs: ['--config', config] })
    src = await connect(zk.connectString)
    dst = await connect(server.connectString)
    await src.create('/app', 'app-data')
    await src.create('/app/config', 'v1')
    await src.setData('/app/config', 'v2')
    await src.create('/app/secure', 'secret', { acl: [digestAcl('admin', 'admin-pw', Perms.ALL)] })
    await src.create('/app/jobs', '')
    for (let i = 0; i < 5; i++)
      await src.create('/app/jobs/job-', `job ${i}`, { mode: 'persistentSequential' })
    await src.delete('/app/jobs/job-0000000001')
    await src.create('/app/box', 'a container', { mode: 'container' })
    await src.create('/app/box/item', 'in the box')
    await src.create('/app/ttl', 'a TTL node', { mode: 'persistentWithTtl', ttlMs: 3_600_000 })
    await src.create('/app/live', 'an ephemeral', { mode: 'ephemeral' })
    await src.create('/app/empty', undefined)
    await src.create('/big', 'x'.repeat(100_000))
  }, 90_000)

  it('names an unreachable source or target', () => {
    const a = conclave(
      'migrate',
      '--from',
      'zk://127.0.0.1:1/app',
      '--to',
      server!.connectString,
      '--timeout',
      '1500',
    )
    expect(a.status).toBe(1)
    expect(a.stderr).toContain('cannot connect to the source ZooKeeper (tcp://127.0.0.1:1): unreachable')
    const b = conclave(
      'migrate',
      '--from',
      `zk://127.0.0.1:${zk!.port}/app`,
      '--to',
      'ws://127.0.0.1:1',
      '--timeout',
      '1500',
    )
    expect(b.status).toBe(1)
    expect(b.stderr).toContain('cannot connect to the target Conclave (ws://127.0.0.1:1): unreachable')
    const c = conclave('migrate', '--from', 'http://x:1/app')
    expect(c.status).toBe(2)
    expect(c.stderr).toContain("--from 'http://x:1/app': expected zk:// or tcp://host:port[/path]")
  }, 30_000)

  it('refuses a target path that exists with other data, writing nothing', async () => {
    await dst.create('/app', 'something else')
    const r = conclave(
      'migrate',
      '--from',
      `zk://127.0.0.1:${zk!.port}/app`,
      '--to',
      `${server!.connectString}/app`,
      '--from-auth',
      AUTH,
    )
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('refused: 1 target znode(s) exist with other data')
    expect(r.stderr).toContain('/app: exists with other data')
    expect(await dst.getChildren('/app')).toEqual([])
  }, 30_000)

  it('copies the tree, follows changes made in ZooKeeper, and ends with equal trees', async () => {
    const cli = startCli(
      'migrate',
      '--from',
      `zk://127.0.0.1:${zk!.port}/app`,
      '--to',
      `${server!.connectString}/app`,
      '--from-auth',
      AUTH,
      '--to-auth',
      AUTH,
      '--overwrite',
      '--follow',
      '--zk-data-dir',
      zk!.dataDir,
    )
    children.add(cli.child)
    await waitFor(() => cli.stdout().includes('following changes under /app'), {
      timeoutMs: 30_000,
      what: `the follow phase (${cli.stdout()} ${cli.stderr()})`,
    })
    expect(cli.stdout()).toMatch(/copied \/app → \/app: 11 created, 1 updated/)
    expect(cli.stdout()).toContain('1 ephemeral znode(s) not copied')
    expect(cli.stdout()).toMatch(/ {2}\/app\/live \(session 0x[0-9a-f]+\)/)
    expect(cli.stdout()).toContain('child counter of /app/jobs raised by')
    await expect(dst.exists('/app/live')).resolves.toBeNull()

    // Changes in ZooKeeper while following.
    await src.create('/app/new', 'made during follow')
    await src.setData('/app/config', 'v3')
    await src.delete('/app/jobs/job-0000000000')
    const seq = await src.create('/app/jobs/job-', 'job 5', { mode: 'persistentSequential' })
    await src.create('/app/new/deep', 'deeper')
    await src.delete('/app/empty')
    await waitFor(
      async () =>
        (await dst.exists('/app/new/deep')) !== null &&
        Buffer.from((await dst.getData('/app/config')).data).toString() === 'v3' &&
        (await dst.exists(seq)) !== null &&
        (await dst.exists('/app/jobs/job-0000000000')) === null &&
        (await dst.exists('/app/empty')) === null,
      { timeoutMs: 20_000, what: `the follow phase to apply the changes (${cli.stderr()})` },
    )
    cli.child.kill('SIGINT')
    expect(await cli.exited).toBe(0)
    expect(cli.stdout()).toContain('stopped following')
    expect(cli.stderr()).toMatch(
      /following \/app: \d+ change\(s\) applied, 0 waiting, last applied source zxid 0x[0-9a-f]+, lag \d+ ms/,
    )

    const a = await tree(src, '/app')
    const b = await tree(dst, '/app')
    expect([...b.keys()]).toEqual([...a.keys()])
    expect(b).toEqual(a)
    // Kinds: the container and the TTL node are what they were (from Conclave's data directory).
    const inspect = conclave('snapshot', 'inspect', server!.dataDir, '--json')
    expect(inspect.status).toBe(0)
    const j = JSON.parse(inspect.stdout)
    expect(j.counts.containers).toBe(1)
    expect(j.counts.ttl).toBe(1)
    expect(j.counts.ephemerals).toBe(0)
    // The TTL came along (Conclave's own log says what it created).
    const dump = conclave('log', 'dump', server!.dataDir, '--json')
    const ttlCreate = dump.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((row) => row.type === 'create' && row.path === '/app/ttl')
    expect(ttlCreate).toMatchObject({ mode: 'persistentWithTtl', ttlMs: 3_600_000 })
    // Sequential names continue without a clash on the target.
    const next = await dst.create('/app/jobs/job-', 'on conclave', { mode: 'persistentSequential' })
    expect(Number(next.slice(-10))).toBeGreaterThan(Number(seq.slice(-10)))
    expect(OPEN_ACL_UNSAFE.length).toBe(1)
  }, 120_000)

  it('re-reads the source after a reconnect: changes made while it was away are applied', async () => {
    const proxy = await TcpProxy.start(zk!.connectString)
    proxies.push(proxy)
    await src.create('/rc', '')
    await src.create('/rc/gone', 'deleted while away')
    await src.create('/rc/kept', 'v1')
    const cli = startCli(
      'migrate',
      '--from',
      `zk://127.0.0.1:${proxy.port}/rc`,
      '--to',
      `${server!.connectString}/rc`,
      '--follow',
    )
    children.add(cli.child)
    await waitFor(() => cli.stdout().includes('following changes under /rc'), {
      timeoutMs: 30_000,
      what: 'the follow phase',
    })
    expect(await dst.exists('/rc/gone')).not.toBeNull()
    proxy.stall()
    await src.create('/rc/while-away', 'made while the source was unreachable')
    await src.delete('/rc/gone')
    await src.setData('/rc/kept', 'v2')
    proxy.resume()
    await waitFor(
      async () =>
        (await dst.exists('/rc/while-away')) !== null &&
        (await dst.exists('/rc/gone')) === null &&
        Buffer.from((await dst.getData('/rc/kept')).data).toString() === 'v2',
      { timeoutMs: 30_000, what: `the changes made while away (${cli.stdout()})` },
    )
    expect(cli.stdout()).toContain('resynced after a reconnect to the source')
    cli.child.kill('SIGTERM')
    expect(await cli.exited).toBe(0)
  }, 90_000)

  it('compares everything again after the target was unreachable: changes made meanwhile arrive', async () => {
    const proxy = await TcpProxy.start(server!.connectString)
    proxies.push(proxy)
    await src.create('/tc', '')
    await src.create('/tc/one', 'v1')
    const cli = startCli(
      'migrate',
      '--from',
      `zk://127.0.0.1:${zk!.port}/tc`,
      '--to',
      `ws://127.0.0.1:${proxy.port}/tc`,
      '--follow',
    )
    children.add(cli.child)
    await waitFor(() => cli.stdout().includes('following changes under /tc'), {
      timeoutMs: 30_000,
      what: 'the follow phase',
    })
    proxy.stall()
    await src.setData('/tc/one', 'v2')
    await src.create('/tc/two', 'made while the target was unreachable')
    proxy.resume()
    await waitFor(
      async () =>
        (await dst.exists('/tc/two')) !== null &&
        Buffer.from((await dst.getData('/tc/one')).data).toString() === 'v2',
      { timeoutMs: 30_000, what: `the changes made while the target was away (${cli.stdout()})` },
    )
    cli.child.kill('SIGINT')
    expect(await cli.exited).toBe(0)
  }, 90_000)

  it("names a znode over the target's limits, with the reason", () => {
    const r = conclave(
      'migrate',
      '--from',
      `zk://127.0.0.1:${zk!.port}/big`,
      '--to',
      `${server!.connectString}/big`,
    )
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/not copied: \/big: over the target's limits \(100000 bytes of data/)
  }, 30_000)

  it('conclave migrate --help lists every option', () => {
    const r = conclave('migrate', '--help')
    expect(r.status).toBe(0)
    for (const o of [
      '--from URL',
      '--to URL',
      '--from-auth',
      '--to-auth',
      '--overwrite',
      '--follow',
      '--follow-ms MS',
    ])
      expect(r.stdout).toContain(o)
    expect(conclave('--help').stdout).toMatch(/^ {2}migrate /m)
  })
})
