/**
 * Self-tests of the chaos workloads' checkers (test/chaos/workloads/) on
 * histories known to be good and known to be bad: sequential and
 * exactly-once creates (a duplicate name, a sequence out of order, a lost
 * acknowledged create, a create applied twice, a phantom child), the queue
 * (an item taken twice, lost, never put), the fenced lock (overlapping
 * grants with the tokens the wrong way round, a stale write accepted),
 * ephemerals (gone before the session ended, back after it was seen gone,
 * never gone), and the register checker deciding a history with many
 * indeterminate writes (the ZooKeeper runs' UNKNOWN) that a plain search
 * could not.
 */
import { describe, expect, it } from 'vitest'
import type { ChaosEvent } from '../../chaos/history.js'
import { anonymizeUnobserved, checkOperations, znodeRegister } from '../../chaos/linearizability.js'
import { checkCreates } from '../../chaos/workloads/creates.js'
import { checkEphemerals } from '../../chaos/workloads/ephemeral.js'
import { checkLock } from '../../chaos/workloads/lock.js'
import { checkQueue } from '../../chaos/workloads/queue.js'
import { checkRegisters, registerHistories } from '../../chaos/workloads/registers.js'

const ev = (
  workload: string,
  process: number,
  f: string,
  at: number,
  to: number | null,
  more: Partial<ChaosEvent> = {},
): ChaosEvent => ({
  workload,
  process,
  f,
  type: to === null ? 'info' : 'ok',
  invokedAt: at,
  returnedAt: to ?? Number.POSITIVE_INFINITY,
  ...more,
})

describe('sequential creates checker', () => {
  const P = '/chaos-sequential-0'
  const create = (c: number, token: string, at: number, to: number | null, name?: string) =>
    ev('sequential', c, 'create', at, to, { key: P, value: token, ...(name ? { result: name } : {}) })
  const list = (names: string[]) => ev('sequential', 9, 'list', 100, 101, { key: P, result: names })
  const good = [
    create(1, 'c1-0', 0, 2, 'c1-0-0000000000'),
    create(2, 'c2-0', 1, 3, 'c2-0-0000000001'),
    create(1, 'c1-1', 4, 5, 'c1-1-0000000002'),
    create(2, 'c2-1', 4, null),
  ]

  it('accepts unique, monotonic names all present at the end, with an indeterminate create applied or not', () => {
    expect(
      checkCreates('sequential', [...good, list(['c1-0-0000000000', 'c2-0-0000000001', 'c1-1-0000000002'])])
        .valid,
    ).toBe(true)
    expect(
      checkCreates('sequential', [
        ...good,
        list(['c1-0-0000000000', 'c2-0-0000000001', 'c1-1-0000000002', 'c2-1-0000000003']),
      ]).valid,
    ).toBe(true)
    // Overlapping creates may get their numbers in either order.
    const overlapping = [
      create(1, 'c1-0', 0, 5, 'c1-0-0000000001'),
      create(2, 'c2-0', 1, 3, 'c2-0-0000000000'),
    ]
    expect(
      checkCreates('sequential', [...overlapping, list(['c2-0-0000000000', 'c1-0-0000000001'])]).valid,
    ).toBe(true)
  })

  it('refuses a sequence number that went backwards, a duplicate name, a lost create, a duplicate, a phantom', () => {
    const backwards = [create(1, 'c1-0', 0, 2, 'c1-0-0000000005'), create(2, 'c2-0', 3, 4, 'c2-0-0000000004')]
    const r = checkCreates('sequential', [...backwards, list(['c2-0-0000000004', 'c1-0-0000000005'])])
    expect(r.valid).toBe(false)
    expect(r.problems.join()).toMatch(/after c1-0 got/)
    const dup = [create(1, 'c1-0', 0, 2, 'c1-0-0000000001'), create(2, 'c1-0', 0, 3, 'c1-0-0000000001')]
    expect(checkCreates('sequential', [...dup, list(['c1-0-0000000001'])]).problems.join()).toMatch(
      /two creates/,
    )
    const lost = checkCreates('sequential', [...good, list(['c1-0-0000000000', 'c1-1-0000000002'])])
    expect(lost.problems.join()).toMatch(/c2-0-0000000001: acknowledged, then lost/)
    const twice = checkCreates('exactly-once', [
      ...good.map((e) => ({ ...e, workload: 'exactly-once' })),
      {
        ...list([
          'c1-0-0000000000',
          'c2-0-0000000001',
          'c1-1-0000000002',
          'c2-1-0000000003',
          'c2-1-0000000004',
        ]),
        workload: 'exactly-once',
      },
    ])
    expect(twice.problems.join()).toMatch(/c2-1 applied twice/)
    const phantom = checkCreates('sequential', [
      ...good,
      list(['c1-0-0000000000', 'c2-0-0000000001', 'c1-1-0000000002', 'c7-7-0000000003']),
    ])
    expect(phantom.problems.join()).toMatch(/no create was sent/)
  })
})

