/**
 * Backup and restore end to end, with real processes: `conclave snapshot
 * save` from a live 3-server ensemble under write load, refused without
 * credentials (401) and for a caller granted only READ on / (403, each
 * permission checked on its own: ZooKeeper 3.9's CVE-2025-58457); the file
 * inspected; `snapshot restore` into three new directories (refusing a
 * running member's directory, a non-empty one without --force, and a
 * damaged file before writing anything); a new ensemble started on them
 * serves the same tree: every member's digest and zxid equal the file's,
 * and a sample of znodes matches the source ensemble (data, ACLs, every
 * Stat field, the parents' sequential counters). Then `snapshot inspect`
 * and `log dump` of data directories, which must not change them.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Acl, Client, OPEN_ACL_UNSAFE, Perms } from '../../client/index.js'
import { CLI_BIN, runCli as conclave, runCliAsync as conclaveAsync } from '../helpers/cli.js'
import { stopAllConclave } from '../helpers/conclave.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { canRun } from '../helpers/prerequisites.js'
import { generateDigest } from '../helpers/sha1.js'
import { tempDir, waitFor } from '../helpers/wait.js'

function digestAcl(user: string, password: string, perms: number): Acl {
  return { perms, id: { scheme: 'digest', id: generateDigest(`${user}:${password}`) } }
}

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex')

/** The paths whose znodes are compared, and the parents whose sequential counters are. */
const SAMPLE = [
  '/',
  '/app',
  '/app/config',
  '/app/secure',
  '/app/box',
  '/app/box/item',
  '/app/ttl',
  '/app/live',
]
const SEQ_PARENT = '/app/jobs'

let source: Ensemble | undefined
let restored: Ensemble | undefined
const work = tempDir('conclave-snapshot-test-')
const clients: Client[] = []

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {})
  await source?.stop()
  await restored?.stop()
  await stopAllConclave()
  work.remove()
})

async function connect(connectString: string, auth = true): Promise<Client> {
  const c = await Client.connect(connectString, {
    sessionTimeoutMs: 30_000,
    ...(auth ? { auth: [{ scheme: 'digest', credentials: 'admin:admin-pw' }] } : {}),
  })
  clients.push(c)
  return c
}

async function znode(c: Client, path: string) {
  const { data, stat } = await c.getData(path)
  const { acl } = await c.getACL(path)
  return { path, data: Buffer.from(data).toString('hex'), stat, acl }
}

