/**
 * Queue, PriorityQueue and DelayQueue (recipes/) against real servers:
 * 4 producers x 250 items and 4 consumers, every item taken exactly once and
 * in order per producer; take timeouts and aborts; a take whose multi
 * reply is lost still returns its item exactly once; priorities; delays.
 *
 * Invariants: no mocks of the server; every wait has a deadline; loops are bounded.
 */
import { describe, expect, it } from 'vitest'
import { type Client, ErrorCode, ZkError } from '../../client/index.js'
import { DelayQueue, PriorityQueue, Queue } from '../../recipes/index.js'
import { waitFor } from '../helpers/wait.js'
import { dec, forEachTarget } from '../unit/recipes/harness.js'

/** A client whose multi() "loses" its reply: applied on the server, CONNECTION_LOSS to the caller. */
function lossyMulti(zk: Client, when: 'after' | 'before', times: number): Client {
  let left = times
  return new Proxy(zk, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (prop !== 'multi') return typeof value === 'function' ? value.bind(target) : value
      return async (ops: Parameters<Client['multi']>[0]) => {
        if (left-- <= 0) return target.multi(ops)
        if (when === 'after') await target.multi(ops)
        throw new ZkError(ErrorCode.CONNECTION_LOSS, undefined, 'CONNECTION_LOSS: reply lost')
      }
    },
  })
}

/** A client that counts its reads that set a watch, once each has been answered (or failed). */
function watchedReads(zk: Client, onRead: () => void): Client {
  type Read = (p: string, o?: { watch?: unknown }) => Promise<unknown>
  return new Proxy(zk, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (typeof value !== 'function') return value
      if (prop !== 'getChildren' && prop !== 'exists') return value.bind(target)
      return (path: string, opts?: { watch?: unknown }) => {
        const r = (value as Read).call(target, path, opts)
        if (opts?.watch !== undefined) void r.then(onRead, onRead)
        return r
      }
    },
  })
}

