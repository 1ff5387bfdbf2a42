/**
 * One test per rule of the data core (client-api.md; reference §2.2–2.9),
 * through the leader's write path in miniature (prep → encode → decode →
 * apply), plus the regressions the property tests found.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DataTree } from '../../../server/tree/data-tree.js'
import type { TxnResult } from '../../../server/txn/apply.js'
import { decodeTxn, encodeTxn, TxnDecodeError } from '../../../server/txn/codec.js'
import type { PrepRequest } from '../../../server/txn/request.js'
import type { Txn } from '../../../server/txn/txn.js'
import type { Acl, Id } from '../../../shared/acl.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import type { CreateMode } from '../../../shared/opcodes.js'
import { Leader } from './leader.js'

const ALICE: Id = { scheme: 'digest', id: 'alice:2bmR0t3Nh4Jd0Fh1Tz5XqNdnx1Y=' }

/** Prep and apply one request at a time, at zxid 1, 2, 3… and a clock the test moves. */
class Harness {
  readonly leader = new Leader(new DataTree())
  zxid = 0
  time = 1_000_000
  pending: { zxid: number; bytes: Uint8Array }[] = []
  /** Every Txn prepped, encoded, in zxid order. */
  readonly log: Uint8Array[] = []

  constructor() {
    this.run({ type: 'createSession', timeoutMs: 10_000 }, 1n)
    this.run({ type: 'createSession', timeoutMs: 10_000 }, 2n)
  }

  get tree(): DataTree {
    return this.leader.tree
  }

  /** Preps without applying (pipelining). */
  prep(req: PrepRequest, sessionId = 1n, authIds: readonly Id[] = []): Txn {
    const zxid = ++this.zxid
    const { txn, bytes } = this.leader.prep(req, { zxid, timeMs: this.time, sessionId, cxid: zxid, authIds })
    this.pending.push({ zxid, bytes })
    this.log.push(bytes)
    return txn
  }

  flush(): TxnResult[] {
    const out = this.pending.map((p) => this.leader.apply(p.zxid, p.bytes).result)
    this.pending = []
    return out
  }

  run(req: PrepRequest, sessionId = 1n, authIds: readonly Id[] = []): TxnResult {
    this.prep(req, sessionId, authIds)
    return this.flush().at(-1)!
  }

  create(
    path: string,
    mode: CreateMode = 'persistent',
    extra: Partial<PrepRequest & { type: 'create' }> = {},
  ) {
    return this.run({
      type: 'create',
      path,
      data: new Uint8Array(0),
      acl: [...OPEN_ACL_UNSAFE],
      mode,
      ...extra,
    })
  }

  code(r: TxnResult): string {
    return r.type === 'error' ? r.code : 'OK'
  }
}

const bytes = (n: number) => new Uint8Array(n)

describe('Stat after each op', () => {
  it('create, setData, setACL, child create and delete move exactly the fields ZooKeeper moves', () => {
    const h = new Harness()
    h.time = 5000
    const created = h.create('/n', 'persistent', { data: Uint8Array.of(1, 2) })
    expect(created).toEqual({
      type: 'create',
      path: '/n',
      stat: {
        czxid: 3,
        mzxid: 3,
        pzxid: 3,
        ctime: 5000,
        mtime: 5000,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeralOwner: 0n,
        dataLength: 2,
        numChildren: 0,
      },
    })
    h.time = 6000
    expect(h.run({ type: 'setData', path: '/n', data: bytes(5), version: 0 })).toMatchObject({
      stat: { czxid: 3, mzxid: 4, pzxid: 3, ctime: 5000, mtime: 6000, version: 1, dataLength: 5 },
    })
    // setData with the same bytes still bumps version and mzxid.
    expect(h.run({ type: 'setData', path: '/n', data: bytes(5), version: -1 })).toMatchObject({
      stat: { mzxid: 5, version: 2 },
    })
    // setACL: aversion only (not mzxid).
    expect(h.run({ type: 'setACL', path: '/n', acl: [...OPEN_ACL_UNSAFE], version: 0 })).toMatchObject({
      stat: { mzxid: 5, aversion: 1, version: 2 },
    })
    h.create('/n/a')
    h.create('/n/b')
    h.run({ type: 'delete', path: '/n/a', version: -1 })
    // Visible cversion = child creates + deletes; pzxid = last child change.
    expect(h.tree.stat('/n')).toMatchObject({ cversion: 3, numChildren: 1, pzxid: 9, mzxid: 5 })
    expect(h.tree.nodeMeta('/n')!.cversion).toBe(2)
  })

  it('ephemeralOwner is the session for ephemerals and 0 for containers and TTL nodes', () => {
    const h = new Harness()
    expect(h.create('/e', 'ephemeral')).toMatchObject({ stat: { ephemeralOwner: 1n } })
    expect(h.create('/c', 'container')).toMatchObject({ stat: { ephemeralOwner: 0n } })
    expect(h.create('/t', 'persistentWithTtl', { ttlMs: 100 })).toMatchObject({
      stat: { ephemeralOwner: 0n },
    })
  })
})

