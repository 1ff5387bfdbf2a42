/**
 * prep: every check of ZooKeeper's PrepRequestProcessor and its result
 * codes, multi, and the outstanding-changes overlay under pipelining
 * (requests prepped before earlier ones are applied). Requests go through
 * the server's write path (TreeDb, test/unit/state/harness.ts), where a
 * request prep refuses is answered at once and takes no zxid.
 */
import { describe, expect, it } from 'vitest'
import { decodeTxn } from '../../../server/txn/codec.js'
import { DATA_BYTES_MAX, prep } from '../../../server/txn/prepare.js'
import type { CreateRequest, PrepRequest } from '../../../server/txn/request.js'
import type { Txn } from '../../../server/txn/txn.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import { TTL_MS_MAX } from '../../../shared/opcodes.js'
import { enc, errorCode, Leader, type PrepOptions } from '../state/harness.js'

const create = (path: string, extra: Partial<CreateRequest> = {}): CreateRequest => ({
  type: 'create',
  path,
  data: enc(''),
  acl: OPEN_ACL_UNSAFE,
  mode: 'persistent',
  ...extra,
})

describe('prep checks', () => {
  it('validates paths (BAD_ARGUMENTS) for every operation', () => {
    const l = new Leader()
    for (const path of ['', 'a', '/a/', '/a//b', '/a/./b', '/a/../b', '/a\u0000b', '/\ud800'])
      expect(errorCode(l.run(create(path)))).toBe('BAD_ARGUMENTS')
    expect(errorCode(l.run({ type: 'delete', path: 'x', version: -1 }))).toBe('BAD_ARGUMENTS')
    expect(errorCode(l.run({ type: 'setData', path: '/x/', data: enc(''), version: -1 }))).toBe(
      'BAD_ARGUMENTS',
    )
    expect(errorCode(l.run({ type: 'setACL', path: '//', acl: OPEN_ACL_UNSAFE, version: -1 }))).toBe(
      'BAD_ARGUMENTS',
    )
    // A sequential create may end in '/': the name is just the number.
    expect(l.createdPath(l.run(create('/', { mode: 'persistentSequential' })))).toBe('/0000000000')
  })

  it('create: NO_NODE without parent, NODE_EXISTS (also for /), NO_CHILDREN_FOR_EPHEMERALS', () => {
    const l = new Leader()
    expect(errorCode(l.run(create('/a/b')))).toBe('NO_NODE')
    l.run(create('/a'))
    expect(errorCode(l.run(create('/a')))).toBe('NODE_EXISTS')
    expect(errorCode(l.run(create('/')))).toBe('NODE_EXISTS')
    l.run(create('/e', { mode: 'ephemeral' }))
    expect(errorCode(l.run(create('/e/x', { mode: 'container' })))).toBe('NO_CHILDREN_FOR_EPHEMERALS')
  })

  it('data: exactly 1 MiB is accepted, one byte more is BAD_ARGUMENTS and writes nothing', () => {
    const l = new Leader()
    const max = new Uint8Array(DATA_BYTES_MAX)
    expect(errorCode(l.run(create('/big', { data: max })))).toBeUndefined()
    const digest = l.tree.digest()
    expect(errorCode(l.run(create('/big2', { data: new Uint8Array(DATA_BYTES_MAX + 1) })))).toBe(
      'BAD_ARGUMENTS',
    )
    expect(
      errorCode(
        l.run({ type: 'setData', path: '/big', data: new Uint8Array(DATA_BYTES_MAX + 1), version: -1 }),
      ),
    ).toBe('BAD_ARGUMENTS')
    expect(l.tree.exists('/big2')).toBe(false)
    expect(l.tree.digest()).toBe(digest)
  })

  it('TTL: required and in (0, 2^40-1] for TTL modes, refused for every other mode', () => {
    const l = new Leader()
    const ttl = (mode: CreateRequest['mode'], ttlMs?: number) =>
      errorCode(l.run(create(`/t${l.zxid}`, ttlMs === undefined ? { mode } : { mode, ttlMs })))
    expect(ttl('persistentWithTtl')).toBe('BAD_ARGUMENTS')
    expect(ttl('persistentWithTtl', 0)).toBe('BAD_ARGUMENTS')
    expect(ttl('persistentWithTtl', TTL_MS_MAX + 1)).toBe('BAD_ARGUMENTS')
    expect(ttl('persistentWithTtl', TTL_MS_MAX)).toBeUndefined()
    expect(ttl('persistentSequentialWithTtl', 1)).toBeUndefined()
    for (const mode of ['persistent', 'ephemeral', 'container', 'persistentSequential'] as const) {
      expect(ttl(mode, 1000)).toBe('BAD_ARGUMENTS')
      expect(ttl(mode, 0)).toBe('BAD_ARGUMENTS')
      expect(ttl(mode, -1)).toBeUndefined()
    }
    expect(errorCode(l.run(create('/m', { mode: 'bogus' as never })))).toBe('BAD_ARGUMENTS')
  })

  it('delete: BAD_ARGUMENTS for / and ZooKeeper special paths, BAD_VERSION, NOT_EMPTY, NO_NODE', () => {
    const l = new Leader()
    for (const path of ['/', '/zookeeper', '/zookeeper/quota', '/zookeeper/config'])
      expect(errorCode(l.run({ type: 'delete', path, version: -1 }))).toBe('BAD_ARGUMENTS')
    l.run(create('/a'))
    l.run(create('/a/b'))
    expect(errorCode(l.run({ type: 'delete', path: '/a', version: 3 }))).toBe('BAD_VERSION')
    expect(errorCode(l.run({ type: 'delete', path: '/a', version: 0 }))).toBe('NOT_EMPTY')
    expect(errorCode(l.run({ type: 'delete', path: '/a/zz', version: -1 }))).toBe('NO_NODE')
    expect(errorCode(l.run({ type: 'delete', path: '/zz/zz', version: -1 }))).toBe('NO_NODE')
    expect(errorCode(l.run({ type: 'delete', path: '/a/b', version: 0 }))).toBeUndefined()
  })

  it('setData/setACL/check: versions (-1 = any), BAD_VERSION, NO_NODE', () => {
    const l = new Leader()
    l.run(create('/a'))
    expect(errorCode(l.run({ type: 'setData', path: '/a', data: enc('1'), version: 1 }))).toBe('BAD_VERSION')
    expect(errorCode(l.run({ type: 'setData', path: '/a', data: enc('1'), version: 0 }))).toBeUndefined()
    expect(errorCode(l.run({ type: 'setData', path: '/a', data: enc('2'), version: -1 }))).toBeUndefined()
    expect(l.tree.stat('/a')!.version).toBe(2)
    expect(errorCode(l.run({ type: 'setData', path: '/zz', data: enc('1'), version: -1 }))).toBe('NO_NODE')
    expect(errorCode(l.run({ type: 'setACL', path: '/a', acl: OPEN_ACL_UNSAFE, version: 1 }))).toBe(
      'BAD_VERSION',
    )
    expect(errorCode(l.run({ type: 'setACL', path: '/zz', acl: OPEN_ACL_UNSAFE, version: -1 }))).toBe(
      'NO_NODE',
    )
    expect(errorCode(l.run({ type: 'check', path: '/a', version: 1 }))).toBe('BAD_VERSION')
    expect(errorCode(l.run({ type: 'check', path: '/a', version: 2 }))).toBeUndefined()
    expect(errorCode(l.run({ type: 'check', path: '/zz', version: -1 }))).toBe('NO_NODE')
  })

  it('unknown sessions get SESSION_EXPIRED; createSession validates its timeout', () => {
    const l = new Leader()
    expect(errorCode(l.run(create('/a'), { sessionId: 42n }))).toBe('SESSION_EXPIRED')
    expect(errorCode(l.run({ type: 'createSession', timeoutMs: 0 }, { sessionId: 42n }))).toBe(
      'BAD_ARGUMENTS',
    )
    expect(errorCode(l.run({ type: 'createSession', timeoutMs: 5000 }, { sessionId: 1n }))).toBe(
      'RUNTIME_INCONSISTENCY',
    )
  })

  it('a failed request is an error Txn with the header (zxid, session, cxid, time) that changes only lastZxid', () => {
    const l = new Leader()
    const digest = l.tree.digest()
    const ctx = l.nextCtx()
    const txn = prep({ type: 'delete', path: '/none', version: -1 }, l.tree, ctx)
    expect(txn).toEqual({
      type: 'error',
      code: 'NO_NODE',
      sessionId: 1n,
      cxid: ctx.cxid,
      zxid: ctx.zxid,
      timeMs: ctx.timeMs,
    })
    l.tree.apply(txn)
    expect(l.tree.lastZxid).toBe(txn.zxid)
    expect(l.tree.digest()).toBe(digest)
  })

  it('the server (TreeDb) answers a failed request at prep: no Txn, no zxid taken', () => {
    const l = new Leader()
    const zxid = l.zxid
    const logged = l.log.length
    expect(l.prep({ type: 'delete', path: '/none', version: -1 })).toEqual({ ok: false, err: 'NO_NODE' })
    expect(l.prep({ type: 'multi', ops: [create('/m'), create('/m')] })).toEqual({
      ok: false,
      err: 'NODE_EXISTS',
      multi: ['OK', 'NODE_EXISTS'],
    })
    expect(l.zxid).toBe(zxid)
    expect(l.log).toHaveLength(logged)
    expect(l.prep(create('/a'))).toMatchObject({ ok: true, zxid: zxid + 1 })
  })

  it('multi: OK before the failing op, its code, RUNTIME_INCONSISTENCY after; nothing applied', () => {
    const l = new Leader()
    l.run(create('/a'))
    const digest = l.tree.digest()
    const r = l.run({
      type: 'multi',
      ops: [
        create('/b'),
        { type: 'setData', path: '/a', data: enc('x'), version: 0 },
        create('/b'),
        create('/c'),
      ],
    })
    expect(r.result).toEqual({
      type: 'error',
      code: 'NODE_EXISTS',
      results: ['OK', 'OK', 'NODE_EXISTS', 'RUNTIME_INCONSISTENCY'],
    })
    expect(l.tree.exists('/b')).toBe(false)
    expect(l.tree.digest()).toBe(digest)
    expect(l.overlaySize()).toBe(0)
    expect(l.run({ type: 'multi', ops: [] }).result).toEqual({ type: 'multi', results: [] })
  })

  it('multi success: one result per op, each op seeing the ones before it', () => {
    const l = new Leader()
    const r = l.run({
      type: 'multi',
      ops: [
        create('/m'),
        { type: 'setData', path: '/m', data: enc('ab'), version: 0 },
        { type: 'check', path: '/m', version: 1 },
        create('/m/', { mode: 'persistentSequential' }),
        { type: 'delete', path: '/m/0000000000', version: 0 },
      ],
    })
    expect(r.result.type).toBe('multi')
    if (r.result.type !== 'multi') return
    expect(r.result.results.map((x) => x.type)).toEqual(['create', 'setData', 'check', 'create', 'delete'])
    expect(r.result.results[1]).toMatchObject({ stat: { version: 1, dataLength: 2 } })
    expect(r.result.results[3]).toMatchObject({ path: '/m/0000000000' })
    expect(l.tree.stat('/m')).toMatchObject({ version: 1, cversion: 2, numChildren: 0 })
  })
})

