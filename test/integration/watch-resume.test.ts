/**
 * Watches that resume (issue 16, item 2), against real server processes.
 *
 * Client A reaches its server through a TCP proxy the test can stall; a
 * control client C, never cut off, holds the same persistent-recursive
 * watch, so C's events (type, path, zxid) are the truth. While A is cut off
 * a writer makes creates, changes, deletes and a multi that changes one
 * node several times (several events with one zxid); then A comes back.
 *
 * - Standalone: A's events (a zk.watch iterator) are exactly C's — the
 *   missed ones replayed once each, in order, with their zxids, then live
 *   ones; A's TreeCache and NodeCache end equal to the tree without listing
 *   anything again (the server's getChildren count, from its metrics, does
 *   not move) and without a 'resync'; the server counts the resume and the
 *   replayed events.
 * - A history of 5 changes (watchHistoryChangesMax): the resume is older
 *   than it, so the iterator yields one 'resync' and then live events; the
 *   TreeCache walks the tree again ('resynced') and converges.
 * - A NodeCache whose node did not change while it was away reads nothing
 *   after the reconnect (the server's getData and exists counts stay), and
 *   follows the next change.
 * - The request's bounds, sent raw: a bad path is BAD_ARGUMENTS and sets
 *   nothing; a position the server has not reached is CONNECTION_LOSS; past
 *   watchResumesPerConnectionMax, THROTTLED_OP.
 * - A 3-server ensemble: A is cut off from every member during the writes,
 *   then let back to the others only, so it moves to another member, which
 *   replays from its own history: A's events are exactly C's.
 *
 * Invariants: every wait has a deadline; every process and proxy is stopped
 * after its test.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Client, type WatchEvent, type WatchStreamEvent } from '../../client/index.js'
import { NodeCache, TreeCache } from '../../recipes/index.js'
import { errorNumber } from '../../shared/errors.js'
import { ConclaveOpCode } from '../../shared/opcodes.js'
import type { SetWatchesRequest } from '../../shared/records.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { parseExposition, sampleValue } from '../helpers/prometheus-text.js'
import { RawClient } from '../helpers/raw-client.js'
import { TcpProxy } from '../helpers/targets.js'
import { freePort, tempDir, waitFor } from '../helpers/wait.js'

const clients: Client[] = []
const proxies: TcpProxy[] = []
const servers: ConclaveProcess[] = []
let ensemble: Ensemble | undefined

async function connect(connectString: string): Promise<Client> {
  const c = await Client.connect(connectString, {
    sessionTimeoutMs: 20_000,
    connectTimeoutMs: 15_000,
    reconnectDelayMs: 50,
  })
  clients.push(c)
  return c
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})))
  await Promise.all(proxies.splice(0).map((p) => p.stop()))
  for (const s of servers.splice(0)) {
    await s.stop()
    s.remove()
  }
  await ensemble?.stop()
  ensemble = undefined
})
afterAll(stopAllConclave)

/** A standalone server with an admin port and these settings. */
async function server(
  settings: Record<string, unknown> = {},
): Promise<{ proc: ConclaveProcess; admin: number }> {
  const dir = tempDir('conclave-resume-config-')
  const file = join(dir.path, 'conclave.json')
  writeFileSync(file, JSON.stringify(settings))
  const admin = await freePort()
  const proc = await startConclave({
    tickTime: 200,
    extraArgs: ['--config', file, '--admin-port', String(admin)],
  })
  servers.push(proc)
  return { proc, admin }
}