describe('sequential numbering', () => {
  it("'/q/' gives /q/0000000000; the number is the parent's create count; deletes free none", () => {
    const h = new Harness()
    h.create('/q')
    expect(h.create('/q/', 'persistentSequential')).toMatchObject({ path: '/q/0000000000' })
    expect(h.create('/q/item-', 'ephemeralSequential')).toMatchObject({ path: '/q/item-0000000001' })
    h.run({ type: 'delete', path: '/q/0000000000', version: -1 })
    expect(h.create('/q/', 'persistentSequentialWithTtl', { ttlMs: 5 })).toMatchObject({
      path: '/q/0000000002',
    })
  })

  it('a failed multi uses no number', () => {
    const h = new Harness()
    h.create('/q')
    const r = h.run({
      type: 'multi',
      ops: [
        {
          type: 'create',
          path: '/q/',
          data: bytes(0),
          acl: [...OPEN_ACL_UNSAFE],
          mode: 'persistentSequential',
        },
        { type: 'delete', path: '/nope', version: -1 },
      ],
    })
    expect(r).toEqual({ type: 'error', code: 'NO_NODE', results: ['OK', 'NO_NODE'] })
    expect(h.create('/q/', 'persistentSequential')).toMatchObject({ path: '/q/0000000000' })
  })
})

describe('error codes', () => {
  it('NO_CHILDREN_FOR_EPHEMERALS, NOT_EMPTY, BAD_VERSION, NODE_EXISTS, NO_NODE, delete("/")', () => {
    const h = new Harness()
    h.create('/e', 'ephemeral')
    expect(h.code(h.create('/e/x'))).toBe('NO_CHILDREN_FOR_EPHEMERALS')
    h.create('/p')
    h.create('/p/c')
    expect(h.code(h.run({ type: 'delete', path: '/p', version: -1 }))).toBe('NOT_EMPTY')
    expect(h.code(h.run({ type: 'delete', path: '/p/c', version: 3 }))).toBe('BAD_VERSION')
    expect(h.code(h.run({ type: 'setData', path: '/p', data: bytes(0), version: 1 }))).toBe('BAD_VERSION')
    expect(h.code(h.run({ type: 'check', path: '/p', version: 1 }))).toBe('BAD_VERSION')
    expect(h.code(h.run({ type: 'setACL', path: '/p', acl: [...OPEN_ACL_UNSAFE], version: 1 }))).toBe(
      'BAD_VERSION',
    )
    expect(h.code(h.create('/p'))).toBe('NODE_EXISTS')
    expect(h.code(h.create('/nope/x'))).toBe('NO_NODE')
    expect(h.code(h.run({ type: 'setData', path: '/nope', data: bytes(0), version: -1 }))).toBe('NO_NODE')
    expect(h.code(h.run({ type: 'delete', path: '/', version: -1 }))).toBe('BAD_ARGUMENTS')
    expect(h.code(h.run({ type: 'delete', path: '/a/', version: -1 }))).toBe('BAD_ARGUMENTS')
  })

  it('data of exactly 1,048,576 bytes is accepted; one more is BAD_ARGUMENTS and writes nothing', () => {
    const h = new Harness()
    expect(h.code(h.create('/big', 'persistent', { data: bytes(1024 * 1024) }))).toBe('OK')
    expect(h.code(h.create('/big2', 'persistent', { data: bytes(1024 * 1024 + 1) }))).toBe('BAD_ARGUMENTS')
    expect(h.tree.exists('/big2')).toBe(false)
    expect(h.code(h.run({ type: 'setData', path: '/big', data: bytes(1024 * 1024 + 1), version: -1 }))).toBe(
      'BAD_ARGUMENTS',
    )
    expect(h.tree.stat('/big')).toMatchObject({ version: 0, dataLength: 1024 * 1024 })
  })

  it('TTL: only with TTL modes, > 0 and <= 2^40-1', () => {
    const h = new Harness()
    const c = (path: string, mode: CreateMode, ttlMs?: number) =>
      h.code(h.create(path, mode, ttlMs === undefined ? {} : { ttlMs }))
    expect(c('/t1', 'persistentWithTtl', 2 ** 40 - 1)).toBe('OK')
    expect(c('/t2', 'persistentWithTtl', 2 ** 40)).toBe('BAD_ARGUMENTS')
    expect(c('/t3', 'persistentWithTtl', 0)).toBe('BAD_ARGUMENTS')
    expect(c('/t4', 'persistentWithTtl')).toBe('BAD_ARGUMENTS')
    expect(c('/t5', 'persistent', 100)).toBe('BAD_ARGUMENTS')
    expect(c('/t6', 'container', 100)).toBe('BAD_ARGUMENTS')
    expect(c('/t7', 'persistentSequentialWithTtl', 1)).toBe('OK')
  })
})

