/**
 * Barrier, DoubleBarrier, GroupMembership and SharedCounter (recipes/)
 * against real servers: waiters released together, timeouts, two rounds of
 * a double barrier, a live membership view in which a member whose session
 * expires disappears, and 10 sessions x 100 increments = 1,000.
 *
 * Invariants: no mocks of the server; every wait has a deadline; loops are bounded.
 */
import { describe, expect, it } from 'vitest'
import { ErrorCode, ZkError } from '../../client/index.js'
import { Barrier, DoubleBarrier, GroupMembership, type Member, SharedCounter } from '../../recipes/index.js'
import { waitFor } from '../helpers/wait.js'
import { dec, forEachTarget, SHORT_SESSION_MS } from '../unit/recipes/harness.js'

const ids = (ms: readonly Member[] | undefined): string =>
  (ms ?? []).map((m) => `${m.id}=${dec(m.data)}`).join(',')

forEachTarget('Coordination recipes', (env) => {
  describe('Barrier', () => {
    it('holds waiters until removed; times out with false; ends with the session', async () => {
      const path = `${env.root('barrier')}/gate`
      const owner = new Barrier(await env.connect(), path)
      expect(await owner.waitOnBarrier({ timeoutMs: 1_000 })).toBe(true)
      await owner.setBarrier()
      await owner.setBarrier()
      expect(await owner.isSet()).toBe(true)
      const waiters = await Promise.all([1, 2, 3].map(async () => new Barrier(await env.connect(), path)))
      let passed = 0
      const waiting = waiters.map((w) => w.waitOnBarrier({ timeoutMs: 20_000 }).then((ok) => ok && passed++))
      expect(await waiters[0]!.waitOnBarrier({ timeoutMs: 150 })).toBe(false)
      expect(passed).toBe(0)
      await owner.removeBarrier()
      await Promise.all(waiting)
      expect(passed).toBe(3)
      await owner.set()
      const doomedZk = await env.connect()
      const doomed = new Barrier(doomedZk, path).waitOnBarrier().catch((err: unknown) => err)
      await env.killSession(doomedZk)
      expect(ZkError.is(await doomed, ErrorCode.SESSION_EXPIRED)).toBe(true)
      await owner.remove()
    })
  })

  describe('DoubleBarrier', () => {
    it('4 members enter together and leave together, twice', async () => {
      const path = env.root('double')
      const zks = await Promise.all([1, 2, 3, 4].map(() => env.connect()))
      for (let round = 0; round < 2; round++) {
        const members = zks.map((zk) => new DoubleBarrier(zk, path, 4))
        let entered = 0
        const entering = members.slice(0, 3).map((m) => m.enter({ timeoutMs: 20_000 }).then(() => entered++))
        await waitFor(async () => (await zks[0]!.getChildren(path)).length >= 3, { what: 'three members in' })
        expect(entered).toBe(0)
        expect(await members[3]!.enter({ timeoutMs: 20_000 })).toBe(true)
        await Promise.all(entering)
        let left = 0
        const leaving = members.slice(1).map((m) => m.leave({ timeoutMs: 20_000 }).then(() => left++))
        const inside = async (): Promise<string[]> =>
          (await zks[0]!.getChildren(path)).filter((n) => n !== 'ready')
        await waitFor(async () => (await inside()).length <= 2, { what: 'others to start leaving' })
        expect(left).toBe(0)
        expect(await members[0]!.leave({ timeoutMs: 20_000 })).toBe(true)
        await Promise.all(leaving)
        expect(left).toBe(3)
        expect(await zks[0]!.getChildren(path)).toEqual([])
      }
      const alone = new DoubleBarrier(zks[0]!, path, 2)
      expect(await alone.enter({ timeoutMs: 200 })).toBe(false)
      expect(await zks[0]!.getChildren(path)).toEqual([])
    })
  })

  describe('GroupMembership', () => {
    it('keeps a live, sorted view; a member whose session expires disappears', async () => {
      const path = env.root('group')
      const observer = new GroupMembership(await env.connect(), path)
      const views: string[] = []
      observer.on('change', (ms) => views.push(ids(ms)))
      await observer.start()
      const b = new GroupMembership(await env.connect(), path)
      await b.join('member-b', 'B')
      const { zk: cZk, proxy } = await env.connectProxied({ sessionTimeoutMs: SHORT_SESSION_MS })
      const c = new GroupMembership(cZk, path)
      await c.join('member-c', 'C')
      const aZk = await env.connect()
      const a = new GroupMembership(aZk, path)
      await a.join('member-a', 'A')
      await a.join('member-a', 'A2')
      await waitFor(() => ids(observer.current) === 'member-a=A2,member-b=B,member-c=C', {
        what: 'all three',
      })
      expect(ids(await b.members())).toBe('member-a=A2,member-b=B,member-c=C')
      await expect(new GroupMembership(await env.connect(), path).join('member-a')).rejects.toThrow(
        /NODE_EXISTS/,
      )
      await b.update('B2')
      await waitFor(() => ids(observer.current).includes('member-b=B2'), { what: 'the update' })
      proxy.stall()
      await waitFor(() => ids(observer.current) === 'member-a=A2,member-b=B2', {
        timeoutMs: SHORT_SESSION_MS + 5_000,
        what: 'the cut-off member to disappear',
      })
      await a.leave()
      await waitFor(() => ids(observer.current) === 'member-b=B2', { what: 'a to leave' })
      expect(views.at(-1)).toBe('member-b=B2')
      // No duplicate consecutive views.
      for (let i = 1; i < views.length; i++) expect(views[i]).not.toBe(views[i - 1])
      await b.close()
      await observer.close()
    })
    it('an observer of an empty group, created or not yet, starts at once without spinning and sees the first member', async () => {
      for (const created of [true, false]) {
        const path = `${env.root('group-empty')}/svc`
        const zk = await env.connect()
        if (created) await zk.create(path.slice(0, path.lastIndexOf('/'))).then(() => zk.create(path))
        let lists = 0
        const counted = new Proxy(zk, {
          get(target, prop) {
            const value = Reflect.get(target, prop, target)
            if (prop === 'getChildren') lists++
            return typeof value === 'function' ? value.bind(target) : value
          },
        })
        const observer = new GroupMembership(counted, path)
        const started = observer.start().then(() => 'started')
        const bound = new Promise((r) => setTimeout(r, 5_000, 'still starting'))
        expect(await Promise.race([started, bound])).toBe('started')
        expect(observer.current).toEqual([])
        await new GroupMembership(await env.connect(), path).join('m-1', 'one')
        await waitFor(() => ids(observer.current) === 'm-1=one', { what: 'the first member' })
        // One look per change, not a loop over an empty listing.
        expect(lists).toBeLessThan(10)
        await observer.close()
      }
    })
  })

  describe('SharedCounter', () => {
    it('10 sessions x 100 increments = 1,000', async () => {
      const path = `${env.root('counter')}/n`
      const zks = await Promise.all(Array.from({ length: 10 }, () => env.connect()))
      await Promise.all(
        zks.map(async (zk) => {
          const c = new SharedCounter(zk, path)
          for (let i = 0; i < 100; i++) await c.increment()
        }),
      )
      const c = new SharedCounter(zks[0]!, path)
      expect(await c.get()).toBe(1_000)
      expect(await c.trySet(999, 5)).toBe(false)
      expect(await c.trySet(1_000, 5)).toBe(true)
      expect(await c.increment(-2)).toBe(3)
      const { version } = await c.getVersioned()
      expect(await c.trySetVersioned(version - 1, 0)).toBe(false)
      expect(await c.get()).toBe(3)
    })
  })
})
