/**
 * Watches across a kill -9 of the client's server, on a real 3-node
 * ensemble. Client A, on a follower, holds a persistent-recursive watch on
 * /w and one-shot data watches on /w/x and /w/y; client B, on the leader,
 * writes numbered changes under /w (creates of /w/n<k>, and now and then a
 * setData of /w/x or /w/y) while A's server is killed and A moves to the
 * other follower.
 *
 * The server's history is B's changes with the zxids of their Stats. What A
 * saw must be exactly the changes after its registration, in zxid order,
 * each once, each with its change's zxid — the reconnect gap included: the
 * watches resume on the new server from the last event A got, and the
 * changes made meanwhile are replayed (client/session.ts primeWatches,
 * server/request/read-ops.ts resumeWatches). One-shot data watches on /w/x
 * and /w/y (set before the kill) fire exactly once each, only after a change
 * to their node made after they were set — not at one made after the
 * registration that the getData setting them already read: /w/x changes once
 * between the registration and its one-shot's getData, and from the kill on,
 * often in the gap: then the resume's replay fires it with that change's
 * zxid; /w/y only once A is on its new server), and never again.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Client, type WatchEvent } from '../../client/index.js'
import { stopAllConclave } from '../helpers/conclave.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { waitFor } from '../helpers/wait.js'

let ensemble: Ensemble | undefined
const clients: Client[] = []

async function connect(connectString: string): Promise<Client> {
  const c = await Client.connect(connectString, {
    sessionTimeoutMs: 10_000,
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
})

afterAll(stopAllConclave)

/** One of B's changes: its number, the event it makes, and its zxid. */
interface Change {
  k: number
  type: WatchEvent['type']
  path: string
  zxid: number
}

/** B's writes: at most this many, and for at most this long. */
const CHANGES_MAX = 20_000
const WRITING_MS_MAX = 40_000

