/**
 * resync: a follower of a 3-node ensemble holding N znodes of 100 bytes is
 * killed (-9), misses writes, and is started again while a client keeps
 * reading from the leader (one getData at a time, 2 ms apart) and writing
 * (one setData at a time); twice: 700 writes behind (more than the 500
 * committed entries a Conclave leader keeps in memory: it DIFFs from its
 * durable log), then 12,000 behind (more than the 10,000 it reads from its
 * log: a SNAP). Reported: the time from each restart until the follower
 * serves again, the probe's read latency on the leader meanwhile (does the
 * leader stall while it syncs the follower?), the longest write, and for
 * Conclave the leader's own account of the SNAP (bytes, time, longest
 * event-loop delay and GC pause, from its 'snapshot sent' log line).
 *
 * ZooKeeper picks DIFF or SNAP by its own rules (txn log size against
 * snapshot size): the rows compare what a user sees, not one mechanism.
 *
 * Invariants: every wait has a deadline; the probes stop by themselves; the
 * deployment is the case's own (fresh) and is stopped at the end.
 */
import type { Client } from '../../client/index.js'
import { type Deployment, leaderIndex, modes, QUORUM_MS, waitQuorum } from './deploy.js'
import { Histogram, withTimeout } from './load.js'
import { closeSessions, connectMember } from './sessions.js'
import type { BenchCase, CaseContext, CaseResult } from './workloads.js'
import { heapMbFor, load } from './workloads-memory.js'

/** Behind by more than the 500 entries a Conclave leader keeps in memory: a DIFF from its log. */
const FEW_MISSED = 700
/** Behind by more than the 10,000 entries a Conclave leader DIFFs from its log: a SNAP. */
export const MANY_MISSED = 12_000
const RESYNC_DEADLINE_MS = 180_000
const PROBE_GAP_MS = 2
const PROBE_TIMEOUT_MS = 30_000

interface SnapSent {
  bytes?: number
  ms?: number
  loopMaxMs?: number
  gcMaxMs?: number
}

/** The leader's 'snapshot sent' lines (Conclave at log level info): how many, and the last one. */
export function snapshotsSent(
  dep: Deployment,
  leader: number,
): { count: number; last: SnapSent | undefined } {
  const lines = dep
    .output(leader)
    .split('\n')
    .filter((l) => l.includes('"msg":"snapshot sent"'))
  const line = lines.at(-1)
  if (line === undefined) return { count: 0, last: undefined }
  try {
    return { count: lines.length, last: JSON.parse(line) as SnapSent }
  } catch {
    return { count: lines.length, last: undefined }
  }
}

async function resyncRun(ctx: CaseContext, n: number): Promise<CaseResult> {
  const dep = await ctx.fresh({ kind: 'ensemble', logLevel: 'info', heapMb: heapMbFor(ctx.dep.target, n) })
  try {
    await waitQuorum(dep, QUORUM_MS)
    const leader = await leaderIndex(dep)
    if (leader === undefined) throw new Error('no leader')
    const follower = (leader + 1) % dep.size
    // Every session on the leader: the probes measure the server that sends the snapshot.
    const clients: Client[] = []
    try {
      for (let i = 0; i < 8; i++) clients.push(await connectMember(dep, leader))
      ctx.progress(`loading ${n} znodes`)
      await load(clients, n)
      const zk = clients[0]!
      let stop = false
      const reads = new Histogram()
      const writes = new Histogram()
      const reader = clients[1]!
      const writer = clients[2]!
      const probes: Promise<void>[] = []
      /** Follower down, `missed` writes, follower up again: ms until it serves. */
      const round = async (missed: number): Promise<number> => {
        ctx.progress(`follower down, missing ${missed} writes`)
        await dep.kill9(follower)
        for (let i = 0; i < missed; i += 50) {
          const batch = []
          for (let k = i; k < Math.min(missed, i + 50); k++)
            batch.push(zk.setData(`/m/p${k % 100}/n${k}`, `missed ${k}`))
          await withTimeout(Promise.all(batch), PROBE_TIMEOUT_MS, 'setData')
        }
        ctx.progress('follower restarting')
        const t0 = performance.now()
        await dep.restart(follower)
        const deadline = t0 + RESYNC_DEADLINE_MS
        while ((await modes(dep).catch(() => []))[follower] !== 'follower') {
          if (performance.now() > deadline)
            throw new Error(`the follower did not serve within ${RESYNC_DEADLINE_MS} ms`)
          await new Promise((r) => setTimeout(r, 20))
        }
        return performance.now() - t0
      }
      try {
        probes.push(
          (async () => {
            while (!stop) {
              const t = performance.now()
              await withTimeout(reader.getData('/m/p0/n0'), PROBE_TIMEOUT_MS, 'getData')
              reads.recordMs(performance.now() - t)
              await new Promise((r) => setTimeout(r, PROBE_GAP_MS))
            }
          })(),
          (async () => {
            for (let i = 0; !stop; i++) {
              const t = performance.now()
              await withTimeout(
                writer.setData(`/m/p${i % 100}/n${i}`, `during ${i}`),
                PROBE_TIMEOUT_MS,
                'setData',
              )
              writes.recordMs(performance.now() - t)
            }
          })(),
        )
        const diffMs = await round(FEW_MISSED)
        const snapMs = await round(MANY_MISSED)
        stop = true
        await Promise.all(probes)
        const sent = dep.target === 'conclave' ? snapshotsSent(dep, leader) : undefined
        const snap = sent?.last
        return {
          latency: reads.summary(),
          ops: reads.count,
          metrics: {
            znodes: n,
            resyncFewMs: Math.round(diffMs),
            resyncManyMs: Math.round(snapMs),
            writeMaxMs: Math.round(writes.summary().max * 10) / 10,
            // Conclave: 1 when the first round was a DIFF and the second a SNAP, as intended.
            ...(sent === undefined ? {} : { snapsSent: sent.count }),
            ...(snap === undefined
              ? {}
              : {
                  snapMB: Math.round((snap.bytes ?? 0) / 2 ** 20),
                  snapMs: snap.ms ?? 0,
                  leaderLoopMaxMs: snap.loopMaxMs ?? 0,
                  leaderGcMaxMs: snap.gcMaxMs ?? 0,
                }),
          },
          notes: [
            `latency: reads on the leader while a follower resyncs, ${FEW_MISSED} then ${MANY_MISSED} writes behind (resync*Ms: restart -> serving); Conclave DIFFs the first from its log, SNAPs the second`,
          ],
        }
      } finally {
        stop = true
        await Promise.allSettled(probes)
      }
    } finally {
      await closeSessions(clients)
    }
  } finally {
    await dep.stop()
  }
}

export function resyncCase(n: number): BenchCase {
  return {
    workload: 'resync',
    label: `resync ${n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`} znodes`,
    deploys: ['ensemble'],
    run: (ctx) => resyncRun(ctx, n),
  }
}
