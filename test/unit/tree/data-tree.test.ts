/**
 * DataTree: ZooKeeper's Stat rules field by field, the initial tree,
 * sequential numbering, containers, TTL nodes, ephemerals and sessions,
 * change events, live-apply assertions and replay leniency. Writes reach the
 * tree the way the server makes them (test/unit/state/harness.ts: TreeDb).
 */
import { describe, expect, it } from 'vitest'
import { DataTree, nextVersion } from '../../../server/tree/data-tree.js'
import { Kind } from '../../../server/tree/node-store.js'
import { type NodeRecord, writeSnapshot } from '../../../server/tree/snapshot.js'
import { decodeTxn } from '../../../server/txn/codec.js'
import { OPEN_ACL_UNSAFE, READ_ACL_UNSAFE } from '../../../shared/acl.js'
import { AssertionError } from '../../../shared/assert.js'
import { enc, errorCode, Leader } from '../state/harness.js'

describe('initial tree', () => {
  it('has /, /zookeeper, /zookeeper/quota and /zookeeper/config as ZooKeeper 3.5+ does', () => {
    const t = new DataTree()
    expect(t.getChildren('/')).toEqual(['zookeeper'])
    expect(t.getChildren('/zookeeper')).toEqual(['config', 'quota'])
    // ZooKeeper adds them without counting creates: shown cversion = 0*2 - numChildren.
    expect(t.stat('/')).toMatchObject({ cversion: -1, numChildren: 1, czxid: 0, pzxid: 0, version: 0 })
    expect(t.stat('/zookeeper')).toMatchObject({ cversion: -2, numChildren: 2 })
    expect(t.getAcl('/zookeeper/config')).toEqual({
      acl: READ_ACL_UNSAFE,
      stat: expect.objectContaining({ aversion: -1 }),
    })
    expect(t.getAcl('/')!.acl).toEqual(OPEN_ACL_UNSAFE)
    expect(t.nodeCount()).toBe(4)
    expect(t.lastZxid).toBe(0)
  })
})

describe('Stat rules', () => {
  it('create: czxid = mzxid = pzxid = zxid, ctime = mtime = txn time, versions 0', () => {
    const l = new Leader()
    const r = l.create('/a', 'hello')
    expect(r.result).toEqual({ type: 'create', path: '/a', stat: l.tree.stat('/a') })
    expect(l.tree.stat('/a')).toEqual({
      czxid: r.zxid,
      mzxid: r.zxid,
      pzxid: r.zxid,
      ctime: l.timeMs,
      mtime: l.timeMs,
      version: 0,
      cversion: 0,
      aversion: 0,
      ephemeralOwner: 0n,
      dataLength: 5,
      numChildren: 0,
    })
  })

  it('setData: version+1, mzxid and mtime move; pzxid, cversion, ctime do not (even with the same bytes)', () => {
    const l = new Leader()
    const c = l.create('/a', 'x')
    const s = l.run({ type: 'setData', path: '/a', data: enc('x'), version: -1 }, { dtMs: 50 })
    const st = l.tree.stat('/a')!
    expect(s.result).toEqual({ type: 'setData', stat: st })
    expect(st).toMatchObject({
      version: 1,
      mzxid: s.zxid,
      mtime: l.timeMs,
      pzxid: c.zxid,
      czxid: c.zxid,
      cversion: 0,
      dataLength: 1,
    })
    expect(st.ctime).toBe(l.timeMs - 50)
    l.run({ type: 'setData', path: '/a', data: enc('longer'), version: 1 })
    expect(l.tree.stat('/a')).toMatchObject({ version: 2, dataLength: 6, ctime: st.ctime })
  })

  it('setACL: aversion+1 only; mzxid and version unchanged', () => {
    const l = new Leader()
    const c = l.create('/a')
    const r = l.run({ type: 'setACL', path: '/a', acl: READ_ACL_UNSAFE, version: 0 })
    expect(r.result.type).toBe('setACL')
    expect(l.tree.stat('/a')).toMatchObject({ aversion: 1, version: 0, mzxid: c.zxid })
    expect(l.tree.getAcl('/a')!.acl).toEqual(READ_ACL_UNSAFE)
  })

  it('child create moves the parent pzxid and stored cversion; a delete moves pzxid only', () => {
    const l = new Leader()
    const p = l.create('/p')
    const c1 = l.create('/p/a')
    expect(l.tree.stat('/p')).toMatchObject({ pzxid: c1.zxid, cversion: 1, numChildren: 1, mzxid: p.zxid })
    expect(l.tree.nodeMeta('/p')!.cversion).toBe(1)
    const d = l.run({ type: 'delete', path: '/p/a', version: -1 })
    // Shown cversion = creates + deletes = 2; stored stays 1 (the next sequence number).
    expect(l.tree.stat('/p')).toMatchObject({ pzxid: d.zxid, cversion: 2, numChildren: 0, mzxid: p.zxid })
    expect(l.tree.nodeMeta('/p')!.cversion).toBe(1)
    l.create('/p/b')
    l.create('/p/c')
    expect(l.tree.stat('/p')).toMatchObject({ cversion: 4, numChildren: 2 })
  })

  it('ephemeralOwner is the session for ephemerals and 0 for containers and TTL nodes', () => {
    const l = new Leader()
    l.session(0x1234n)
    l.create('/e', '', 'ephemeral', { sessionId: 0x1234n })
    l.create('/c', '', 'container')
    l.create('/t', '', 'persistentWithTtl', { ttlMs: 5000 })
    expect(l.tree.stat('/e')!.ephemeralOwner).toBe(0x1234n)
    expect(l.tree.stat('/c')!.ephemeralOwner).toBe(0n)
    expect(l.tree.stat('/t')!.ephemeralOwner).toBe(0n)
  })

  it('versions wrap as ZooKeeper does and never become -1 (ZOOKEEPER-4743)', () => {
    expect(nextVersion(0)).toBe(1)
    expect(nextVersion(2147483647)).toBe(-2147483648)
    expect(nextVersion(-2)).toBe(0)
  })
})

