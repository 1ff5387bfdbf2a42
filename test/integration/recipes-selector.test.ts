/**
 * LeaderSelector (recipes/) against real servers (Conclave and Apache
 * ZooKeeper): terms never overlap, each candidate leads again and again
 * (automatic requeue) with strictly increasing fencing tokens; close()
 * aborts the running term, waits for its callback and leaves no node; a
 * leader whose connection is cut is interrupted at once (before its session
 * could expire) and another takes over once the session is gone; without
 * autoRequeue, requeue() asks for one more term.
 *
 * Invariants: no mocks of the server; every wait has a deadline; loops are bounded.
 */
import { describe, expect, it } from 'vitest'
import { ErrorCode, ZkError } from '../../client/index.js'
import { LeaderSelector } from '../../recipes/index.js'
import { waitFor } from '../helpers/wait.js'
import { children, forEachTarget, SHORT_SESSION_MS } from '../unit/recipes/harness.js'

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

forEachTarget('LeaderSelector', (env) => {
  describe('LeaderSelector', () => {
    it('3 candidates take turns: terms never overlap, everyone leads again and again, tokens increase', async () => {
      const path = env.root('selector')
      let active = 0
      let most = 0
      const terms: { id: string; token: number }[] = []
      const errors: unknown[] = []
      const selectors = await Promise.all(
        ['a', 'b', 'c'].map(async (id) => {
          const s = new LeaderSelector(await env.connect(), path, id, async (signal, term) => {
            most = Math.max(most, ++active)
            terms.push({ id, token: term.fencingToken })
            expect(s.hasLeadership).toBe(true)
            expect(await s.leader()).toBe(id)
            await sleep(30, signal)
            active--
          })
          s.on('error', (err) => errors.push(err))
          return s
        }),
      )
      for (const s of selectors) s.start()
      await waitFor(() => ['a', 'b', 'c'].every((id) => terms.filter((t) => t.id === id).length >= 3), {
        timeoutMs: 30_000,
        what: 'three terms each',
      })
      await Promise.all(selectors.map((s) => s.close()))
      expect(most).toBe(1)
      for (let i = 1; i < terms.length; i++) expect(terms[i]!.token).toBeGreaterThan(terms[i - 1]!.token)
      expect(errors).toEqual([])
      expect(await children(await env.connect(), path)).toEqual([])
      expect(() => selectors[0]!.start()).toThrow(/API_ERROR/)
    })

    it('close() aborts the running term, waits for its callback and leaves no node; the next candidate leads', async () => {
      const path = env.root('selector-close')
      const events: string[] = []
      let aborted: unknown
      const leader = new LeaderSelector(await env.connect(), path, 'a', async (signal) => {
        events.push('a leads')
        await new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => {
            aborted = signal.reason
            resolve()
          }),
        )
        await sleep(50)
        events.push('a returns')
      })
      leader.start()
      await waitFor(() => leader.hasLeadership, { what: 'a to lead' })
      const other = new LeaderSelector(await env.connect(), path, 'b', async (signal) => {
        events.push('b leads')
        await sleep(60_000, signal)
      })
      other.start()
      await waitFor(async () => (await other.participants()).length === 2, { what: 'b to queue' })
      expect(await other.participants()).toEqual(['a', 'b'])
      await leader.close()
      events.push('a closed')
      expect(ZkError.is(aborted, ErrorCode.API_ERROR)).toBe(true)
      await waitFor(() => other.hasLeadership, { what: 'b to lead' })
      // b leads only once a's callback has returned (and close() may resolve after b started).
      expect(events.slice(0, 2)).toEqual(['a leads', 'a returns'])
      expect(events.slice(2).sort()).toEqual(['a closed', 'b leads'])
      // close() while only waiting for the lock leaves nothing either.
      const waiter = new LeaderSelector(await env.connect(), path, 'c', () => {})
      waiter.start()
      await waitFor(async () => (await other.participants()).includes('c'), { what: 'c to queue' })
      await waiter.close()
      expect(await other.participants()).toEqual(['b'])
      await other.close()
      expect(await other.leader()).toBe(null)
    })

    it('a leader cut off from the server is interrupted at once; another leads once its session is gone', async () => {
      const path = env.root('selector-cut')
      const { zk, proxy } = await env.connectProxied({ sessionTimeoutMs: SHORT_SESSION_MS })
      let reason: unknown
      const errors: unknown[] = []
      const cut = new LeaderSelector(zk, path, 'cut', async (signal) => {
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()))
        reason = signal.reason
      })
      cut.on('error', (err) => errors.push(err))
      cut.start()
      await waitFor(() => cut.hasLeadership, { what: 'the first candidate to lead' })
      const next = new LeaderSelector(await env.connect(), path, 'next', (signal) => sleep(60_000, signal))
      next.start()
      proxy.stall()
      await waitFor(() => !cut.hasLeadership, { timeoutMs: SHORT_SESSION_MS, what: 'the cut leader to stop' })
      // Disconnected, not yet expired: the interruption came first.
      expect(zk.state).toBe('disconnected')
      expect(ZkError.is(reason)).toBe(true)
      await waitFor(() => next.hasLeadership, { timeoutMs: 20_000, what: 'the other candidate to lead' })
      proxy.resume()
      await waitFor(() => errors.some((e) => ZkError.is(e, ErrorCode.SESSION_EXPIRED)), {
        timeoutMs: 20_000,
        what: 'the cut candidate to learn its session expired',
      })
      await cut.close()
      await next.close()
    })

    it('without autoRequeue a candidate leads once, and again after requeue()', async () => {
      const path = env.root('selector-once')
      let terms = 0
      const s = new LeaderSelector(
        await env.connect(),
        path,
        'once',
        () => {
          terms++
        },
        { autoRequeue: false },
      )
      const follower = new Promise<void>((resolve) => s.once('follower', resolve))
      s.start()
      await follower
      expect(terms).toBe(1)
      expect(await s.participants()).toEqual([])
      s.requeue()
      await waitFor(() => terms === 2, { what: 'the requeued term' })
      await s.close()
      expect(terms).toBe(2)
    })
  })
})