describe('conclave snapshot save / restore / inspect, and log dump', () => {
  const file = join(work.path, 'backup.snap')
  let saved: { zxid: string; digest: string } | undefined

  beforeAll(async () => {
    source = await startEnsemble({ size: 3, extraArgs: ['--max-session-timeout', '60000'] })
    const c = await connect(source.connectString)
    await c.create('/app', 'app-data')
    await c.create('/app/config', 'v0')
    for (let i = 1; i <= 3; i++) await c.setData('/app/config', `v${i}`)
    await c.create('/app/secure', 'secret', { acl: [digestAcl('admin', 'admin-pw', Perms.ALL)] })
    await c.setACL('/app/secure', [
      digestAcl('admin', 'admin-pw', Perms.ALL),
      ...OPEN_ACL_UNSAFE.map((a) => ({ ...a, perms: Perms.READ })),
    ])
    await c.create('/app/box', undefined, { mode: 'container' })
    await c.create('/app/box/item', 'in the box')
    await c.create('/app/ttl', 'lives an hour', { mode: 'persistentWithTtl', ttlMs: 3_600_000 })
    await c.create('/app/live', 'ephemeral', { mode: 'ephemeral' })
    // Enough bytes (8 MB) that the server streams the snapshot over many event-loop turns.
    await c.create('/bulk', '')
    for (let i = 0; i < 2000; i += 100) {
      const ops = []
      for (let j = i; j < i + 100; j++)
        ops.push({ op: 'create' as const, path: `/bulk/n${j}`, data: 'b'.repeat(4096) })
      await c.multi(ops)
    }
    await c.create(SEQ_PARENT, '')
    for (let i = 0; i < 5; i++)
      await c.create(`${SEQ_PARENT}/job-`, `job ${i}`, { mode: 'persistentSequential' })
    await c.delete(`${SEQ_PARENT}/job-0000000001`)
    // The root: ALL for admin; READ for bob (not enough); everyone else may still read and write below it.
    await c.setACL('/', [
      digestAcl('admin', 'admin-pw', Perms.ALL),
      digestAcl('bob', 'bob-pw', Perms.READ),
      { perms: Perms.ALL & ~Perms.ADMIN, id: { scheme: 'world', id: 'anyone' } },
    ])
  }, 90_000)

  it('refuses a caller without credentials (401) and one granted only READ on / (403); no file appears', async () => {
    const url = source!.url(1)
    const anon = await conclaveAsync('snapshot', 'save', '--server', url, '-o', file)
    expect(anon.status).toBe(1)
    expect(anon.stderr).toContain('HTTP 401')
    expect(anon.stderr).toContain('needs credentials')
    const bob = await conclaveAsync(
      'snapshot',
      'save',
      '--server',
      url,
      '--auth',
      'digest:bob:bob-pw',
      '-o',
      file,
    )
    expect(bob.status).toBe(1)
    expect(bob.stderr).toContain('HTTP 403')
    expect(bob.stderr).toContain('digest:bob lacks WRITE, CREATE, DELETE, ADMIN on /')
    // world:anyone holds WRITE, CREATE, DELETE and READ on /: still not enough for a stranger.
    const eve = await conclaveAsync('snapshot', 'save', '--server', url, '--auth', 'digest:eve:x', '-o', file)
    expect(eve.status).toBe(1)
    expect(eve.stderr).toContain('HTTP 403')
    expect(existsSync(file)).toBe(false)
    expect(readdirSync(work.path).filter((n) => n.includes('partial'))).toEqual([])
  }, 60_000)

  it('saves a consistent snapshot from a follower under write load', async () => {
    const writer = await connect(source!.connectString, false)
    await writer.create('/load', '')
    let stop = false
    let writes = 0
    const load = (async () => {
      while (!stop) {
        await writer.create('/load/n-', `w${writes}`, { mode: 'persistentSequential' })
        await writer.setData('/load', `${writes}`)
        writes++
      }
    })()
    await waitFor(() => writes >= 20, { timeoutMs: 20_000, what: 'the write load to start' })
    const leader = await source!.leader()
    const follower = source!.members.find((m) => m.id !== leader)!.id
    const r = await conclaveAsync(
      'snapshot',
      'save',
      '--server',
      source!.url(follower),
      '--auth',
      'digest:admin:admin-pw',
      '-o',
      file,
    )
    const before = writes
    await waitFor(() => writes >= before + 20, {
      timeoutMs: 20_000,
      what: 'the load to go on after the save',
    })
    stop = true
    await load
    expect(r.stderr).not.toMatch(/error/i)
    expect(r.status).toBe(0)
    const m = /zxid (0x[0-9a-f]+), digest (\S+),/.exec(r.stdout)
    expect(m).not.toBeNull()
    saved = { zxid: m![1]!, digest: m![2]! }
    // A fuzzy snapshot plus the log applied while it was streamed, replayed by `save`.
    expect(r.stdout).toMatch(/\(snapshot from 0x[0-9a-f]+ \+ \d+ log entries replayed\)/)
    expect(existsSync(file)).toBe(true)
    expect(readdirSync(work.path).filter((n) => n.includes('partial'))).toEqual([])
    // The plain (non-terminal) progress lines end at 100%.
    expect(r.stderr).toMatch(/\(100%\)/)
  }, 90_000)

  const hasScript = canRun('progress on a terminal (util-linux script)', scriptMissing())

  it.runIf(hasScript)(
    'draws a progress bar on a terminal',
    async () => {
      const out = join(work.path, 'tty.snap')
      const args = [
        'snapshot',
        'save',
        '--server',
        source!.url(1),
        '--auth',
        'digest:admin:admin-pw',
        '-o',
        out,
      ]
      const r = await new Promise<{ status: number | null; output: string }>((resolve) => {
        const child = spawn(
          'script',
          ['-qefc', `exec ${[process.execPath, CLI_BIN, ...args].join(' ')}`, '/dev/null'],
          {
            stdio: ['pipe', 'pipe', 'pipe'],
          },
        )
        let output = ''
        child.stdout.on('data', (c: Buffer) => {
          output += c.toString()
        })
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
        child.on('exit', (status) => {
          clearTimeout(timer)
          resolve({ status, output })
        })
      })
      expect(r.status).toBe(0)
      // Redrawn in place (carriage return, erase line), ending full.
      expect(r.output).toContain('\r\x1b[K')
      expect(r.output).toMatch(/\[#{30}\] 100% \d+\/\d+ bytes/)
      expect(existsSync(out)).toBe(true)
    },
    60_000,
  )

  it('inspects the file: zxid, digest, counts, largest znodes, sessions', () => {
    const r = conclave('snapshot', 'inspect', file, '--json', '--top', '3')
    expect(r.status).toBe(0)
    const j = JSON.parse(r.stdout)
    expect(j.header.zxidHex).toBe(saved!.zxid)
    expect(j.header.digest).toBe(saved!.digest)
    expect(j.counts.ephemerals).toBe(1)
    expect(j.counts.containers).toBe(1)
    expect(j.counts.ttl).toBe(1)
    expect(j.counts.sessions).toBeGreaterThanOrEqual(2)
    expect(j.largestByChildren[0].path).toBe('/bulk')
    expect(j.largestByData.length).toBe(3)
    expect(j.sessions.some((s: { timeoutMs: number; ephemerals: number }) => s.ephemerals === 1)).toBe(true)
    const text = conclave('snapshot', 'inspect', file)
    expect(text.status).toBe(0)
    expect(text.stdout).toContain(`zxid:       ${saved!.zxid}`)
    expect(text.stdout).toContain('largest znodes by children:')
  })

  it("restore refuses a damaged file, a running server's directory and a non-empty one, writing nothing", () => {
    const bytes = readFileSync(file)
    const damaged = join(work.path, 'damaged.snap')
    const copy = Buffer.from(bytes)
    copy[copy.length - 10] = copy[copy.length - 10]! ^ 0xff
    writeFileSync(damaged, copy)
    const fresh = join(work.path, 'never-written')
    const d = conclave('snapshot', 'restore', damaged, '--data-dir', fresh)
    expect(d.status).toBe(1)
    expect(d.stderr).toContain('does not check, nothing was written')
    expect(existsSync(fresh)).toBe(false)
    const truncated = join(work.path, 'truncated.snap')
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 100))
    const t = conclave('snapshot', 'restore', truncated, '--data-dir', fresh)
    expect(t.status).toBe(1)
    expect(t.stderr).toContain('truncated')
    expect(existsSync(fresh)).toBe(false)

    const live = source!.members[0]!.proc!.dataDir
    const before = sha(join(live, 'conclave.db'))
    const l = conclave('snapshot', 'restore', file, '--data-dir', live, '--force')
    expect(l.status).toBe(1)
    expect(l.stderr).toContain('held by a running server')
    expect(sha(join(live, 'conclave.db'))).toBe(before)

    const full = join(work.path, 'not-empty')
    mkdirSync(full)
    writeFileSync(join(full, 'keep.txt'), 'mine')
    const f = conclave('snapshot', 'restore', file, '--data-dir', full)
    expect(f.status).toBe(1)
    expect(f.stderr).toContain('not empty')
    expect(readdirSync(full)).toEqual(['keep.txt'])
    // --force replaces what a stopped (or never started) server's directory holds.
    const forced = conclave('snapshot', 'restore', file, '--data-dir', full, '--force')
    expect(forced.status).toBe(0)
    expect(readdirSync(full)).toEqual(['conclave.db'])
  })

  it('a new ensemble on three restored directories serves the same tree', async () => {
    const dirs = [1, 2, 3].map((id) => join(work.path, `restored-${id}`))
    for (const [i, dir] of dirs.entries()) {
      const r = conclave('snapshot', 'restore', file, '--data-dir', dir, '--server-id', String(i + 1))
      expect(r.stderr).toBe('')
      expect(r.status).toBe(0)
      expect(r.stdout).toContain(`zxid ${saved!.zxid}, digest ${saved!.digest}`)
    }
    restored = await startEnsemble({
      size: 3,
      extraArgs: ['--max-session-timeout', '60000'],
      dataDir: (id) => dirs[id - 1]!,
    })
    // Before anything is written to it, every member holds exactly the saved state.
    for (const m of restored.members) {
      const s = await restored.status(m.id)
      expect(s.Digest).toBe(saved!.digest)
      expect(s.Zxid).toBe(saved!.zxid)
    }
    const before = await connect(source!.connectString)
    const after = await connect(restored.connectString)
    for (const path of SAMPLE) expect(await znode(after, path)).toEqual(await znode(before, path))
    expect((await after.getChildren(SEQ_PARENT)).sort()).toEqual(
      (await before.getChildren(SEQ_PARENT)).sort(),
    )
    // The parent's sequential counter came along: the next name is the same on both.
    const next = await after.create(`${SEQ_PARENT}/job-`, 'next', { mode: 'persistentSequential' })
    expect(next).toBe(await before.create(`${SEQ_PARENT}/job-`, 'next', { mode: 'persistentSequential' }))
    // /load's children are those the snapshot holds: a prefix of the source's.
    const loaded = (await after.getChildren('/load')).sort()
    const all = (await before.getChildren('/load')).sort()
    expect(loaded.length).toBeGreaterThan(0)
    expect(loaded.length).toBeLessThan(all.length)
    expect(all.slice(0, loaded.length)).toEqual(loaded)
  }, 120_000)

  it('inspect and log dump read a data directory without changing it', () => {
    // A stopped member's directory: not one byte changes.
    const dir = join(work.path, 'inspect-me')
    expect(conclave('snapshot', 'restore', file, '--data-dir', dir).status).toBe(0)
    const db = join(dir, 'conclave.db')
    const before = sha(db)
    const listing = readdirSync(dir).sort()
    const i = conclave('snapshot', 'inspect', dir, '--json')
    expect(i.status).toBe(0)
    const j = JSON.parse(i.stdout)
    expect(j.digest).toBe(saved!.digest)
    expect(j.zxid).toBe(saved!.zxid)
    expect(j.meta.acceptedEpoch).toBe(Number(BigInt(saved!.zxid) >> 32n))
    expect(sha(db)).toBe(before)
    expect(readdirSync(dir).sort()).toEqual(listing)

    // A running member's directory: its snapshot plus its log, replayed in memory.
    const live = source!.members[0]!.proc!.dataDir
    const t = conclave('snapshot', 'inspect', live)
    expect(t.status).toBe(0)
    expect(t.stdout).toContain('opened read-only')
    expect(t.stdout).toMatch(/epochs: {5}accepted \d+, current \d+/)
    const dump = conclave('log', 'dump', live, '--json', '--limit', '50')
    expect(dump.status).toBe(0)
    const rows = dump.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(rows.length).toBe(50)
    expect(rows.some((r) => r.type === 'create' && r.path === '/app' && r.mode === 'persistent')).toBe(true)
    expect(rows.some((r) => r.type === 'createSession')).toBe(true)
    const from = rows[10].zxid
    const part = conclave('log', 'dump', live, '--from-zxid', from, '--limit', '3')
    expect(part.status).toBe(0)
    expect(part.stdout.split('\n')[0]).toMatch(new RegExp(`^${from} `))
    expect(part.stderr).toContain('3 transactions')
  })
})

