/**
 * The short chaos run inside npm test (test/chaos/run.ts): a 3-server
 * ensemble, five SDK clients on a register workload, and a nemesis of kill -9,
 * SIGSTOP/SIGCONT and partitions for 45 seconds; every znode's history must be
 * linearizable. Longer runs: `npm run chaos -- --minutes N --runs K`.
 */
import { describe, expect, it } from 'vitest'
import { runChaos } from '../chaos/run.js'

describe('chaos (short run)', () => {
  it('keeps every register history linearizable under kill -9, pauses and partitions', {
    timeout: 180_000,
  }, async () => {
    const seed = Number(process.env.CONCLAVE_CHAOS_SEED ?? Date.now() % 2 ** 31)
    const r = await runChaos({
      durationMs: 45_000,
      servers: 3,
      clients: 5,
      keys: 3,
      faults: ['kill', 'pause', 'partition'],
      seed,
      log: () => {},
    })
    console.log(
      `chaos seed ${seed}: ${r.operations} ops (${r.ok} ok, ${r.failed} failed, ${r.indeterminate} indeterminate), faults ${JSON.stringify(r.faults)}, ${r.checkSteps} check steps`,
    )
    expect(r.anomalies.map((a) => `${a.key}\n${a.detail}`)).toEqual([])
    expect(r.unknown).toEqual([])
    // The run did something: enough operations that succeeded, and faults of every kind.
    expect(r.ok).toBeGreaterThan(1000)
    expect(Object.values(r.faults).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(10)
  })
})
