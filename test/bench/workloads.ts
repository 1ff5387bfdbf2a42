/**
 * The bench's workloads, as cases (one table row per case and target): the
 * closed-loop ones here (write, read, create, mixed), the coordination ones
 * in workloads-coord.ts (watch fan-out, session establishment, lock
 * hand-off, leader failover) and the memory ones in workloads-memory.ts
 * (memory per znode with snapshot and recovery, scale).
 *
 * Invariants: a case opens its own sessions and nodes under its own root and
 * closes its sessions, so cases do not depend on each other's order; every
 * case is bounded in time (runClosedLoop's deadline, withTimeout elsewhere);
 * the data is random bytes, generated once.
 * Bench-only: nothing of server/.
 */
import { randomBytes } from 'node:crypto'
import type { Client } from '../../client/index.js'
import { type CpuReport, type DeployKind, type Deployment, type DeployOptions, startCpu } from './deploy.js'
import { type ClosedLoopResult, type LatencySummary, median, runClosedLoop } from './load.js'
import { closeSessions, ensurePath, LOAD_SESSIONS_MAX, openSessions } from './sessions.js'

export const WORKLOADS = [
  'write',
  'read',
  'create',
  'mixed',
  'watch',
  'session',
  'lock',
  'memory',
  'scale',
  'failover',
  'resync',
  'growth',
] as const
export type WorkloadName = (typeof WORKLOADS)[number]

export interface BenchOptions {
  quick: boolean
  durationMs: number
  warmupMs: number
  /** Closed-loop cases run this many times; the table shows medians. */
  repeats: number
  opTimeoutMs: number
  tickTime: number
  watchRounds: number
  sessionCount: number
  /** Sessions opened and closed before the measured rounds of the session case. */
  sessionWarmup: number
  failoverRepeats: number
  memoryZnodes: number[]
  scaleSessions: number
  /** The growth workload's sizes N: N znodes, N/100 sessions with N/10 watches, N/10 children. */
  growthSizes: number[]
}

export interface CaseContext {
  dep: Deployment
  opts: BenchOptions
  /** A fresh standalone server of the same target with extra settings; the caller stops it. */
  fresh(extra: Partial<DeployOptions>): Promise<Deployment>
  progress(text: string): void
}

export interface CaseResult {
  /** Operations (or the case's unit) per second: the median over time slices and repeats. */
  throughput?: number
  unit?: string
  /** (max - min) / median of the per-slice throughputs, in percent: the noise. */
  spreadPct?: number
  latency?: LatencySummary
  ops?: number
  errors?: number
  errorNames?: Record<string, number>
  cpu?: CpuReport
  /** Extra numbers, named with their unit (`rssPerZnodeB`, `snapshotMs`). */
  metrics: Record<string, number>
  notes: string[]
  /** Longer diagnostics (a server's output), kept in the JSON only. */
  log?: string
}

/** A case that cannot run here (not enough memory, say): its row is 'unavailable' with this reason. */
export class NotRunError extends Error {}

export interface BenchCase {
  workload: WorkloadName
  label: string
  deploys: DeployKind[]
  /**
   * A closed loop repeated `opts.repeats` times: with more than one target the
   * bench runs it once per repeat, alternating targets, and the row is the
   * medians of the repeats (mergeRepeats).
   */
  closedLoop?: true
  /**
   * Server settings this case needs (both targets, each in its own terms):
   * its deployments are started for it alone, after the default ones stop.
   */
  settings?: CaseSettings
  run(ctx: CaseContext): Promise<CaseResult>
}

/** The deployment settings a case may ask for. */
export type CaseSettings = Pick<DeployOptions, 'localSessions'>

export const KIB = randomBytes(1024)
let rootSeq = 0

/** A fresh root path for one case's nodes. */
export function caseRoot(name: string): string {
  return `/bench-${name}-${process.pid}-${Date.now().toString(36)}-${rootSeq++}`
}

function medianOf(values: number[]): number {
  return median(values)
}

/** Latency over repeats: the median of each percentile and of the mean, the worst max, every sample counted. */
function medianLatency(lats: readonly LatencySummary[]): LatencySummary {
  return {
    p50: medianOf(lats.map((l) => l.p50)),
    p99: medianOf(lats.map((l) => l.p99)),
    p999: medianOf(lats.map((l) => l.p999)),
    max: Math.max(...lats.map((l) => l.max)),
    mean: medianOf(lats.map((l) => l.mean)),
    count: lats.reduce((s, l) => s + l.count, 0),
  }
}

