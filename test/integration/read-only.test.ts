/**
 * Read-only mode against a real 3-server ensemble started with --read-only:
 * with the leader and the other follower killed, the surviving follower
 * answers `isro` with `ro`, gives sessions only to clients that ask for
 * read-only (the SDK's canBeReadOnly, kazoo's read_only, zkCli's -r), serves
 * their reads and answers every write and sync NOT_READ_ONLY; a client that
 * had a session keeps its session id, one that never had one gets a session
 * of the server's own. With a server back, the quorum closes the read-only
 * connections and the SDK clients are read-write again (the one with a
 * local session on a new session), and their writes work.
 *
 * Invariants: one ensemble; every client closed; every wait has a deadline.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { Client, type ClientState, ZkError } from '../../client/index.js'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { ErrorCode } from '../../shared/errors.js'
import { JuteWriter } from '../../shared/jute.js'
import { type ConnectResponse, decodeConnectResponse, encodeConnectRequest } from '../../shared/records.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { canRun, kazooMissing, ZKCLI, zkCliMissing } from '../helpers/prerequisites.js'
import { RawClient } from '../helpers/raw-client.js'
import { waitFor } from '../helpers/wait.js'
import { errorCode } from '../helpers/zk-error.js'

let ensemble: Ensemble | undefined
const clients: Client[] = []

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  await ensemble?.stop()
})

/** A ConnectRequest on a raw connection, as ZooKeeper's clients send it; the ConnectResponse, or 'closed'. */
async function rawConnect(
  port: number,
  c: { sessionId: bigint; passwd: Uint8Array; readOnly: boolean },
): Promise<{ raw: RawClient; res: ConnectResponse | 'closed' }> {
  const raw = await RawClient.connect(port)
  const w = new JuteWriter()
  encodeConnectRequest(w, { protocolVersion: 0, lastZxidSeen: 0n, timeOut: 10_000, ...c })
  raw.sendPacket(w.finish())
  await waitFor(() => raw.packets.length > 0 || raw.closed, { what: 'ConnectResponse' })
  return { raw, res: raw.packets.length > 0 ? decodeConnectResponse(raw.packets.shift()!) : 'closed' }
}

