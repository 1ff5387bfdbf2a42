/**
 * Memory workloads, each on a fresh standalone server of its own:
 * - memory: heap and RSS per znode after N znodes of 100 bytes (loaded with
 *   multi, 100 creates each; a C = 1 reader on a session of its own probes
 *   for stalls meanwhile: the tree's structures grow); then a snapshot (triggered by snapCount, set so
 *   that it falls after the load) with its duration and the longest stall a
 *   C = 1 reader saw during it; then kill -9 and restart: the server's own
 *   recovery time and the wall time to the first successful read.
 * - scale: S concurrent sessions held with heartbeats, then 10 watches per
 *   session: memory per session and per watch.
 *
 * Where the numbers come from: Conclave logs `snapshot taken` and
 * `recovered` (JSON, with ms) at info level and reports heap in mntr;
 * ZooKeeper reports zk_cnt/max_snapshottime and startup load times in mntr,
 * and its heap through jstat. RSS is /proc/PID/status for both.
 * Invariants: every phase has a deadline; the fresh server is stopped in a
 * finally. Bench-only: nothing of server/.
 */
import { performance } from 'node:perf_hooks'
import type { Client } from '../../client/index.js'
import { waitFor } from '../helpers/wait.js'
import { type Deployment, type DeployOptions, heapUsedBytes, mntr, rssBytes, startCpu } from './deploy.js'
import { inParallel, withTimeout } from './load.js'
import { checkFits, guarded } from './memory-guard.js'
import { closeSessions, connectMember, openSessions } from './sessions.js'
import type { BenchCase, CaseContext, CaseResult } from './workloads.js'

const VALUE = new Uint8Array(100).fill(0x61)
const BATCH = 100
const PARENTS = 100
const SNAPSHOT_DEADLINE_MS = 120_000
const RESTART_DEADLINE_MS = 180_000

/** Scales a deadline with the tree: 20 ms per 1,000 znodes (recovery measured 8 s per 1M, alone) plus a base. */
export const deadlineFor = (baseMs: number, znodes: number): number => baseMs + Math.ceil(znodes / 50)

interface Footprint {
  rss: number
  heap: number
}

export async function footprint(dep: Deployment, member = 0): Promise<Footprint> {
  return {
    rss: rssBytes(dep.pid(member)) ?? Number.NaN,
    heap: (await heapUsedBytes(dep, member)) ?? Number.NaN,
  }
}

/**
 * The heap limit a server gets for n znodes: unchanged up to 1M (node's
 * default for Conclave), above it room for the tree (Conclave's default
 * treeBytesMax is half of the heap limit; ~290 B of heap per znode) and for
 * ZooKeeper's ~1 KB per znode.
 */
export function heapMbFor(target: Deployment['target'], n: number): number | undefined {
  if (n <= 1_000_000) return target === 'zookeeper' ? (n > 200_000 ? 3072 : 1024) : undefined
  return Math.max(4096, Math.ceil((n * (target === 'zookeeper' ? 3000 : 1200)) / 2 ** 20))
}

/** N znodes of 100 bytes under /m/p0..p99, in multis of 100 over the given sessions. */
export async function load(clients: Client[], n: number): Promise<void> {
  const first = clients[0]!
  await first.create('/m', VALUE)
  await Promise.all(Array.from({ length: PARENTS }, (_, p) => first.create(`/m/p${p}`, VALUE)))
  const batches = Array.from({ length: Math.ceil(n / BATCH) }, (_, b) => b)
  await inParallel(batches, clients.length, async (b) => {
    const zk = clients[b % clients.length]!
    const ops = []
    for (let i = b * BATCH; i < Math.min(n, (b + 1) * BATCH); i++)
      ops.push({ op: 'create' as const, path: `/m/p${i % PARENTS}/n${i}`, data: VALUE })
    await withTimeout(zk.multi(ops), 60_000, 'multi')
  })
}