forEachTarget('Queue recipes', (env) => {
  describe('Queue', () => {
    it('4 producers x 250 items, 4 consumers: each taken exactly once, FIFO per producer', async () => {
      const path = env.root('queue')
      const zks = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(() => env.connect()))
      const PRODUCERS = 4
      const PER = 250
      let produced = 0
      const producers = zks.slice(0, PRODUCERS).map(async (zk, p) => {
        const q = new Queue(zk, path)
        for (let i = 0; i < PER; i++) {
          await q.put(`${p}:${i}`)
          produced++
        }
      })
      const taken: string[][] = [[], [], [], []]
      let total = 0
      const consumers = zks.slice(PRODUCERS).map(async (zk, c) => {
        const q = new Queue(zk, path)
        for (let i = 0; i < PRODUCERS * PER * 2 && total < PRODUCERS * PER; i++) {
          const item = await q.take({ timeoutMs: 500 })
          if (item === null) {
            if (produced === PRODUCERS * PER) break
            continue
          }
          total++
          taken[c]!.push(dec(item))
        }
      })
      await Promise.all([...producers, ...consumers])
      const all = taken.flat()
      expect(all).toHaveLength(PRODUCERS * PER)
      expect(new Set(all).size).toBe(PRODUCERS * PER)
      // Each consumer sees each producer's items in the order they were put.
      for (const mine of taken) {
        const last = new Map<string, number>()
        for (const item of mine) {
          const [p, i] = item.split(':')
          expect(Number(i)).toBeGreaterThan(last.get(p!) ?? -1)
          last.set(p!, Number(i))
        }
      }
      expect(await new Queue(zks[0]!, path).size()).toBe(0)
    })

    it('take resolves null at its deadline, rejects on abort; peek and size do not take', async () => {
      const zk = await env.connect()
      const q = new Queue(zk, env.root('q-basic'))
      const t0 = performance.now()
      expect(await q.take({ timeoutMs: 200 })).toBe(null)
      expect(performance.now() - t0).toBeGreaterThanOrEqual(190)
      const ac = new AbortController()
      const aborted = q.take({ signal: ac.signal }).catch((err: unknown) => err)
      ac.abort(new Error('stop'))
      expect(((await aborted) as Error).message).toBe('stop')
      expect(await q.peek()).toBe(null)
      await q.put('a')
      await q.put('b')
      expect(dec((await q.peek())!)).toBe('a')
      expect(await q.size()).toBe(2)
      expect(dec((await q.take())!)).toBe('a')
      expect(dec((await q.take())!)).toBe('b')
      // A consumer waiting on an empty queue gets the next item put.
      const waiting = new Queue(await env.connect(), q.path).take({ timeoutMs: 10_000 })
      await q.put('c')
      expect(dec((await waiting)!)).toBe('c')
      expect(await q.size()).toBe(0)
    })

    it('consumers started before the queue node exists get the items put later, long before their timeout', async () => {
      // Consumers first, producers after them, on a queue (and parent) that was never created: a
      // getChildren watch on a missing node is not set, so a consumer must watch for the node's creation.
      const path = `${env.root('q-consumers-first')}/jobs`
      const consumers = await Promise.all([1, 2, 3].map(() => env.connect()))
      const looked = consumers.map(() => 0)
      const watched = consumers.map((zk, i) => watchedReads(zk, () => looked[i]!++))
      const t0 = performance.now()
      const takes = watched.map((zk) => new Queue(zk, path).take({ timeoutMs: 8_000 }))
      const pq = new PriorityQueue(watched[0]!, `${path}-prio`).take({ timeoutMs: 8_000 })
      // Every consumer has looked at the (missing) queue before anything is put.
      await waitFor(() => looked.every((n) => n > 0), { timeoutMs: 5_000, what: 'the consumers to look' })
      const producer = await env.connect()
      for (const item of ['a', 'b', 'c']) await new Queue(producer, path).put(item)
      await new PriorityQueue(producer, `${path}-prio`).put('p', 1)
      const got = await Promise.all(takes)
      expect(got.map((b) => (b === null ? null : dec(b))).sort()).toEqual(['a', 'b', 'c'])
      expect(dec((await pq)!)).toBe('p')
      // Handed over as the items came, not when the takes gave up.
      expect(performance.now() - t0).toBeLessThan(7_000)
    })

    it('a take whose multi reply is lost returns its item once (claim node), none is lost', async () => {
      const zk = await env.connect()
      const path = env.root('q-lossy')
      const plain = new Queue(zk, path)
      await plain.put('x')
      await plain.put('y')
      const afterLoss = new Queue(lossyMulti(zk, 'after', 1), path)
      expect(dec((await afterLoss.take({ timeoutMs: 5_000 }))!)).toBe('x')
      const beforeLoss = new Queue(lossyMulti(zk, 'before', 1), path)
      expect(dec((await beforeLoss.take({ timeoutMs: 5_000 }))!)).toBe('y')
      expect(await plain.size()).toBe(0)
      expect(await zk.getChildren(`${path}/_claims`)).toEqual([])
    })
  })

  describe('Queue.put and a fast consumer (found by the chaos harness)', () => {
    /**
     * A client whose create() of an item under `dir` lets `between` run after the create was
     * applied and before its caller hears of it, then either answers (lose: false) or "loses" the
     * reply (CONNECTION_LOSS). Other creates (the queue's own node) go through untouched.
     */
    function slowCreate(zk: Client, dir: string, between: () => Promise<void>, lose: boolean): Client {
      return new Proxy(zk, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target)
          if (prop !== 'create') return typeof value === 'function' ? value.bind(target) : value
          return async (...args: Parameters<Client['create']>) => {
            const created = await target.create(...args)
            if (!args[0].startsWith(`${dir}/`)) return created
            await between()
            if (lose) throw new ZkError(ErrorCode.CONNECTION_LOSS, args[0], 'CONNECTION_LOSS: reply lost')
            return created
          }
        },
      })
    }

    /** A producer whose item a consumer takes between its create and put's return (reply lost or not). */
    async function racedQueue(name: string, lose: boolean) {
      const [pz, cz] = [await env.connect(), await env.connect()]
      const path = env.root(name)
      const consumer = new Queue(cz, path)
      const taken: string[] = []
      const takeOne = async () => void taken.push(dec((await consumer.take({ timeoutMs: 5_000 }))!))
      const producer = new Queue(slowCreate(pz, path, takeOne, lose), path)
      return { pz, path, consumer, taken, producer }
    }

    it('an item taken before put returns is made once', async () => {
      const { consumer, taken, producer } = await racedQueue('q-fast-consumer', false)
      await producer.put('once')
      expect(taken).toEqual(['once'])
      expect(await consumer.take({ timeoutMs: 300 })).toBeNull()
      expect(await consumer.size()).toBe(0)
    })

    it('a put whose reply is lost after its item was taken rejects CONNECTION_LOSS and makes nothing more', async () => {
      const { pz, path, consumer, taken, producer } = await racedQueue('q-lost-put', true)
      const err = await producer.put('maybe').then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(ZkError)
      expect((err as ZkError).code).toBe(ErrorCode.CONNECTION_LOSS)
      expect(taken).toEqual(['maybe'])
      expect(await consumer.take({ timeoutMs: 300 })).toBeNull()
      // A reply lost while the item is still there: found by its GUID, put resolves to it.
      const stays = new Queue(
        slowCreate(pz, path, async () => {}, true),
        path,
      )
      const put = await stays.put('kept')
      expect(put.startsWith(`${path}/`)).toBe(true)
      expect(dec((await consumer.take({ timeoutMs: 5_000 }))!)).toBe('kept')
      expect(await consumer.size()).toBe(0)
    })
  })

  describe('PriorityQueue', () => {
    it('takes the lowest priority number first, FIFO within a priority', async () => {
      const zk = await env.connect()
      const q = new PriorityQueue(zk, env.root('pq'))
      await q.put('low-1', 10)
      await q.put('urgent', -5)
      await q.put('mid', 0)
      await q.put('low-2', 10)
      const got: string[] = []
      for (let i = 0; i < 4; i++) got.push(dec((await q.take({ timeoutMs: 2_000 }))!))
      expect(got).toEqual(['urgent', 'mid', 'low-1', 'low-2'])
      await expect(q.put('bad', 2 ** 40)).rejects.toThrow(/priority/)
    })
  })

  describe('DelayQueue', () => {
    it('hands out an item only once it is due', async () => {
      const zk = await env.connect()
      const q = new DelayQueue(zk, env.root('dq'))
      const t0 = Date.now()
      await q.put('later', 600)
      expect(await q.take({ timeoutMs: 100 })).toBe(null)
      expect(await q.peek()).toBe(null)
      await q.put('now')
      expect(dec((await q.take({ timeoutMs: 2_000 }))!)).toBe('now')
      expect(dec((await q.take({ timeoutMs: 5_000 }))!)).toBe('later')
      expect(Date.now() - t0).toBeGreaterThanOrEqual(600)
      expect(await q.size()).toBe(0)
    })
  })
})
