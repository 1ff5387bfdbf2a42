/**
 * The chaos nemesis's partition shapes (test/chaos/nemesis.ts) against a
 * real 3-voter Conclave ensemble with an observer: each shape cuts exactly
 * the links it says (read back from the servers' fault hooks), the cut is
 * real (the leader cut off from every peer is replaced by another), and
 * heal() restores every link and the whole ensemble.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Prng } from '../../server/core/prng.js'
import { type ChaosCluster, conclaveCluster } from '../chaos/cluster.js'
import { FAULT_KINDS } from '../chaos/nemesis.js'
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
})