/** CPU over repeats: each member's median and the client's. */
function medianCpu(cpus: readonly CpuReport[]): CpuReport {
  return {
    servers: cpus[0]!.servers.map((_, i) => medianOf(cpus.map((c) => c.servers[i] ?? Number.NaN))),
    client: medianOf(cpus.map((c) => c.client)),
  }
}

/**
 * One row from runs of a case made separately (the bench alternates them between
 * targets): the median of each number over the runs; counts summed; notes kept once.
 */
export function mergeRepeats(results: readonly CaseResult[]): CaseResult {
  const first = results[0]
  if (first === undefined) throw new Error('mergeRepeats: no results')
  if (results.length === 1) return first
  const med = (pick: (r: CaseResult) => number | undefined): number | undefined => {
    const v = results.map(pick).filter((x): x is number => x !== undefined)
    return v.length === 0 ? undefined : medianOf(v)
  }
  const errorNames: Record<string, number> = {}
  for (const r of results)
    for (const [k, v] of Object.entries(r.errorNames ?? {})) errorNames[k] = (errorNames[k] ?? 0) + v
  const metrics: Record<string, number> = {}
  for (const k of new Set(results.flatMap((r) => Object.keys(r.metrics))))
    metrics[k] = med((r) => r.metrics[k])!
  metrics.repeats = results.length
  const lats = results.map((r) => r.latency).filter((l) => l !== undefined)
  const cpus = results.map((r) => r.cpu).filter((c) => c !== undefined)
  const out: CaseResult = {
    metrics,
    notes: [...new Set(results.flatMap((r) => r.notes))],
    errorNames,
    ops: results.reduce((s, r) => s + (r.ops ?? 0), 0),
    errors: results.reduce((s, r) => s + (r.errors ?? 0), 0),
  }
  const throughput = med((r) => r.throughput)
  if (throughput !== undefined) out.throughput = throughput
  if (first.unit !== undefined) out.unit = first.unit
  const spread = med((r) => r.spreadPct)
  if (spread !== undefined) out.spreadPct = spread
  if (lats.length > 0) out.latency = medianLatency(lats)
  if (cpus.length > 0) out.cpu = medianCpu(cpus)
  return out
}

/** Medians over repeats: throughput over every time slice, percentiles and CPU per repeat. */
export function summarizeRuns(runs: { res: ClosedLoopResult; cpu: CpuReport | undefined }[]): CaseResult {
  const slices = runs.map((r) => r.res.sliceMedian)
  const errorNames: Record<string, number> = {}
  for (const r of runs)
    for (const [k, v] of Object.entries(r.res.errorNames)) errorNames[k] = (errorNames[k] ?? 0) + v
  const cpus = runs.map((r) => r.cpu).filter((c) => c !== undefined)
  const metrics: Record<string, number> = {}
  for (const kind of new Set(runs.flatMap((r) => [...r.res.byKind.keys()]))) {
    const hs = runs.map((r) => r.res.byKind.get(kind)).filter((h) => h !== undefined)
    metrics[`${kind}P50Ms`] = medianOf(hs.map((h) => h.percentileMs(0.5)))
    metrics[`${kind}P99Ms`] = medianOf(hs.map((h) => h.percentileMs(0.99)))
  }
  if (runs.length > 1) metrics.repeats = runs.length
  return {
    throughput: medianOf(slices),
    unit: 'ops/s',
    spreadPct: medianOf(runs.map((r) => r.res.spreadPct)),
    latency: medianLatency(runs.map((r) => r.res.latency.summary())),
    ops: runs.reduce((s, r) => s + r.res.ops, 0),
    errors: runs.reduce((s, r) => s + r.res.errors, 0),
    errorNames,
    ...(cpus.length === 0 ? {} : { cpu: medianCpu(cpus) }),
    metrics,
    notes: [],
  }
}

interface LoopSpec {
  concurrency: number
  setup?: (clients: Client[]) => Promise<void>
  op: (zk: Client, worker: number, seq: number) => Promise<string | undefined>
}

