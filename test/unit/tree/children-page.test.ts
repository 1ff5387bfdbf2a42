/**
 * Paginated children (DataTree.childrenPage over SortedNames): pages are
 * ranges of the name order that getChildren lists, whether the parent is
 * small (sorted per page) or large (an ordered index kept up to date by
 * creates and deletes from the moment a parent reaches ORDERED_MIN
 * children, or from its first page after a snapshot load); maxCount and
 * maxBytes bound a page but never empty it; the index goes with its parent.
 * Random operations are checked against a plain sorted array.
 */
import { describe, expect, it } from 'vitest'
import { ORDERED_MIN } from '../../../server/tree/data-tree.js'
import { CHUNK_MAX, SortedNames } from '../../../server/tree/sorted-names.js'
import { Leader } from '../state/harness.js'

/** A deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

describe('SortedNames', () => {
  it('matches a sorted array through random adds and deletes, across chunk splits and merges', () => {
    const rnd = prng(7)
    const s = new SortedNames()
    const model = new Set<string>()
    for (let i = 0; i < 20_000; i++) {
      const name = `n${Math.floor(rnd() * 6000)}`
      if (rnd() < 0.6) expect(s.add(name)).toBe(!model.has(name))
      else expect(s.delete(name)).toBe(model.has(name))
      if (model.has(name)) {
        if (!s.has(name)) model.delete(name)
      } else if (s.has(name)) model.add(name)
    }
    const want = [...model].sort(byCodeUnits)
    expect(s.size).toBe(want.length)
    expect(s.toArray()).toEqual(want)
    expect(want.length).toBeGreaterThan(CHUNK_MAX) // it did split
    for (const after of ['', want[0]!, want[100]!, `${want[100]!}0`, 'n', 'zzz']) {
      expect([...s.after(after)]).toEqual(want.filter((n) => after === '' || n > after))
    }
  })

  it('of() sorts any input and orders by UTF-16 code units, as getChildren does', () => {
    const names = ['b', 'a', 'é', 'Z', '\u{1F600}', '\uFFFD', 'a0']
    expect(SortedNames.of(names).toArray()).toEqual([...names].sort(byCodeUnits))
  })
})

function pageAll(l: Leader, path: string, maxCount: number, maxBytes = 1 << 30): string[] {
  const out: string[] = []
  let after = ''
  for (;;) {
    const page = l.tree.childrenPage(path, after, maxCount, maxBytes)!
    expect(page.names.length).toBeGreaterThan(0)
    expect(page.names.length).toBeLessThanOrEqual(maxCount)
    out.push(...page.names)
    if (!page.more) return out
    after = page.names[page.names.length - 1]!
  }
}

describe('DataTree.childrenPage', () => {
  it('pages a small parent and a large one into exactly getChildren, in its order', () => {
    const l = new Leader()
    l.create('/small')
    l.create('/big')
    for (let i = 0; i < 30; i++) l.create(`/small/c${(i * 7) % 30}`)
    const n = ORDERED_MIN * 4
    for (let i = 0; i < n; i++) l.create(`/big/k${(i * 7919) % n}`)
    // getChildren of a large parent reads its index (no sort): the same names, sorted.
    const bigNames = Array.from({ length: n }, (_, i) => `k${i}`)
    expect(l.tree.getChildren('/big')).toEqual(bigNames.sort(byCodeUnits))
    for (const p of ['/small', '/big']) {
      const all = l.tree.getChildren(p)!
      for (const size of [1, 7, 100, 5000]) expect(pageAll(l, p, size)).toEqual(all)
    }
    expect(l.tree.orderedParents()).toBe(1) // only /big is large enough for an index
    expect(l.tree.childrenPage('/nope', '', 10, 100)).toBeUndefined()
    expect(l.tree.childrenPage('/small/c1', '', 10, 100)).toEqual({ names: [], more: false })
  })

  it('keeps the ordered index right through creates and deletes after it was built', () => {
    const l = new Leader()
    l.create('/q')
    const rnd = prng(3)
    const live = new Set<string>()
    for (let i = 0; i < ORDERED_MIN * 2; i++) {
      l.create(`/q/a${i}`)
      live.add(`a${i}`)
    }
    expect(l.tree.orderedParents()).toBe(1) // built as /q reached ORDERED_MIN, before any page
    expect(l.tree.childrenPage('/q', '', 1, 1000)!.names).toEqual(['a0'])
    for (let i = 0; i < 600; i++) {
      const name = `a${Math.floor(rnd() * 1000)}`
      if (live.has(name)) {
        l.run({ type: 'delete', path: `/q/${name}`, version: -1 })
        live.delete(name)
      } else {
        l.create(`/q/${name}`)
        live.add(name)
      }
    }
    expect(pageAll(l, '/q', 33)).toEqual([...live].sort(byCodeUnits))
    expect(pageAll(l, '/q', 33)).toEqual(l.tree.getChildren('/q'))
  })

  it('continues after the last name even when that name was deleted, and sees names created ahead', () => {
    const l = new Leader()
    l.create('/q')
    for (let i = 0; i < ORDERED_MIN; i++) l.create(`/q/n${String(i).padStart(4, '0')}`)
    const first = l.tree.childrenPage('/q', '', 10, 1 << 20)!
    const last = first.names[9]!
    l.run({ type: 'delete', path: `/q/${last}`, version: -1 })
    l.create('/q/n0005x') // behind the cursor: not seen
    l.create('/q/n0010x') // ahead of it: seen
    const second = l.tree.childrenPage('/q', last, 3, 1 << 20)!
    expect(second.names).toEqual(['n0010', 'n0010x', 'n0011'])
  })

  it('stops a page at maxBytes (4 + UTF-8 bytes a name) but always returns one name', () => {
    const l = new Leader()
    l.create('/p')
    for (const name of ['aaaa', 'bbbb', 'cccc', 'ééé']) l.create(`/p/${name}`)
    expect(l.tree.childrenPage('/p', '', 100, 16)).toEqual({ names: ['aaaa', 'bbbb'], more: true })
    expect(l.tree.childrenPage('/p', '', 100, 1)).toEqual({ names: ['aaaa'], more: true })
    // 'ééé' is 6 bytes of UTF-8: 10 with its length.
    expect(l.tree.childrenPage('/p', 'cccc', 100, 9)).toEqual({ names: ['ééé'], more: false })
    expect(l.tree.childrenPage('/p', 'bbbb', 100, 17)).toEqual({ names: ['cccc'], more: true })
    expect(l.tree.childrenPage('/p', 'bbbb', 100, 18)).toEqual({ names: ['cccc', 'ééé'], more: false })
  })

  it('is built as a parent reaches ORDERED_MIN, goes with the parent, and after a snapshot load is built at the first page', () => {
    const l = new Leader()
    l.create('/p')
    for (let i = 0; i < ORDERED_MIN - 1; i++) l.create(`/p/c${i}`)
    expect(l.tree.orderedParents()).toBe(0)
    l.create('/p/last')
    expect(l.tree.orderedParents()).toBe(1)
    for (const name of l.tree.getChildren('/p')!) l.run({ type: 'delete', path: `/p/${name}`, version: -1 })
    l.run({ type: 'delete', path: '/p', version: -1 })
    expect(l.tree.orderedParents()).toBe(0)
    // A new /p (its slot may be reused) starts without an index, and pages right.
    l.create('/p')
    l.create('/p/x')
    expect(l.tree.childrenPage('/p', '', 10, 100)).toEqual({ names: ['x'], more: false })

    l.create('/big')
    for (let i = 0; i < ORDERED_MIN * 2; i++) l.create(`/big/n${(i * 37) % (ORDERED_MIN * 2)}`)
    const want = l.tree.getChildren('/big')!
    l.restart(4096)
    expect(l.tree.orderedParents()).toBe(0)
    expect(pageAll(l, '/big', 50)).toEqual(want)
    expect(l.tree.orderedParents()).toBe(1)
    l.create('/big/zz')
    l.run({ type: 'delete', path: '/big/n0', version: -1 })
    expect(pageAll(l, '/big', 50)).toEqual(l.tree.getChildren('/big'))
  })
})