interface SnapshotInfo {
  count: number
  /** Duration and end (epoch ms) of the newest snapshot. */
  ms?: number
  endEpochMs?: number
  /** Conclave only: the server's own longest event-loop delay and GC pause during the snapshot. */
  loopMaxMs?: number
  gcMaxMs?: number
}

function conclaveSnapshots(dep: Deployment, member: number): SnapshotInfo {
  const lines = dep
    .output(member)
    .split('\n')
    .filter((l) => l.includes('"snapshot taken"'))
  const last = lines.at(-1)
  if (last === undefined) return { count: 0 }
  const j = JSON.parse(last) as { ms: number; time: number; loopMaxMs?: number; gcMaxMs?: number }
  return { count: lines.length, ms: j.ms, endEpochMs: j.time, loopMaxMs: j.loopMaxMs, gcMaxMs: j.gcMaxMs }
}

async function zkSnapshots(dep: Deployment, member: number): Promise<SnapshotInfo> {
  const m = await mntr(dep.clientPort(member))
  return {
    count: Number(m.get('zk_cnt_snapshottime') ?? 0),
    ms: Number(m.get('zk_max_snapshottime') ?? Number.NaN),
    endEpochMs: performance.timeOrigin + performance.now(),
  }
}

const snapshotsOf = (dep: Deployment, member: number) =>
  dep.target === 'conclave' ? Promise.resolve(conclaveSnapshots(dep, member)) : zkSnapshots(dep, member)

/** Epoch-ms intervals of the probe's reads. */
export type Probe = { start: number; end: number }[]

/** C = 1 reads of the root (which always exists) until stop(): each read's interval goes to out. */
export async function probeLoop(zk: Client, out: Probe, stop: () => boolean): Promise<void> {
  while (!stop()) {
    const start = performance.timeOrigin + performance.now()
    await withTimeout(zk.getData('/'), 30_000, 'probe').catch(() => {})
    out.push({ start, end: performance.timeOrigin + performance.now() })
  }
}

/** The longest read of a probe, in ms to 0.1 (a loop: a long probe has too many reads to spread into Math.max). */
export function longestMs(probe: Probe): number {
  let max = 0
  for (const p of probe) max = Math.max(max, p.end - p.start)
  return Math.round(max * 10) / 10
}

/**
 * Writes until a new snapshot appears on `member`; meanwhile a C = 1 reader
 * (clients[0], which should talk to that member) probes for stalls.
 */
export async function snapshotPhase(
  dep: Deployment,
  clients: Client[],
  member = 0,
  deadlineMs = SNAPSHOT_DEADLINE_MS,
): Promise<Record<string, number>> {
  const snapshots = (d: Deployment) => snapshotsOf(d, member)
  const before = (await snapshots(dep)).count
  let done = false
  const probe: Probe = []
  const probing = probeLoop(clients[0]!, probe, () => done)
  const writers = clients.slice(1).map(async (zk) => {
    while (!done) await withTimeout(zk.setData('/m/p0', VALUE), 30_000, 'setData').catch(() => {})
  })
  let snap: SnapshotInfo | undefined
  try {
    snap = await waitFor(async () => ((await snapshots(dep)).count > before ? snapshots(dep) : undefined), {
      timeoutMs: deadlineMs,
      intervalMs: 100,
      what: 'a snapshot',
    })
  } finally {
    done = true
    await Promise.all([probing, ...writers])
  }
  const end = snap.endEpochMs ?? Number.NaN
  // ZooKeeper's end is when we saw the count change: widen by the polling interval.
  const startAt = end - (snap.ms ?? 0) - (dep.target === 'zookeeper' ? 100 : 0)
  const during = probe.filter((p) => p.end >= startAt && p.start <= end)
  const stall = longestMs(during)
  const out: Record<string, number> = {
    snapshotMs: snap.ms ?? Number.NaN,
    snapshotStallMs: stall,
  }
  if (snap.loopMaxMs !== undefined) out.serverLoopStallMs = snap.loopMaxMs
  if (snap.gcMaxMs !== undefined) out.serverGcMaxMs = snap.gcMaxMs
  return out
}