describe('watches across a kill -9 of the client’s server', () => {
  it('a persistent-recursive watch sees every change in zxid order, once, the reconnect gap included (replayed on the new server); one-shots fire once', async () => {
    ensemble = await startEnsemble()
    const e = ensemble
    const leader = await e.leader()
    const followers = e.members.map((m) => m.id).filter((id) => id !== leader)
    const b = await connect(e.url(leader))
    await b.create('/w', '')
    await b.create('/w/x', 'initial')
    await b.create('/w/y', 'initial')
    const a = await connect(followers.map((id) => e.url(id)).join(','))
    /** The member A is connected to, if any. */
    const serverOfA = (): number | undefined => {
      const port = a.server === undefined ? undefined : Number(new URL(a.server).port)
      return e.members.find((m) => m.clientPort === port)?.id
    }
    const firstServer = serverOfA()!
    expect(followers).toContain(firstServer)

    // B writes change k: a create of /w/n<k>, or a setData of /w/x or /w/y when `xNow(k)` or
    // `yNow(k)` says so. /w/x changes before the registration, once between the registration and
    // its one-shot's getData (which reads that change: the one-shot must not fire for it, though
    // the recursive watch does), and from the kill on (first
    // thing after it, so often in the reconnect gap); /w/y only once A is on its new server.
    const changes: Change[] = []
    const created: { k: number; path: string }[] = []
    let phase = 'before registration' as 'before registration' | 'registered' | 'killed'
    // /w/x's one write between the registration and its one-shot: issued, and landed on the leader.
    let xBeforeOneShot: 'no' | 'issued' | 'landed' = 'no'
    let xWritesAfterKill = 0
    let yWrites = 0
    let stopWriting = false
    let writesAfterResume = -1
    const xNow = (k: number): boolean => {
      if (phase === 'before registration') return k % 10 === 5
      if (phase === 'registered') return xBeforeOneShot === 'no'
      return xWritesAfterKill === 0 || k % 10 === 5
    }
    const yNow = (k: number): boolean => writesAfterResume >= 0 && (yWrites === 0 || k % 10 === 7)
    const writer = (async () => {
      const deadline = Date.now() + WRITING_MS_MAX
      for (let k = 0; k < CHANGES_MAX && !stopWriting && Date.now() < deadline; k++) {
        if (yNow(k)) {
          yWrites++
          const stat = await b.setData('/w/y', String(k))
          changes.push({ k, type: 'dataChanged', path: '/w/y', zxid: stat.mzxid })
        } else if (xNow(k)) {
          if (phase === 'registered') xBeforeOneShot = 'issued'
          if (phase === 'killed') xWritesAfterKill++
          const stat = await b.setData('/w/x', String(k))
          if (xBeforeOneShot === 'issued') xBeforeOneShot = 'landed'
          changes.push({ k, type: 'dataChanged', path: '/w/x', zxid: stat.mzxid })
        } else {
          const path = `/w/n${String(k).padStart(6, '0')}`
          await b.create(path, String(k))
          created.push({ k, path })
          changes.push({ k, type: 'created', path, zxid: 0 })
        }
        if (writesAfterResume >= 0) writesAfterResume++
      }
    })()
    writer.catch(() => {})

    // A registers while B writes: the persistent-recursive watch, then the one-shots.
    const events: WatchEvent[] = []
    let eventsBeforeDisconnect = -1
    a.on('state', (s) => {
      if (s !== 'connected' && eventsBeforeDisconnect < 0) eventsBeforeDisconnect = events.length
    })
    let registeredAt = 0
    // The mzxid each one-shot's getData saw: its node's last change before the watch was set.
    let xSetAfter = 0
    let ySetAfter = 0
    // Each one-shot firing, with how many writes to its node B had sent (/w/x: after the kill).
    const oneShotX: { event: WatchEvent; writesSent: number }[] = []
    const oneShotY: { event: WatchEvent; writesSent: number }[] = []
    try {
      await waitFor(() => changes.length >= 50, { what: 'changes before the registration' })
      await a.addWatch('/w', 'persistentRecursive', (ev) => events.push(ev))
      // Every change with a larger zxid happened after the watch was set on the server.
      registeredAt = a.lastZxid
      phase = 'registered'
      // One change to /w/x, then none to /w/x or /w/y until the kill: the one-shots set now must
      // cross the failover. The write has landed once B finished two more changes (a write
      // issued before the switch too), and A's server has it once a sync returns.
      await waitFor(() => xBeforeOneShot === 'landed', { what: 'the change to /w/x before its one-shot' })
      const after = changes.length + 2
      await waitFor(() => changes.length >= after, { what: 'changes after the registration' })
      await a.sync('/w/x')
      // The state each one-shot is set on: it fires at the first change after that one, not at
      // the one just made (after `registeredAt`, so in `expected`, but read by this getData).
      const xRead = await a.getData('/w/x', {
        watch: (event) => oneShotX.push({ event, writesSent: xWritesAfterKill }),
      })
      xSetAfter = xRead.stat.mzxid
      const yRead = await a.getData('/w/y', {
        watch: (event) => oneShotY.push({ event, writesSent: yWrites }),
      })
      ySetAfter = yRead.stat.mzxid

      await waitFor(() => events.length >= 100, { what: '100 events before the kill' })
      phase = 'killed'
      await e.kill9(firstServer)
      await waitFor(() => a.state === 'connected' && serverOfA() !== firstServer, {
        timeoutMs: 20_000,
        what: 'A to reconnect to another server',
      })
    } catch (err) {
      stopWriting = true
      throw err
    }
    // A read after the reconnect: its reply comes after SetWatches', so every change with a
    // larger zxid happened after the watches were registered on the new server.
    await a.exists('/w')
    const resumedAt = a.lastZxid
    writesAfterResume = 0
    await waitFor(() => writesAfterResume >= 200 || stopWriting, {
      timeoutMs: 30_000,
      what: '200 changes after the reconnect',
    }).finally(() => {
      stopWriting = true
    })
    await writer
    expect(eventsBeforeDisconnect).toBeGreaterThanOrEqual(100)

    // The history: B's changes with their zxids (a create's is its node's czxid).
    const czxids = await Promise.all(created.map((c) => b.exists(c.path)))
    const czxidOf = new Map(created.map((c, i) => [c.path, czxids[i]!.czxid]))
    for (const c of changes) if (c.type === 'created') c.zxid = czxidOf.get(c.path)!
    // B wrote one change at a time: zxid order is B's order.
    for (let i = 1; i < changes.length; i++) expect(changes[i]!.zxid).toBeGreaterThan(changes[i - 1]!.zxid)
    const last = changes[changes.length - 1]!
    expect(last.zxid).toBeGreaterThan(resumedAt)
    // (If it never comes, the assertions below say what is missing.)
    await waitFor(() => events.some((ev) => ev.path === last.path && ev.type === last.type), {
      timeoutMs: 20_000,
      what: "the last change's event",
    }).catch(() => {})
    // Anything still on its way (a duplicate, say) arrives before the reply to a later request.
    await a.sync('/w')
    await a.exists('/w')

    const expected = changes.filter((c) => c.zxid > registeredAt)
    // Each event is matched to the earliest change after the previous event's that it can be:
    // failing that, it was out of order, a duplicate, or from before the registration.
    const matched: number[] = []
    const problems: string[] = []
    let next = 0
    events.forEach((ev, i) => {
      let j = next
      while (j < expected.length && (expected[j]!.path !== ev.path || expected[j]!.type !== ev.type)) j++
      if (j === expected.length) {
        const earlier = changes.find(
          (c) => c.path === ev.path && c.type === ev.type && c.zxid <= registeredAt,
        )
        const why =
          earlier !== undefined && ev.type === 'created'
            ? 'from before the registration'
            : 'out of order or twice'
        problems.push(`event ${i} (${ev.type} ${ev.path}): ${why}`)
        return
      }
      matched.push(j)
      next = j + 1
    })
    expect(problems).toEqual([])
    // Before the kill: exactly the first changes after the registration, none missing.
    expect(matched.slice(0, eventsBeforeDisconnect)).toEqual(
      Array.from({ length: eventsBeforeDisconnect }, (_, i) => i),
    )
    // Every change after the registration, the reconnect gap included, once each, in order.
    const seen = new Set(matched)
    const missed = expected
      .map((c, j) => ({ c, j }))
      .filter(({ j }) => !seen.has(j))
      .map(({ c }) => `${c.type} ${c.path} (zxid ${c.zxid}${c.zxid <= resumedAt ? ', in the gap' : ''})`)
    expect(missed).toEqual([])
    expect(events.map((ev) => ev.zxid)).toEqual(expected.map((c) => c.zxid))

    // The one-shots: once each, at the first change to their node after the state their
    // getData read (/w/x: in the gap or just after it; /w/y: on the new server), though both
    // nodes changed again later — not at a change the read had already seen, even one after
    // `registeredAt` (a replay from before it would be wrong).
    expect(xSetAfter).toBeGreaterThan(registeredAt) // /w/x's one-shot read a change after it
    const firstXChange = expected.find((c) => c.path === '/w/x' && c.zxid > xSetAfter)!
    expect(oneShotX.map((o) => o.event)).toEqual([{ type: 'dataChanged', path: '/w/x' }])
    expect(oneShotX[0]!.event.zxid).toBe(firstXChange.zxid)
    expect(oneShotX[0]!.writesSent).toBeGreaterThan(0)
    expect(xWritesAfterKill).toBeGreaterThan(1)
    expect(oneShotY.map((o) => o.event)).toEqual([{ type: 'dataChanged', path: '/w/y' }])
    expect(oneShotY[0]!.event.zxid).toBe(expected.find((c) => c.path === '/w/y' && c.zxid > ySetAfter)!.zxid)
    expect(oneShotY[0]!.writesSent).toBeGreaterThan(0)
    expect(yWrites).toBeGreaterThan(1)

    const inGap = expected.filter((c) => c.zxid <= resumedAt).length - eventsBeforeDisconnect
    console.log(
      `watch failover: ${changes.length} changes, ${expected.length} after the registration, ` +
        `${events.length} events (${eventsBeforeDisconnect} before the kill); ` +
        `${inGap} changes in the reconnect gap, replayed; the /w/x one-shot fired ` +
        (firstXChange.zxid <= resumedAt ? 'in the replay (its change was in the gap)' : 'on the new server') +
        `; ${expected.filter((c) => c.path === '/w/x' && c.zxid <= xSetAfter).length} /w/x change(s) ` +
        'after the registration and before its one-shot (not fired for)',
    )
  })
})