describe('queue checker', () => {
  const put = (item: string, to: number | null = 1) =>
    ev('queue', 1, 'put', 0, to, { key: '/q', value: item, result: item })
  const take = (item: string | null, to: number | null = 3, f = 'take') =>
    ev('queue', 2, f, 2, to, { key: '/q', ...(to === null ? {} : { result: item }) })
  const drained = take(null, 9, 'drain')

  it('accepts every item taken once, and a missing item an indeterminate take explains', () => {
    expect(checkQueue([put('a'), put('b'), take('a'), take('b', 5, 'drain'), drained]).valid).toBe(true)
    expect(checkQueue([put('a'), put('b'), take('a'), take(null, null), drained]).valid).toBe(true)
  })

  it('refuses an item taken twice, one lost, one never put, and says unknown without a final drain', () => {
    expect(checkQueue([put('a'), take('a'), take('a'), drained]).problems.join()).toMatch(/a taken 2 times/)
    expect(checkQueue([put('a'), put('b'), take('a'), drained]).problems.join()).toMatch(
      /1 acknowledged items never taken/,
    )
    expect(checkQueue([put('a'), take('a'), take('z'), drained]).problems.join()).toMatch(
      /z taken but never put/,
    )
    expect(checkQueue([put('a'), take('a')]).valid).toBe('unknown')
    // Items left when the drain gave up are undecided, not lost.
    const r = checkQueue([put('a'), put('b'), put('c'), take('a'), take('c', 5, 'drain')])
    expect(r.valid).toBe('unknown')
    expect(r.problems.join()).toMatch(
      /gave up before the queue was empty: 1 acknowledged items not taken yet \(b\)/,
    )
  })
})

describe('fenced lock checker', () => {
  const acquire = (c: number, token: number, at: number) =>
    ev('lock', c, 'acquire', at - 1, at, { result: token })
  const release = (c: number, token: number, at: number) =>
    ev('lock', c, 'release', at, at + 1, { value: token })
  const lost = (c: number, token: number, at: number) => ev('lock', c, 'lost', at, at, { value: token })
  const write = (c: number, token: number, at: number, accepted = true) =>
    ev('lock', c, 'write', at, at, {
      value: { token, value: `w${at}` },
      ...(accepted ? {} : { type: 'fail', error: 'STALE_FENCING_TOKEN' }),
    })

  it('accepts grants one after another, and an overlap where the later holder has the higher token', () => {
    expect(
      checkLock([
        acquire(1, 10, 1),
        write(1, 10, 2),
        release(1, 10, 3),
        acquire(2, 12, 4),
        write(2, 12, 5),
        release(2, 12, 6),
      ]).valid,
    ).toBe(true)
    // c1 paused past its session: c2 is granted token 12 while c1 still believes; c1's late write is rejected.
    const r = checkLock([
      acquire(1, 10, 1),
      acquire(2, 12, 4),
      write(2, 12, 5),
      write(1, 10, 6, false),
      lost(1, 10, 7),
      release(2, 12, 8),
    ])
    expect(r.valid).toBe(true)
    expect(r.summary).toMatch(/1 overlapping/)
  })

  it('refuses overlapping grants with the tokens the wrong way round, a token granted twice, a stale write accepted', () => {
    expect(
      checkLock([acquire(1, 12, 1), acquire(2, 10, 4), release(2, 10, 5), release(1, 12, 6)]).problems.join(),
    ).toMatch(/fence cannot reject/)
    expect(
      checkLock([acquire(1, 10, 1), release(1, 10, 2), acquire(2, 10, 4), release(2, 10, 5)]).problems.join(),
    ).toMatch(/granted twice/)
    expect(
      checkLock([acquire(1, 10, 1), write(1, 12, 2), write(1, 10, 3), release(1, 10, 4)]).problems.join(),
    ).toMatch(/token 10 accepted/)
  })
})