/** The server's own account of its last start: Conclave's 'recovered' line, ZooKeeper's mntr load times. */
export async function recoveredMs(dep: Deployment, member = 0): Promise<number> {
  if (dep.target === 'conclave') {
    const line = dep
      .output(member)
      .split('\n')
      .find((l) => l.includes('"msg":"recovered"'))
    return line === undefined ? Number.NaN : (JSON.parse(line) as { ms: number }).ms
  }
  const m = await mntr(dep.clientPort(member))
  return Number(m.get('zk_max_startup_snap_load_time')) + Number(m.get('zk_max_startup_txns_load_time'))
}

/** kill -9, start again on the same data; the wall time to the first successful read. */
async function restartPhase(dep: Deployment, n: number): Promise<Record<string, number>> {
  await dep.kill9(0)
  const t0 = performance.now()
  await dep.restart(0)
  await waitFor(
    async () => {
      const zk = await connectMember(dep, 0)
      try {
        return (await zk.getData('/m')) !== undefined
      } finally {
        await zk.close().catch(() => {})
      }
    },
    { timeoutMs: deadlineFor(RESTART_DEADLINE_MS, n), intervalMs: 50, what: 'a read after restart' },
  )
  const restartMs = performance.now() - t0
  return { recoveryMs: await recoveredMs(dep), restartMs: Math.round(restartMs) }
}

/**
 * `phases` on a fresh deployment of `servers` servers sized for `n` znodes: not run unless
 * they fit (checkFits), its heap and start deadline scaled with n, under the memory guard,
 * stopped in a finally.
 */
export async function sizedRun(
  ctx: CaseContext,
  n: number,
  servers: number,
  extra: Partial<DeployOptions>,
  phases: (dep: Deployment) => Promise<CaseResult>,
): Promise<CaseResult> {
  checkFits(ctx.dep.target, n, servers)
  const dep = await ctx.fresh({
    ...extra,
    heapMb: heapMbFor(ctx.dep.target, n),
    readyMs: deadlineFor(30_000, n),
  })
  try {
    return await guarded(dep, () => phases(dep))
  } finally {
    await dep.stop()
  }
}

async function memoryRun(ctx: CaseContext, n: number): Promise<CaseResult> {
  const loadTxns = Math.ceil(n / BATCH) + PARENTS + 50
  // Both snapshot after a random count of txns in [snapCount/2, snapCount]: the
  // snapshot falls after the load, while snapshotPhase keeps writing.
  const margin = 500
  return sizedRun(ctx, n, 1, { snapCount: 2 * (loadTxns + margin), logLevel: 'info' }, (dep) =>
    memoryPhases(ctx, dep, n),
  )
}

async function memoryPhases(ctx: CaseContext, dep: Deployment, n: number): Promise<CaseResult> {
  const clients = await openSessions(dep, 8)
  const base = await footprint(dep)
  ctx.progress(`loading ${n} znodes`)
  const prober = await connectMember(dep, 0)
  const probe: Probe = []
  let loaded = false
  const probing = probeLoop(prober, probe, () => loaded)
  const stop = startCpu(dep)
  const t0 = performance.now()
  try {
    await load(clients, n)
  } finally {
    loaded = true
    await probing
    await prober.close().catch(() => {})
  }
  const loadMs = performance.now() - t0
  const cpu = stop()
  const loadStallMs = longestMs(probe)
  const after = await footprint(dep)
  ctx.progress('snapshot')
  const snap = await snapshotPhase(dep, clients, 0, deadlineFor(SNAPSHOT_DEADLINE_MS, n))
  await closeSessions(clients)
  ctx.progress('restart')
  const restart = await restartPhase(dep, n)
  return {
    throughput: (n * 1000) / loadMs,
    unit: 'znode/s',
    cpu,
    metrics: {
      znodes: n,
      rssPerZnodeB: Math.round((after.rss - base.rss) / n),
      heapPerZnodeB: Math.round((after.heap - base.heap) / n),
      rssMB: Math.round(after.rss / 2 ** 20),
      loadStallMs,
      ...snap,
      ...restart,
    },
    notes: ['heap not collected first (ZooKeeper: jstat used, young gen included)'],
  }
}

