/**
 * Broadcast scenarios: commits in zxid order on every server, the leader
 * counts itself only once its own write is durable, a duplicate PROPOSAL
 * is tolerated, sync is a read index (needs a quorum round), and app
 * messages travel in order with ZAB traffic.
 */
import { describe, expect, it } from 'vitest'
import { Harness, zx } from './harness.js'

const enc = new TextEncoder()

describe('broadcast', () => {
  it('commits many in-flight proposals in zxid order on every server', () => {
    const h = new Harness({ voters: [1, 2, 3, 4, 5], observers: [6] })
    const leader = h.settle()
    const zxids = Array.from({ length: 20 }, (_, i) => h.propose(`w:${i}:k:v${i}`))
    h.deliver()
    for (const id of h.members) expect(h.committed.get(id)!.map((e) => e.zxid)).toEqual(zxids)
    expect(new Set(h.members.map((id) => h.sms.get(id)!.digest())).size).toBe(1)
    // COMMIT carries the leader's latest committed zxid; observers got INFORMs.
    expect(h.sentOfType('COMMIT').at(-1)?.msg.zxid).toBe(zxids.at(-1))
    expect(h.sentOfType('INFORM').filter((s) => s.to === 6)).toHaveLength(20)
    expect(h.sentOfType('ACK').some((s) => s.from === 6 && s.msg.newLeaderEpoch === 0)).toBe(false)
    expect(leader).toBe(5)
  })

  it('counts the leader only once its own write is durable', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    const leader = h.settle()
    const [f1, f2] = [1, 2, 3].filter((id) => id !== leader) as [number, number]
    h.hold(leader)
    h.hold(f2)
    const z = h.propose('w:1:k:v')
    h.deliver()
    // Only f1 is durable: one of three.
    expect(h.committed.get(leader)!.map((e) => e.zxid)).not.toContain(z)
    h.flush(leader)
    h.deliver()
    expect(h.committed.get(leader)!.map((e) => e.zxid)).toContain(z)
    expect(h.committed.get(f1)!.map((e) => e.zxid)).toContain(z)
    // f2 learns of the commit although its own log is not durable yet; it has not ACKed.
    expect(h.sentOfType('ACK').some((s) => s.from === f2 && s.msg.zxid === z)).toBe(false)
    h.flush(f2)
    h.deliver()
    expect(h.sentOfType('ACK').some((s) => s.from === f2 && s.msg.zxid === z)).toBe(true)
  })

  it('ACKs a whole durable batch with one cumulative ACK, and the leader commits all of it', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    const leader = h.settle()
    const [f1, f2] = [1, 2, 3].filter((id) => id !== leader) as [number, number]
    h.hold(f1)
    h.hold(f2)
    const before = h.sentOfType('ACK').length
    const zxids = Array.from({ length: 10 }, (_, i) => h.propose(`w:${i}:k:v`))
    h.deliver()
    // Logged but not durable on either follower: nothing vouched for, nothing committed.
    expect(h.sentOfType('ACK').length).toBe(before)
    expect(h.committed.get(leader)!.map((e) => e.zxid)).not.toContain(zxids[0])
    h.flush(f1)
    h.deliver()
    const acks = h.sentOfType('ACK').slice(before)
    expect(acks.map((s) => [s.from, s.msg.zxid])).toEqual([[f1, zxids.at(-1)]])
    const last10 = (id: number) =>
      h.committed
        .get(id)!
        .slice(-10)
        .map((e) => e.zxid)
    expect(last10(leader)).toEqual(zxids)
    // One COMMIT per follower carries the whole batch.
    expect(h.sentOfType('COMMIT').filter((s) => s.msg.zxid >= zxids[0]!)).toHaveLength(2)
    expect(last10(f1)).toEqual(zxids)
  })

  it('tolerates a duplicate PROPOSAL (Zab pitfall 2)', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    const leader = h.settle()
    const z = h.propose('w:1:k:v')
    h.deliver()
    const follower = [1, 2, 3].find((id) => id !== leader)!
    const dup = h.step(follower, {
      kind: 'message',
      from: leader,
      msg: { type: 'PROPOSAL', zxid: z, data: enc.encode('w:1:k:v') },
    })!
    expect(dup.persist).toBeUndefined()
    expect(dup.sendAfterDurable).toEqual([])
    expect(h.peers.get(follower)!.status()).toMatchObject({
      role: 'FOLLOWING',
      protocolErrors: 0,
      lastZxid: z,
    })
  })

  it('completes a sync after a quorum round, with the commit index at its arrival', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    const leader = h.settle()
    const follower = [1, 2, 3].find((id) => id !== leader)!
    const z = h.propose('w:1:k:v')
    h.deliver()
    h.step(follower, { kind: 'sync', requestId: 7 })
    h.deliver()
    expect(h.syncDone.get(follower)).toEqual([7])
    expect(h.sms.get(follower)!.appliedZxid).toBeGreaterThanOrEqual(z)
    expect(h.sentOfType('SYNCREPLY').map((s) => s.msg)).toEqual([
      { type: 'SYNCREPLY', requestId: 7, zxid: z },
    ])
  })

  it('does not answer a sync without a quorum (a stale leader cannot)', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    const leader = h.settle()
    for (const id of [1, 2, 3]) if (id !== leader) h.cut(leader, id)
    const out = h.step(leader, { kind: 'sync', requestId: 1 })!
    expect(out.syncDone).toEqual([])
    h.deliver()
    expect(h.syncDone.get(leader)).toBeUndefined()
    h.tick(6)
    expect(h.syncDone.get(leader)).toBeUndefined()
    expect(h.role(leader)).toMatchObject({ role: 'LOOKING', serving: false })
  })

  it('carries app messages both ways, in order with commits', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    const leader = h.settle()
    const follower = [1, 2, 3].find((id) => id !== leader)!
    h.step(follower, { kind: 'appSend', to: leader, payload: enc.encode('forwarded write') })
    h.deliver()
    expect(h.apps.get(leader)).toEqual([{ from: follower, payload: enc.encode('forwarded write') }])
    const z = h.propose('w:2:k:v')
    h.step(leader, { kind: 'appSend', to: follower, payload: enc.encode('reply') })
    const before = h.committed.get(follower)!.length
    h.deliver()
    expect(h.apps.get(follower)).toHaveLength(1)
    expect(h.committed.get(follower)!.length).toBe(before + 1)
    expect(z).toBe(zx(h.role(leader)!.epoch, 1))
  })

  it('refuses proposals at a follower and before establishment', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    const leader = h.settle()
    const follower = [1, 2, 3].find((id) => id !== leader)!
    expect(h.step(follower, { kind: 'propose', data: enc.encode('x') })!.proposed).toEqual({
      ok: false,
      reason: 'not-leader',
    })
  })
})