/** Preps through the harness; the Txn prep made, or the refusal. */
function prepTxn(l: Leader, req: PrepRequest, o?: PrepOptions): Txn | { ok: false; err: string } {
  const p = l.prep(req, o)
  return p.ok ? decodeTxn(p.bytes) : p
}

describe('outstanding changes (pipelining)', () => {
  it('preps against effects of earlier, not yet applied Txns', () => {
    const l = new Leader()
    prepTxn(l, create('/q'))
    const t2 = prepTxn(l, create('/q/x-', { mode: 'persistentSequential' }))
    const t3 = prepTxn(l, create('/q/x-', { mode: 'persistentSequential' }))
    prepTxn(l, { type: 'setData', path: '/q', data: enc('1'), version: 0 })
    const t5 = prepTxn(l, { type: 'setData', path: '/q', data: enc('2'), version: 1 })
    prepTxn(l, { type: 'delete', path: '/q/x-0000000000', version: -1 })
    const t7 = prepTxn(l, create('/q/x-', { mode: 'persistentSequential' }))
    const t8 = prepTxn(l, { type: 'delete', path: '/q', version: -1 })
    expect([t2, t3, t7].map((t) => ('type' in t && t.type === 'create' ? t.path : t))).toEqual([
      '/q/x-0000000000',
      '/q/x-0000000001',
      '/q/x-0000000002',
    ])
    expect(t5).toMatchObject({ type: 'setData', version: 2 })
    expect(t8).toEqual({ ok: false, err: 'NOT_EMPTY' })
    // Nothing is applied yet: the tree has none of it.
    expect(l.tree.exists('/q')).toBe(false)
    expect(l.overlaySize()).toBeGreaterThan(0)
    l.applyAll()
    expect(l.tree.getChildren('/q')).toEqual(['x-0000000001', 'x-0000000002'])
    expect(l.tree.stat('/q')!.version).toBe(2)
    expect(l.overlaySize()).toBe(0)
  })

  it('sees sessions and ephemerals prepped but not applied (closeSession lists them)', () => {
    const l = new Leader()
    prepTxn(l, { type: 'createSession', timeoutMs: 3000 }, { sessionId: 9n })
    prepTxn(l, create('/e', { mode: 'ephemeral' }), { sessionId: 9n })
    const c = prepTxn(l, { type: 'closeSession' }, { sessionId: 9n })
    const late = prepTxn(l, create('/f'), { sessionId: 9n })
    // Another session, prepped before any of it is applied, sees /e gone.
    const other = prepTxn(l, { type: 'setACL', path: '/e', acl: OPEN_ACL_UNSAFE, version: -1 })
    expect(c).toMatchObject({ type: 'closeSession', paths: ['/e'] })
    expect(late).toEqual({ ok: false, err: 'SESSION_EXPIRED' })
    expect(other).toEqual({ ok: false, err: 'NO_NODE' })
    expect(l.applyAll().map((o) => o.result.type)).toEqual(['createSession', 'create', 'closeSession'])
    expect(l.tree.exists('/e')).toBe(false)
    expect(l.tree.hasSession(9n)).toBe(false)
  })

  it('a failed multi leaves no trace in the overlay; dropOutstanding() forgets everything', () => {
    const l = new Leader()
    prepTxn(l, create('/q'))
    prepTxn(l, { type: 'multi', ops: [create('/q/s-', { mode: 'persistentSequential' }), create('/zz/x')] })
    const next = prepTxn(l, create('/q/s-', { mode: 'persistentSequential' }))
    expect(next).toMatchObject({ path: '/q/s-0000000000' })
    l.db.dropOutstanding()
    expect(l.overlaySize()).toBe(0)
    expect(prepTxn(l, create('/q/y'))).toEqual({ ok: false, err: 'NO_NODE' })
  })
})

