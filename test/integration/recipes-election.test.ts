/**
 * LeaderElection (recipes/) against real servers: five candidates, never two
 * leaders at any observed moment and one once things settle; re-election
 * when the leader's session dies (its connection cut until it expires) or
 * it resigns; waitForLeadership with timeout, abort and the end of the
 * session; a candidate whose node is deleted rejoins.
 *
 * Invariants: no mocks of the server; every wait has a deadline; loops are bounded.
 */
import { describe, expect, it } from 'vitest'
import { ErrorCode, ZkError } from '../../client/index.js'
import { LeaderElection } from '../../recipes/index.js'
import type { TcpProxy } from '../helpers/targets.js'
import { waitFor } from '../helpers/wait.js'
import { forEachTarget, SHORT_SESSION_MS } from '../unit/recipes/harness.js'

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

forEachTarget('LeaderElection', (env) => {
  describe('LeaderElection', () => {
    it('5 candidates: one leader at a time, re-elected when the leader dies or resigns', async () => {
      const path = env.root('election')
      const leaders = new Set<string>()
      let most = 0
      const errors: unknown[] = []
      const candidates: { e: LeaderElection; proxy: TcpProxy }[] = []
      for (let i = 0; i < 5; i++) {
        const { zk, proxy } = await env.connectProxied({ sessionTimeoutMs: SHORT_SESSION_MS })
        const e = new LeaderElection(zk, path, `node-${i}`)
        e.on('leader', () => {
          leaders.add(e.id)
          most = Math.max(most, leaders.size)
        })
        e.on('follower', () => leaders.delete(e.id))
        e.on('error', (err) => errors.push(err))
        candidates.push({ e, proxy })
      }
      for (const c of candidates) await c.e.start()
      expect([...leaders]).toEqual(['node-0'])
      expect(await candidates[3]!.e.leader()).toBe('node-0')
      expect(await candidates[3]!.e.participants()).toEqual([
        'node-0',
        'node-1',
        'node-2',
        'node-3',
        'node-4',
      ])
      // Two leaders in a row die: their connections are cut until their sessions expire.
      for (const round of [0, 1]) {
        const dead = candidates[round]!
        dead.proxy.stall()
        const next = candidates[round + 1]!
        // A deadline for the wait (rejects OPERATION_TIMEOUT), not a wall-time bound: a loaded machine is slow.
        await next.e.waitForLeadership({ timeoutMs: 30_000 })
        expect(dead.e.isLeader).toBe(false)
        expect([...leaders]).toEqual([next.e.id])
        dead.proxy.resume()
        await waitFor(() => errors.some((e) => ZkError.is(e, ErrorCode.SESSION_EXPIRED)), {
          timeoutMs: 15_000,
          what: 'the dead leader to learn its session expired',
        })
        errors.length = 0
      }
      await candidates[2]!.e.resign()
      await candidates[3]!.e.waitForLeadership({ timeoutMs: 10_000 })
      expect(await candidates[4]!.e.leader()).toBe('node-3')
      expect([...leaders]).toEqual(['node-3'])
      expect(most).toBe(1)
      await candidates[3]!.e.resign()
      await candidates[4]!.e.resign()
      expect(await candidates[4]!.e.leader()).toBe(null)
    })

    it('waitForLeadership times out, aborts, and rejects when the session ends', async () => {
      const path = env.root('wait')
      const leader = new LeaderElection(await env.connect(), path, 'a')
      await leader.start()
      const followerZk = await env.connect()
      const follower = new LeaderElection(followerZk, path, 'b')
      const follows = new Promise<void>((resolve) => follower.on('follower', resolve))
      await follower.start()
      await follows
      const t = await rejection(follower.waitForLeadership({ timeoutMs: 200 }))
      expect(ZkError.is(t, ErrorCode.OPERATION_TIMEOUT)).toBe(true)
      const ac = new AbortController()
      const aborted = rejection(follower.waitForLeadership({ signal: ac.signal }))
      ac.abort(new Error('enough'))
      expect(((await aborted) as Error).message).toBe('enough')
      const ending = rejection(follower.waitForLeadership())
      await env.killSession(followerZk)
      expect(ZkError.is(await ending, ErrorCode.SESSION_EXPIRED)).toBe(true)
      expect(await leader.participants()).toEqual(['a'])
    })

    it('a candidate whose node is deleted rejoins at the back', async () => {
      const path = env.root('rejoin')
      const admin = await env.connect()
      const a = new LeaderElection(await env.connect(), path, 'a')
      const b = new LeaderElection(await env.connect(), path, 'b')
      await a.start()
      await b.start()
      const [first] = (await admin.getChildren(path)).sort((x, y) => x.slice(-10).localeCompare(y.slice(-10)))
      await admin.delete(`${path}/${first}`)
      await b.waitForLeadership({ timeoutMs: 10_000 })
      await waitFor(async () => (await b.participants()).join() === 'b,a', { what: 'a to rejoin' })
      expect(a.isLeader).toBe(false)
      await b.resign()
      await a.waitForLeadership({ timeoutMs: 10_000 })
      await a.resign()
    })
  })
})