describe('containers and TTL nodes', () => {
  it('a container is reapable once its last child goes, never before it had one', () => {
    const h = new Harness()
    h.create('/c', 'container')
    expect(h.tree.reapable(Number.MAX_SAFE_INTEGER)).toEqual([])
    expect(h.code(h.run({ type: 'reap', path: '/c' }, 0n))).not.toBe('OK')
    h.create('/c/x')
    expect(h.tree.reapable(h.time)).toEqual([])
    h.run({ type: 'delete', path: '/c/x', version: -1 })
    expect(h.tree.reapable(h.time)).toEqual(['/c'])
    expect(h.run({ type: 'reap', path: '/c' }, 0n)).toEqual({ type: 'deleteContainer', path: '/c' })
    expect(h.tree.exists('/c')).toBe(false)
  })

  it('a TTL node is reapable when unchanged for longer than its TTL and childless', () => {
    const h = new Harness()
    h.create('/t', 'persistentWithTtl', { ttlMs: 100 })
    const born = h.time
    expect(h.tree.reapable(born + 100)).toEqual([])
    expect(h.tree.reapable(born + 101)).toEqual(['/t'])
    h.time = born + 50
    h.run({ type: 'setData', path: '/t', data: bytes(1), version: -1 })
    expect(h.tree.reapable(born + 101)).toEqual([])
    h.create('/t/kid')
    expect(h.tree.reapable(born + 10_000)).toEqual([])
    h.time = born + 10_000
    expect(h.code(h.run({ type: 'reap', path: '/t' }, 0n))).toBe('NOT_EMPTY')
    h.run({ type: 'delete', path: '/t/kid', version: -1 })
    expect(h.code(h.run({ type: 'reap', path: '/t' }, 0n))).toBe('OK')
  })
})

describe('sessions', () => {
  it('closeSession deletes all the session’s ephemerals in one Txn', () => {
    const h = new Harness()
    h.create('/p')
    h.create('/p/e1', 'ephemeral')
    h.create('/e2', 'ephemeral')
    h.create('/other', 'ephemeral', {})
    h.run(
      { type: 'create', path: '/mine2', data: bytes(0), acl: [...OPEN_ACL_UNSAFE], mode: 'ephemeral' },
      2n,
    )
    const txn = h.prep({ type: 'closeSession' }, 1n)
    expect(txn).toMatchObject({ type: 'closeSession', paths: ['/e2', '/other', '/p/e1'] })
    expect(h.flush()).toEqual([{ type: 'closeSession', deleted: ['/e2', '/other', '/p/e1'] }])
    expect(h.tree.hasSession(1n)).toBe(false)
    expect(h.tree.exists('/mine2')).toBe(true)
  })

  it('pipelined: ephemerals created by Txns not yet applied go with a closeSession prepped after them (caught in the interim tree)', () => {
    const h = new Harness()
    h.prep({ type: 'create', path: '/e', data: bytes(0), acl: [...OPEN_ACL_UNSAFE], mode: 'ephemeral' }, 1n)
    expect(h.prep({ type: 'closeSession' }, 1n)).toMatchObject({ paths: ['/e'] })
    // Later writes, prepped before any of this is applied, see /e gone.
    expect(h.prep({ type: 'setACL', path: '/e', acl: [...OPEN_ACL_UNSAFE], version: -1 }, 2n)).toMatchObject({
      type: 'error',
      code: 'NO_NODE',
    })
    expect(h.flush().map((r) => r.type)).toEqual(['create', 'closeSession', 'error'])
  })
})