describe('a local session (PrepContext.localSession)', () => {
  it('writes without being in the tree, but owns no ephemeral; unmarked, the same session is expired', () => {
    const l = new Leader()
    const local = (req: PrepRequest) => {
      const p = l.prepWith(req, { ...l.nextCtx({ sessionId: 77n }), localSession: true })
      return p.ok ? decodeTxn(p.bytes) : p
    }
    expect(local(create('/l'))).toMatchObject({ type: 'create', path: '/l' })
    expect(local({ type: 'setData', path: '/l', data: enc('x'), version: -1 })).toMatchObject({
      type: 'setData',
    })
    expect(local({ type: 'setACL', path: '/l', acl: OPEN_ACL_UNSAFE, version: -1 })).toMatchObject({
      type: 'setACL',
    })
    for (const mode of ['ephemeral', 'ephemeralSequential'] as const) {
      expect(local(create('/l/e', { mode }))).toEqual({ ok: false, err: 'EPHEMERAL_ON_LOCAL_SESSION' })
      expect(local({ type: 'multi', ops: [create('/l/m'), create('/l/e', { mode })] })).toMatchObject({
        ok: false,
        err: 'EPHEMERAL_ON_LOCAL_SESSION',
      })
    }
    expect(local(create('/l/c', { mode: 'container' }))).toMatchObject({ type: 'create', mode: 'container' })
    // Without the mark, a session the tree does not hold is expired, as before.
    expect(prepTxn(l, create('/g'), { sessionId: 77n })).toEqual({ ok: false, err: 'SESSION_EXPIRED' })
    // Upgraded (its createSession prepped ahead): the ephemeral is its own.
    prepTxn(l, { type: 'createSession', timeoutMs: 3000 }, { sessionId: 77n })
    expect(local(create('/l/e', { mode: 'ephemeral' }))).toMatchObject({ type: 'create', path: '/l/e' })
  })
})
