/**
 * The recipes as async iterators, against real servers (Conclave and Apache
 * ZooKeeper): `for await (const item of queue)` takes items as they come
 * (consumer first, on a queue never created) and `break` or a signal takes
 * nothing more; a group's member lists, a NodeCache's states and a
 * LeaderElection's roles come in order, a slow consumer gets the newest
 * state; a TreeCache's events rebuild the tree, also when the consumer fell
 * behind (one event per path); the end of the session throws.
 *
 * Invariants: no mocks of the server; every wait has a deadline; loops are bounded.
 */
import { describe, expect, it } from 'vitest'
import { ErrorCode, ZkError } from '../../client/index.js'
import {
  type CachedNode,
  GroupMembership,
  LeaderElection,
  type Member,
  NodeCache,
  PriorityQueue,
  Queue,
  TreeCache,
  type TreeCacheEvent,
} from '../../recipes/index.js'
import { waitFor } from '../helpers/wait.js'
import { dec, forEachTarget } from '../unit/recipes/harness.js'

/** The iterator's next value, or a failure after `ms`. */
async function nextOf<T>(it: AsyncIterator<T>, ms = 10_000): Promise<IteratorResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no value within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([it.next(), deadline])
  } finally {
    clearTimeout(timer)
  }
}

async function value<T>(it: AsyncIterator<T>): Promise<T> {
  const r = await nextOf(it)
  if (r.done) throw new Error('the iteration ended')
  return r.value
}

const ids = (ms: readonly Member[]): string => ms.map((m) => `${m.id}=${dec(m.data)}`).join(',')
const text = (n: CachedNode | null): string | null => (n === null ? null : dec(n.data))