describe('ephemerals checker', () => {
  const P = '/chaos-ephemeral/e-1-0'
  const create = ev('ephemeral', 1, 'create', 0, 10, { key: P })
  const end = (at: number, how = 'killed') => ev('ephemeral', 1, 'end', at, at, { key: P, value: how })
  const read = (c: number, at: number, to: number, present: boolean, reads = 'sync') =>
    ev('ephemeral', c, 'read', at, to, { key: P, value: reads, result: present })
  const final = ev('ephemeral', 9, 'final', 500, 501, { key: P, result: false })

  it('accepts a node seen while its session lives and gone after it expired', () => {
    const h = [
      create,
      read(2, 20, 30, true),
      end(100),
      read(3, 110, 120, true),
      read(2, 2100, 2110, false),
      read(3, 2200, 2210, false),
      final,
    ]
    expect(checkEphemerals(h).valid).toBe(true)
    // Plain reads: another server may lag behind the one that saw it gone.
    const plain = [
      create,
      end(100),
      read(2, 2100, 2110, false, 'plain'),
      read(3, 2200, 2210, true, 'plain'),
      final,
    ]
    expect(checkEphemerals(plain).valid).toBe(true)
  })

  it('refuses a node gone before its session ended, seen again after it was seen gone, or never gone', () => {
    expect(checkEphemerals([create, read(2, 20, 30, false), end(100), final]).problems.join()).toMatch(
      /session lived until/,
    )
    expect(
      checkEphemerals([
        create,
        end(100),
        read(2, 2100, 2110, false),
        read(3, 2200, 2210, true),
        final,
      ]).problems.join(),
    ).toMatch(/found it again/)
    expect(
      checkEphemerals([
        create,
        end(100),
        read(2, 2100, 2110, false, 'plain'),
        read(2, 2200, 2210, true, 'plain'),
        final,
      ]).valid,
    ).toBe(false)
    expect(checkEphemerals([create, end(100), { ...final, result: true }]).problems.join()).toMatch(
      /still there at the end/,
    )
    // A session that expired while its holder ran: when it ended is unknown, so an early "gone" is not held against it.
    expect(checkEphemerals([create, read(2, 20, 30, false), end(100, 'expired'), final]).valid).toBe(true)
  })
})

describe('register checker with many indeterminate writes', () => {
  // Twenty clients each time out on a blind write (never seen by any read), then reads see
  // versions climb as some of them land: 2^20 subsets for a search that tells them apart.
  const K = '/chaos-reg-0'
  const events: ChaosEvent[] = [
    ev('registers', 0, 'create', 0, 1, {
      key: K,
      value: { f: 'create', value: 'a' },
      result: { ok: true, version: 0 },
    }),
  ]
  for (let c = 1; c <= 20; c++)
    events.push(
      ev('registers', c, 'write', 2, null, {
        key: K,
        value: { f: 'write', value: `c${c}-0` },
        error: 'CONNECTION_LOSS',
      }),
    )
  events.push(
    ev('registers', 30, 'write', 3, 4, {
      key: K,
      value: { f: 'write', value: 'b' },
      result: { ok: true, version: 8 },
    }),
  )
  events.push(
    ev('registers', 30, 'read', 5, 6, {
      key: K,
      value: { f: 'read' },
      result: { ok: true, exists: true, value: 'b', version: 8 },
    }),
  )
  events.push(
    ev('registers', 31, 'read', 7, 8, {
      key: K,
      value: { f: 'read' },
      result: { ok: true, exists: true, value: 'c3-0', version: 15 },
    }),
  )

  it('decides it (identical indeterminate writes are searched once), and still refuses a bad one', () => {
    const r = checkRegisters(events, 200_000)
    expect(r.valid).toBe(true)
    // Without anonymizing the unseen values the same budget is not enough.
    const raw = registerHistories(events).get(K)!
    expect(checkOperations(znodeRegister, raw, 200_000).result).toBe('unknown')
    expect(checkOperations(znodeRegister, anonymizeUnobserved(raw), 200_000).result).toBe('ok')
    // More versions than writes sent: not linearizable.
    const bad = [
      ...events,
      ev('registers', 32, 'read', 9, 10, {
        key: K,
        value: { f: 'read' },
        result: { ok: true, exists: true, value: 'c3-0', version: 30 },
      }),
    ]
    const v = checkRegisters(bad, 200_000)
    expect(v.valid).toBe(false)
    expect(v.problems.join()).toMatch(/not linearizable/)
  })
})
