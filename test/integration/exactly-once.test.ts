/**
 * Exactly-once writes (issue 16, item 1) with real server processes on
 * 127.0.0.1.
 *
 * - On the wire: a write sent with ConclaveOpCode.exactlyOnce and sent again
 *   (same session, same xid) on another connection is answered with its
 *   first result — the same sequential name and the same Stat — and made
 *   once; the memory of it survives a leader killed with -9, a follower that
 *   caught up by SNAP and then leads, and a restart of every server; past
 *   sessionWriteResultsMax a re-sent write is answered OUTCOME_UNKNOWN; the
 *   leader's metrics count the writes answered from the write memory and the
 *   one found forgotten, and every member's count the results it holds.
 * - The SDK through a proxy whose connections are cut: pipelined writes all
 *   succeed, each applied once; with `exactlyOnce: false`, or against
 *   Apache ZooKeeper (whose handshake ignores the SDK's Conclave trailer),
 *   in-flight writes fail with CONNECTION_LOSS as they always did.
 * - A write issued just after its connection was lost (a follower's answer
 *   and its close, on losing its leader, read in one go) waits through the
 *   failed attempts and is applied once (the history's rare failure).
 * - A history: writers on a 3-server ensemble through repeated kill -9 of
 *   the leader (bounded in time and count); no write is reported failed,
 *   and each appears exactly once; SharedCounter.increment is exact.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it, onTestFailed } from 'vitest'
import { Client, type ConnectOptions, ZkError } from '../../client/index.js'
import { SharedCounter } from '../../recipes/index.js'
import { JuteReader, JuteWriter } from '../../shared/jute.js'
import { OpCode } from '../../shared/opcodes.js'
import {
  ConclaveFeature,
  decodeConnectResponse,
  encodeConnectRequest,
  encodeRequest,
  type Request,
  readReplyHeader,
} from '../../shared/records.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { parseExposition, sampleValue } from '../helpers/prometheus-text.js'
import { RawClient } from '../helpers/raw-client.js'
import { type TargetInstance, TcpProxy, targetCanRun, targets, targetTitle } from '../helpers/targets.js'
import { freePort, tempDir, waitFor } from '../helpers/wait.js'

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }]
const dec = new TextDecoder()

let ensemble: Ensemble | undefined
const clients: Client[] = []
const raws: RawClient[] = []
const dirs: { remove(): void }[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {})
  for (const r of raws.splice(0)) r.close()
  await ensemble?.stop()
  ensemble = undefined
  for (const d of dirs.splice(0)) d.remove()
})

afterAll(stopAllConclave)

async function connect(connectString: string, opts: ConnectOptions = {}): Promise<Client> {
  const c = await Client.connect(connectString, {
    sessionTimeoutMs: 20_000,
    connectTimeoutMs: 15_000,
    reconnectDelayMs: 0,
    ...opts,
  })
  clients.push(c)
  return c
}

/** A session on the wire, as the SDK's exactly-once writes are: this test picks the xids. */
class WireSession {
  sessionId = 0n
  password = new Uint8Array(16)
  private conn: RawClient | undefined

  /** Connects to `port`, creating the session or resuming it; the server must grant exactly-once. */
  async open(port: number): Promise<void> {
    this.conn?.close()
    const c = await RawClient.connect(port)
    raws.push(c)
    const w = new JuteWriter()
    encodeConnectRequest(w, {
      protocolVersion: 0,
      lastZxidSeen: 0n,
      timeOut: 30_000,
      sessionId: this.sessionId,
      passwd: this.password,
      readOnly: false,
      features: ConclaveFeature.exactlyOnce,
    })
    c.sendPacket(w.finish())
    await waitFor(() => c.packets.length > 0 || c.closed, { what: 'ConnectResponse' })
    if (c.packets.length === 0) throw new Error(`port ${port} closed the connection`)
    const res = decodeConnectResponse(c.packets.shift()!)
    // Expired (or a wrong password): final, so not one of the errors untilServed waits out.
    if (res.timeOut <= 0) throw new Error(`session 0x${this.sessionId.toString(16)} expired (timeOut 0)`)
    expect(res.features).toBe(ConclaveFeature.exactlyOnce)
    this.sessionId = res.sessionId
    this.password = res.passwd.slice()
    this.conn = c
  }

