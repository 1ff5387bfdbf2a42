/**
 * The client watch registry's routing rules (ZooKeeper's
 * ZKWatchManager.materialize): which kinds each event fires, one-shot
 * removal, persistent and recursive matching, once per listener per event;
 * and a fast-check comparison against a naive list-based model.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { WatchEvent, Watcher } from '../../../client/types.js'
import { type WatchKind, WatchManager } from '../../../client/watch-manager.js'
import { EventType } from '../../../shared/opcodes.js'

const { nodeCreated, nodeDeleted, nodeDataChanged, nodeChildrenChanged } = EventType

function tagged(log: string[], tag: string): Watcher {
  return (e: WatchEvent) => log.push(`${tag}:${e.type}`)
}

function fire(m: WatchManager, type: number, path: string): Watcher[] {
  return [...m.route(type, path)]
}

describe('WatchManager routing', () => {
  const kinds: WatchKind[] = ['data', 'exist', 'child', 'persistent', 'persistentRecursive']
  const cases: [string, number, WatchKind[]][] = [
    ['created', nodeCreated, ['data', 'exist', 'persistent', 'persistentRecursive']],
    ['dataChanged', nodeDataChanged, ['data', 'exist', 'persistent', 'persistentRecursive']],
    ['deleted', nodeDeleted, ['data', 'exist', 'child', 'persistent', 'persistentRecursive']],
    ['childrenChanged', nodeChildrenChanged, ['child', 'persistent']],
  ]
  it.each(cases)('%s fires exactly the right kinds', (_name, type, expected) => {
    const m = new WatchManager()
    const byKind = new Map<Watcher, WatchKind>()
    for (const k of kinds) {
      const w: Watcher = () => {}
      byKind.set(w, k)
      m.add(k, '/a', w)
    }
    const fired = fire(m, type, '/a').map((w) => byKind.get(w))
    expect(fired.sort()).toEqual([...expected].sort())
    // One-shot kinds that fired are gone; persistent ones stay.
    const again = fire(m, type, '/a').map((w) => byKind.get(w))
    expect(again.sort()).toEqual(
      expected.filter((k) => k === 'persistent' || k === 'persistentRecursive').sort(),
    )
  })

  it('ignores session and watch-removal events', () => {
    const m = new WatchManager()
    m.add('data', '/a', () => {})
    expect(fire(m, EventType.none, '/a')).toEqual([])
    expect(fire(m, EventType.dataWatchRemoved, '/a')).toEqual([])
    expect(m.size).toBe(1)
  })

  it('matches persistentRecursive on ancestors, never for childrenChanged', () => {
    const m = new WatchManager()
    const log: string[] = []
    m.add('persistentRecursive', '/', tagged(log, 'root'))
    m.add('persistentRecursive', '/a', tagged(log, 'a'))
    m.add('persistentRecursive', '/a/b/c', tagged(log, 'abc'))
    m.add('persistent', '/a', tagged(log, 'pa'))
    for (const w of m.route(nodeCreated, '/a/b')) w({ type: 'created', path: '/a/b' })
    expect(log.sort()).toEqual(['a:created', 'root:created'])
    expect(fire(m, nodeChildrenChanged, '/a/b')).toEqual([])
    expect(fire(m, nodeChildrenChanged, '/a')).toHaveLength(1)
    expect(fire(m, nodeDataChanged, '/ab')).toHaveLength(1)
  })

  it('fires a listener once per event, however many registrations match', () => {
    const m = new WatchManager()
    let n = 0
    const w: Watcher = () => n++
    m.add('data', '/a', w)
    m.add('exist', '/a', w)
    m.add('persistent', '/a', w)
    m.add('persistentRecursive', '/', w)
    for (const x of m.route(nodeDataChanged, '/a')) x({ type: 'dataChanged', path: '/a' })
    expect(n).toBe(1)
  })

  it('remove() reports when a kind has no listener left; paths() lists registrations', () => {
    const m = new WatchManager()
    const w1: Watcher = () => {}
    const w2: Watcher = () => {}
    m.add('persistent', '/a', w1)
    m.add('persistent', '/a', w2)
    m.add('child', '/b', w1)
    m.add('persistentRecursive', '/c', w1)
    expect(m.remove('persistent', '/a', w1)).toBe(false)
    expect(m.hasPersistent()).toBe(true)
    expect(m.paths()).toEqual({
      data: [],
      exist: [],
      child: ['/b'],
      persistent: ['/a'],
      persistentRecursive: ['/c'],
    })
    expect(m.remove('persistent', '/a', w2)).toBe(true)
    expect(m.remove('persistent', '/a', w2)).toBe(true)
    expect(m.oneShotKindsAt('/b')).toEqual(['child'])
    expect(m.removeAllAt('/c')).toBe(true)
    expect(m.removeAllAt('/c')).toBe(false)
    expect(m.hasPersistent()).toBe(false)
    m.clear()
    expect(m.size).toBe(0)
  })
})

// ---------------------------------------------------------------- model

type Reg = { kind: WatchKind; path: string; id: number }

function ancestorsAndSelf(path: string): string[] {
  const out = [path]
  while (path !== '/') {
    path = path.slice(0, Math.max(1, path.lastIndexOf('/')))
    out.push(path)
  }
  return out
}

/** Which registrations an event matches, written from the rules, not the code. */
function matches(r: Reg, type: number, path: string): boolean {
  if (r.kind === 'persistentRecursive')
    return type !== nodeChildrenChanged && ancestorsAndSelf(path).includes(r.path)
  if (r.path !== path) return false
  switch (r.kind) {
    case 'persistent':
      return true
    case 'data':
    case 'exist':
      return type !== nodeChildrenChanged
    case 'child':
      return type === nodeChildrenChanged || type === nodeDeleted
  }
}

describe('WatchManager against a model', () => {
  const pathArb = fc.constantFrom('/', '/a', '/a/b', '/a/b/c', '/b', '/ab')
  const kindArb = fc.constantFrom<WatchKind>('data', 'exist', 'child', 'persistent', 'persistentRecursive')
  const typeArb = fc.constantFrom(nodeCreated, nodeDeleted, nodeDataChanged, nodeChildrenChanged)
  const stepArb = fc.oneof(
    fc.record({
      t: fc.constant('add' as const),
      kind: kindArb,
      path: pathArb,
      id: fc.integer({ min: 0, max: 3 }),
    }),
    fc.record({ t: fc.constant('event' as const), type: typeArb, path: pathArb }),
  )

  it('fires the same listeners, once each, and keeps the same registrations', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 40 }), (steps) => {
        const m = new WatchManager()
        const listeners = [0, 1, 2, 3].map((id) => Object.assign((() => {}) as Watcher, { id }))
        let model: Reg[] = []
        for (const s of steps) {
          if (s.t === 'add') {
            m.add(s.kind, s.path, listeners[s.id]!)
            if (!model.some((r) => r.kind === s.kind && r.path === s.path && r.id === s.id))
              model.push({ kind: s.kind, path: s.path, id: s.id })
            continue
          }
          const hit = model.filter((r) => matches(r, s.type, s.path))
          const expected = [...new Set(hit.map((r) => r.id))].sort()
          model = model.filter(
            (r) => !(hit.includes(r) && r.kind !== 'persistent' && r.kind !== 'persistentRecursive'),
          )
          const got = [...m.route(s.type, s.path)].map((w) => (w as Watcher & { id: number }).id).sort()
          expect(got).toEqual(expected)
        }
        expect(m.size).toBe(model.length)
      }),
      { numRuns: 300 },
    )
  })
})
