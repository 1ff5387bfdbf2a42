/**
 * zk.watch(): persistent watches as async iterators, against every server
 * target (Conclave and Apache ZooKeeper). Events come in order with the zxid
 * of their change (Conclave puts it in every notification; ZooKeeper 3.8
 * sends -1); `break`, close() and an aborted signal remove the watch on the
 * server (the server's own watch count, from `mntr`, goes back) and end the
 * iteration; a consumer that falls more than bufferSize events behind gets
 * one 'resync' instead of them; the end of the session ends the iteration.
 *
 * Invariants: one server per target; every client is closed after its test;
 * every wait has a deadline.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Client, type WatchStreamEvent, ZkError } from '../../client/index.js'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { type Target, type TargetInstance, targetCanRun, targets, targetTitle } from '../helpers/targets.js'
import { waitFor } from '../helpers/wait.js'

describe.each(targets.map((t) => ({ target: t, title: targetTitle(t) })))(
  'zk.watch() against $title',
  ({ target }) => {
    describe.runIf(targetCanRun(target, 'watch iterators (sdk-watch-iterator.test.ts)'))('iterators', () => {
      suite(target)
    })
  },
)

function suite(target: Target): void {
  let server: TargetInstance
  const clients: Client[] = []
  let roots = 0
  /** Conclave stamps every notification with its change's zxid; ZooKeeper before 3.9 sends -1. */
  const stampsZxid = target.name === 'conclave'

  beforeAll(async () => {
    server = await target.start({ tickTimeMs: 500 })
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})))
  })
  afterAll(async () => {
    await server?.stop()
  })

  async function connect(): Promise<Client> {
    const c = await Client.connect(server.connectString, {
      sessionTimeoutMs: 4_000,
      connectTimeoutMs: 15_000,
    })
    clients.push(c)
    return c
  }

  /** The server's count of watches (mntr: conclave_watch_count or zk_watch_count). */
  async function serverWatches(): Promise<number> {
    const port = Number(new URL(server.connectString.split(',')[0]!).port)
    const text = await fourLetterWord('127.0.0.1', port, 'mntr', 3_000)
    const m = /^(?:conclave|zk)_watch_count\s+(\d+)/m.exec(text)
    if (m === null) throw new Error(`no watch count in mntr:\n${text}`)
    return Number(m[1])
  }

  /** Takes `n` events from the iterator, with a deadline. */
  async function take(it: AsyncIterator<WatchStreamEvent>, n: number): Promise<WatchStreamEvent[]> {
    const out: WatchStreamEvent[] = []
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`only ${out.length} of ${n} events came`)), 10_000).unref(),
    )
    while (out.length < n) {
      const r = await Promise.race([it.next(), deadline])
      if (r.done) break
      out.push(r.value)
    }
    return out
  }

  it('yields created, dataChanged and deleted under a recursive watch, in order, with the zxid of each change', async () => {
    const zk = await connect()
    const writer = await connect()
    const root = await writer.create(`/w${++roots}`)
    const events = zk.watch(root, { recursive: true })
    await zk.sync(root) // the watch is registered: addWatch went out before the sync
    const a = await writer.create(`${root}/a`, 'x')
    const aStat = (await writer.exists(a))!
    const changed = await writer.setData(a, 'y')
    const b = await writer.create(`${root}/a-b`)
    await writer.delete(a)
    const deletedZxid = writer.lastZxid
    const got = await take(events, 4)
    expect(got.map((e) => `${e.type} ${e.path}`)).toEqual([
      `created ${a}`,
      `dataChanged ${a}`,
      `created ${b}`,
      `deleted ${a}`,
    ])
    if (stampsZxid) {
      expect(got.map((e) => e.zxid)).toEqual([
        aStat.czxid,
        changed.mzxid,
        (await writer.exists(b))!.czxid,
        deletedZxid,
      ])
    } else for (const e of got) expect(e.zxid).toBe(-1)
    await events.close()
  })

  it('stamps every event of a burst with its own zxid (many notifications in one read)', async () => {
    const zk = await connect()
    const writer = await connect()
    const root = await writer.create(`/w${++roots}`)
    const events = zk.watch(root, { recursive: true })
    await zk.sync(root)
    const paths = await Promise.all(Array.from({ length: 40 }, (_, i) => writer.create(`${root}/n${i}`)))
    const got = await take(events, paths.length)
    expect(got.map((e) => e.path)).toEqual(paths)
    if (stampsZxid) {
      const czxids = await Promise.all(paths.map(async (p) => (await writer.exists(p))!.czxid))
      expect(got.map((e) => e.zxid)).toEqual(czxids)
    }
    await events.close()
  })

  it('a plain (non-recursive) watch reports the node itself, childrenChanged included', async () => {
    const zk = await connect()
    const root = await zk.create(`/w${++roots}`)
    const events = zk.watch(root)
    await zk.sync(root)
    await zk.create(`${root}/kid`)
    await zk.create(`${root}/kid/grandkid`)
    await zk.setData(root, 'v')
    const got = await take(events, 2)
    expect(got.map((e) => `${e.type} ${e.path}`)).toEqual([`childrenChanged ${root}`, `dataChanged ${root}`])
    await events.close()
  })

  it('break, close() and an aborted signal remove the watch on the server and end the iteration', async () => {
    const zk = await connect()
    const root = await zk.create(`/w${++roots}`)
    const before = await serverWatches()

    // break
    const broken = zk.watch(root, { recursive: true })
    await zk.sync(root)
    expect(await serverWatches()).toBeGreaterThan(before)
    void zk.create(`${root}/x`)
    for await (const ev of broken) {
      expect(ev.type).toBe('created')
      break
    }
    expect(await serverWatches()).toBe(before)

    // close()
    const closed = zk.watch(root)
    await zk.sync(root)
    expect(await serverWatches()).toBeGreaterThan(before)
    const pending = closed.next()
    await closed.close()
    expect(await pending).toEqual({ value: undefined, done: true })
    expect(await serverWatches()).toBe(before)

    // an aborted signal
    const ac = new AbortController()
    const aborted = zk.watch(root, { recursive: true, signal: ac.signal })
    await zk.sync(root)
    expect(await serverWatches()).toBeGreaterThan(before)
    const seen: string[] = []
    const loop = (async () => {
      for await (const ev of aborted) seen.push(ev.type)
      return 'ended'
    })()
    ac.abort()
    expect(await loop).toBe('ended')
    await waitFor(async () => (await serverWatches()) === before, { what: 'the watch to go' })

    // A signal aborted beforehand sets no watch at all.
    const never = zk.watch(root, { signal: AbortSignal.abort() })
    expect(await never.next()).toEqual({ value: undefined, done: true })
    await zk.sync(root)
    expect(await serverWatches()).toBe(before)
    // Other watches on the path are left alone.
    const one = zk.watch(root)
    const two = zk.watch(root)
    await zk.sync(root)
    await one.close()
    await zk.setData(root, 'still watched')
    expect((await take(two, 1)).map((e) => e.type)).toEqual(['dataChanged'])
    await two.close()
    expect(() => zk.watch('no/slash')).toThrow(/BAD_ARGUMENTS/)
  })

  it('a consumer more than bufferSize events behind gets one resync, then live events', async () => {
    const zk = await connect()
    const writer = await connect()
    const root = await writer.create(`/w${++roots}`)
    const events = zk.watch(root, { recursive: true, bufferSize: 4 })
    await zk.sync(root)
    const paths: string[] = []
    for (let i = 0; i < 10; i++) paths.push(await writer.create(`${root}/n${i}`))
    // Every event has reached the watcher once it reads data written after them.
    await zk.sync(root)
    await zk.getChildren(root)
    const got = await take(events, 2)
    // n0..n3 wait, n4 collapses them into a resync, n5..n7 wait, n8 collapses again, n9 follows.
    expect(got.map((e) => `${e.type} ${e.path}`)).toEqual([`resync ${root}`, `created ${paths[9]}`])
    if (stampsZxid) expect(got[0]!.zxid).toBe((await writer.exists(paths[8]!))!.czxid)
    await writer.setData(paths[0]!, 'live')
    expect((await take(events, 1)).map((e) => `${e.type} ${e.path}`)).toEqual([`dataChanged ${paths[0]}`])
    await events.close()
  })

  it('ends when the client is closed, and throws SESSION_EXPIRED when the session expires', async () => {
    const zk = await connect()
    const root = await zk.create(`/w${++roots}`)
    const onClose = zk.watch(root)
    await zk.sync(root)
    const closing = onClose.next()
    await zk.close()
    expect(await closing).toEqual({ value: undefined, done: true })

    const victim = await connect()
    const expiring = victim.watch(root, { recursive: true })
    await victim.sync(root)
    const result = expiring.next().then(
      (r) => r,
      (err: unknown) => err,
    )
    // A twin resumes the session and closes it: the victim learns of the expiry when it reconnects.
    for (let i = 0; i < 10 && victim.state !== 'expired'; i++) {
      const twin = await Client.connect(server.connectString, {
        sessionId: victim.sessionId,
        sessionPassword: victim.sessionPassword,
        connectTimeoutMs: 15_000,
      }).catch(() => undefined)
      await twin?.close()
      await waitFor(() => victim.state === 'expired', { timeoutMs: 4_000, what: 'expiry' }).catch(() => {})
    }
    expect(ZkError.is(await result, 'SESSION_EXPIRED')).toBe(true)
  })
}