  /** Sends an exactly-once write; resolves to its error number and its reply body (bytes after the header). */
  async write(xid: number, req: Request, ackXid = xid): Promise<{ err: number; body: Uint8Array }> {
    const c = this.conn!
    const w = new JuteWriter()
    encodeRequest(w, xid, req, { ackXid })
    c.sendPacket(w.finish())
    let reply: { err: number; body: Uint8Array } | undefined
    await waitFor(
      () => {
        const at = c.packets.findIndex((p) => readReplyHeader(new JuteReader(p)).xid === xid)
        if (at < 0) {
          if (c.closed) throw new Error('connection closed')
          return false
        }
        const p = c.packets.splice(at, 1)[0]!
        // The ReplyHeader is xid, zxid, err (16 bytes); the zxid may differ between answers.
        reply = { err: readReplyHeader(new JuteReader(p)).err, body: p.slice(16) }
        return true
      },
      { timeoutMs: 20_000, what: `the reply to xid ${xid}` },
    )
    return reply!
  }
}

/** A sequential create2 (the reply carries the Stat). */
const seq = (prefix: string, data: string): Request => ({
  op: OpCode.create2,
  path: prefix,
  data: new TextEncoder().encode(data),
  acl: OPEN,
  flags: 2,
  ttl: 0,
})

function pathOf(body: Uint8Array): string {
  return new JuteReader(body).string('path')
}

/** Retries `fn` while the ensemble has no leader to take it (a connect refused, CONNECTION_LOSS). */
async function untilServed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  return waitFor(
    async () => {
      try {
        return { v: await fn() }
      } catch (err) {
        if (err instanceof Error && /refused|closed|CONNECTION_LOSS|timed out/.test(err.message))
          return undefined
        throw err
      }
    },
    { timeoutMs: 30_000, intervalMs: 100, what },
  ).then((x) => x.v)
}

