/**
 * LeaderSelector and PersistentNode on a real 3-node ensemble while servers
 * are killed (kill -9). LeaderSelector: terms rotate, then the leading
 * candidate's own server dies, then the ensemble leader dies; after each
 * failover exactly one candidate leads again and writes. Mutual exclusion is
 * checked from the server's history: every term writes records guarded by
 * its lock node (a multi whose first op checks it), and in zxid order the
 * fencing tokens never go backwards. PersistentNode: an ephemeral node stays
 * the same node (same czxid, same session) while its client's server and
 * then the ensemble leader die, data set during the gap is applied, and
 * after its session is killed a new session puts it back with that data.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Client, type MultiOp, ZkError } from '../../client/index.js'
import { LeaderSelector, PersistentNode } from '../../recipes/index.js'
import { stopAllConclave } from '../helpers/conclave.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { waitFor } from '../helpers/wait.js'

let ensemble: Ensemble | undefined
const clients: Client[] = []

async function connect(e: Ensemble): Promise<Client> {
  const c = await Client.connect(e.connectString, {
    sessionTimeoutMs: 8000,
    connectTimeoutMs: 15_000,
    reconnectDelayMs: 0,
  })
  clients.push(c)
  return c
}

/** Retries an operation that failed with CONNECTION_LOSS (bounded), as an application would. */
async function retry<T>(fn: () => Promise<T>, attempts = 100): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (i >= attempts || !ZkError.is(err, 'CONNECTION_LOSS')) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms)
    function done(): void {
      clearTimeout(t)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })

/** The member a client is connected to. */
function memberOf(e: Ensemble, zk: Client): number {
  const port = zk.server === undefined ? '' : new URL(zk.server).port
  const m = e.members.find((x) => String(x.clientPort) === port)
  if (m === undefined) throw new Error(`client not connected to a member (${zk.server})`)
  return m.id
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {})
  await ensemble?.stop()
  ensemble = undefined
})

afterAll(stopAllConclave)

