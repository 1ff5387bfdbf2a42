/**
 * ChangeRing (server/watch/change-ring.ts): the bounded history of applied
 * changes that watches resume from — bounded by changes and by bytes, whole
 * Txns dropped oldest first, startZxid saying how far back it is complete,
 * since() answering 'compacted' below it; and planResume
 * (server/watch/watch-resume.ts): which of the history's events a set of
 * resumed watches missed, with the live path's matching rules.
 */
import { describe, expect, it } from 'vitest'
import { CHANGE_OVERHEAD_BYTES, ChangeRing, ENTRY_OVERHEAD_BYTES } from '../../../server/watch/change-ring.js'
import { planResume, type ResumedWatch } from '../../../server/watch/watch-resume.js'
import type { WatchChange } from '../../../server/watch/watch-table.js'

const created = (path: string): WatchChange => ({ type: 'created', path })
const kids = (path: string): WatchChange => ({ type: 'childrenChanged', path })
const changed = (path: string): WatchChange => ({ type: 'dataChanged', path })
const deleted = (path: string): WatchChange => ({ type: 'deleted', path })

const BIG = { changesMax: 1_000_000, bytesMax: 1 << 30 }

describe('ChangeRing', () => {
  it('keeps Txns in zxid order and gives those after a zxid; complete above its start', () => {
    const ring = new ChangeRing(BIG, 10)
    ring.append(11, [created('/a'), kids('/')])
    ring.append(12, []) // a Txn with no change (createSession): nothing kept
    ring.append(15, [changed('/a')])
    expect(ring.length).toBe(2)
    expect(ring.size).toBe(3)
    expect(ring.startZxid).toBe(10)
    expect(ring.lastZxid).toBe(15)
    expect(ring.since(10)).toEqual([
      { zxid: 11, changes: [created('/a'), kids('/')], bytes: expect.any(Number) },
      { zxid: 15, changes: [changed('/a')], bytes: expect.any(Number) },
    ])
    expect((ring.since(11) as { zxid: number }[]).map((e) => e.zxid)).toEqual([15])
    expect((ring.since(14) as { zxid: number }[]).map((e) => e.zxid)).toEqual([15])
    expect(ring.since(15)).toEqual([])
    expect(ring.since(9)).toBe('compacted')
  })

  it('drops whole Txns, oldest first, past changesMax; the start moves to the last one dropped', () => {
    const ring = new ChangeRing({ changesMax: 3, bytesMax: 1 << 30 }, 0)
    ring.append(1, [created('/a'), kids('/')])
    ring.append(2, [created('/b')])
    expect(ring.size).toBe(3)
    ring.append(3, [changed('/b')])
    // Txn 1's two changes go together.
    expect(ring.size).toBe(2)
    expect(ring.startZxid).toBe(1)
    expect(ring.since(0)).toBe('compacted')
    expect((ring.since(1) as { zxid: number }[]).map((e) => e.zxid)).toEqual([2, 3])
    expect(ring.evicted).toBe(1)
  })

  it('drops past bytesMax (64 + 2 per path character per change, 48 per Txn)', () => {
    const one = ENTRY_OVERHEAD_BYTES + CHANGE_OVERHEAD_BYTES + 2 * '/x'.length
    const ring = new ChangeRing({ changesMax: 1000, bytesMax: 2 * one }, 0)
    ring.append(1, [created('/x')])
    ring.append(2, [created('/y')])
    expect(ring.bytes).toBe(2 * one)
    ring.append(3, [created('/z')])
    expect(ring.bytes).toBe(2 * one)
    expect(ring.startZxid).toBe(1)
    // A single Txn over the limit is not kept at all; the history starts after it.
    ring.append(4, [created(`/${'q'.repeat(1000)}`)])
    expect(ring.length).toBe(0)
    expect(ring.bytes).toBe(0)
    expect(ring.startZxid).toBe(4)
    expect(ring.since(4)).toEqual([])
    expect(ring.since(3)).toBe('compacted')
  })

  it('with a limit of 0 keeps nothing and resumes only from its last zxid', () => {
    const ring = new ChangeRing({ changesMax: 0, bytesMax: 0 }, 5)
    ring.append(6, [created('/a')])
    expect(ring.length).toBe(0)
    expect(ring.since(6)).toEqual([])
    expect(ring.since(5)).toBe('compacted')
  })

  it('reset forgets everything (a snapshot replaced the tree); a Txn out of zxid order resets too', () => {
    const ring = new ChangeRing(BIG, 0)
    ring.append(1, [created('/a')])
    ring.append(2, [created('/b')])
    ring.reset(100)
    expect(ring.size).toBe(0)
    expect(ring.since(2)).toBe('compacted')
    expect(ring.since(100)).toEqual([])
    ring.append(101, [created('/c')])
    ring.append(101, [created('/d')])
    expect(ring.startZxid).toBe(101)
    expect(ring.since(100)).toBe('compacted')
  })

  it('stays correct over many appends and evictions (its array is compacted)', () => {
    const ring = new ChangeRing({ changesMax: 100, bytesMax: 1 << 30 }, 0)
    for (let z = 1; z <= 10_000; z++) ring.append(z, [changed(`/n${z % 7}`)])
    expect(ring.size).toBe(100)
    expect(ring.startZxid).toBe(9_900)
    const after = ring.since(9_950) as { zxid: number }[]
    expect(after.map((e) => e.zxid)).toEqual(Array.from({ length: 50 }, (_, i) => 9_951 + i))
  })
})

