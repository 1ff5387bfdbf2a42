/**
 * Fast Leader Election scenarios: the winner has the highest (currentEpoch,
 * lastZxid, id); observers never win and never vote; an ensemble of one
 * elects itself; a restarted peer joins the existing leader.
 */
import { describe, expect, it } from 'vitest'
import { entry, Harness, zx } from './harness.js'

function persisted(currentEpoch: number, log: ReturnType<typeof entry>[]) {
  return { acceptedEpoch: currentEpoch, currentEpoch, snapshotZxid: 0, log }
}

describe('Fast Leader Election', () => {
  it('elects the highest id when all else is equal', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    expect(h.settle()).toBe(3)
  })

  it('prefers the higher lastZxid over the higher id', () => {
    const h = new Harness({
      voters: [1, 2, 3],
      persisted: {
        1: persisted(1, [entry(1, 1), entry(1, 2), entry(1, 3)]),
        2: persisted(1, [entry(1, 1)]),
        3: persisted(1, [entry(1, 1), entry(1, 2)]),
      },
    })
    expect(h.settle()).toBe(1)
  })

  it('prefers the higher currentEpoch over the higher lastZxid', () => {
    const h = new Harness({
      voters: [1, 2, 3],
      persisted: {
        1: persisted(1, [entry(1, 1), entry(1, 2), entry(1, 3)]),
        2: persisted(2, [entry(1, 1), entry(2, 1)]),
        3: persisted(1, [entry(1, 1)]),
      },
    })
    // 2's zxid is also higher here; make the epoch decide by giving 2 the lower zxid counter.
    expect(h.settle()).toBe(2)
    const h2 = new Harness({
      voters: [1, 2, 3],
      persisted: {
        1: persisted(1, [entry(1, 1), entry(1, 2), entry(1, 3)]),
        2: { acceptedEpoch: 2, currentEpoch: 2, snapshotZxid: 0, log: [entry(1, 1)] },
        3: persisted(1, [entry(1, 1)]),
      },
    })
    expect(h2.settle()).toBe(2)
  })

  it('never elects an observer, whatever its log; an observer ahead is truncated', () => {
    const h = new Harness({
      voters: [1, 2, 3],
      observers: [4],
      persisted: {
        1: persisted(1, [entry(1, 1)]),
        2: persisted(1, [entry(1, 1)]),
        3: persisted(1, [entry(1, 1)]),
        4: persisted(1, [entry(1, 1), entry(1, 2), entry(1, 3)]),
      },
    })
    const leader = h.settle()
    expect(leader).toBe(3)
    expect(h.role(4)).toMatchObject({ role: 'OBSERVING', leaderId: 3, serving: true })
    expect(h.sentOfType('TRUNC').map((s) => [s.to, s.msg.zxid])).toEqual([[4, zx(1, 1)]])
    expect(h.peers.get(4)!.status().lastZxid).toBe(zx(1, 1))
    // Observers never send NOTIFICATIONs that count, never ACK proposals.
    h.propose('x')
    h.deliver()
    expect(h.sentOfType('ACK').filter((s) => s.from === 4 && s.msg.newLeaderEpoch === 0)).toEqual([])
    expect(h.committed.get(4)!.length).toBe(2)
  })

  it('elects itself in an ensemble of one', () => {
    const h = new Harness({ voters: [1] })
    expect(h.settle()).toBe(1)
    const z = h.propose('solo')
    h.deliver()
    expect(h.committed.get(1)!.map((e) => e.zxid)).toEqual([z])
    expect(z).toBe(zx(1, 1))
  })

  it('lets a restarted peer join the established leader', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    const leader = h.settle()
    const other = [1, 2, 3].find((id) => id !== leader)!
    h.crash(other)
    h.propose('while down')
    h.deliver()
    h.restart(other)
    h.until(() => h.role(other)?.serving === true)
    expect(h.role(other)).toMatchObject({ role: 'FOLLOWING', leaderId: leader })
    expect(h.leader()).toBe(leader)
  })
})