describe('ACL schemes', () => {
  const acl = (scheme: string, id: string, perms = 31): Acl[] => [{ perms, id: { scheme, id } }]

  it('world, auth (expanded; INVALID_ACL without auth ids), digest, ip with CIDR', () => {
    const h = new Harness()
    expect(h.code(h.create('/auth', 'persistent', { acl: acl('auth', '') }))).toBe('INVALID_ACL')
    h.run({ type: 'create', path: '/auth', data: bytes(0), acl: acl('auth', ''), mode: 'persistent' }, 1n, [
      ALICE,
      { scheme: 'ip', id: '10.1.2.3' },
    ])
    expect(h.tree.getAcl('/auth')!.acl).toEqual(acl('digest', ALICE.id))
    expect(h.code(h.run({ type: 'setData', path: '/auth', data: bytes(0), version: -1 }))).toBe('NO_AUTH')
    expect(h.code(h.run({ type: 'setData', path: '/auth', data: bytes(0), version: -1 }, 1n, [ALICE]))).toBe(
      'OK',
    )
    h.create('/net', 'persistent', { acl: acl('ip', '10.0.0.0/8') })
    const set = (ip: string) =>
      h.code(
        h.run({ type: 'setData', path: '/net', data: bytes(0), version: -1 }, 1n, [{ scheme: 'ip', id: ip }]),
      )
    expect(set('10.200.0.1')).toBe('OK')
    expect(set('11.0.0.1')).toBe('NO_AUTH')
    expect(h.code(h.create('/bad', 'persistent', { acl: acl('world', 'bob') }))).toBe('INVALID_ACL')
    expect(h.code(h.create('/bad', 'persistent', { acl: [] }))).toBe('INVALID_ACL')
    // READ only for anyone: create below needs CREATE.
    h.create('/ro', 'persistent', { acl: acl('world', 'anyone', 1) })
    expect(h.code(h.create('/ro/x'))).toBe('NO_AUTH')
    // Delete checks the parent's DELETE before whether the child exists (ZooKeeper's order).
    expect(h.code(h.run({ type: 'delete', path: '/ro/missing', version: -1 }))).toBe('NO_AUTH')
  })
})

describe('multi', () => {
  it('failure results: ops before are OK, the failing one its code, later ones RUNTIME_INCONSISTENCY', () => {
    const h = new Harness()
    h.create('/m')
    const r = h.run({
      type: 'multi',
      ops: [
        { type: 'setData', path: '/m', data: bytes(1), version: -1 },
        { type: 'create', path: '/m/a', data: bytes(0), acl: [...OPEN_ACL_UNSAFE], mode: 'persistent' },
        { type: 'check', path: '/m', version: 0 },
        { type: 'delete', path: '/m/a', version: -1 },
      ],
    })
    expect(r).toEqual({
      type: 'error',
      code: 'BAD_VERSION',
      results: ['OK', 'OK', 'BAD_VERSION', 'RUNTIME_INCONSISTENCY'],
    })
    expect(h.tree.stat('/m')).toMatchObject({ version: 0, numChildren: 0 })
  })

  it('success: one result per op, each op seeing the ones before it', () => {
    const h = new Harness()
    const r = h.run({
      type: 'multi',
      ops: [
        { type: 'create', path: '/m', data: bytes(0), acl: [...OPEN_ACL_UNSAFE], mode: 'persistent' },
        { type: 'setData', path: '/m', data: bytes(2), version: 0 },
        { type: 'check', path: '/m', version: 1 },
        {
          type: 'create',
          path: '/m/',
          data: bytes(0),
          acl: [...OPEN_ACL_UNSAFE],
          mode: 'persistentSequential',
        },
        { type: 'delete', path: '/m/0000000000', version: 0 },
      ],
    })
    expect(r.type).toBe('multi')
    if (r.type !== 'multi') return
    expect(r.results.map((x) => x.type)).toEqual(['create', 'setData', 'check', 'create', 'delete'])
    expect(r.results[1]).toMatchObject({ stat: { version: 1, dataLength: 2 } })
    expect(h.tree.stat('/m')).toMatchObject({ cversion: 2, numChildren: 0 })
  })
})

