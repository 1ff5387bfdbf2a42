/**
 * Local sessions (`--local-sessions`, ZooKeeper's localSessionsEnabled)
 * against real server processes: a standalone server and a 3-server
 * ensemble. A local session reads, writes and watches as any session;
 * opening and closing it writes no Txn (the last zxid does not move on any
 * member); its first ephemeral upgrades it (createSession, then the create:
 * two zxids), after which the ephemeral survives a move to another server
 * and goes when the session closes; with upgrading off the ephemeral fails
 * EPHEMERAL_ON_LOCAL_SESSION and nothing is written; resuming a local
 * session elsewhere is SESSION_EXPIRED, on its own server it works within
 * the timeout, and an idle one expires there. Without the flag, opening and
 * closing a session still costs two Txns. kazoo (a ZooKeeper client) works
 * against it too.
 *
 * Invariants: every server and client is stopped in afterAll; every wait has
 * a deadline; one server-starting file.
 */
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { OPEN_ACL_UNSAFE } from '../../shared/acl.js'
import { JuteWriter } from '../../shared/jute.js'
import { CreateFlag, OpCode } from '../../shared/opcodes.js'
import { type ConnectResponse, decodeConnectResponse, encodeConnectRequest } from '../../shared/records.js'
import { type ConclaveProcess, startConclave } from '../helpers/conclave.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { canRun, kazooMissing } from '../helpers/prerequisites.js'
import { RawClient } from '../helpers/raw-client.js'
import { tempDir, waitFor } from '../helpers/wait.js'
import { errorCode } from '../helpers/zk-error.js'

const servers: ConclaveProcess[] = []
const dirs: { remove(): void }[] = []
let ensemble: Ensemble | undefined
const clients: Client[] = []
const raws: RawClient[] = []

afterAll(async () => {
  for (const r of raws) r.close()
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  await ensemble?.stop()
  for (const s of servers) {
    await s.stop()
    s.remove()
  }
  for (const d of dirs) d.remove()
})

async function standalone(...extraArgs: string[]): Promise<ConclaveProcess> {
  const s = await startConclave({ tickTime: 200, extraArgs })
  servers.push(s)
  return s
}

async function connect(url: string, opts: Parameters<typeof Client.connect>[1] = {}): Promise<Client> {
  const c = await Client.connect(url, { connectTimeoutMs: 15_000, ...opts })
  clients.push(c)
  return c
}

/** The server's last zxid (`srvr`), as text. */
async function zxid(port: number): Promise<string> {
  const text = await fourLetterWord('127.0.0.1', port, 'srvr', 2_000)
  const m = /Zxid: (\S+)/.exec(text)
  if (m === null) throw new Error(`no Zxid in srvr:\n${text}`)
  return m[1]!
}

/** A ConnectRequest on a raw ZooKeeper-TCP connection: the ConnectResponse (timeOut 0: refused), or 'closed'. */
async function rawConnect(
  port: number,
  c: { sessionId: bigint; passwd: Uint8Array; timeOut?: number },
): Promise<{ raw: RawClient; res: ConnectResponse | 'closed' }> {
  const raw = await RawClient.connect(port)
  raws.push(raw)
  const w = new JuteWriter()
  encodeConnectRequest(w, {
    protocolVersion: 0,
    lastZxidSeen: 0n,
    timeOut: c.timeOut ?? 10_000,
    sessionId: c.sessionId,
    passwd: c.passwd,
    readOnly: false,
  })
  raw.sendPacket(w.finish())
  await waitFor(() => raw.packets.length > 0 || raw.closed, { what: 'ConnectResponse' })
  return { raw, res: raw.packets.length > 0 ? decodeConnectResponse(raw.packets.shift()!) : 'closed' }
}

/** A new session on a raw connection (which the test then drops without closing the session). */
async function rawSession(port: number, timeOut?: number): Promise<ConnectResponse & { raw: RawClient }> {
  const { raw, res } = await rawConnect(port, { sessionId: 0n, passwd: new Uint8Array(16), timeOut })
  if (res === 'closed' || res.timeOut <= 0) throw new Error('no session')
  return { ...res, raw }
}

function hexId(id: bigint): string {
  return `0x${BigInt.asUintN(64, id).toString(16)}`
}

