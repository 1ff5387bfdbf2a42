/**
 * Null data: a znode created or set with no data (ZooKeeper's null, length
 * -1 on the wire) keeps null, distinct from empty bytes, through the tree,
 * its Stat, the size estimate, the digest and a snapshot round trip;
 * snapshots written before null was kept (data always a buffer) read as
 * before. (The Txn log's side: test/unit/txn/codec.test.ts.)
 */
import { describe, expect, it } from 'vitest'
import { DataTree } from '../../../server/tree/data-tree.js'
import { SNAPSHOT_FORMAT_VERSION, SNAPSHOT_MAGIC } from '../../../server/tree/snapshot.js'
import { fromBytes, toBytes } from '../../../server/tree/znode-data.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import { JuteWriter } from '../../../shared/jute.js'
import { enc, errorCode, Leader } from '../state/harness.js'
import { dumpTree } from './compare.js'

const EMPTY = new Uint8Array(0)

function createWith(l: Leader, path: string, data: Uint8Array | null) {
  return l.run({ type: 'create', path, data, acl: OPEN_ACL_UNSAFE, mode: 'persistent' })
}

describe('null data in the tree', () => {
  it('stores null apart from empty bytes: getData gives null, Stat.dataLength 0', () => {
    const l = new Leader()
    expect(errorCode(createWith(l, '/none', null))).toBeUndefined()
    expect(errorCode(createWith(l, '/empty', EMPTY))).toBeUndefined()
    expect(l.tree.getData('/none')!.data).toBeNull()
    expect(l.tree.getData('/empty')!.data).toEqual(EMPTY)
    expect(l.tree.stat('/none')!.dataLength).toBe(0)
    expect(l.tree.stat('/empty')!.dataLength).toBe(0)
  })

  it('setData moves between null, empty and bytes, each read back as set', () => {
    const l = new Leader()
    createWith(l, '/a', enc('x'))
    for (const [data, version] of [
      [null, 1],
      [enc('back'), 2],
      [EMPTY, 3],
      [null, 4],
    ] as const) {
      expect(errorCode(l.run({ type: 'setData', path: '/a', data, version: -1 }))).toBeUndefined()
      expect(l.tree.getData('/a')!.data).toEqual(data)
      expect(l.tree.stat('/a')).toMatchObject({ version, dataLength: data?.length ?? 0 })
    }
  })

  it('counts null data as 0 bytes in the size estimate', () => {
    const a = new Leader()
    const b = new Leader()
    createWith(a, '/n', null)
    createWith(b, '/n', EMPTY)
    expect(a.tree.sizeEstimateBytes()).toBe(b.tree.sizeEstimateBytes())
    a.run({ type: 'setData', path: '/n', data: enc('12345'), version: -1 })
    a.run({ type: 'setData', path: '/n', data: null, version: -1 })
    b.run({ type: 'setData', path: '/n', data: enc('12345'), version: -1 })
    b.run({ type: 'setData', path: '/n', data: EMPTY, version: -1 })
    expect(a.tree.sizeEstimateBytes()).toBe(b.tree.sizeEstimateBytes())
  })

  it('makes the digest tell null from empty data (same Txns otherwise)', () => {
    const a = new Leader()
    const b = new Leader()
    createWith(a, '/n', null)
    createWith(b, '/n', EMPTY)
    expect(a.tree.stat('/n')).toEqual(b.tree.stat('/n'))
    expect(a.tree.digest()).not.toBe(b.tree.digest())
    // And back to equal once both hold the same data again.
    a.run({ type: 'setData', path: '/n', data: enc('same'), version: -1 })
    b.run({ type: 'setData', path: '/n', data: enc('same'), version: -1 })
    expect(a.tree.digest()).toBe(b.tree.digest())
  })

  it('znode-data keeps null as null and copies bytes', () => {
    expect(fromBytes(null)).toBeNull()
    expect(toBytes(null)).toBeNull()
    expect(toBytes(fromBytes(EMPTY))).toEqual(EMPTY)
    expect(toBytes(fromBytes(enc('abc')))).toEqual(enc('abc'))
  })
})

describe('null data in snapshots', () => {
  it('round-trips null and empty data apart, with the same digest', () => {
    const l = new Leader()
    createWith(l, '/none', null)
    createWith(l, '/empty', EMPTY)
    createWith(l, '/bytes', enc('b'))
    l.run({ type: 'setData', path: '/bytes', data: null, version: -1 })
    for (const chunkBytes of [1, 64, 1024 * 1024]) {
      const copy = DataTree.fromSnapshot(l.tree.snapshot({ chunkBytes }).chunks)
      expect(copy.getData('/none')!.data).toBeNull()
      expect(copy.getData('/empty')!.data).toEqual(EMPTY)
      expect(copy.getData('/bytes')!.data).toBeNull()
      expect(copy.digest()).toBe(l.tree.digest())
      expect(dumpTree(copy)).toEqual(dumpTree(l.tree))
    }
  })

  it('reads a snapshot written before null data was kept (empty buffers) as before', () => {
    // The format as it was written (format 1, data always a buffer; format 2 added write memories).
    const w = new JuteWriter()
    w.int(SNAPSHOT_MAGIC).int(1).long(7)
    w.int(2).int(0) // ACL record 0: world:anyone ALL
    w.vector(OPEN_ACL_UNSAFE, (x, a) => x.int(a.perms).ustring(a.id.scheme).ustring(a.id.id))
    const node = (path: string, data: Uint8Array, czxid: number) => {
      w.int(3).ustring(path).buffer(data).int(0).int(0).long(0n).long(0)
      w.long(czxid).long(czxid).long(czxid).long(1000).long(1000)
      w.int(0).int(0).int(0)
    }
    node('/', EMPTY, 0)
    node('/a', EMPTY, 5)
    node('/b', enc('x'), 6)
    w.int(4).int(0).int(1).int(3) // END: 0 sessions, 1 ACL, 3 znodes
    expect(SNAPSHOT_FORMAT_VERSION).toBe(2)
    const t = DataTree.fromSnapshot([w.finish()])
    expect(t.lastZxid).toBe(7)
    expect(t.getData('/a')!.data).toEqual(EMPTY)
    expect(t.getData('/b')!.data).toEqual(enc('x'))
    expect(t.getChildren('/')).toEqual(['a', 'b'])
  })
})
