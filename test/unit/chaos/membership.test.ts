/**
 * Self-test of the membership checker (test/chaos/membership.ts) on made-up
 * histories of the nemesis's membership lane: a good one (a voter removed,
 * an indeterminate change, the original restored and served everywhere),
 * and bad ones — a member serving another config at the end, every member
 * agreeing on a config that is not the last restore's, the last restore
 * failed, a member never read, a reconfig that did not do what it said, a
 * version going back in real time, one version with two texts, and a
 * refused reconfig that took effect.
 */
import { describe, expect, it } from 'vitest'
import type { ChaosEvent } from '../../chaos/history.js'
import { checkMembership, MEMBERSHIP } from '../../chaos/membership.js'

const line = (id: number, role = 'participant') =>
  `server.${id}=127.0.0.1:${1000 + id}:${1000 + id}:${role};127.0.0.1:${2000 + id}`
const ORIGINAL = [line(1), line(2), line(3), line(4, 'observer')].join('\n')
const WITHOUT_2 = [line(1), line(3), line(4, 'observer')].join('\n')
const V1 = 0x100000005
const V2 = 0x100000009

const op = (
  f: string,
  at: number,
  to: number | null,
  more: Partial<ChaosEvent> = {},
  type: ChaosEvent['type'] = to === null ? 'info' : 'ok',
): ChaosEvent => ({
  workload: MEMBERSHIP,
  process: 0,
  f,
  type,
  invokedAt: at,
  returnedAt: to ?? Number.POSITIVE_INFINITY,
  ...more,
})
const cfg = (version: number, config: string) => ({ result: { version, config } })
const final = (id: number, at: number, version: number, config: string) =>
  op('read-config', at, at + 1, { key: `n${id}`, value: { purpose: 'final' }, ...cfg(version, config) })
const finals = (at: number, version: number, config = ORIGINAL) =>
  [1, 2, 3, 4].map((id) => final(id, at + id * 2, version, config))

/** Remove n2 (ok), an indeterminate change, then the restore: a read, a reconfig to the original list. */
const good: ChaosEvent[] = [
  op('reconfig', 10, 20, { value: { leaving: '2', purpose: 'fault' }, ...cfg(V1, WITHOUT_2) }),
  op('read-config', 30, 31, { value: { purpose: 'heal' }, ...cfg(V1, WITHOUT_2) }),
  op('reconfig', 32, 40, {
    value: { newMembers: ORIGINAL.split('\n'), purpose: 'heal' },
    ...cfg(V2, ORIGINAL),
  }),
  op('restore', 30, 41, { value: { target: ORIGINAL }, ...cfg(V2, ORIGINAL) }),
  op('reconfig', 50, null, { value: { joining: line(4), purpose: 'fault' }, error: 'CONNECTION_LOSS' }),
  op('read-config', 60, 61, { value: { purpose: 'heal' }, ...cfg(V2, ORIGINAL) }),
  op('restore', 60, 62, { value: { target: ORIGINAL }, ...cfg(V2, ORIGINAL) }),
  ...finals(100, V2),
]

const problems = (events: ChaosEvent[]) => checkMembership(events).problems.join('\n')

describe('membership checker', () => {
  it('accepts changes, an indeterminate one, and the restored config served everywhere', () => {
    const v = checkMembership(good)
    expect(v.problems).toEqual([])
    expect(v.valid).toBe(true)
    expect(v.summary).toContain('3 reconfigs (2 ok, 0 refused, 1 indeterminate), 2 restores, 4 members')
  })

  it('flags a member serving another config at the end', () => {
    const bad = [...good.slice(0, -4), ...finals(100, V2).slice(0, 3), final(4, 110, V1, WITHOUT_2)]
    expect(checkMembership(bad).valid).toBe(false)
    expect(problems(bad)).toContain('n4 serves config version 0x100000005')
  })

  it("flags members that agree on a config other than the last restore's", () => {
    const V3 = 0x10000000c
    const bad = [
      ...good.slice(0, -4),
      op('reconfig', 70, null, { value: { leaving: '3', purpose: 'fault' }, error: 'CONNECTION_LOSS' }),
      ...finals(100, V3, [line(1), line(2), line(4, 'observer')].join('\n')),
    ]
    expect(problems(bad)).toContain('not the restored 0x100000009')
  })

  it('flags a last restore that failed, and a member never read', () => {
    const failed = [
      ...good.slice(0, -5),
      op('restore', 60, null, { value: { target: ORIGINAL }, error: 'RESTORE_TIMEOUT' }),
    ]
    expect(problems(failed)).toContain(
      'the last restore of the original membership did not succeed (RESTORE_TIMEOUT)',
    )
    const missing = good.slice(0, -1)
    expect(problems(missing)).toContain('n4: no final read')
  })

  it('flags a reconfig that did not do what it asked', () => {
    const bad = [
      op('reconfig', 10, 20, { value: { leaving: '2', purpose: 'fault' }, ...cfg(V1, ORIGINAL) }),
      ...good.slice(1),
    ]
    expect(problems(bad)).toContain('server 2 did not leave')
    const notJoined = [
      ...good,
      op('reconfig', 200, 210, {
        value: { joining: line(4), purpose: 'fault' },
        ...cfg(0x100000010, ORIGINAL),
      }),
    ]
    expect(problems(notJoined)).toContain(`${line(4)} did not join`)
  })

  it('flags a version that goes back in real time, and one version that is two configs', () => {
    const stale = [
      ...good,
      op('read-config', 120, 121, { value: { purpose: 'heal' }, ...cfg(V1, WITHOUT_2) }),
    ]
    expect(problems(stale)).toContain('saw version 0x100000005 after')
    const twice = [
      ...good,
      op('read-config', 120, 121, { value: { purpose: 'heal' }, ...cfg(V2, WITHOUT_2) }),
    ]
    expect(problems(twice)).toContain('version 0x100000009 is two configs')
  })

  it('flags a refused reconfig that took effect', () => {
    const V3 = 0x10000000c
    const bad = [
      ...good.slice(0, 4),
      op(
        'reconfig',
        50,
        55,
        { value: { leaving: '3', purpose: 'fault' }, error: 'NEW_CONFIG_NO_QUORUM' },
        'fail',
      ),
      op('read-config', 60, 61, {
        value: { purpose: 'heal' },
        ...cfg(V3, [line(1), line(2), line(4, 'observer')].join('\n')),
      }),
      op('reconfig', 62, 70, {
        value: { newMembers: ORIGINAL.split('\n'), purpose: 'heal' },
        ...cfg(V3 + 4, ORIGINAL),
      }),
      op('restore', 60, 71, { value: { target: ORIGINAL }, ...cfg(V3 + 4, ORIGINAL) }),
      ...finals(100, V3 + 4),
    ]
    expect(problems(bad)).toContain('a refused one took effect')
  })
})
