/**
 * The short chaos run inside npm test (test/chaos/run.ts): a 3-server
 * ensemble, every workload side by side (registers, sequential creates,
 * ephemerals with session expiry, a fenced lock whose holders get frozen, a
 * queue, exactly-once creates) and a nemesis mixing kill -9, pauses and
 * partitions of every shape for 40 seconds; every checker must pass. Longer runs and other
 * shapes: `npm run chaos -- --minutes N --runs K` (docs/chaos.md).
 * CONCLAVE_CHAOS_SEED replays a seed's nemesis and client choices.
 */
import { describe, expect, it } from 'vitest'
import { formatReport } from '../chaos/report.js'
import { runChaos } from '../chaos/run.js'

describe('chaos (short run)', () => {
  it('passes every checker under kill -9, pauses and partitions', { timeout: 240_000 }, async () => {
    const seed = Number(process.env.CONCLAVE_CHAOS_SEED ?? Date.now() % 2 ** 31)
    const r = await runChaos({
      durationMs: 40_000,
      servers: 3,
      clients: 4,
      keys: 5,
      seed,
    })
    console.log(formatReport(r))
    expect(
      r.verdicts.filter((v) => v.valid !== true).map((v) => `${v.workload}: ${v.problems.join('\n')}`),
    ).toEqual([])
    // The run did something: every workload's operations succeeded often, and faults of several kinds.
    for (const [w, c] of Object.entries(r.workloads)) expect(c.ok, w).toBeGreaterThan(10)
    expect(r.workloads.registers!.ok).toBeGreaterThan(500)
    expect(r.faults.length).toBeGreaterThanOrEqual(6)
    expect(new Set(r.faults.map((f) => f.kind)).size).toBeGreaterThanOrEqual(3)
  })
})
