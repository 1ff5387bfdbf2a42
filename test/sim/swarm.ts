/**
 * Swarm parameters: each seed draws its own ensemble shape and fault rates
 * (TigerBeetle's swarm testing), so across seeds some runs are calm, some
 * are storms of one fault kind, some mix everything.
 *
 * Invariants: a pure function of the Prng it is given.
 */
import type { Prng } from '../../server/core/prng.js'

export interface Swarm {
  voters: number
  observers: number
  tickMs: number
  /** Per-node tick rates differ by up to this fraction (clock drift). */
  tickSkew: number
  /** Mean ms between process pauses (GC, VM stall) of one node (0 = none). */
  pauseEveryMs: number
  pauseMsMax: number
  initLimitTicks: number
  syncLimitTicks: number
  commitLogCount: number
  snapChunkBytesMax: number
  snapshotChunkBytes: number
  keys: number
  latencyMsMax: number
  stallProbability: number
  breakProbability: number
  detectMsMax: number
  /** Mean ms between crashes (0 = none). */
  crashEveryMs: number
  downMsMax: number
  /** Mean ms between correlated power losses of a majority or of everyone (0 = none). */
  powerLossEveryMs: number
  /** Mean ms between partitions (0 = none). */
  partitionEveryMs: number
  partitionMsMax: number
  fsyncSlowProbability: number
  fsyncSlowMsMax: number
  writeEveryMs: number
  syncEveryMs: number
  appSnapshotEveryMs: number
  /** The replicated application: the KV map, or the real DataTree with prep (half the seeds each). */
  stateMachine: 'kv' | 'tree'
  /** Tree workload: clients, writes each pipelines, and the timeout of their sessions. */
  clients: number
  pipelineMax: number
  sessionTimeoutMs: number
  /** Leaders DIFF learners older than the in-memory log from durable history (else SNAP). */
  historyDiff: boolean
  /** Servers outside the initial config (joiners a reconfig may add). */
  spares: number
  /** Mean ms between membership changes proposed at the leader (0 = none). */
  reconfigEveryMs: number
}

export function drawSwarm(p: Prng): Swarm {
  const voters = p.pick([3, 3, 3, 5, 5, 7])
  return {
    voters,
    observers: p.chance(0.3) ? p.int(1, 2) : 0,
    tickMs: 50,
    tickSkew: p.pick([0, 0.05, 0.3]),
    pauseEveryMs: p.pick([0, 0, 1000, 3000]),
    pauseMsMax: p.pick([200, 1500]),
    initLimitTicks: p.pick([10, 20]),
    syncLimitTicks: p.pick([4, 5, 10]),
    commitLogCount: p.pick([2, 5, 20, 500]),
    snapChunkBytesMax: p.pick([16, 64, 1024]),
    snapshotChunkBytes: p.pick([32, 256]),
    keys: p.pick([3, 8]),
    latencyMsMax: p.pick([2, 10, 30]),
    stallProbability: p.pick([0, 0.002, 0.02]),
    breakProbability: p.pick([0, 0, 0.0005, 0.003]),
    detectMsMax: p.pick([5, 50, 300]),
    crashEveryMs: p.pick([0, 800, 2000, 5000]),
    downMsMax: p.pick([100, 1000, 3000]),
    powerLossEveryMs: p.pick([0, 0, 1500, 4000]),
    partitionEveryMs: p.pick([0, 1000, 3000]),
    partitionMsMax: p.pick([300, 1500, 4000]),
    fsyncSlowProbability: p.pick([0, 0.02, 0.2]),
    fsyncSlowMsMax: p.pick([50, 400]),
    writeEveryMs: p.pick([5, 15, 50]),
    syncEveryMs: p.pick([30, 150]),
    appSnapshotEveryMs: p.pick([300, 2000]),
    // Drawn last, so the KV draws above are those of earlier versions of this file.
    stateMachine: p.chance(0.5) ? 'tree' : 'kv',
    clients: p.pick([2, 4, 8]),
    pipelineMax: p.pick([1, 3]),
    sessionTimeoutMs: p.pick([200, 1000]),
    // Drawn after everything else, for the same reason.
    historyDiff: p.chance(0.5),
    // Drawn after everything else, for the same reason.
    spares: p.pick([0, 1, 2]),
    reconfigEveryMs: p.pick([0, 300, 1000]),
  }
}