async function metric(admin: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${admin}/metrics`)
  return sampleValue(parseExposition(await res.text()), name, labels) ?? 0
}

/** Reads of one node the server served (getData, exists). */
async function nodeReads(admin: number): Promise<number> {
  const count = 'conclave_request_duration_seconds_count'
  return (await metric(admin, count, { op: 'getData' })) + (await metric(admin, count, { op: 'exists' }))
}

/** Listings the server served (a TreeCache's walk lists every node it visits). */
async function listings(admin: number): Promise<number> {
  const count = 'conclave_request_duration_seconds_count'
  return (
    (await metric(admin, count, { op: 'getChildren' })) + (await metric(admin, count, { op: 'getChildren2' }))
  )
}

const show = (e: { type: string; path: string; zxid?: number | undefined }): string =>
  `${e.zxid} ${e.type} ${e.path}`

/** Collects a watch iterator's events until it ends. */
function collect(stream: AsyncIterable<WatchStreamEvent>): WatchStreamEvent[] {
  const out: WatchStreamEvent[] = []
  void (async () => {
    for await (const ev of stream) out.push(ev)
  })().catch(() => {})
  return out
}

/** The events missedWrites makes under its root (a recursive watch: no childrenChanged). */
const MISSED_EVENTS = 19

/** The writes made while A is away: creates, changes, deletes, and a multi changing one node three times. */
async function missedWrites(w: Client, root: string): Promise<void> {
  for (let i = 0; i < 10; i++) await w.create(`${root}/gap${i}`, `g${i}`)
  await w.setData(`${root}/a`, 'a-gap')
  await w.setData(`${root}/n`, 'n-gap')
  await w.delete(`${root}/b`)
  await w.multi([
    { op: 'create', path: `${root}/m`, data: 'm0' },
    { op: 'setData', path: `${root}/m`, data: 'm1' },
    { op: 'setData', path: `${root}/m`, data: 'm2' },
    { op: 'create', path: `${root}/m/child`, data: 'c' },
  ])
  await w.create(`${root}/deep`, '')
  await w.create(`${root}/deep/er`, 'x')
}

/** The subtree as the server has it: path=data lines, sorted. */
async function readTree(zk: Client, root: string): Promise<string[]> {
  const out: string[] = []
  const visit = async (p: string): Promise<void> => {
    const [{ data }, kids] = await Promise.all([zk.getData(p), zk.getChildren(p)])
    out.push(`${p}=${new TextDecoder().decode(data)}`)
    await Promise.all(kids.map((k) => visit(`${p}/${k}`)))
  }
  await visit(root)
  return out.sort()
}

function cacheLines(cache: TreeCache): string[] {
  return [...cache.snapshot()].map(([p, n]) => `${p}=${new TextDecoder().decode(n.data)}`).sort()
}

/** The subtree each test starts from: the root, and a, b and n under it. */
async function seed(w: Client, root: string): Promise<void> {
  await w.create(root, 'r')
  for (const k of ['a', 'b', 'n']) await w.create(`${root}/${k}`, `${k}0`)
}

/** Client A, reaching `proc` through a proxy the test can stall. */
async function throughProxy(proc: ConclaveProcess): Promise<{ a: Client; proxy: TcpProxy }> {
  const proxy = await TcpProxy.start(proc.connectString)
  proxies.push(proxy)
  return { a: await connect(proxy.connectString(proc.connectString)), proxy }
}

/** A's recursive watch iterator on `root` (its events in `seen`) and a started TreeCache, its 'resynced' counted. */
async function watchTree(a: Client, root: string) {
  const stream = a.watch(root, { recursive: true })
  const seen = collect(stream)
  const tree = new TreeCache(a, root)
  const counts = { resynced: 0 }
  tree.on('resynced', () => counts.resynced++)
  await tree.start()
  return { stream, seen, tree, counts }
}

describe('watches that resume', () => {
  it('standalone: the missed events are replayed once each, in order, with their zxids; the caches read no tree again', async () => {
    const { proc, admin } = await server()
    const root = '/resume'
    const w = await connect(proc.connectString)
    await seed(w, root)
    const c = await connect(proc.connectString)
    const truth: WatchEvent[] = []
    await c.addWatch(root, 'persistentRecursive', (ev) => truth.push(ev))

    const { a, proxy } = await throughProxy(proc)
    const { stream, seen, tree, counts } = await watchTree(a, root)
    const node = new NodeCache(a, `${root}/n`)
    await node.start()
    // Let the iterator's watch be registered (the first live event reaches it).
    await w.setData(`${root}/a`, 'a1')
    await waitFor(() => seen.length === 1 && truth.length === 1, { what: 'the first event' })

    const listed = await listings(admin)
    proxy.stall()
    await waitFor(() => a.state !== 'connected', { what: 'A to lose its connection' })
    await missedWrites(w, root)
    const missed = MISSED_EVENTS
    await waitFor(() => truth.length === 1 + missed, { what: "C's events of the missed writes" })
    proxy.resume()
    await waitFor(() => a.state === 'connected', { timeoutMs: 15_000, what: 'A to reconnect' })
    await w.setData(`${root}/a`, 'a-live')
    await w.create(`${root}/live`, 'l')

    await waitFor(() => seen.length >= truth.length && truth.length === missed + 3, {
      timeoutMs: 15_000,
      what: "A's events to catch up with C's",
    })
    expect(seen.map(show)).toEqual(truth.map(show))
    expect(truth.every((e) => typeof e.zxid === 'number' && e.zxid > 0)).toBe(true)
    // The multi's Txn: four events, one zxid, all delivered.
    const multi = truth.filter((e) => e.path.startsWith(`${root}/m`))
    expect(multi.map((e) => e.type)).toEqual(['created', 'dataChanged', 'dataChanged', 'created'])
    expect(new Set(multi.map((e) => e.zxid)).size).toBe(1)

    const expected = await readTree(w, root)
    await waitFor(() => cacheLines(tree).join() === expected.join(), { what: 'the TreeCache to converge' })
    await waitFor(() => new TextDecoder().decode(node.current?.data) === 'n-gap', { what: 'the NodeCache' })
    expect(counts.resynced).toBe(0)
    // Nothing was listed again but by readTree (one listing per node): the cache read only the
    // nodes the replayed events named.
    expect(await listings(admin)).toBe(listed + expected.length)
    expect(await metric(admin, 'conclave_watch_resumes_total')).toBe(1)
    expect(await metric(admin, 'conclave_watch_resume_compacted_total')).toBe(0)
    // Replayed to A: the missed events of its two watches (the persistent-recursive one, and the
    // NodeCache's one-shot, whose event is one of them).
    expect(await metric(admin, 'conclave_watch_replayed_events_total')).toBe(missed)
    expect(await metric(admin, 'conclave_watch_history_changes')).toBeGreaterThan(missed)
    await stream.close()
    await tree.close()
    await node.close()
  })

  it("a resume older than the server's history gets one 'resync'; the TreeCache walks the tree again", async () => {
    const { proc, admin } = await server({ watchHistoryChangesMax: 5 })
    const root = '/compacted'
    const w = await connect(proc.connectString)
    await seed(w, root)
    const { a, proxy } = await throughProxy(proc)
    const { stream, seen, tree, counts } = await watchTree(a, root)
    await w.setData(`${root}/a`, 'a1')
    await waitFor(() => seen.length === 1, { what: 'the first event' })

    const listed = await listings(admin)
    proxy.stall()
    await waitFor(() => a.state !== 'connected', { what: 'A to lose its connection' })
    await missedWrites(w, root)
    proxy.resume()
    await waitFor(() => counts.resynced === 1, { timeoutMs: 15_000, what: "the TreeCache's resync" })
    const live = await w.create(`${root}/after`, 'x')
    await waitFor(() => seen.some((e) => e.path === live), { what: 'a live event after the resync' })

    const resyncs = seen.filter((e) => e.type === 'resync')
    expect(resyncs.map((e) => e.path)).toEqual([root])
    // Nothing of the gap before the 'resync' (it is lost); live events after it.
    const at = seen.indexOf(resyncs[0]!)
    expect(seen.slice(1, at)).toEqual([])
    expect(seen[seen.length - 1]).toMatchObject({ type: 'created', path: live })
    expect(seen[seen.length - 1]!.zxid).toBeGreaterThan(resyncs[0]!.zxid)
    const expected = await readTree(w, root)
    await waitFor(() => cacheLines(tree).join() === expected.join(), { what: 'the TreeCache to converge' })
    expect(await listings(admin)).toBeGreaterThan(listed)
    expect(await metric(admin, 'conclave_watch_resume_compacted_total')).toBe(1)
    expect(await metric(admin, 'conclave_watch_history_changes')).toBeLessThanOrEqual(5)
    await stream.close()
    await tree.close()
  })

  it('a NodeCache reads nothing after a reconnect when its node did not change, and follows the next change', async () => {
    const { proc, admin } = await server()
    const w = await connect(proc.connectString)
    await w.create('/quiet', 'q0')
    await w.create('/busy', '')
    const { a, proxy } = await throughProxy(proc)
    const node = new NodeCache(a, '/quiet')
    await node.start()
    const reads = await nodeReads(admin)
    proxy.stall()
    await waitFor(() => a.state !== 'connected', { what: 'A to lose its connection' })
    for (let i = 0; i < 5; i++) await w.create(`/busy/n${i}`, '')
    proxy.resume()
    await waitFor(() => a.state === 'connected', { timeoutMs: 15_000, what: 'A to reconnect' })
    await a.sync('/')
    expect(await nodeReads(admin)).toBe(reads)
    await w.setData('/quiet', 'q1')
    await waitFor(() => new TextDecoder().decode(node.current?.data) === 'q1', { what: 'the NodeCache' })
    await node.close()
  })

  it('the resume request is checked: bad paths, a position ahead of the server, too many resumes', async () => {
    const { proc } = await server({ watchResumesPerConnectionMax: 3 })
    const raw = await RawClient.session(proc.port)
    const resume = (xid: number, from: number, path: string): Promise<{ err: number }> => {
      const req: SetWatchesRequest = {
        op: ConclaveOpCode.resumeWatches,
        relativeZxid: from,
        dataWatches: [],
        existWatches: [],
        childWatches: [],
        persistentWatches: [],
        persistentRecursiveWatches: [path],
      }
      raw.sendRequest(xid, req)
      return raw.reply(xid)
    }
    try {
      expect((await resume(1, 0, 'no-slash')).err).toBe(errorNumber('BAD_ARGUMENTS'))
      expect((await resume(2, 2 ** 40, '/')).err).toBe(errorNumber('CONNECTION_LOSS'))
      expect((await resume(3, 0, '/')).err).toBe(0)
      expect((await resume(4, 0, '/')).err).toBe(0)
      expect((await resume(5, 0, '/')).err).toBe(errorNumber('THROTTLED_OP'))
    } finally {
      raw.close()
    }
  })

  it('3-server ensemble: moved to another server, the client gets every missed event once, in order', async () => {
    ensemble = await startEnsemble()
    const e = ensemble
    const leader = await e.leader()
    const root = '/moved'
    const w = await connect(e.url(leader))
    await seed(w, root)
    // A reaches each member through a proxy of its own; the member A is on, by its proxy's port.
    const byPort = new Map<number, { id: number; proxy: TcpProxy }>()
    for (const m of e.members) {
      const proxy = await TcpProxy.start(e.url(m.id))
      proxies.push(proxy)
      byPort.set(proxy.port, { id: m.id, proxy })
    }
    const a = await connect([...byPort.values()].map((p) => `ws://127.0.0.1:${p.proxy.port}`).join(','))
    const memberOfA = () => (a.server === undefined ? undefined : byPort.get(Number(new URL(a.server).port)))
    const first = memberOfA()!.id
    const other = e.members.map((m) => m.id).find((id) => id !== first)!
    const c = await connect(e.url(other))
    const truth: WatchEvent[] = []
    await c.addWatch(root, 'persistentRecursive', (ev) => truth.push(ev))
    const stream = a.watch(root, { recursive: true })
    const seen = collect(stream)
    await w.setData(`${root}/a`, 'a1')
    await waitFor(() => seen.length === 1 && truth.length === 1, { what: 'the first event' })

    let drops = 0
    a.on('state', (st) => {
      if (st === 'disconnected') drops++
    })
    // A is kept away from every member while the writes happen, then let back to the others only.
    for (const { proxy } of byPort.values()) proxy.stall()
    await waitFor(() => drops > 0 && a.state !== 'connected', { what: 'A to lose its connection' })
    await missedWrites(w, root)
    const missed = MISSED_EVENTS
    await waitFor(() => truth.length === 1 + missed, { what: "C's events of the missed writes" })
    for (const { id, proxy } of byPort.values()) if (id !== first) proxy.resume()
    await waitFor(() => a.state === 'connected', { timeoutMs: 20_000, what: 'A on another server' })
    expect(memberOfA()!.id).not.toBe(first)
    await w.create(`${root}/live`, 'l')
    await waitFor(() => truth.length === missed + 2 && seen.length >= truth.length, {
      timeoutMs: 15_000,
      what: "A's events to catch up with C's",
    })
    expect(seen.map(show)).toEqual(truth.map(show))
    expect(seen.some((ev) => ev.type === 'resync')).toBe(false)
    await stream.close()
  })
})
