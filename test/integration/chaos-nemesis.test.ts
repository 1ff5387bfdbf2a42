/**
 * The chaos nemesis's partition shapes and membership changes
 * (test/chaos/nemesis.ts) against a real 3-voter Conclave ensemble with an
 * observer (and a spare server outside the configuration): each shape cuts exactly the links it says (read back from the
 * servers' fault hooks), the cut is real (the leader cut off from every
 * peer is replaced by another), and heal() restores every link and the
 * whole ensemble. Each membership kind makes the change it names (read back
 * from /zookeeper/config), its heal restores the original membership, the
 * mid-reconfig crash and a member down under a changed membership heal
 * too, and at the end every member serves the
 * restored config (the membership checker passes on the recorded history).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
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
    c = await conclaveCluster(3, 1, { spares: 1 })
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

  // One-way: nobody hears the leader (it still hears them); the others elect another leader. Then
  // the reverse for the new leader: it hears nobody while they hear it, so it loses its quorum.
  it('a one-way partition deposes the leader either way, and heals', { timeout: 90_000 }, async () => {
    const deafTo = () => c.deaf!()
    const newLeaderOtherThan = (old: number | undefined) =>
      waitFor(
        async () => {
          const roles = await c.roles!()
          return [...roles].some(([id, role]) => id !== old && role === 'leader')
        },
        { timeoutMs: 30_000, intervalMs: 100, what: `a leader other than n${old}` },
      )
    for (const deafOne of [false, true]) {
      const leader = await c.leader()
      expect(leader).toBeDefined()
      const rest = c.members.map((m) => m.id).filter((x) => x !== leader)
      c.deafen!(rest.map((r): [number, number] => (deafOne ? [r, leader!] : [leader!, r])))
      const deaf = deafTo()
      if (deafOne) expect(deaf.get(leader!)!.sort()).toEqual([...rest].sort())
      else for (const r of rest) expect(deaf.get(r)).toEqual([leader])
      await newLeaderOtherThan(leader)
      c.heal!()
      await waitFor(
        async () => {
          const roles = [...(await c.roles!()).values()]
          return roles.filter((r) => r === 'leader').length === 1 && roles.every((r) => r !== undefined)
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'the whole ensemble back after the heal' },
      )
    }
    const injected = await kind('partition-one-way').inject(c, new Prng(5))
    expect(injected.detail).toMatch(/hears/)
    await injected.heal()
    expect([...deafTo().values()].flat()).toEqual([])
  })

  // A member whose disk stands still logs nothing, so it ACKs nothing: with the disks of two of
  // the three voters stalled no write can commit (a quorum must have it on disk) until the heal.
  it('a disk stall stops a member logging until it is healed', { timeout: 60_000 }, async () => {
    const leader = await c.leader()
    const followers = c.members.filter((m) => m.id !== leader && !m.observer).map((m) => m.id)
    expect(followers).toHaveLength(2)
    const writer = await Client.connect(c.members.find((m) => m.id === leader)!.connectString)
    try {
      await writer.create('/stall-probe', 'before').catch(() => writer.setData('/stall-probe', 'before'))
      for (const id of followers) c.stallDisk!(id, true)
      // The storage worker looks at the hook's file at most every 50 ms.
      await new Promise((r) => setTimeout(r, 200))
      let settled = false
      const write = writer.setData('/stall-probe', 'after').finally(() => {
        settled = true
      })
      await new Promise((r) => setTimeout(r, 1000))
      expect(settled).toBe(false)
      for (const id of followers) c.stallDisk!(id, false)
      await write
      // The kind itself: it names its target, and after its heal writes commit again.
      const injected = await kind('disk-stall').inject(c, new Prng(3))
      expect(injected.detail).toMatch(/^disk stalled n\d$/)
      await injected.heal()
      await writer.setData('/stall-probe', 'healed')
    } finally {
      await writer.close()
    }
  })

  it('changes the membership as each kind says, and every heal restores it', {
    timeout: 180_000,
  }, async () => {
    // Which kinds a run takes: with 3 voters, a removal or demotion only in majority mode.
    const names = (majority: boolean) => faultKinds(c, undefined, majority).map((k) => k.name)
    expect(names(false)).toEqual(expect.arrayContaining(['reconfig-promote', 'reconfig-crash']))
    expect(names(false)).not.toContain('reconfig-remove')
    expect(names(false)).not.toContain('reconfig-demote')
    expect(names(false)).toContain('reconfig-add-spare')
    expect(c.spares).toEqual([5])
    expect(names(true)).toEqual(expect.arrayContaining(['reconfig-remove', 'reconfig-demote']))
    expect(() => faultKinds(c, ['reconfig-remove'], false)).toThrow(/majority away with 3 voters/)

    const history = new History()
    const m = new MembershipNemesis(c, history, 0, () => {})
    const ctx = { membership: m, majority: true }
    const prng = new Prng(11)
    const roleOf = (text: string, id: number) =>
      new RegExp(`^server\\.${id}=[^;]*:(participant|observer);`, 'm').exec(text)?.[1]
    // Read through any member, again while one is down (a change may take one down too).
    const config = () =>
      waitFor(() => c.reconfig!.read().catch(() => undefined), {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: '/zookeeper/config',
      })
    // A change is refused (NEW_CONFIG_NO_QUORUM) while a member is still catching up after the
    // last heal: the nemesis takes that as it comes; here each kind is tried until it is made.
    const made = async (name: string, p: Prng) => {
      for (let i = 0; ; i++) {
        const f = await kind(name).inject(c, p, ctx)
        if (/\(ok, version/.test(f.detail) || i === 20) return f
        await f.heal()
        await new Promise((r) => setTimeout(r, 300))
      }
    }
    const original = await config()
    expect(original.text).toBe(m.original)

    const promote = await made('reconfig-promote', prng)
    expect(promote.targets[0]).toBe(4)
    expect(roleOf((await config()).text, 4)).toBe('participant')
    await promote.heal()
    expect((await config()).text).toBe(m.original)

    const demote = await made('reconfig-demote', prng)
    const [demoted] = demote.targets
    expect(roleOf((await config()).text, demoted!)).toBe('observer')
    await demote.heal()
    expect(roleOf((await config()).text, demoted!)).toBe('participant')

    // The spare (server 5, running outside the configuration) joins as a voter, and leaves again.
    const spare = await made('reconfig-add-spare', prng)
    expect(spare.targets[0]).toBe(5)
    expect(roleOf((await config()).text, 5)).toBe('participant')
    await spare.heal()
    expect((await config()).text).toBe(m.original)
    expect(roleOf(m.original, 5)).toBeUndefined()

    const remove = await made('reconfig-remove', prng)
    const [removed] = remove.targets
    expect(roleOf((await config()).text, removed!)).toBeUndefined()
    await remove.heal()
    expect((await config()).text).toBe(m.original)

    // A member down under a changed membership, then healed, on a seed that draws one.
    const downs: string[] = []
    for (let seed = 0; downs.length === 0 && seed < 20; seed++) {
      const f = await kind('reconfig-promote').inject(c, new Prng(seed), ctx)
      await f.heal()
      if (/, then (kill -9|partition|SIGSTOP) n\d$/.test(f.detail)) downs.push(f.detail)
    }
    expect(downs).toHaveLength(1)
    expect(links(c)).toEqual([])
    // The crash in the middle of a change (the default mode's: the observer promoted or the spare added), healed.
    const crash = await kind('reconfig-crash').inject(c, prng, { membership: m, majority: false })
    expect(crash.detail).toMatch(
      /^(promote observer n4|add spare n5 as a voter) \(.*\), then (kill -9|partition) (leader )?n\d$/,
    )
    await crash.heal()
    expect(links(c)).toEqual([])
    await m.finish()
    const v = checkMembership(history.events)
    expect(v.problems).toEqual([])
    expect(v.summary).toMatch(/^\d+ reconfigs \(\d+ ok.* \d+ restores, 4 members read at the end/)
  })
})