describe('sequential numbering', () => {
  it('uses the parent stored cversion, %010d, and deletes never free a number', () => {
    const l = new Leader()
    l.create('/q')
    expect(l.createdPath(l.create('/q/item-', '', 'persistentSequential'))).toBe('/q/item-0000000000')
    l.create('/q/plain')
    expect(l.createdPath(l.create('/q/item-', '', 'persistentSequential'))).toBe('/q/item-0000000002')
    l.run({ type: 'delete', path: '/q/item-0000000002', version: -1 })
    expect(l.createdPath(l.create('/q/', '', 'persistentSequential'))).toBe('/q/0000000003')
    // Every sequential mode draws from the same counter.
    expect(l.createdPath(l.create('/q/e-', '', 'ephemeralSequential'))).toBe('/q/e-0000000004')
    expect(l.createdPath(l.create('/q/', '', 'persistentSequentialWithTtl', { ttlMs: 5 }))).toBe(
      '/q/0000000005',
    )
  })

  it('a failed multi uses no sequence number; two creates in one multi get consecutive ones', () => {
    const l = new Leader()
    l.create('/q')
    const bad = l.run({
      type: 'multi',
      ops: [
        { type: 'create', path: '/q/s-', data: enc(''), acl: OPEN_ACL_UNSAFE, mode: 'persistentSequential' },
        { type: 'delete', path: '/nope', version: -1 },
      ],
    })
    expect(bad.result).toEqual({ type: 'error', code: 'NO_NODE', results: ['OK', 'NO_NODE'] })
    const ok = l.run({
      type: 'multi',
      ops: [
        { type: 'create', path: '/q/s-', data: enc(''), acl: OPEN_ACL_UNSAFE, mode: 'persistentSequential' },
        { type: 'create', path: '/q/s-', data: enc(''), acl: OPEN_ACL_UNSAFE, mode: 'persistentSequential' },
      ],
    })
    expect(
      ok.result.type === 'multi' && ok.result.results.map((r) => (r.type === 'create' ? r.path : r.type)),
    ).toEqual(['/q/s-0000000000', '/q/s-0000000001'])
  })

  it('wraps as a signed int32 past 2147483647', () => {
    const base: NodeRecord = {
      path: '/',
      data: new Uint8Array(0),
      acl: OPEN_ACL_UNSAFE,
      kind: Kind.persistent,
      owner: 0n,
      ttlMs: 0,
      czxid: 0,
      mzxid: 0,
      pzxid: 0,
      ctime: 0,
      mtime: 0,
      version: 0,
      cversion: 0,
      aversion: 0,
    }
    const chunks = writeSnapshot(5, [[1n, 1000]], [base, { ...base, path: '/q', cversion: 2147483647 }])
    const l = new Leader(DataTree.fromSnapshot(chunks))
    expect(l.createdPath(l.create('/q/n-', '', 'persistentSequential'))).toBe('/q/n-2147483647')
    expect(l.createdPath(l.create('/q/n-', '', 'persistentSequential'))).toBe('/q/n--2147483648')
    expect(l.tree.nodeMeta('/q')!.cversion).toBe(-2147483647)
  })
})