describe('exactly-once writes on the wire, 3-server ensemble', () => {
  it('a re-sent write gets its first result (same name, same Stat) after a kill -9 of the leader, from a follower that caught up by SNAP and leads, and after a restart of every server', async () => {
    // Frequent snapshots, so a follower that misses 700 writes is brought back by SNAP. The wire
    // session sends no pings: it must outlive the 3,000 writes, the SNAP and the election with the
    // 30 s it asks for, not the 4 s (20 ticks) the ensemble would grant (on a loaded machine it
    // expired, and the resume waited out its 30 s).
    ensemble = await startEnsemble({
      extraArgs: ['--snap-count', '200', '--log-level', 'info', '--max-session-timeout', '30000'],
    })
    const e = ensemble
    const port = (id: number) => e.members.find((m) => m.id === id)!.clientPort
    const leader = await e.leader()
    const others = e.members.map((m) => m.id).filter((id) => id !== leader)
    // `snapped` will miss writes, catch up by SNAP, and (the higher id, equal history) lead next.
    const snapped = Math.max(...others)
    const plain = Math.min(...others)
    const s = new WireSession()
    await s.open(port(plain))
    const setup = await connect(e.url(plain))
    await setup.create('/eo', '')
    const first = await s.write(7, seq('/eo/s-', 'seven'))
    expect(first.err).toBe(0)
    expect(pathOf(first.body)).toBe('/eo/s-0000000000')
    // Sent again on the same connection: answered from memory.
    expect(await s.write(7, seq('/eo/s-', 'seven'))).toEqual(first)

    await e.kill9(snapped)
    // A write the SNAPped server learns of only from the snapshot: 3,000 writes after it, the
    // leader has snapshotted past it, and purged the log back to its three newest snapshots.
    const second = await s.write(8, seq('/eo/s-', 'eight'), 7)
    expect(pathOf(second.body)).toBe('/eo/s-0000000001')
    const bulk: Promise<unknown>[] = []
    for (let i = 0; i < 3000; i++) bulk.push(setup.setData('/eo', String(i)))
    await Promise.all(bulk)
    const leaderOutput = () => e.members.find((m) => m.id === leader)!.proc!.output()
    await e.start(snapped)
    await waitFor(() => leaderOutput().includes('"snapshot sent"'), { timeoutMs: 30_000, what: 'the SNAP' })
    await waitFor(async () => (await e.status(snapped).catch(() => ({ Mode: '' }))).Mode === 'follower', {
      timeoutMs: 30_000,
      what: 'the SNAPped follower to serve',
    })

    // kill -9 of the leader: the SNAPped server, with the higher id, is elected.
    await e.kill9(leader)
    expect(await e.leader(30_000)).toBe(snapped)
    await untilServed('the session on the new leader', () => s.open(port(plain)))
    expect(await untilServed('the re-sent write', () => s.write(7, seq('/eo/s-', 'seven')))).toEqual(first)
    expect(await s.write(8, seq('/eo/s-', 'eight'), 7)).toEqual(second)
    await e.start(leader)

    // Every server killed and started again: the memory comes back from disk.
    for (const m of e.members) await e.kill9(m.id)
    for (const m of e.members) await e.start(m.id)
    await e.leader(30_000)
    await untilServed('the session after the restart', () => s.open(port(plain)))
    expect(await untilServed('the re-sent write', () => s.write(8, seq('/eo/s-', 'eight'), 7))).toEqual(
      second,
    )
    const reader = await connect(e.url(plain))
    await reader.sync('/eo')
    expect(await reader.getChildren('/eo')).toEqual(['s-0000000000', 's-0000000001'])
    expect(dec.decode((await reader.getData('/eo/s-0000000001')).data)).toBe('eight')
  })

  it('answers OUTCOME_UNKNOWN to a write re-sent after sessionWriteResultsMax newer results pushed it out, and remembers the newest', async () => {
    const dir = tempDir('conclave-eo-config-')
    dirs.push(dir)
    const file = join(dir.path, 'conclave.json')
    writeFileSync(file, JSON.stringify({ sessionWriteResultsMax: 2 }))
    const admin = new Map<number, number>()
    for (const id of [1, 2, 3]) admin.set(id, await freePort())
    ensemble = await startEnsemble({
      extraArgs: ['--config', file],
      memberArgs: (id) => ['--admin-port', String(admin.get(id))],
    })
    const e = ensemble
    const leader = await e.leader()
    const follower = e.members.find((m) => m.id !== leader)!
    const s = new WireSession()
    await s.open(follower.clientPort)
    const setup = await connect(e.url(leader))
    await setup.create('/lim', '')
    // The client acknowledges nothing (ack 1): results 1 and 2 are pushed out by 3 and 4.
    const results = []
    for (let xid = 1; xid <= 4; xid++) results.push(await s.write(xid, seq('/lim/s-', String(xid)), 1))
    expect((await s.write(1, seq('/lim/s-', '1'), 1)).err).toBe(-200)
    expect(await s.write(4, seq('/lim/s-', '4'), 1)).toEqual(results[3])
    expect(await s.write(3, seq('/lim/s-', '3'), 1)).toEqual(results[2])
    expect((await setup.getChildren('/lim')).length).toBe(4)
    const metrics = async (id: number) =>
      parseExposition(await (await fetch(`http://127.0.0.1:${admin.get(id)}/metrics`)).text())
    // The leader answered the re-sends (followers forward them): two from the memory, one forgotten.
    const lm = await metrics(leader)
    expect(sampleValue(lm, 'conclave_exactly_once_remembered_total')).toBe(2)
    expect(sampleValue(lm, 'conclave_exactly_once_forgotten_total')).toBe(1)
    expect(sampleValue(lm, 'conclave_exactly_once_in_flight_total')).toBe(0)
    // The memory is replicated state: every member holds the wire session's two newest results,
    // and the SDK session's one (its create of /lim).
    await setup.sync('/')
    for (const m of e.members) {
      const fm = await metrics(m.id)
      expect(sampleValue(fm, 'conclave_exactly_once_memory_results')).toBe(3)
      expect(sampleValue(fm, 'conclave_exactly_once_memory_sessions')).toBe(2)
      expect(sampleValue(fm, 'conclave_exactly_once_memory_bytes')).toBeGreaterThan(0)
    }
    expect(sampleValue(await metrics(follower.id), 'conclave_exactly_once_remembered_total')).toBe(0)
  })
})

