/**
 * WatchPosition (client/watch-position.ts): how far a session's watch events
 * go — a reply's zxid completes it, an event's zxid makes it partial — where
 * a resume starts, and which of the replay's events were delivered already.
 */
import { describe, expect, it } from 'vitest'
import { WatchPosition } from '../../../client/watch-position.js'

const CREATED = 1
const CHANGED = 3

describe('WatchPosition', () => {
  it('a reply completes the position; a resume starts after it and drops nothing', () => {
    const p = new WatchPosition()
    p.event(5, CREATED, '/a')
    p.reply(7)
    expect(p.zxid).toBe(7)
    expect(p.resumeFrom()).toBe(7)
    expect(p.event(8, CREATED, '/b')).toBe(true)
  })

  it('after a partial Txn, a resume starts before it and drops the events of it delivered already', () => {
    const p = new WatchPosition()
    expect(p.event(9, CREATED, '/a')).toBe(true)
    expect(p.event(9, CHANGED, '/a')).toBe(true)
    expect(p.event(9, CHANGED, '/a')).toBe(true)
    // The connection is lost here: the Txn at 9 also changed /b, not delivered yet.
    expect(p.resumeFrom()).toBe(8)
    // The replay sends 9's events again, in the same order, then what followed.
    expect(p.event(9, CREATED, '/a')).toBe(false)
    expect(p.event(9, CHANGED, '/a')).toBe(false)
    expect(p.event(9, CHANGED, '/a')).toBe(false)
    expect(p.event(9, CHANGED, '/b')).toBe(true)
    expect(p.event(10, CHANGED, '/a')).toBe(true)
    expect(p.zxid).toBe(10)
  })

  it('a second loss in the middle of the replay resumes from where the replay got to', () => {
    const p = new WatchPosition()
    p.event(9, CREATED, '/a')
    p.resumeFrom()
    expect(p.event(9, CREATED, '/a')).toBe(false)
    expect(p.event(9, CHANGED, '/b')).toBe(true)
    // Lost again: both of 9's events were delivered, once each.
    expect(p.resumeFrom()).toBe(8)
    expect(p.event(9, CREATED, '/a')).toBe(false)
    expect(p.event(9, CHANGED, '/b')).toBe(false)
    expect(p.event(9, CHANGED, '/c')).toBe(true)
  })

  it('never goes back; events without a zxid (-1) and older ones leave it as it is', () => {
    const p = new WatchPosition()
    p.reply(20)
    expect(p.event(-1, CREATED, '/a')).toBe(true)
    expect(p.event(15, CREATED, '/a')).toBe(true)
    p.reply(12)
    expect(p.zxid).toBe(20)
    expect(p.resumeFrom()).toBe(20)
  })

  it('compacted: what the session had counts as seen, up to the zxid the server gave', () => {
    const p = new WatchPosition()
    p.event(9, CREATED, '/a')
    p.compacted(30)
    expect(p.resumeFrom()).toBe(30)
  })
})