describe('containers', () => {
  it('are kept until they had a child, then reaped when the last child goes', () => {
    const l = new Leader()
    l.create('/c', '', 'container')
    expect(l.tree.reapable(l.timeMs + 1e9)).toEqual([])
    expect(l.tree.nextReapAtMs()).toBeUndefined()
    expect(errorCode(l.run({ type: 'reap', path: '/c' }))).toBe('BAD_VERSION')
    l.create('/c/x')
    expect(l.tree.reapable(l.timeMs)).toEqual([])
    expect(errorCode(l.run({ type: 'reap', path: '/c' }))).toBe('NOT_EMPTY')
    l.run({ type: 'delete', path: '/c/x', version: -1 })
    expect(l.tree.reapable(l.timeMs)).toEqual(['/c'])
    expect(l.tree.nextReapAtMs()).toBe(0)
    const r = l.run({ type: 'reap', path: '/c' })
    expect(r.result).toEqual({ type: 'deleteContainer', path: '/c' })
    expect(r.events.map((e) => `${e.type} ${e.path}`)).toEqual(['deleted /c', 'childrenChanged /'])
    expect(l.tree.exists('/c')).toBe(false)
    expect(l.tree.nextReapAtMs()).toBeUndefined()
  })

  it('stop being candidates when a child is created again', () => {
    const l = new Leader()
    l.create('/c', '', 'container')
    l.create('/c/x')
    l.run({ type: 'delete', path: '/c/x', version: -1 })
    expect(l.tree.reapable(l.timeMs)).toEqual(['/c'])
    l.create('/c/y')
    expect(l.tree.reapable(l.timeMs)).toEqual([])
    expect(l.tree.nextReapAtMs()).toBeUndefined()
  })
})

describe('TTL nodes', () => {
  it('become eligible when unchanged for longer than the TTL and childless', () => {
    const l = new Leader()
    l.create('/t', '', 'persistentWithTtl', { ttlMs: 1000 })
    const t0 = l.tree.stat('/t')!.mtime
    expect(l.tree.nextReapAtMs()).toBe(t0 + 1001)
    expect(l.tree.reapable(t0 + 1000)).toEqual([])
    expect(l.tree.reapable(t0 + 1001)).toEqual(['/t'])
    // A setData restarts the clock.
    l.run({ type: 'setData', path: '/t', data: enc('v'), version: -1 }, { dtMs: 500 })
    const t1 = l.tree.stat('/t')!.mtime
    expect(l.tree.nextReapAtMs()).toBe(t1 + 1001)
    // A child keeps it.
    l.create('/t/kid')
    expect(l.tree.nextReapAtMs()).toBeUndefined()
    expect(errorCode(l.run({ type: 'reap', path: '/t' }))).toBe('NOT_EMPTY')
    l.run({ type: 'delete', path: '/t/kid', version: -1 })
    expect(l.tree.nextReapAtMs()).toBe(t1 + 1001)
    // Prep re-checks with its own clock.
    expect(errorCode(l.run({ type: 'reap', path: '/t' }))).toBe('BAD_VERSION')
    const r = l.run({ type: 'reap', path: '/t' }, { dtMs: 2000 })
    expect(r.result.type).toBe('deleteContainer')
    expect(l.tree.exists('/t')).toBe(false)
  })

  it('sequential TTL nodes work as well', () => {
    const l = new Leader()
    const r = l.create('/t-', '', 'persistentSequentialWithTtl', { ttlMs: 10 })
    expect(l.createdPath(r)).toMatch(/^\/t-\d{10}$/)
    expect(l.tree.nodeMeta(l.createdPath(r))!.kind).toBe('ttl')
  })
})

describe('ephemerals and sessions', () => {
  it('indexes ephemerals per session and refuses children under them', () => {
    const l = new Leader()
    l.session(7n)
    l.session(8n)
    l.create('/e1', '', 'ephemeral', { sessionId: 7n })
    l.create('/e0', '', 'ephemeralSequential', { sessionId: 7n })
    l.create('/f', '', 'ephemeral', { sessionId: 8n })
    expect(l.tree.ephemerals(7n)).toEqual(['/e00000000001', '/e1'])
    expect(l.tree.ephemerals(8n)).toEqual(['/f'])
    expect(errorCode(l.create('/e1/x', '', 'persistent', { sessionId: 7n }))).toBe(
      'NO_CHILDREN_FOR_EPHEMERALS',
    )
    expect(l.tree.sessions()).toEqual([
      { sessionId: 1n, timeoutMs: 10_000 },
      { sessionId: 7n, timeoutMs: 10_000 },
      { sessionId: 8n, timeoutMs: 10_000 },
    ])
  })

  it('closeSession deletes all of its ephemerals in one Txn, in path order, with events', () => {
    const l = new Leader()
    l.session(7n)
    l.session(8n)
    l.create('/p')
    l.create('/p/b', '', 'ephemeral', { sessionId: 7n })
    l.create('/a', '', 'ephemeral', { sessionId: 7n })
    l.create('/p/other', '', 'ephemeral', { sessionId: 8n })
    l.create('/keep')
    const r = l.run({ type: 'closeSession' }, { sessionId: 7n })
    expect(r.result).toEqual({ type: 'closeSession', deleted: ['/a', '/p/b'] })
    expect(r.events.map((e) => `${e.type} ${e.path} ${e.zxid === r.zxid}`)).toEqual([
      'deleted /a true',
      'childrenChanged / true',
      'deleted /p/b true',
      'childrenChanged /p true',
    ])
    expect(l.tree.hasSession(7n)).toBe(false)
    expect(l.tree.ephemerals(7n)).toEqual([])
    expect(l.tree.exists('/keep')).toBe(true)
    // Another session's ephemerals stay.
    expect(l.tree.ephemerals(8n)).toEqual(['/p/other'])
    expect(errorCode(l.create('/z', '', 'persistent', { sessionId: 7n }))).toBe('SESSION_EXPIRED')
  })

  it('closing an unknown session is a no-op, as in ZooKeeper', () => {
    const l = new Leader()
    const before = l.tree.digest()
    expect(l.run({ type: 'closeSession' }, { sessionId: 99n }).result).toEqual({
      type: 'closeSession',
      deleted: [],
    })
    expect(l.tree.digest()).toBe(before)
  })
})

