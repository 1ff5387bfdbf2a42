/**
 * A tree past the sizes where its storage changes shape: more slots than one
 * NodeStore page (PAGE_SLOTS), more children under one parent and more
 * ephemerals in one session than SHARD_AT (a plain Set becomes a ShardedSet).
 * Everything a client can observe must stay as it was: children, stats, data,
 * ephemerals, the digest, a snapshot's round trip, slot reuse across pages.
 */
import { describe, expect, it } from 'vitest'
import { SHARD_AT } from '../../../server/core/sharded-map.js'
import { DataTree } from '../../../server/tree/data-tree.js'
import { PAGE_SLOTS } from '../../../server/tree/node-store.js'
import { enc, errorCode, Leader } from '../state/harness.js'
import { sizeFromContents } from './compare.js'

const COUNT = PAGE_SLOTS + 4_000

describe('a tree larger than one page, with a parent and a session past SHARD_AT', () => {
  it('answers as a small tree does, through deletes, slot reuse, a snapshot and the session closing', () => {
    expect(COUNT).toBeGreaterThan(SHARD_AT)
    const l = new Leader()
    l.session(2n)
    l.create('/q', '')
    const created: string[] = []
    for (let i = 0; i < COUNT; i++) {
      const r = l.create('/q/e-', `v${i}`, 'ephemeralSequential', { sessionId: 2n })
      created.push(l.createdPath(r))
    }
    const t = l.tree
    expect(t.getChildren('/q')).toEqual(created.map((p) => p.slice(3)).sort())
    expect(t.stat('/q')!.numChildren).toBe(COUNT)
    expect(t.descendantCount('/q')).toBe(COUNT)
    expect(t.ephemerals(2n)).toEqual([...created].sort())
    // Znodes on either side of the page boundary keep their own columns and data.
    for (const i of [0, PAGE_SLOTS - 10, PAGE_SLOTS - 1, PAGE_SLOTS, PAGE_SLOTS + 7, COUNT - 1]) {
      const d = t.getData(created[i]!)!
      expect(Buffer.from(d.data!).toString()).toBe(`v${i}`)
      expect(d.stat.ephemeralOwner).toBe(2n)
      expect(d.stat.czxid).toBe(d.stat.mzxid)
    }
    // Free every third slot (on every page), then take them again.
    for (let i = 0; i < COUNT; i += 3)
      expect(errorCode(l.run({ type: 'delete', path: created[i]!, version: -1 }))).toBeUndefined()
    const left = created.filter((_, i) => i % 3 !== 0)
    expect(t.stat('/q')!.numChildren).toBe(left.length)
    const again: string[] = []
    for (let i = 0; i < 5_000; i++) again.push(l.createdPath(l.create(`/r${i}`, `r${i}`)))
    for (const i of [0, 2_500, 4_999]) {
      const d = t.getData(again[i]!)!
      expect(Buffer.from(d.data!).toString()).toBe(`r${i}`)
      expect(d.stat).toMatchObject({ version: 0, numChildren: 0, ephemeralOwner: 0n })
    }
    l.run({ type: 'setData', path: left[left.length - 1]!, data: enc('changed'), version: 0 })
    expect(t.stat(left[left.length - 1]!)!.version).toBe(1)

    const copy = DataTree.fromSnapshot(t.snapshot({ chunkBytes: 64 * 1024 }).chunks)
    expect(copy.digest()).toBe(t.digest())
    expect(t.sizeEstimateBytes()).toBe(sizeFromContents(t))
    expect(copy.sizeEstimateBytes()).toBe(t.sizeEstimateBytes())
    expect(copy.nodeCount()).toBe(t.nodeCount())
    expect(copy.getChildren('/q')).toEqual(t.getChildren('/q'))
    expect(copy.ephemerals(2n)).toEqual([...left].sort())
    expect(copy.getData(left[left.length - 1]!)).toEqual(t.getData(left[left.length - 1]!))

    const before = t.nodeCount()
    l.run({ type: 'closeSession' }, { sessionId: 2n })
    expect(t.getChildren('/q')).toEqual([])
    expect(t.ephemerals(2n)).toEqual([])
    expect(t.nodeCount()).toBe(before - left.length)
    expect(t.sizeEstimateBytes()).toBe(sizeFromContents(t))
    for (const tree of [t, copy]) expect(tree.exists(left[0]!)).toBe(tree === copy)
  })
})