describe.each(targets.map((t) => ({ target: t, title: targetTitle(t) })))(
  'the SDK through a cut connection, $title',
  ({ target }) => {
    let server: TargetInstance | undefined
    let proxy: TcpProxy | undefined

    afterEach(async () => {
      await proxy?.stop()
      proxy = undefined
      await server?.stop()
      server = undefined
    })

    it.runIf(targetCanRun(target, 'exactly-once writes through a cut connection (exactly-once.test.ts)'))(
      'exactly-once: pipelined writes all succeed, each applied once; off (or against ZooKeeper): in-flight writes fail with CONNECTION_LOSS',
      async () => {
        server = await target.start({ tickTimeMs: 500 })
        proxy = await TcpProxy.start(server.connectString)
        const through = proxy.connectString(server.connectString)
        const conclave = target.name === 'conclave'
        for (const exactlyOnce of [true, false]) {
          const c = await connect(through, { exactlyOnce })
          expect(c.exactlyOnce).toBe(exactlyOnce && conclave)
          const root = await c.create(`/cut-${exactlyOnce}`, '')
          const n = 300
          const writes = Array.from({ length: n }, (_, i) =>
            c.create(`${root}/n-`, String(i), { mode: 'persistentSequential' }).then(
              (path) => ({ path }),
              (err: unknown) => ({ err: ZkError.is(err) ? err.code : String(err) }),
            ),
          )
          // Cut while the pipeline is full, and again while the re-sent writes are on their way.
          proxy.cut()
          await waitFor(() => c.state === 'connected', { what: 'reconnect' })
          proxy.cut()
          const outcomes = await Promise.all(writes)
          await waitFor(() => c.state === 'connected', { what: 'reconnect' })
          const failed = outcomes.filter((o) => 'err' in o)
          const children = await c.getChildren(root)
          if (exactlyOnce && conclave) {
            expect(failed).toEqual([])
            expect(children.length).toBe(n)
            // Each write's own node, holding its own data: a re-sent create got its first name.
            for (const [i, o] of outcomes.entries())
              expect(dec.decode((await c.getData((o as { path: string }).path)).data)).toBe(String(i))
          } else {
            expect(failed.length).toBeGreaterThan(0)
            expect(new Set(failed.map((o) => (o as { err: string }).err))).toEqual(
              new Set(['CONNECTION_LOSS']),
            )
            expect(children.length).toBeLessThanOrEqual(n)
          }
        }
      },
    )
  },
)

describe('an exactly-once write issued in the moment its connection is lost, 3-server ensemble', () => {
  let proxy: TcpProxy | undefined

  afterEach(async () => {
    await proxy?.stop()
    proxy = undefined
  })

  it("a reply and the follower's close read in one go (it lost its leader): the write issued after the reply waits through failed attempts and is applied once", async () => {
    // The history test's rare failure: a follower answers, then closes its connections on
    // losing its leader; the client reads both at once, so the caller's next write is issued
    // after the loss, and the SDK failed it CONNECTION_LOSS at the first failed attempt,
    // although it was never sent. Sessions get 20 s (readTimeout 13 s) to outlast the hold.
    ensemble = await startEnsemble({ extraArgs: ['--max-session-timeout', '30000'] })
    const e = ensemble
    const leader = await e.leader()
    const follower = e.members.find((m) => m.id !== leader)!.id
    const peers = e.members.map((m) => m.id).filter((id) => id !== follower)
    proxy = await TcpProxy.start(e.url(follower))
    const p = proxy
    // Its only server is the follower, through the proxy; attempts paced (at most 200 ms apart).
    const c = await connect(p.connectString(e.url(follower)), { reconnectDelayMs: 100 })
    expect(c.exactlyOnce).toBe(true)
    await c.create('/gap', '')
    p.holdReplies()
    let stateAtIssue = ''
    const outcome = c.getData('/gap').then(() => {
      stateAtIssue = c.state
      return c.create('/gap/n-', 'x', { mode: 'persistentSequential' }).then(
        (path) => path,
        (err: unknown) => String(err),
      )
    })
    await waitFor(() => p.heldBytes > 0, { what: "the follower's answer to the read" })
    const answered = p.heldBytes
    e.partition(follower, peers)
    await waitFor(async () => (await e.status(follower).catch(() => ({ Mode: '' }))).Mode === 'looking', {
      timeoutMs: 20_000,
      what: 'the follower to lose its leader',
    })
    await waitFor(() => p.heldBytes > answered, { what: "the follower's close frame" })
    const attempts = p.connectionsAccepted
    p.releaseReplies()
    // The client tries the follower again: looking, it closes each attempt unanswered.
    await waitFor(() => p.connectionsAccepted >= attempts + 2, { what: 'failed attempts' })
    e.heal()
    expect(await outcome).toBe('/gap/n-0000000000')
    // The read's answer and the close came in one read: the write was issued after the loss.
    expect(stateAtIssue).toBe('disconnected')
    expect(await c.getChildren('/gap')).toEqual(['n-0000000000'])
  })
})