describe('Txn codec', () => {
  it('round-trips every Txn the workload makes', () => {
    const h = new Harness()
    const txns: Txn[] = [
      h.prep({
        type: 'create',
        path: '/a',
        data: Uint8Array.of(1),
        acl: [...OPEN_ACL_UNSAFE],
        mode: 'container',
      }),
      h.prep({
        type: 'create',
        path: '/a/',
        data: bytes(3),
        acl: [...OPEN_ACL_UNSAFE],
        mode: 'ephemeralSequential',
      }),
      h.prep({
        type: 'create',
        path: '/t',
        data: bytes(0),
        acl: [...OPEN_ACL_UNSAFE],
        mode: 'persistentWithTtl',
        ttlMs: 2 ** 40 - 1,
      }),
      h.prep({ type: 'setData', path: '/a', data: bytes(7), version: -1 }),
      h.prep({ type: 'setACL', path: '/a', acl: [{ perms: 1, id: ALICE }], version: -1 }),
      h.prep({ type: 'check', path: '/a', version: -1 }),
      h.prep({ type: 'delete', path: '/t', version: -1 }),
      h.prep({ type: 'multi', ops: [{ type: 'check', path: '/a', version: 5 }] }),
      h.prep({ type: 'multi', ops: [{ type: 'check', path: '/a', version: -1 }] }),
      h.prep({ type: 'closeSession' }, 1n),
      h.prep({ type: 'createSession', timeoutMs: 4000 }, 9n),
      h.prep({ type: 'reap', path: '/a' }, 0n),
    ]
    for (const t of txns) expect(decodeTxn(encodeTxn(t))).toEqual(t)
  })

  it('garbage, truncations and trailing bytes are TxnDecodeError (and nothing else)', () => {
    const h = new Harness()
    const good = encodeTxn(h.prep({ type: 'setData', path: '/x', data: bytes(4), version: -1 }))
    expect(() => decodeTxn(good.subarray(0, good.length - 1))).toThrow(TxnDecodeError)
    const trailing = new Uint8Array(good.length + 1)
    trailing.set(good)
    expect(() => decodeTxn(trailing)).toThrow(TxnDecodeError)
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(),
        fc.uint8Array({ maxLength: 8 }),
        (junk, at, patch) => {
          for (const input of [junk, Uint8Array.from([...good.subarray(0, at % good.length), ...patch])]) {
            try {
              decodeTxn(input)
            } catch (e) {
              expect(e).toBeInstanceOf(TxnDecodeError)
            }
          }
        },
      ),
      { numRuns: 2000 },
    )
  })
})

describe('replay over a snapshot (known bug in DataTree.closeSession)', () => {
  /**
   * Found by the "replaying the whole log over a snapshot taken at the end"
   * and fuzzy-snapshot properties. An ephemeral /x gets a setACL, its session
   * closes, and /x is created again (persistent, or by another session)
   * before the snapshot reaches it. Replaying the log over that snapshot:
   * the first create is skipped (/x exists: the later one), the setACL lands
   * on the later /x, and closeSession leaves /x alone because its owner is
   * not the closing session — so the later /x keeps aversion 1 instead of 0
   * (data/version likewise after a setData): the replica diverges from the
   * leader. The fix: in replay, closeSession deletes every path its Txn lists
   * (deleteNode in replay mode, as a replayed delete does); the creates later
   * in the log rebuild the re-created node. Marked `fails` until fixed.
   */
  it('a closeSession replayed over a re-created ephemeral path leaves no stale setACL/setData', () => {
    const h = new Harness()
    const acl = [...OPEN_ACL_UNSAFE]
    h.run({ type: 'create', path: '/x', data: Uint8Array.of(1), acl, mode: 'ephemeral' }, 2n)
    h.run({ type: 'setACL', path: '/x', acl, version: -1 }, 1n)
    h.run({ type: 'setData', path: '/x', data: Uint8Array.of(2), version: -1 }, 1n)
    h.run({ type: 'closeSession' }, 2n)
    h.run({ type: 'create', path: '/x', data: Uint8Array.of(3), acl, mode: 'ephemeral' }, 1n)
    const copy = DataTree.fromSnapshot(h.tree.snapshot().chunks)
    for (const bytes of h.log) copy.applyReplay(decodeTxn(bytes))
    expect(copy.getData('/x')).toEqual(h.tree.getData('/x'))
    expect(copy.digest()).toBe(h.tree.digest())
  })
})