/** Opens min(C, 8) sessions, runs setup, then `repeats` closed loops of C workers. */
export async function closedLoopCase(ctx: CaseContext, spec: LoopSpec): Promise<CaseResult> {
  const { opts } = ctx
  const clients = await openSessions(ctx.dep, Math.min(spec.concurrency, LOAD_SESSIONS_MAX))
  try {
    await spec.setup?.(clients)
    const runs: { res: ClosedLoopResult; cpu: CpuReport | undefined }[] = []
    for (let r = 0; r < opts.repeats; r++) {
      let stopCpu: (() => CpuReport) | undefined
      let cpu: CpuReport | undefined
      const res = await runClosedLoop({
        concurrency: spec.concurrency,
        durationMs: opts.durationMs,
        warmupMs: opts.warmupMs,
        opTimeoutMs: opts.opTimeoutMs,
        op: (w, seq) => spec.op(clients[w % clients.length]!, w, seq),
        onWindowStart: () => (stopCpu = startCpu(ctx.dep)),
        onWindowEnd: () => (cpu = stopCpu?.()),
      })
      runs.push({ res, cpu })
    }
    return summarizeRuns(runs)
  } finally {
    await closeSessions(clients)
  }
}

/** Creates `count` nodes of 1 KiB under a fresh root: `${root}/n${i}`. */
async function precreate(zk: Client, name: string, count: number): Promise<string> {
  const root = caseRoot(name)
  await ensurePath(zk, root)
  await Promise.all(Array.from({ length: count }, (_, i) => zk.create(`${root}/n${i}`, KIB)))
  return root
}

function writeCase(c: number): BenchCase {
  let root = ''
  return {
    workload: 'write',
    label: `write 1KiB c=${c}`,
    deploys: ['standalone', 'ensemble'],
    closedLoop: true,
    run: (ctx) =>
      closedLoopCase(ctx, {
        concurrency: c,
        setup: async ([zk]) => void (root = await precreate(zk!, 'write', c)),
        op: async (zk, w) => void (await zk.setData(`${root}/n${w}`, KIB)),
      }),
  }
}

function readCase(c: number): BenchCase {
  let root = ''
  return {
    workload: 'read',
    label: `read 1KiB c=${c}`,
    deploys: ['standalone', 'ensemble'],
    closedLoop: true,
    run: (ctx) =>
      closedLoopCase(ctx, {
        concurrency: c,
        setup: async (clients) => {
          root = await precreate(clients[0]!, 'read', c)
          // Followers apply the creates asynchronously: sync so every session sees them.
          await Promise.all(clients.map((zk) => zk.sync(root)))
        },
        op: async (zk, w) => void (await zk.getData(`${root}/n${w}`)),
      }),
  }
}

function createCase(mode: 'persistent' | 'ephemeralSequential'): BenchCase {
  let root = ''
  let n = 0
  return {
    workload: 'create',
    label: mode === 'persistent' ? 'create 1KiB c=64' : 'create eph-seq c=64',
    deploys: ['standalone', 'ensemble'],
    closedLoop: true,
    run: (ctx) =>
      closedLoopCase(ctx, {
        concurrency: 64,
        setup: async ([zk]) => {
          root = caseRoot('create')
          await ensurePath(zk!, root)
        },
        op: async (zk) =>
          void (mode === 'persistent'
            ? await zk.create(`${root}/n${n++}`, KIB)
            : await zk.create(`${root}/e-`, KIB, { mode: 'ephemeralSequential' })),
      }),
  }
}

function mixedCase(readsInTen: number): BenchCase {
  let root = ''
  const c = 16
  return {
    workload: 'mixed',
    label: `mixed ${readsInTen * 10}/${100 - readsInTen * 10} c=${c}`,
    deploys: ['standalone', 'ensemble'],
    closedLoop: true,
    run: (ctx) =>
      closedLoopCase(ctx, {
        concurrency: c,
        setup: async (clients) => {
          root = await precreate(clients[0]!, 'mixed', c)
          await Promise.all(clients.map((zk) => zk.sync(root)))
        },
        op: async (zk, w, seq) => {
          const path = `${root}/n${(w + seq) % c}`
          if ((seq * 7 + w) % 10 < readsInTen) {
            await zk.getData(path)
            return 'read'
          }
          await zk.setData(path, KIB)
          return 'write'
        },
      }),
  }
}

export function loadCases(): BenchCase[] {
  return [
    ...[1, 16, 64].map(writeCase),
    ...[1, 16, 64].map(readCase),
    createCase('persistent'),
    createCase('ephemeralSequential'),
    mixedCase(9),
    mixedCase(5),
  ]
}
