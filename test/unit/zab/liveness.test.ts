/**
 * Liveness scenarios: a leader without a quorum within syncLimit steps down
 * (and stops serving); a follower that hears nothing from its leader within
 * syncLimit goes LOOKING; a leader not established within initLimit gives
 * up; after a partition heals, the majority side's leader carries on.
 */
import { describe, expect, it } from 'vitest'
import { Harness } from './harness.js'

describe('liveness', () => {
  it('a leader that hears from no quorum within syncLimit steps down', () => {
    const h = new Harness({ voters: [1, 2, 3], syncLimitTicks: 3 })
    const leader = h.settle()
    h.isolate(leader)
    // Heartbeats every tick: within syncLimit + 1 ticks it must stop serving.
    h.tick(4)
    expect(h.role(leader)).toMatchObject({ role: 'LOOKING', serving: false })
    expect(h.peers.get(leader)!.step({ kind: 'propose', data: new Uint8Array() }).proposed).toEqual({
      ok: false,
      reason: 'not-leader',
    })
  })

  it('a follower whose leader falls silent goes LOOKING and the rest elect a new leader', () => {
    const h = new Harness({ voters: [1, 2, 3], syncLimitTicks: 3 })
    const leader = h.settle()
    const others = [1, 2, 3].filter((id) => id !== leader)
    // The leader's messages stop (a crash the followers cannot see as a disconnect yet).
    h.hold(leader)
    h.crash(leader)
    const newLeader = h.settle()
    expect(others).toContain(newLeader)
    expect(h.role(newLeader)!.epoch).toBeGreaterThan(1)
  })

  it('a follower that stops hearing pings goes LOOKING within syncLimit', () => {
    const h = new Harness({ voters: [1, 2, 3], syncLimitTicks: 3 })
    const leader = h.settle()
    const follower = [1, 2, 3].find((id) => id !== leader)!
    // Deliver nothing to the follower: tick it alone.
    for (let i = 0; i < 5; i++) h.peers.get(follower)!.step({ kind: 'tick' })
    expect(h.peers.get(follower)!.status()).toMatchObject({ role: 'LOOKING', serving: false })
  })

  it('a follower asked to lead by a peer that picked it closes that link, and the peer re-elects at once', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    const leader = h.settle()
    const [f1, f2] = [1, 2, 3].filter((id) => id !== leader) as [number, number]
    // f2 asks f1 to lead (as after an election f1 did not win): f1 follows someone else.
    const out = h.step(f1, { kind: 'message', from: f2, msg: { type: 'FOLLOWERINFO', acceptedEpoch: 1 } })
    expect(out?.disconnect).toEqual([f2])
    // A learner that sees the link to its leader close goes LOOKING and follows the real leader again.
    h.deliver()
    expect(h.role(f2)).toMatchObject({ role: 'FOLLOWING', leaderId: leader, serving: true })
    expect(h.role(f1)).toMatchObject({ role: 'FOLLOWING', leaderId: leader, serving: true })
  })

  it('a leader that cannot establish within initLimit gives up', () => {
    const h = new Harness({ voters: [1, 2, 3], initLimitTicks: 4 })
    // 3 will win the election, then lose both links before discovery finishes.
    h.until(() => h.role(3)?.role === 'LEADING', 20)
    h.isolate(3)
    h.tick(6)
    expect(h.peers.get(3)!.status().role).not.toBe('LEADING')
  })

  it('the majority side of a partition keeps (or elects) a leader and commits', () => {
    const h = new Harness({ voters: [1, 2, 3, 4, 5], syncLimitTicks: 3 })
    const leader = h.settle()
    h.isolate(leader)
    h.until(() => h.leader() !== undefined && h.leader() !== leader)
    const z = h.propose('w:1:k:after')
    h.deliver()
    const newLeader = h.leader()!
    expect(h.committed.get(newLeader)!.map((e) => e.zxid)).toContain(z)
    for (const id of [1, 2, 3, 4, 5]) if (id !== leader) h.heal(leader, id)
    h.until(() => h.committed.get(leader)!.some((e) => e.zxid === z))
  })
})