describe('read-only mode', () => {
  it('a follower without a quorum serves read-only clients, refuses writes with NOT_READ_ONLY, and they move back when the quorum returns', async () => {
    const e = await startEnsemble({ extraArgs: ['--read-only'] })
    ensemble = e
    const leader = await e.leader()
    const [survivor, other] = [1, 2, 3].filter((id) => id !== leader) as [number, number]
    const port = e.members[survivor - 1]!.clientPort
    const isro = () => fourLetterWord('127.0.0.1', port, 'isro', 2_000)
    expect(await isro()).toBe('rw')

    const setup = await Client.connect(e.connectString, { connectTimeoutMs: 15_000 })
    clients.push(setup)
    await setup.create('/ro', 'before')
    await setup.create('/ro/a')

    // A client that had a session before, connected to the survivor.
    const states: ClientState[] = []
    const had = await Client.connect(e.url(survivor), {
      canBeReadOnly: true,
      sessionTimeoutMs: 20_000,
      connectTimeoutMs: 15_000,
      reconnectDelayMs: 100,
    })
    clients.push(had)
    had.on('state', (s) => states.push(s))
    expect(had.state).toBe('connected')
    expect(had.readOnly).toBe(false)
    const sessionBefore = had.sessionId
    await had.sync('/ro')

    await e.kill9(leader)
    await e.kill9(other)
    await waitFor(() => had.state === 'connectedReadOnly', { timeoutMs: 20_000, what: 'connectedReadOnly' })
    expect(await isro()).toBe('ro')
    expect(had.readOnly).toBe(true)
    expect(had.sessionId).toBe(sessionBefore) // the ensemble's session, resumed read-only
    expect(states).toContain('disconnected')

    // Reads work; writes, sync and exactly-once writes are NOT_READ_ONLY.
    expect(new TextDecoder().decode((await had.getData('/ro')).data)).toBe('before')
    expect(await had.getChildren('/ro')).toEqual(['a'])
    expect((await had.getChildrenPage('/ro')).children).toEqual(['a'])
    expect(await errorCode(had.create('/ro/b'))).toBe('NOT_READ_ONLY')
    expect(await errorCode(had.setData('/ro', 'x'))).toBe('NOT_READ_ONLY')
    expect(await errorCode(had.delete('/ro/a'))).toBe('NOT_READ_ONLY')
    expect(await errorCode(had.multi([{ op: 'create', path: '/ro/c' }]))).toBe('NOT_READ_ONLY')
    expect(await errorCode(had.sync('/ro'))).toBe('NOT_READ_ONLY')

    // A client that does not ask for read-only gets no session here.
    const refused = await Client.connect(e.url(survivor), { connectTimeoutMs: 2_000 }).then(
      (c) => {
        clients.push(c)
        return 'connected'
      },
      (err: unknown) => (ZkError.is(err) ? err.code : String(err)),
    )
    expect(refused).toBe(ErrorCode.CONNECTION_LOSS)

    // A client that never had a session gets one of the server's own (not the ensemble's).
    const fresh = await Client.connect(e.connectString, {
      canBeReadOnly: true,
      connectTimeoutMs: 15_000,
      reconnectDelayMs: 100,
    })
    clients.push(fresh)
    expect(fresh.state).toBe('connectedReadOnly')
    const localSession = fresh.sessionId
    expect(new TextDecoder().decode((await fresh.getData('/ro')).data)).toBe('before')
    expect(await errorCode(fresh.create('/ro/f'))).toBe('NOT_READ_ONLY')

    // On the wire, as kazoo does it: a local session resumed after its connection dropped (within
    // its timeout), a wrong password refused, a client that does not ask for read-only closed.
    const zero = new Uint8Array(16)
    const first = await rawConnect(port, { sessionId: 0n, passwd: zero, readOnly: true })
    if (first.res === 'closed') throw new Error('read-only ConnectRequest refused')
    expect(first.res.readOnly).toBe(true)
    expect(first.res.timeOut).toBeGreaterThan(0) // 10 s asked, clamped to the server's maximum
    first.raw.close()
    const again = await rawConnect(port, {
      sessionId: first.res.sessionId,
      passwd: first.res.passwd,
      readOnly: true,
    })
    expect(again.res).toMatchObject({
      readOnly: true,
      sessionId: first.res.sessionId,
      timeOut: first.res.timeOut,
    })
    again.raw.close()
    const wrong = await rawConnect(port, { sessionId: first.res.sessionId, passwd: zero, readOnly: true })
    expect(wrong.res).toMatchObject({ timeOut: 0 })
    wrong.raw.close()
    const rw = await rawConnect(port, { sessionId: 0n, passwd: zero, readOnly: false })
    expect(rw.res).toBe('closed')

    // kazoo (read_only=True) and zkCli (-r) the same way.
    if (canRun('kazoo read-only (read-only.test.ts)', kazooMissing())) {
      const script = fileURLToPath(new URL('./fixtures/kazoo-read-only.py', import.meta.url))
      const r = spawnSync('/usr/bin/python3', [script, `127.0.0.1:${port}`, '/ro'], {
        encoding: 'utf8',
        timeout: 60_000,
      })
      expect(r.stdout.trim().split('\n'), r.stderr).toEqual([
        'ok state',
        'ok read',
        'ok write-refused',
        'ok sync-refused',
      ])
    }
    if (canRun('zkCli read-only (read-only.test.ts)', zkCliMissing())) {
      const zkCli = (...args: string[]): string => {
        const r = spawnSync(ZKCLI, ['-r', '-server', `127.0.0.1:${port}`, ...args], {
          encoding: 'utf8',
          timeout: 60_000,
          env: { ...process.env, JVMFLAGS: '-Xmx256m', ZOO_LOG4J_PROP: 'ERROR,CONSOLE' },
        })
        return `${r.stdout}${r.stderr}`
      }
      const got = zkCli('get', '/ro')
      expect(got).toContain('state:ConnectedReadOnly')
      expect(got).toContain('before')
      expect(zkCli('create', '/ro/zkcli', 'x')).toContain('Not a read-only call: /ro/zkcli')
    }

    // A server back: a quorum again. The read-only connections are closed; the clients find
    // the read-write servers and are read-write again.
    await e.start(leader)
    await waitFor(async () => (await isro().catch(() => '')) === 'rw', {
      timeoutMs: 30_000,
      what: 'quorum back',
    })
    await waitFor(() => had.state === 'connected' && fresh.state === 'connected', {
      timeoutMs: 30_000,
      what: 'both clients read-write again',
    })
    expect(had.sessionId).toBe(sessionBefore)
    expect(fresh.sessionId).not.toBe(localSession) // a local session is not the ensemble's: a new one
    await had.create('/ro/b')
    await fresh.create('/ro/f')
    // The setup client (no canBeReadOnly) was cut off too: a request made while it reconnects fails
    // at its next failed attempt (a killed server), so wait for it; then sync, as its server may not
    // have applied the others' writes yet.
    await waitFor(() => setup.state === 'connected', { timeoutMs: 30_000, what: 'the setup client back' })
    await setup.sync('/ro')
    expect(await setup.getChildren('/ro')).toEqual(['a', 'b', 'f'])
  }, 180_000)

  it('a client on a read-only server finds a read-write one by `isro` and moves there while the read-only server stays cut off', async () => {
    const e = ensemble!
    for (const m of e.members)
      if (m.proc?.child.exitCode !== null || m.proc.child.signalCode !== null) await e.start(m.id)
    const leader = await e.leader(30_000)
    const cut = [1, 2, 3].find((id) => id !== leader)!
    const rest = [1, 2, 3].filter((id) => id !== cut)
    const port = e.members[cut - 1]!.clientPort
    e.partition(cut, rest)
    await waitFor(
      async () => (await fourLetterWord('127.0.0.1', port, 'isro', 2_000).catch(() => '')) === 'ro',
      {
        timeoutMs: 30_000,
        what: 'the cut-off server to be read-only',
      },
    )
    // The cut-off server first in the list, and no shuffling (random() near 1 swaps nothing).
    const servers = [cut, ...rest].map((id) => e.url(id)).join(',')
    const c = await Client.connect(servers, {
      canBeReadOnly: true,
      random: () => 0.9999,
      reconnectDelayMs: 100,
      connectTimeoutMs: 15_000,
    })
    clients.push(c)
    expect(c.state).toBe('connectedReadOnly')
    expect(c.server).toBe(`${e.url(cut)}/`)
    await waitFor(() => c.state === 'connected', { timeoutMs: 30_000, what: 'the probe to move the client' })
    expect(c.server).not.toBe(`${e.url(cut)}/`)
    expect(await fourLetterWord('127.0.0.1', port, 'isro', 2_000)).toBe('ro') // still cut off
    await c.create('/ro/moved')
    e.heal()
  }, 120_000)
})
