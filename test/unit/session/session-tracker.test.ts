/**
 * SessionTracker: tick-rounded deadlines, touch extends, expiry reports each
 * session once, closing sessions never expire again.
 */
import { describe, expect, it } from 'vitest'
import { SessionTracker } from '../../../server/session/session-tracker.js'

describe('SessionTracker', () => {
  it('rounds deadlines up to the tick and expires after the timeout without traffic', () => {
    const t = new SessionTracker(100)
    t.add(1n, 1000, 50)
    expect(t.get(1n)?.deadlineMs).toBe(1100)
    expect(t.expire(1099)).toEqual([])
    expect(t.expire(1100)).toEqual([1n])
    expect(t.expire(5000)).toEqual([])
    expect(t.get(1n)?.closing).toBe(true)
  })

  it('touch moves the deadline; a closing or unknown session cannot be touched', () => {
    const t = new SessionTracker(100)
    t.add(1n, 1000, 0)
    t.add(2n, 1000, 0)
    expect(t.touch(1n, 900)).toBe(true)
    expect(t.expire(1000)).toEqual([2n])
    expect(t.touch(2n, 1000)).toBe(false)
    expect(t.touch(3n, 1000)).toBe(false)
    expect(t.nextDeadlineMs()).toBe(1900)
    expect(t.expire(1900)).toEqual([1n])
    t.remove(1n)
    expect(t.size).toBe(1)
  })

  it('reports expired sessions sorted, and re-adding a session restarts its clock', () => {
    const t = new SessionTracker(10)
    for (const id of [5n, 3n, 9n]) t.add(id, 100, 0)
    t.add(3n, 100, 50)
    expect(t.expire(100)).toEqual([5n, 9n])
    expect(t.expire(150)).toEqual([3n])
  })
})