describe('a history through repeated kill -9 of the leader, 3-server ensemble', () => {
  it('every write of every writer succeeds, and is applied exactly once; SharedCounter.increment is exact', async () => {
    ensemble = await startEnsemble({ extraArgs: ['--log-level', 'info'] })
    const e = ensemble
    // On failure: a timeline (kills, writers' states, failed writes) and every server's log,
    // killed incarnations included, written to a directory the error names.
    const t0 = Date.now()
    const timeline: string[] = []
    const note = (what: string) => timeline.push(`${String(Date.now() - t0).padStart(6)} ms ${what}`)
    const logs: string[] = []
    const keepLog = (id: number) => logs.push(`=== server ${id}\n${e.members[id - 1]!.proc!.output()}`)
    onTestFailed(() => {
      const dir = tempDir('conclave-eo-history-')
      for (const m of e.members) keepLog(m.id)
      writeFileSync(join(dir.path, 'timeline.txt'), `${timeline.join('\n')}\n`)
      writeFileSync(join(dir.path, 'servers.log'), logs.join('\n'))
      console.log(`history failed: timeline and server logs in ${dir.path}`)
    })
    const WRITERS = 6
    const KILLS = 3
    const deadline = Date.now() + 120_000
    const setup = await connect(e.connectString)
    await setup.create('/h', '')
    const writers = await Promise.all(
      Array.from({ length: WRITERS }, () => connect(e.connectString, { sessionTimeoutMs: 30_000 })),
    )
    // Connections lost with writes in flight: the writer's server died, or lost its leader.
    let disconnects = 0
    for (const [w, zk] of writers.entries())
      zk.on('state', (s) => {
        if (s === 'disconnected') disconnects++
        note(`writer ${w} (session ${zk.sessionId}) ${s}${s === 'connected' ? ` to ${zk.server}` : ''}`)
      })
    const counter = (zk: Client) => new SharedCounter(zk, '/h-counter')
    // Writer w creates /h/w<w>-<seq> holding "w:i", and increments the shared counter every
    // third write. Everything it was told succeeded goes in `acked`; nothing may fail.
    const acked: { writer: number; i: number; path: string }[] = []
    const failures: string[] = []
    let increments = 0
    let stop = false
    const runs = writers.map(async (zk, w) => {
      for (let i = 0; !stop && i < 5_000 && Date.now() < deadline; i++) {
        try {
          const path = await zk.create(`/h/w${w}-`, `${w}:${i}`, { mode: 'persistentSequential' })
          acked.push({ writer: w, i, path })
          if (i % 3 === 0) {
            await counter(zk).increment()
            increments++
          }
        } catch (err) {
          failures.push(`writer ${w} write ${i}: ${ZkError.is(err) ? err.code : String(err)}`)
          note(`writer ${w} write ${i} failed: ${String(err)}`)
        }
      }
    })
    for (let k = 0; k < KILLS; k++) {
      const before = acked.length
      await waitFor(() => acked.length >= before + 100, {
        timeoutMs: 60_000,
        what: `writes before kill ${k + 1}`,
      })
      const leader = await e.leader(30_000)
      note(`kill -9 of leader ${leader} (${acked.length} acked)`)
      await e.kill9(leader)
      keepLog(leader)
      await waitFor(() => acked.length >= before + 150, {
        timeoutMs: 60_000,
        what: `writes after kill ${k + 1}`,
      })
      note(`start ${leader} (${acked.length} acked)`)
      await e.start(leader)
    }
    stop = true
    await Promise.all(runs)
    expect(failures).toEqual([])
    expect(disconnects).toBeGreaterThanOrEqual(KILLS)

    const reader = await connect(e.connectString)
    await reader.sync('/h')
    const names = await reader.getChildren('/h')
    // Exactly the acknowledged writes: none lost, none twice (a re-sent create applied again
    // would leave a node no writer was told of).
    expect(names.length).toBe(acked.length)
    expect(new Set(acked.map((a) => a.path)).size).toBe(acked.length)
    const byPath = new Map(acked.map((a) => [a.path, `${a.writer}:${a.i}`]))
    for (const name of names)
      expect(dec.decode((await reader.getData(`/h/${name}`)).data)).toBe(byPath.get(`/h/${name}`))
    // Each writer's writes all there, in order.
    for (let w = 0; w < WRITERS; w++) {
      const mine = acked.filter((a) => a.writer === w).map((a) => a.i)
      expect(mine).toEqual(Array.from({ length: mine.length }, (_, i) => i))
    }
    expect(await counter(reader).get()).toBe(increments)
    console.log(
      `history: ${acked.length} creates and ${increments} increments by ${WRITERS} writers through ${KILLS} kills of the leader (${disconnects} connections lost), none failed`,
    )
  })
})