describe('local sessions, standalone', () => {
  it('open, read, write, watch and close without a session Txn; the default still writes two', async () => {
    const s = await standalone('--local-sessions')
    const before = await zxid(s.port)
    const a = await connect(s.connectString)
    const b = await connect(s.connectString)
    // Two sessions opened: nothing logged.
    expect(await zxid(s.port)).toBe(before)
    await a.create('/local', 'one')
    const fired = new Promise<string>((resolve) =>
      a.getData('/local', { watch: (e) => resolve(`${e.type} ${e.path}`) }),
    )
    await b.setData('/local', 'two')
    expect(await fired).toBe('dataChanged /local')
    expect((await a.getData('/local')).data).toEqual(new TextEncoder().encode('two'))
    const afterWrites = await zxid(s.port)
    await a.close()
    await b.close()
    // Closing them: nothing logged either.
    expect(await zxid(s.port)).toBe(afterWrites)

    // Without --local-sessions: createSession and closeSession, two Txns.
    const d = await standalone()
    const first = await connect(d.connectString)
    await first.create('/started')
    const z0 = BigInt(await zxid(d.port))
    const c = await connect(d.connectString)
    await c.close()
    expect(BigInt(await zxid(d.port)) - z0).toBe(2n)
  })

  it('the first ephemeral upgrades the session (createSession ahead of it); it goes when the session closes', async () => {
    const s = await standalone('--local-sessions')
    const a = await connect(s.connectString)
    await a.create('/eph-parent')
    const z0 = BigInt(await zxid(s.port))
    // In a multi: the upgrade too.
    await a.multi([{ op: 'create', path: '/eph-parent/a', mode: 'ephemeral' }])
    expect(BigInt(await zxid(s.port)) - z0).toBe(2n)
    await a.create('/eph-parent/b', '', { mode: 'ephemeralSequential' })
    expect(BigInt(await zxid(s.port)) - z0).toBe(3n)
    expect((await a.getEphemerals('/eph-parent')).sort()).toHaveLength(2)
    // Upgraded: closing it is a Txn that deletes its ephemerals.
    await a.close()
    expect(BigInt(await zxid(s.port)) - z0).toBe(4n)
    const b = await connect(s.connectString)
    expect(await b.getChildren('/eph-parent')).toEqual([])
    // Containers and TTL nodes are not ephemerals: no upgrade.
    const z1 = BigInt(await zxid(s.port))
    await b.create('/eph-parent/box', '', { mode: 'container' })
    expect(BigInt(await zxid(s.port)) - z1).toBe(1n)
  })

  it('with upgrading off, an ephemeral fails EPHEMERAL_ON_LOCAL_SESSION and writes nothing', async () => {
    const s = await standalone('--local-sessions', '--local-sessions-upgrading', 'off')
    const a = await connect(s.connectString)
    await a.create('/p')
    const z0 = await zxid(s.port)
    expect(await errorCode(a.create('/p/e', '', { mode: 'ephemeral' }))).toBe('EPHEMERAL_ON_LOCAL_SESSION')
    expect(await errorCode(a.multi([{ op: 'create', path: '/p/m', mode: 'ephemeral' }]))).toBe(
      'EPHEMERAL_ON_LOCAL_SESSION',
    )
    expect(await zxid(s.port)).toBe(z0)
    expect(await a.getChildren('/p')).toEqual([])
    // The session goes on: other writes work.
    await a.create('/p/persistent')
    expect(await a.getChildren('/p')).toEqual(['persistent'])
  })

  it('a local session resumes on its server within its timeout; idle past it, it expires there', async () => {
    const s = await standalone('--local-sessions')
    const first = await rawSession(s.port)
    first.raw.close()
    const back = await connect(s.connectString, {
      sessionId: hexId(first.sessionId),
      sessionPassword: first.passwd,
    })
    expect(back.sessionId).toBe(hexId(first.sessionId))
    await back.create('/resumed')
    // A session that never pings (the minimum timeout: 2 ticks) is expired by its server,
    // which closes its connection; its client is then told it expired.
    const idle = await rawSession(s.port, 400)
    await waitFor(() => idle.raw.closed, { timeoutMs: 10_000, what: 'the idle local session to expire' })
    const again = await rawConnect(s.port, { sessionId: idle.sessionId, passwd: idle.passwd })
    expect(again.res !== 'closed' && again.res.timeOut).toBe(0)
  })

  it('local sessions count against sessionsMax; closing one (no Txn) frees its slot', async () => {
    const dir = tempDir('conclave-local-')
    dirs.push(dir)
    const cfg = join(dir.path, 'conclave.json')
    writeFileSync(cfg, JSON.stringify({ sessionsMax: 2, localSessions: true }))
    const s = await standalone('--config', cfg, '--log-level', 'warn')
    const a = await rawSession(s.port)
    const b = await rawSession(s.port)
    await expect(RawClient.session(s.port)).rejects.toThrow()
    await waitFor(() => s.output().includes('session limit reached'), { what: 'the refusal to be logged' })
    const z0 = await zxid(s.port)
    a.raw.sendRequest(1, { op: OpCode.closeSession })
    expect((await a.raw.reply(1)).err).toBe(0)
    await a.raw.waitClosed()
    expect(await zxid(s.port)).toBe(z0)
    const c = await rawSession(s.port)
    c.raw.sendRequest(1, { op: OpCode.exists, path: '/', watch: false })
    expect((await c.raw.reply(1)).err).toBe(0)
    b.raw.close()
  })

  it('kazoo works against a server with local sessions (reads, writes, watches, an ephemeral)', async () => {
    if (!canRun('kazoo local sessions (local-sessions.test.ts)', kazooMissing())) return
    const s = await standalone('--local-sessions')
    const script = `
import sys, threading
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=10)
zk.start(timeout=15)
zk.create('/kz', b'a')
seen = threading.Event()
zk.get('/kz', watch=lambda e: seen.set())
zk.set('/kz', b'b')
assert seen.wait(10), 'watch did not fire'
zk.create('/kz/e', b'', ephemeral=True)
assert zk.exists('/kz/e') is not None
zk.stop(); zk.close()
print('kazoo ok')
`
    const r = spawnSync('/usr/bin/python3', ['-c', script, `127.0.0.1:${s.port}`], {
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(r.stdout + r.stderr).toContain('kazoo ok')
    const c = await connect(s.connectString)
    // Its session was upgraded by the ephemeral, and closed: the ephemeral is gone.
    expect(await c.getChildren('/kz')).toEqual([])
  })
})

describe('local sessions, 3 servers', () => {
  it('a follower’s local session writes through the leader, upgrades on an ephemeral, moves only once upgraded', async () => {
    const e = await startEnsemble({ extraArgs: ['--local-sessions'] })
    ensemble = e
    const leader = await e.leader()
    const [f1, f2] = [1, 2, 3].filter((id) => id !== leader) as [number, number]
    const port = (id: number) => e.member(id).clientPort
    const zxids = async () => Promise.all([1, 2, 3].map((id) => zxid(port(id))))

    // Open and close on a follower and on the leader: no member's log moves.
    const z0 = await zxids()
    const onF1 = await connect(e.url(f1))
    const onLeader = await connect(e.url(leader))
    expect(await zxids()).toEqual(z0)

    // Writes from a follower's local session: forwarded, and the leader takes them.
    await onF1.create('/shared', 'x')
    const fired = new Promise<string>((resolve) =>
      onF1.getData('/shared', { watch: (ev) => resolve(`${ev.type} ${ev.path}`) }),
    )
    await onLeader.setData('/shared', 'y')
    expect(await fired).toBe('dataChanged /shared')
    await onF1.setData('/shared', 'z')
    await onF1.delete('/shared')
    await onF1.create('/shared')
    await onLeader.sync('/')
    const z1 = await zxids()
    await onF1.close()
    await onLeader.close()
    await waitFor(async () => (await zxids()).every((z) => z === z1[0]), { what: 'members to agree' })
    expect(await zxids()).toEqual([z1[0], z1[0], z1[0]])

    // A local session cannot move: on another server it is expired.
    const local = await rawSession(port(f1))
    local.raw.close()
    const moved = await rawConnect(port(f2), { sessionId: local.sessionId, passwd: local.passwd })
    expect(moved.res !== 'closed' && moved.res.timeOut).toBe(0)
    // On its own server it resumes.
    const home = await connect(e.url(f1), {
      sessionId: hexId(local.sessionId),
      sessionPassword: local.passwd,
    })
    expect(home.sessionId).toBe(hexId(local.sessionId))

    // Its first ephemeral upgrades it: then it moves, ephemeral and all.
    await home.create('/shared/eph', '', { mode: 'ephemeral' })
    const password = home.sessionPassword
    const id = home.sessionId
    // Another client takes the session over on the other follower (as after a lost connection).
    const mover = await connect(e.url(f2), { sessionId: id, sessionPassword: password })
    expect(mover.sessionId).toBe(id)
    expect(await mover.exists('/shared/eph')).not.toBeNull()
    const watcher = await connect(e.url(leader))
    expect((await watcher.getData('/shared/eph')).stat.ephemeralOwner).toBe(id)
    // Closing the (now global) session deletes its ephemeral everywhere.
    await mover.close()
    await watcher.sync('/')
    expect(await watcher.exists('/shared/eph')).toBeNull()

    // Upgraded on a follower and then left without a connection: the leader expires it, ephemeral and all.
    const gone = await rawSession(port(f2), 400)
    gone.raw.sendRequest(1, {
      op: OpCode.create,
      path: '/shared/eph2',
      data: null,
      acl: [...OPEN_ACL_UNSAFE],
      flags: CreateFlag.ephemeral,
      ttl: 0,
    })
    expect((await gone.raw.reply(1)).err).toBe(0)
    await watcher.sync('/')
    expect((await watcher.getData('/shared/eph2')).stat.ephemeralOwner).toBe(hexId(gone.sessionId))
    gone.raw.close()
    await waitFor(async () => (await watcher.exists('/shared/eph2')) === null, {
      timeoutMs: 15_000,
      what: "the upgraded session's expiry to delete its ephemeral",
    })
  })
})