describe('planResume', () => {
  function history(): ChangeRing {
    const ring = new ChangeRing(BIG, 100)
    ring.append(101, [created('/app/a'), kids('/app')])
    ring.append(102, [changed('/app/a'), changed('/other')])
    ring.append(103, [created('/app/a/b'), kids('/app/a')])
    ring.append(104, [deleted('/app/a/b'), kids('/app/a'), changed('/app')])
    return ring
  }
  const zxids = (plan: ReturnType<typeof planResume>) =>
    plan.kind === 'replay' ? plan.events.map((e) => `${e.zxid} ${e.type} ${e.path}`) : plan.kind

  it('a one-shot fires at the first matching change after the position, and only there', () => {
    // The history of test/integration/watch-failover.test.ts's flake: /w/x changed at 61 (before
    // the one-shot on it was set), creates under /w, then /w/x at 163 and 165 (the gap).
    const ring = new ChangeRing(BIG, 50)
    ring.append(61, [changed('/w/x')])
    for (let z = 62; z < 163; z++) ring.append(z, [created(`/w/n${z}`), kids('/w')])
    ring.append(163, [changed('/w/x')])
    ring.append(164, [created('/w/n164'), kids('/w')])
    ring.append(165, [changed('/w/x')])
    const watches: ResumedWatch[] = [
      { kind: 'persistentRecursive', path: '/w' },
      { kind: 'data', path: '/w/x' },
    ]
    // From past the one-shot's read (the SDK's position is at least its reply's zxid): it fires
    // at 163; 165 is the recursive watch's alone (one event per change either way).
    const plan = planResume(ring, 120, watches)
    const xs = (zxids(plan) as string[]).filter((e) => e.endsWith('/w/x'))
    expect(xs).toEqual(['163 dataChanged /w/x', '165 dataChanged /w/x'])
    expect(plan.kind === 'replay' && plan.register).toEqual([{ kind: 'persistentRecursive', path: '/w' }])
    // A one-shot alone: fired by 163, then gone, so 165 sends nothing and it is not registered.
    const alone = planResume(ring, 120, [{ kind: 'data', path: '/w/x' }])
    expect(zxids(alone)).toEqual(['163 dataChanged /w/x'])
    expect(alone.kind === 'replay' && alone.register).toEqual([])
  })

  it('a recursive watch gets every change below it after fromZxid, in order, never childrenChanged', () => {
    const plan = planResume(history(), 101, [{ kind: 'persistentRecursive', path: '/app' }])
    expect(zxids(plan)).toEqual([
      '102 dataChanged /app/a',
      '103 created /app/a/b',
      '104 deleted /app/a/b',
      '104 dataChanged /app',
    ])
    expect(plan.kind === 'replay' && plan.register).toEqual([{ kind: 'persistentRecursive', path: '/app' }])
  })

  it('a persistent watch gets its own path only, childrenChanged included', () => {
    const plan = planResume(history(), 100, [{ kind: 'persistent', path: '/app/a' }])
    expect(zxids(plan)).toEqual([
      '101 created /app/a',
      '102 dataChanged /app/a',
      '103 childrenChanged /app/a',
      '104 childrenChanged /app/a',
    ])
  })

  it('one event per change however many watches match it; one-shots fire once and are not registered', () => {
    const watches: ResumedWatch[] = [
      { kind: 'persistentRecursive', path: '/' },
      { kind: 'persistent', path: '/app/a' },
      { kind: 'data', path: '/app/a' },
      { kind: 'child', path: '/app' },
      { kind: 'data', path: '/never' },
    ]
    const plan = planResume(history(), 100, watches)
    expect(zxids(plan)).toEqual([
      '101 created /app/a',
      '101 childrenChanged /app',
      '102 dataChanged /app/a',
      '102 dataChanged /other',
      '103 created /app/a/b',
      '103 childrenChanged /app/a',
      '104 deleted /app/a/b',
      '104 childrenChanged /app/a',
      '104 dataChanged /app',
    ])
    // The data watch on /app/a fired at 101 (created), the child watch on /app at 101: both spent.
    expect(plan.kind === 'replay' && plan.register).toEqual([
      { kind: 'persistentRecursive', path: '/' },
      { kind: 'persistent', path: '/app/a' },
      { kind: 'data', path: '/never' },
    ])
  })

  it('nothing after fromZxid: no event, every watch registered', () => {
    const plan = planResume(history(), 104, [{ kind: 'data', path: '/app/a' }])
    expect(zxids(plan)).toEqual([])
    expect(plan.kind === 'replay' && plan.register).toEqual([{ kind: 'data', path: '/app/a' }])
  })

  it("'compacted' when fromZxid is older than the history", () => {
    expect(planResume(history(), 99, [{ kind: 'persistent', path: '/app' }])).toEqual({ kind: 'compacted' })
  })
})