describe('the SDK keeps at most sessionWriteResultsMax exactly-once writes unanswered', () => {
  let server: ConclaveProcess | undefined
  let proxy: TcpProxy | undefined

  afterEach(async () => {
    await proxy?.stop()
    proxy = undefined
    await server?.stop()
    server = undefined
  })

  it('a connection lost with many more writes issued than the server remembers: every write succeeds, once (no OUTCOME_UNKNOWN)', async () => {
    // Before the window, all 200 went out at once with the same ackXid; the server applied them
    // and kept the newest 8 results, so when the connection was lost before the replies arrived
    // the re-sent oldest ones were answered OUTCOME_UNKNOWN (the integration tests' 3,000
    // pipelined setData through a read timeout did exactly that with the default 1,000).
    const dir = tempDir('conclave-eo-window-')
    dirs.push(dir)
    const file = join(dir.path, 'conclave.json')
    writeFileSync(file, JSON.stringify({ sessionWriteResultsMax: 8 }))
    server = await startConclave({ extraArgs: ['--config', file] })
    proxy = await TcpProxy.start(server.connectString)
    const c = await connect(proxy.connectString(server.connectString))
    const direct = await connect(server.connectString)
    const root = await c.create('/window', '')
    const n = 200
    // The server's replies stop at the proxy: nothing is answered as far as the SDK knows.
    proxy.holdReplies()
    const writes = Array.from({ length: n }, (_, i) =>
      c.create(`${root}/n-`, String(i), { mode: 'persistentSequential' }).then(
        (path) => ({ path }),
        (err: unknown) => ({ err: ZkError.is(err) ? err.code : String(err) }),
      ),
    )
    // The server applies what it was sent: the SDK's window (8), not all 200.
    await waitFor(async () => (await direct.getChildren(root)).length >= 8, { what: 'the first 8 applied' })
    const applied = async () => (await direct.getChildren(root)).length
    await direct.sync(root)
    const appliedBeforeCut = await applied()
    proxy.cut()
    const outcomes = await Promise.all(writes)
    expect(outcomes.filter((o) => 'err' in o)).toEqual([])
    expect(appliedBeforeCut).toBe(8)
    const children = await direct.getChildren(root)
    expect(children.length).toBe(n)
    for (const [i, o] of outcomes.entries())
      expect(dec.decode((await direct.getData((o as { path: string }).path)).data)).toBe(String(i))
  })
})