describe('LeaderSelector and PersistentNode on a 3-node ensemble', () => {
  it('LeaderSelector: terms never overlap (fenced writes in zxid order); after each server death exactly one leads and writes', async () => {
    ensemble = await startEnsemble({ extraArgs: ['--max-session-timeout', '15000'] })
    const e = ensemble
    const admin = await connect(e)
    await admin.create('/slog', '')
    let phase = 0
    let rotate = true
    const terms: { id: string; token: number; phase: number; ok: number }[] = []
    const selectors = await Promise.all(
      ['a', 'b', 'c'].map(async (id) => {
        const zk = await connect(e)
        const s = new LeaderSelector(zk, '/election/selector', id, async (signal, term) => {
          const mine = { id, token: term.fencingToken, phase, ok: 0 }
          terms.push(mine)
          for (let n = 0; n < 10_000 && !signal.aborted; n++) {
            const op: MultiOp = {
              op: 'create',
              path: '/slog/r-',
              data: `${term.fencingToken} ${id} ${n}`,
              mode: 'persistentSequential',
            }
            try {
              await zk.multi([{ op: 'check', path: term.path, version: 0 }, op])
              mine.ok++
            } catch (err) {
              // Fenced (our lock node is gone) or outcome unknown: both fine, never a conflict.
              if (!ZkError.is(err, 'NO_NODE') && !ZkError.is(err, 'CONNECTION_LOSS')) throw err
            }
            if (rotate && n >= 5) return
            await sleep(20, signal)
          }
        })
        s.on('error', () => {})
        return { s, zk }
      }),
    )
    for (const { s } of selectors) s.start()
    const leaders = (): number => selectors.filter((x) => x.s.hasLeadership).length
    /** Exactly one leader, seen on 10 samples in a row. */
    const oneLeader = async (what: string): Promise<void> => {
      let streak = 0
      await waitFor(
        () => {
          streak = leaders() === 1 ? streak + 1 : 0
          return streak >= 10
        },
        { timeoutMs: 40_000, intervalMs: 50, what },
      )
    }
    const writtenIn = (p: number): number => terms.filter((t) => t.phase === p && t.ok > 0).length
    try {
      await waitFor(() => writtenIn(0) >= 4, { timeoutMs: 30_000, what: 'terms to rotate' })
      // Long terms from now on: a term ends only when leadership is lost.
      rotate = false
      await oneLeader('a steady leader')
      // 1. The leading candidate's own server dies.
      const leading = selectors.find((x) => x.s.hasLeadership)!
      const victim = memberOf(e, leading.zk)
      phase = 1
      await e.kill9(victim)
      await oneLeader('one leader after its server died')
      await waitFor(() => writtenIn(1) >= 1, {
        timeoutMs: 30_000,
        what: 'a leader writing after the first kill',
      })
      await e.start(victim)
      await e.leader()
      // 2. The ensemble leader dies.
      phase = 2
      await e.kill9(await e.leader())
      await e.leader()
      await oneLeader('one leader after the ensemble leader died')
      await waitFor(() => writtenIn(2) >= 1, {
        timeoutMs: 30_000,
        what: 'a leader writing after the second kill',
      })
    } finally {
      await Promise.all(selectors.map(({ s }) => s.close()))
    }
    await retry(() => admin.sync('/slog'))
    const names = await retry(() => admin.getChildren('/slog'))
    const history = await Promise.all(
      names.map(async (n) => {
        const { data, stat } = await retry(() => admin.getData(`/slog/${n}`))
        const [token = '', writer = ''] = new TextDecoder().decode(data).split(' ')
        return { czxid: stat.czxid, token: Number(token), writer }
      }),
    )
    history.sort((a, b) => a.czxid - b.czxid)
    const violations = history.filter((r, i) => i > 0 && r.token < history[i - 1]!.token)
    expect(violations).toEqual([])
    const byToken = new Map(terms.map((t) => [t.token, t]))
    expect(history.filter((r) => byToken.get(r.token)?.id !== r.writer)).toEqual([])
    for (const t of terms)
      expect(history.filter((r) => r.token === t.token).length).toBeGreaterThanOrEqual(t.ok)
    expect(history.some((r) => byToken.get(r.token)?.phase === 2)).toBe(true)
    console.log(`selector: ${terms.length} terms, ${history.length} leader writes`)
  })

  it('PersistentNode: the same node across its server’s death and the leader’s, re-created after session expiry', async () => {
    ensemble = await startEnsemble({ extraArgs: ['--max-session-timeout', '15000'] })
    const e = ensemble
    const admin = await connect(e)
    const zk = await connect(e)
    const path = '/services/api/node-a'
    const read = async (): Promise<string | null> =>
      retry(() => admin.getData(path)).then(
        (r) => new TextDecoder().decode(r.data),
        (err: unknown) => {
          if (ZkError.is(err, 'NO_NODE')) return null
          throw err
        },
      )
    const node = new PersistentNode(zk, path, 'v1', { mode: 'ephemeral' })
    await node.start()
    const first = (await retry(() => admin.exists(path)))!
    expect(first.ephemeralOwner).toBe(zk.sessionId)
    // 1. The node's client loses its server: it moves with its session, the node stays.
    const victim = memberOf(e, zk)
    await e.kill9(victim)
    await node.setData('v2')
    await waitFor(async () => (await read()) === 'v2', { timeoutMs: 30_000, what: 'v2 after the move' })
    expect((await retry(() => admin.exists(path)))!.czxid).toBe(first.czxid)
    await e.start(victim)
    await e.leader()
    // 2. The ensemble leader dies.
    await e.kill9(await e.leader())
    await node.setData('v3')
    await waitFor(async () => (await read()) === 'v3', {
      timeoutMs: 30_000,
      what: 'v3 after the leader died',
    })
    expect((await retry(() => admin.exists(path)))!.czxid).toBe(first.czxid)
    expect(zk.state).toBe('connected')
    // 3. The session is killed (a twin resumes and closes it): a new session puts the node back.
    const twin = await Client.connect(e.connectString, {
      sessionId: zk.sessionId,
      sessionPassword: zk.sessionPassword,
      connectTimeoutMs: 15_000,
    })
    await twin.close()
    await waitFor(
      async () => {
        const stat = await retry(() => admin.exists(path))
        return stat !== null && stat.ephemeralOwner !== first.ephemeralOwner && (await read()) === 'v3'
      },
      { timeoutMs: 30_000, what: 'the node back under a new session' },
    )
    expect(zk.state).toBe('expired')
    expect(node.client).not.toBe(zk)
    await node.close()
    expect(await retry(() => admin.exists(path))).toBe(null)
  })
})