describe('events', () => {
  it('come in the order the changes happen', () => {
    const l = new Leader()
    expect(l.create('/a').events.map((e) => `${e.type} ${e.path}`)).toEqual([
      'created /a',
      'childrenChanged /',
    ])
    const s = l.run({ type: 'setData', path: '/a', data: enc('1'), version: 0 })
    expect(s.events).toEqual([{ type: 'dataChanged', path: '/a', zxid: s.zxid }])
    expect(l.run({ type: 'setACL', path: '/a', acl: OPEN_ACL_UNSAFE, version: -1 }).events).toEqual([])
    const m = l.run({
      type: 'multi',
      ops: [
        { type: 'create', path: '/a/b', data: enc(''), acl: OPEN_ACL_UNSAFE, mode: 'persistent' },
        { type: 'check', path: '/a', version: 1 },
        { type: 'setData', path: '/a/b', data: enc('x'), version: 0 },
        { type: 'delete', path: '/a/b', version: 1 },
      ],
    })
    expect(m.events.map((e) => `${e.type} ${e.path}`)).toEqual([
      'created /a/b',
      'childrenChanged /a',
      'dataChanged /a/b',
      'deleted /a/b',
      'childrenChanged /a',
    ])
    const failedMulti = l.run({ type: 'multi', ops: [{ type: 'delete', path: '/zz', version: -1 }] })
    expect(failedMulti.events).toEqual([])
  })
})

describe('apply', () => {
  it('asserts when a live Txn does not fit the tree, and replay skips it', () => {
    const l = new Leader()
    l.create('/a')
    const txn = decodeTxn(l.log.at(-1)!.bytes)
    expect(txn).toMatchObject({ type: 'create', path: '/a' })
    expect(() => l.tree.apply({ ...txn, zxid: txn.zxid + 1 })).toThrow(AssertionError)
    expect(() => l.tree.apply(txn)).toThrow(AssertionError) // zxid not after lastZxid
    const before = l.tree.digest()
    expect(l.tree.applyReplay(txn)).toEqual([])
    expect(l.tree.digest()).toBe(before)
  })

  it('keeps data exact for every byte value, small and large', () => {
    const l = new Leader()
    const small = Uint8Array.from({ length: 256 }, (_, i) => i)
    const large = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 7) & 0xff)
    l.run({ type: 'create', path: '/s', data: small, acl: OPEN_ACL_UNSAFE, mode: 'persistent' })
    l.run({ type: 'create', path: '/l', data: large, acl: OPEN_ACL_UNSAFE, mode: 'persistent' })
    expect(l.tree.getData('/s')!.data).toEqual(small)
    // (Buffer.equals: vitest's deep equality is slow on a million elements.)
    expect(Buffer.from(l.tree.getData('/l')!.data!).equals(large)).toBe(true)
    expect(l.tree.stat('/l')!.dataLength).toBe(1024 * 1024)
    // The tree copies: mutating the caller's buffer changes nothing.
    small[0] = 99
    expect(l.tree.getData('/s')!.data![0]).toBe(0)
  })

  it('counts descendants (getAllChildrenNumber)', () => {
    const l = new Leader()
    l.create('/a')
    l.create('/a/b')
    l.create('/a/b/c')
    l.create('/a/d')
    expect(l.tree.descendantCount('/a')).toBe(3)
    expect(l.tree.descendantCount('/')).toBe(l.tree.nodeCount() - 1)
    expect(l.tree.descendantCount('/none')).toBeUndefined()
  })
})