forEachTarget('Recipe iterators', (env) => {
  describe('Queue', () => {
    it('for await takes items as they are put, consumer first; break and abort take nothing more', async () => {
      const path = `${env.root('q-iter')}/jobs`
      const consumer = await env.connect()
      const producer = await env.connect()
      const q = new Queue(consumer, path)
      const got: string[] = []
      const loop = (async () => {
        for await (const item of q) {
          got.push(dec(item))
          if (got.length === 3) break
        }
      })()
      const p = new Queue(producer, path)
      for (const item of ['a', 'b', 'c', 'd']) await p.put(item)
      await loop
      expect(got).toEqual(['a', 'b', 'c'])
      // break took nothing more: 'd' is still queued.
      expect(await p.size()).toBe(1)

      const ac = new AbortController()
      const items = new PriorityQueue(consumer, `${path}-prio`).items({ signal: ac.signal })
      const pending = items.next()
      ac.abort()
      expect(await pending).toEqual({ value: undefined, done: true })
      await new PriorityQueue(producer, `${path}-prio`).put('kept', 1)
      expect(await new PriorityQueue(producer, `${path}-prio`).size()).toBe(1)
      expect(dec((await value(q.items()))!)).toBe('d')
    })
  })

  describe('GroupMembership', () => {
    it('yields the member lists in order, newest only to a slow consumer, and throws when the session ends', async () => {
      const path = env.root('group-iter')
      const observerZk = await env.connect()
      const observer = new GroupMembership(observerZk, path)
      const lists = observer[Symbol.asyncIterator]()
      expect(ids(await value(lists))).toBe('')
      const a = new GroupMembership(await env.connect(), path)
      await a.join('a', 'A')
      expect(ids(await value(lists))).toBe('a=A')
      const b = new GroupMembership(await env.connect(), path)
      await b.join('b', 'B')
      expect(ids(await value(lists))).toBe('a=A,b=B')
      // Slow: three changes, then one look gives the newest list.
      await a.update('A2')
      await b.leave()
      await a.update('A3')
      await waitFor(() => observer.current !== undefined && ids(observer.current) === 'a=A3', {
        what: 'the view to catch up',
      })
      expect(ids(await value(lists))).toBe('a=A3')
      // break stops the view this iterator started; a new iterator starts it again.
      for await (const m of observer) {
        expect(ids(m)).toBe('a=A3')
        break
      }
      await lists.return?.()
      expect(observer.current).toBeDefined()
      const again = observer.changes()
      expect(ids(await value(again))).toBe('a=A3')
      await env.killSession(observerZk)
      const end = await nextOf(again).then(
        () => 'no error',
        (err: unknown) => err,
      )
      expect(ZkError.is(end, ErrorCode.SESSION_EXPIRED)).toBe(true)
    })
  })

  describe('NodeCache', () => {
    it('yields the node state (null when absent), then each change; a slow consumer gets the newest', async () => {
      const path = `${env.root('node-iter')}/cfg`
      const writer = await env.connect()
      const cache = new NodeCache(await env.connect(), path)
      const states = cache.changes()
      expect(await value(states)).toBe(null)
      await writer.create(path.slice(0, path.lastIndexOf('/')))
      await writer.create(path, 'v1')
      expect(text(await value(states))).toBe('v1')
      for (const v of ['v2', 'v3', 'v4']) await writer.setData(path, v)
      await waitFor(() => cache.current !== undefined && text(cache.current) === 'v4', {
        what: 'the cache to catch up',
      })
      expect(text(await value(states))).toBe('v4')
      await writer.delete(path)
      expect(await value(states)).toBe(null)
      await cache.close()
      expect(await nextOf(states)).toEqual({ value: undefined, done: true })
    })
  })

  describe('TreeCache', () => {
    it('its events rebuild the tree, also for a consumer that fell behind (one event per path)', async () => {
      const root = env.root('tree-iter')
      const writer = await env.connect()
      await writer.create(root, 'r')
      await writer.create(`${root}/a`, 'a')
      const tree = new TreeCache(await env.connect(), root)
      await tree.start()
      const mirror = new Map<string, string>()
      const apply = (e: TreeCacheEvent): void => {
        if (e.type === 'removed') mirror.delete(e.path)
        else mirror.set(e.path, dec(e.node!.data))
      }
      const events = tree.changes({ bufferSize: 4 })
      // The cached nodes first, parents first.
      apply(await value(events))
      apply(await value(events))
      expect([...mirror.keys()]).toEqual([root, `${root}/a`])
      // 30 changes while the consumer looks away: more than bufferSize are folded per path.
      for (let i = 0; i < 10; i++) {
        await writer.create(`${root}/n${i}`, `${i}`)
        await writer.setData(`${root}/a`, `a${i}`)
        if (i % 2 === 0) await writer.delete(`${root}/n${i}`)
      }
      await waitFor(() => tree.get(`${root}/a`) !== undefined && dec(tree.get(`${root}/a`)!.data) === 'a9', {
        what: 'the cache to catch up',
      })
      await waitFor(() => tree.size === 7, { what: 'the cache to have the 7 nodes' })
      const want = new Map([...tree.snapshot()].map(([p, n]) => [p, dec(n.data)]))
      for (let i = 0; i < 40 && !sameMap(mirror, want); i++) apply(await value(events))
      expect(sameMap(mirror, want)).toBe(true)
      await events.return?.()
      await tree.close()
    })
  })

  describe('LeaderElection', () => {
    it('yields alternating roles; resign ends the iteration', async () => {
      const path = env.root('election-iter')
      const a = new LeaderElection(await env.connect(), path, 'a')
      const b = new LeaderElection(await env.connect(), path, 'b')
      const aRoles = a.changes()
      await a.start()
      await b.start()
      const bRoles = b[Symbol.asyncIterator]()
      expect(await value(aRoles)).toBe('leader')
      expect(await value(bRoles)).toBe('follower')
      await a.resign()
      expect(await value(aRoles)).toBe('follower')
      expect(await nextOf(aRoles)).toEqual({ value: undefined, done: true })
      expect(await value(bRoles)).toBe('leader')
      await b.resign()
    })
  })
})

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v)
}
