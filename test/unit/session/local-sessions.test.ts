/**
 * LocalSessions: the table of sessions a server makes without a Txn —
 * expiry after the timeout without activity (tick-rounded, as the
 * replicated table), touch keeps one alive, remove (closed or upgraded)
 * takes it out of expiry, clear forgets a kind; and sessionServerId reads
 * back the server id the id generator embeds.
 */
import { describe, expect, it } from 'vitest'
import { LocalSessions } from '../../../server/session/local-sessions.js'
import { SessionIdGenerator, sessionServerId } from '../../../server/session/session-ids.js'

describe('LocalSessions', () => {
  it('expires a session idle past its timeout (rounded up to the tick), once, and closes nothing itself', () => {
    const t = new LocalSessions<string>(100)
    t.add(1n, 1000, false, 'conn-1', 50)
    expect(t.expire(1099)).toEqual([])
    const gone = t.expire(1100)
    expect(gone.map((s) => [s.id, s.handler])).toEqual([[1n, 'conn-1']])
    expect(t.has(1n)).toBe(false)
    expect(t.size).toBe(0)
    expect(t.expire(5000)).toEqual([])
  })

  it('touch keeps a session alive and says whether it is local; unknown ids are not', () => {
    const t = new LocalSessions<string>(100)
    t.add(1n, 1000, false, 'a', 0)
    t.add(2n, 1000, true, 'b', 0)
    expect(t.touch(1n, 900)?.id).toBe(1n)
    expect(t.touch(3n, 900)).toBeUndefined()
    expect(t.expire(1000).map((s) => s.id)).toEqual([2n])
    expect(t.expire(1899)).toEqual([])
    expect(t.expire(1900).map((s) => s.id)).toEqual([1n])
  })

  it('a removed session (closed, or upgraded to global) never expires; an id is added once', () => {
    const t = new LocalSessions<string>(100)
    t.add(1n, 1000, false, 'a', 0)
    expect(() => t.add(1n, 1000, false, 'b', 0)).toThrow(/exists already/)
    expect(t.remove(1n)?.handler).toBe('a')
    expect(t.remove(1n)).toBeUndefined()
    expect(t.expire(10_000)).toEqual([])
    // Gone means gone: the same id can be made again (the generator never does, but the table allows it).
    t.add(1n, 500, false, 'c', 10_000)
    expect(t.expire(10_500).map((s) => s.handler)).toEqual(['c'])
  })

  it('a session being upgraded does not expire here (its createSession is on its way); reset, it does', () => {
    const t = new LocalSessions<string>(100)
    const s = t.add(1n, 1000, false, 'a', 0)
    s.upgrading = true
    expect(t.expire(5000)).toEqual([])
    expect(t.has(1n)).toBe(true)
    s.upgrading = false
    expect(t.expire(5999)).toEqual([])
    expect(t.expire(6000).map((x) => x.id)).toEqual([1n])
  })

  it('clear(which) forgets only the matching sessions; clear() all of them', () => {
    const t = new LocalSessions<string>(100)
    t.add(1n, 1000, true, 'ro', 0)
    t.add(2n, 1000, false, 'rw', 0)
    t.clear((s) => s.readOnly)
    expect([...t.values()].map((s) => s.id)).toEqual([2n])
    expect(t.expire(2000).map((s) => s.id)).toEqual([2n])
    t.add(3n, 1000, false, 'x', 0)
    t.clear()
    expect(t.size).toBe(0)
    expect(t.expire(2000)).toEqual([])
  })
})

describe('sessionServerId', () => {
  it.each([1, 2, 127, 128, 255])('reads back server id %i from the ids its generator makes', (id) => {
    const g = new SessionIdGenerator(id, 1_765_000_000_000)
    const a = g.take(() => false)
    const b = g.take((x) => x === a + 1n)
    expect(sessionServerId(a)).toBe(id)
    expect(sessionServerId(b)).toBe(id)
  })
})
