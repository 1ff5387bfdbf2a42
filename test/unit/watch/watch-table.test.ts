/**
 * WatchTable: which change wakes which watch (ZooKeeper's WatchManager
 * rules), one notification per watcher per change, one-shot removal,
 * persistent and recursive watches, and cleanup when a watcher goes away.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type ChangeType, WatchTable } from '../../../server/watch/watch-table.js'

describe('WatchTable', () => {
  it('fires one-shot data watches on created/dataChanged/deleted, once', () => {
    const t = new WatchTable<string>()
    t.add('data', '/a', 'c1')
    expect(t.fire({ type: 'childrenChanged', path: '/a' })).toEqual([])
    expect(t.fire({ type: 'dataChanged', path: '/a' })).toEqual([
      { watcher: 'c1', type: 'dataChanged', path: '/a' },
    ])
    expect(t.fire({ type: 'dataChanged', path: '/a' })).toEqual([])
    expect(t.size).toBe(0)
  })

  it('fires child watches on childrenChanged and deleted, not on dataChanged', () => {
    const t = new WatchTable<string>()
    t.add('child', '/a', 'c1')
    expect(t.fire({ type: 'dataChanged', path: '/a' })).toEqual([])
    expect(t.fire({ type: 'deleted', path: '/a' })).toHaveLength(1)
    t.add('child', '/a', 'c1')
    expect(t.fire({ type: 'childrenChanged', path: '/a' })).toHaveLength(1)
    expect(t.size).toBe(0)
  })

  it('notifies a watcher once per change even with a data, child and persistent watch on the path', () => {
    const t = new WatchTable<string>()
    t.add('data', '/a', 'c1')
    t.add('child', '/a', 'c1')
    t.add('persistent', '/a', 'c1')
    t.add('persistentRecursive', '/', 'c1')
    expect(t.fire({ type: 'deleted', path: '/a' })).toEqual([{ watcher: 'c1', type: 'deleted', path: '/a' }])
    // The one-shot ones are gone, the persistent ones stay.
    expect(t.size).toBe(2)
    expect(t.fire({ type: 'created', path: '/a' })).toHaveLength(1)
    expect(t.size).toBe(2)
  })

  it('persistent watches report childrenChanged; recursive ones do not, and cover the subtree', () => {
    const t = new WatchTable<string>()
    t.add('persistent', '/a', 'p')
    t.add('persistentRecursive', '/a', 'r')
    expect(t.fire({ type: 'childrenChanged', path: '/a' }).map((d) => d.watcher)).toEqual(['p'])
    expect(t.fire({ type: 'created', path: '/a/b/c' }).map((d) => d.watcher)).toEqual(['r'])
    expect(t.fire({ type: 'created', path: '/ab' })).toEqual([])
    expect(t.fire({ type: 'dataChanged', path: '/a' }).map((d) => d.watcher)).toEqual(['p', 'r'])
  })

  it('removeWatcher drops everything a connection held', () => {
    const t = new WatchTable<string>()
    t.add('data', '/a', 'c1')
    t.add('child', '/b', 'c1')
    t.add('persistentRecursive', '/', 'c1')
    t.add('data', '/a', 'c2')
    t.removeWatcher('c1')
    expect(t.size).toBe(1)
    expect(t.countFor('c1')).toBe(0)
    expect(t.fire({ type: 'deleted', path: '/a' }).map((d) => d.watcher)).toEqual(['c2'])
  })

  it('matches a reference model on random operations', () => {
    const paths = ['/', '/a', '/a/b', '/c']
    const types: ChangeType[] = ['created', 'deleted', 'dataChanged', 'childrenChanged']
    const kinds = ['data', 'child', 'persistent', 'persistentRecursive'] as const
    const op = fc.oneof(
      fc.record({
        t: fc.constant('add' as const),
        kind: fc.constantFrom(...kinds),
        path: fc.constantFrom(...paths),
        w: fc.constantFrom('x', 'y'),
      }),
      fc.record({
        t: fc.constant('fire' as const),
        type: fc.constantFrom(...types),
        path: fc.constantFrom(...paths),
      }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const table = new WatchTable<string>()
        const model = new Set<string>()
        for (const o of ops) {
          if (o.t === 'add') {
            table.add(o.kind, o.path, o.w)
            model.add(`${o.kind} ${o.path} ${o.w}`)
            continue
          }
          const expected = new Set<string>()
          for (const key of [...model]) {
            const [kind, path, w] = key.split(' ') as [string, string, string]
            const under = path === '/' || o.path === path || o.path.startsWith(`${path}/`)
            const hit =
              (kind === 'data' && path === o.path && o.type !== 'childrenChanged') ||
              (kind === 'child' &&
                path === o.path &&
                (o.type === 'deleted' || o.type === 'childrenChanged')) ||
              (kind === 'persistent' && path === o.path) ||
              (kind === 'persistentRecursive' && under && o.type !== 'childrenChanged')
            if (!hit) continue
            expected.add(w)
            if (kind === 'data' || kind === 'child') model.delete(key)
          }
          const got = table.fire({ type: o.type, path: o.path }).map((d) => d.watcher)
          expect(new Set(got)).toEqual(expected)
          expect(got.length).toBe(expected.size)
          expect(table.size).toBe(model.size)
        }
      }),
    )
  })
})