export function memoryCase(n: number): BenchCase {
  return {
    workload: 'memory',
    label: `memory ${n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`} znodes`,
    deploys: ['standalone'],
    run: (ctx) => memoryRun(ctx, n),
  }
}

// ------------------------------------------------------------ scale

const WATCHES_PER_SESSION = 10
const WATCHED_NODES = 1000
const HOLD_MS = 15_000

export interface ScaleSpec {
  sessions: number
  watchesPerSession: number
  /** Watches go round-robin over this many znodes: each session watches distinct ones. */
  watchedNodes: number
  /** The client's session timeout; pings go out every third of it. */
  sessionTimeoutMs?: number
}

/** S sessions held for HOLD_MS, then W watches per session: memory per session and per watch. */
export async function scaleRun(ctx: CaseContext, spec: ScaleSpec): Promise<CaseResult> {
  const { sessions: n, watchesPerSession: perSession, watchedNodes } = spec
  const watches = n * perSession
  const dep = await ctx.fresh({})
  let clients: Client[] = []
  try {
    const setup = await connectMember(dep, 0)
    await setup.create('/s')
    await inParallel(
      Array.from({ length: watchedNodes }, (_, i) => i),
      64,
      async (i) => void (await setup.create(`/s/n${i}`, VALUE)),
    )
    await setup.close()
    const base = await footprint(dep)
    ctx.progress(`opening ${n} sessions`)
    const t0 = performance.now()
    const connect = spec.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: spec.sessionTimeoutMs }
    clients = await openSessions(dep, n, { inFlight: 64, connect })
    const openMs = performance.now() - t0
    const withSessions = await footprint(dep)
    ctx.progress(`holding ${n} sessions for ${HOLD_MS / 1000} s`)
    const stop = startCpu(dep)
    // Holding is the measurement: heartbeats must keep every session alive meanwhile.
    await new Promise((r) => setTimeout(r, HOLD_MS))
    const cpu = stop()
    const connected = clients.filter((c) => c.state === 'connected').length
    ctx.progress(`registering ${watches} watches`)
    const t1 = performance.now()
    await inParallel(clients, 64, async (zk, i) => {
      for (let w = 0; w < perSession; w++)
        await zk.exists(`/s/n${(i * perSession + w) % watchedNodes}`, { watch: () => {} })
    })
    const watchMs = performance.now() - t1
    const withWatches = await footprint(dep)
    const m = await mntr(dep.clientPort(0))
    const serverWatches = Number(m.get('conclave_watch_count') ?? m.get('zk_watch_count') ?? Number.NaN)
    return {
      throughput: (n * 1000) / openMs,
      unit: 'sess/s',
      cpu,
      errors: n - connected,
      metrics: {
        sessions: n,
        watches,
        connectedAfterHold: connected,
        serverWatches,
        watchesPerS: Math.round((watches * 1000) / watchMs),
        rssPerSessionB: Math.round((withSessions.rss - base.rss) / n),
        heapPerSessionB: Math.round((withSessions.heap - base.heap) / n),
        rssPerWatchB: Math.round((withWatches.rss - withSessions.rss) / watches),
        heapPerWatchB: Math.round((withWatches.heap - withSessions.heap) / watches),
        rssSessionsMB: Math.round(withSessions.rss / 2 ** 20),
        rssMB: Math.round(withWatches.rss / 2 ** 20),
      },
      notes: [`CPU while holding ${n} idle sessions`],
    }
  } finally {
    await closeSessions(clients)
    await dep.stop()
  }
}

export const scaleCase: BenchCase = {
  workload: 'scale',
  label: 'scale sessions+watches',
  deploys: ['standalone'],
  run: (ctx) =>
    scaleRun(ctx, {
      sessions: ctx.opts.scaleSessions,
      watchesPerSession: WATCHES_PER_SESSION,
      watchedNodes: WATCHED_NODES,
    }),
}
