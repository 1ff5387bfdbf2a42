/**
 * Recipes on a real 3-node ensemble while its leader is killed (kill -9):
 * a Lock keeps mutual exclusion (a versioned counter never sees a lost
 * update) with strictly increasing fencing tokens; LeaderElection never
 * shows two leaders and elects one after the failover; a Queue hands every
 * item to exactly one consumer.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Client, ZkError } from '../../client/index.js'
import { LeaderElection, Lock, Queue } from '../../recipes/index.js'
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
async function retry<T>(fn: () => Promise<T>, attempts = 50): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (i >= attempts || !ZkError.is(err) || !['CONNECTION_LOSS', 'OPERATION_TIMEOUT'].includes(err.code))
        throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {})
  await ensemble?.stop()
  ensemble = undefined
})

afterAll(stopAllConclave)

describe('recipes on a 3-node ensemble', () => {
  it('Lock: no lost update and increasing fencing tokens across a leader kill', async () => {
    ensemble = await startEnsemble({ extraArgs: ['--max-session-timeout', '15000'] })
    const e = ensemble
    const admin = await connect(e)
    await admin.create('/counter', '0')
    const tokens: number[] = []
    let done = 0
    const worker = async () => {
      const zk = await connect(e)
      const lock = new Lock(zk, '/locks/ensemble')
      const notes: string[] = []
      lock.on('lost', (e) => notes.push(`lost ${e.code}`))
      for (let i = 0; i < 20; i++) {
        const grant = await retry(async () => {
          try {
            return await lock.acquire({ timeoutMs: 20_000 })
          } catch (e) {
            notes.push(`acquire ${(e as ZkError).code}`)
            throw e
          }
        })
        tokens.push(grant.fencingToken)
        // A versioned write: a second holder would make this BAD_VERSION and fail the test.
        // A write whose outcome is unknown (CONNECTION_LOSS) is read back, not blindly retried:
        // re-sending a write that did land would itself be a BAD_VERSION.
        for (;;) {
          // A holder told it lost the lock (disconnected too long) must not write.
          if (!lock.isHeld) break
          const { data, stat } = await retry(() => zk.getData('/counter'))
          const next = String(Number(new TextDecoder().decode(data)) + 1)
          if (!lock.isHeld) break
          try {
            await zk.setData('/counter', next, stat.version)
            done++
            break
          } catch (err) {
            if (ZkError.is(err, 'BAD_VERSION') && !lock.isHeld) break // fenced: we had lost the lock
            if (ZkError.is(err, 'BAD_VERSION')) {
              const kids = await zk.getChildren('/locks/ensemble').catch(() => [])
              console.log('DIAG', JSON.stringify({ held: lock.isHeld, node: lock.nodePath, kids, notes }))
            }
            if (!ZkError.is(err, 'CONNECTION_LOSS')) throw err
            const now = await retry(() => zk.getData('/counter'))
            if (now.stat.version === stat.version + 1 && new TextDecoder().decode(now.data) === next) {
              done++
              break
            }
          }
        }
        // After a loss, release() reports it; that is expected here.
        await retry(async () => {
          try {
            return await lock.release()
          } catch (e) {
            notes.push(`release ${(e as ZkError).code} held=${lock.isHeld}`)
            throw e
          }
        }).catch((err) => {
          if (lock.isHeld) throw err
        })
      }
    }
    const workers = [worker(), worker(), worker()]
    await waitFor(() => done >= 15, { timeoutMs: 30_000, what: '15 increments' })
    await e.kill9(await e.leader())
    await Promise.all(workers)
    await admin.sync('/counter')
    expect(new TextDecoder().decode((await admin.getData('/counter')).data)).toBe(String(done))
    expect(done).toBeGreaterThanOrEqual(55)
    expect(tokens.length).toBe(60)
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!)
  })

  it('LeaderElection: never two leaders, and a leader again after the ensemble leader dies', async () => {
    ensemble = await startEnsemble({ extraArgs: ['--max-session-timeout', '15000'] })
    const e = ensemble
    const elections: LeaderElection[] = []
    for (const id of ['a', 'b', 'c']) {
      const el = new LeaderElection(await connect(e), '/election/ens', id)
      elections.push(el)
      await el.start()
    }
    let maxAtOnce = 0
    const probe = setInterval(() => {
      maxAtOnce = Math.max(maxAtOnce, elections.filter((x) => x.isLeader).length)
    }, 5)
    try {
      await waitFor(() => elections.some((x) => x.isLeader), { what: 'a leader' })
      await e.kill9(await e.leader())
      await e.leader()
      await waitFor(() => elections.filter((x) => x.isLeader).length === 1, {
        timeoutMs: 30_000,
        what: 'one leader',
      })
    } finally {
      clearInterval(probe)
    }
    expect(maxAtOnce).toBe(1)
  })

  it('Queue: every item taken exactly once while the ensemble leader is killed', async () => {
    ensemble = await startEnsemble({ extraArgs: ['--max-session-timeout', '15000'] })
    const e = ensemble
    const producer = new Queue(await connect(e), '/queue/ens')
    const taken: string[] = []
    const consumers = [new Queue(await connect(e), '/queue/ens'), new Queue(await connect(e), '/queue/ens')]
    for (let i = 0; i < 100; i++) await retry(() => producer.put(`item-${i}`))
    let stop = false
    const consume = async (q: Queue) => {
      while (!stop) {
        const item = await retry(() => q.take({ timeoutMs: 500 }))
        if (item !== null) taken.push(new TextDecoder().decode(item))
      }
    }
    const running = consumers.map(consume)
    await waitFor(() => taken.length >= 20, { timeoutMs: 30_000, what: '20 items taken' })
    await e.kill9(await e.leader())
    await waitFor(() => taken.length >= 100, { timeoutMs: 60_000, what: 'every item taken' })
    stop = true
    await Promise.all(running)
    expect(taken.length).toBe(100)
    expect(new Set(taken).size).toBe(100)
  })
})
