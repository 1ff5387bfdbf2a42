/**
 * The chaos nemesis's partition shapes and membership changes
 * (test/chaos/nemesis.ts) against a real 3-voter Conclave ensemble with an
 * observer: each shape cuts exactly the links it says (read back from the
 * servers' fault hooks), the cut is real (the leader cut off from every
 * peer is replaced by another), and heal() restores every link and the
 * whole ensemble. Each membership kind makes the change it names (read back
 * from /zookeeper/config), its heal restores the original membership, the
 * mid-reconfig crash heals too, and at the end every member serves the
 * restored config (the membership checker passes on the recorded history).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Prng } from '../../server/core/prng.js'
import { type ChaosCluster, conclaveCluster } from '../chaos/cluster.js'
import { History } from '../chaos/history.js'
import { checkMembership, MembershipNemesis } from '../chaos/membership.js'
import { FAULT_KINDS, faultKinds } from '../chaos/nemesis.js'
import { waitFor } from '../helpers/wait.js'

const kind = (name: string) => FAULT_KINDS.find((k) => k.name === name)!

/** The cut links, each once as "a-b" with a < b. */
function links(c: ChaosCluster): string[] {
  const out = new Set<string>()
  for (const [id, peers] of c.blocked!())
    for (const p of peers) out.add(`${Math.min(id, p)}-${Math.max(id, p)}`)
  return [...out].sort()
}

describe('chaos nemesis partitions', () => {
  let c: ChaosCluster
  beforeAll(async () => {
    c = await conclaveCluster(3, 1)
  }, 60_000)
  afterAll(async () => {
    await c?.stop()
  })

  it('cuts what each shape says, for real, and heals', { timeout: 90_000 }, async () => {
    const prng = new Prng(7)
    // A bridge: the two sides (one voter each, the observer on one) share no link; the bridge keeps all.
    const bridge = await kind('partition-bridge').inject(c, prng)
    const b = Number(/bridge n(\d)/.exec(bridge.detail)![1])
    const cut = links(c)
    expect(cut.length).toBeGreaterThanOrEqual(1)
    for (const l of cut) expect(l.split('-').map(Number)).not.toContain(b)
    await bridge.heal()
    expect(links(c)).toEqual([])
    // Halves: one voter against the others (the observer on either side), every cross link cut.
    const halves = await kind('partition-halves').inject(c, prng)
    const [small, big] = halves.detail
      .split(' | ')
      .map((side) => side.split(',').map((n) => Number(n.slice(1))))
    expect(links(c)).toEqual(
      small!.flatMap((x) => big!.map((y) => `${Math.min(x, y)}-${Math.max(x, y)}`)).sort(),
    )
    await halves.heal()
    // The leader cut off: the others elect a new one while it is cut off.
    const leader = await c.leader()
    expect(leader).toBeDefined()
    const isolated = await kind('partition-leader').inject(c, prng)
    expect(isolated.targets).toEqual([leader])
    expect(links(c)).toHaveLength(c.members.length - 1)
    await waitFor(
      async () => {
        const roles = await c.roles!()
        return [...roles].some(([id, role]) => id !== leader && role === 'leader')
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'a new leader among the members left' },
    )
    await isolated.heal()
    expect(links(c)).toEqual([])
    await waitFor(
      async () => {
        const roles = [...(await c.roles!()).values()]
        return roles.filter((r) => r === 'leader').length === 1 && roles.every((r) => r !== undefined)
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the whole ensemble back after the heal' },
    )
  })

  it('changes the membership as each kind says, and every heal restores it', {
    timeout: 180_000,
  }, async () => {
    // Which kinds a run takes: with 3 voters, a removal or demotion only in majority mode.
    const names = (majority: boolean) => faultKinds(c, undefined, majority).map((k) => k.name)
    expect(names(false)).toEqual(expect.arrayContaining(['reconfig-promote', 'reconfig-crash']))
    expect(names(false)).not.toContain('reconfig-remove')
    expect(names(false)).not.toContain('reconfig-demote')
    expect(names(false)).not.toContain('reconfig-add-spare')
    expect(names(true)).toEqual(expect.arrayContaining(['reconfig-remove', 'reconfig-demote']))
    expect(() => faultKinds(c, ['reconfig-remove'], false)).toThrow(/majority away with 3 voters/)

    const history = new History()
    const m = new MembershipNemesis(c, history, 0, () => {})
    const ctx = { membership: m, majority: true }
    const prng = new Prng(11)
    const roleOf = (text: string, id: number) =>
      new RegExp(`^server\\.${id}=[^;]*:(participant|observer);`, 'm').exec(text)?.[1]
    const original = await c.reconfig!.read()
    expect(original.text).toBe(m.original)

    const promote = await kind('reconfig-promote').inject(c, prng, ctx)
    expect(promote.targets).toEqual([4])
    expect(roleOf((await c.reconfig!.read()).text, 4)).toBe('participant')
    await promote.heal()
    expect((await c.reconfig!.read()).text).toBe(m.original)

    const demote = await kind('reconfig-demote').inject(c, prng, ctx)
    const [demoted] = demote.targets
    expect(roleOf((await c.reconfig!.read()).text, demoted!)).toBe('observer')
    await demote.heal()
    expect(roleOf((await c.reconfig!.read()).text, demoted!)).toBe('participant')

    const remove = await kind('reconfig-remove').inject(c, prng, ctx)
    const [removed] = remove.targets
    expect(roleOf((await c.reconfig!.read()).text, removed!)).toBeUndefined()
    await remove.heal()
    expect((await c.reconfig!.read()).text).toBe(m.original)

    // The crash in the middle of a change (the default mode's: the observer promoted), healed.
    const crash = await kind('reconfig-crash').inject(c, prng, { membership: m, majority: false })
    expect(crash.detail).toMatch(/^promote observer n4 \(.*\), then (kill -9|partition) (leader )?n\d$/)
    await crash.heal()
    expect(links(c)).toEqual([])
    await m.finish()
    const v = checkMembership(history.events)
    expect(v.problems).toEqual([])
    expect(v.summary).toMatch(/^[4-9] reconfigs .* 4 restores, 4 members read at the end/)
  })
})