describe('help for the backup commands', () => {
  it('conclave --help lists snapshot and log; each subcommand has its own help', () => {
    const top = conclave('--help')
    expect(top.stdout).toMatch(/^ {2}snapshot /m)
    expect(top.stdout).toMatch(/^ {2}log /m)
    const save = conclave('snapshot', 'save', '--help')
    expect(save.status).toBe(0)
    for (const o of ['--server URL', '--auth SCHEME:CRED', '--output, -o FILE', '--timeout MS'])
      expect(save.stdout).toContain(o)
    expect(conclave('snapshot', 'restore', '--help').stdout).toContain('--server-id N')
    expect(conclave('snapshot', 'inspect', '--help').stdout).toContain('--top N')
    expect(conclave('log', 'dump', '--help').stdout).toContain('--from-zxid Z')
    const bad = conclave('snapshot', 'save', '--server', 'ws://127.0.0.1:1')
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain('-o FILE is required')
  })

  it('an unreachable server is a clear error and leaves no file', () => {
    const out = join(work.path, 'unreachable.snap')
    const r = conclave('snapshot', 'save', '--server', 'ws://127.0.0.1:1', '--auth', 'digest:a:b', '-o', out)
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('cannot take a snapshot from ws://127.0.0.1:1: connect ECONNREFUSED')
    expect(existsSync(out)).toBe(false)
  })
})

function scriptMissing() {
  const r = spawnSync('script', ['--version'], { encoding: 'utf8' })
  return r.status === 0 ? undefined : { what: 'util-linux script', apt: 'bsdutils' }
}
