/**
 * growth (issue 21): how cost grows with size. For each size N of `--sizes`
 * (default 1M,3M,10M) three rows, each on fresh servers of its own:
 * - znodes N: a 3-server ensemble loaded with N znodes of 100 bytes (load()
 *   of workloads-memory.ts: multis of 100 creates, 8 sessions over the
 *   members) while a C = 1 reader on each member probes for stalls; heap and
 *   RSS per server; the leader's snapshot of the loaded tree (duration, the
 *   stalls meanwhile); then a follower killed (-9), MANY_MISSED writes
 *   behind (more than a Conclave leader DIFFs: a SNAP) and started again:
 *   its own recovery time, the leader's SNAP (bytes, time, longest
 *   event-loop delay) and the time until it follows again.
 * - sessions N/100 + watches N/10 (scaleRun of workloads-memory.ts on a
 *   standalone server): 100k sessions and 1M watches at N = 10M. Every
 *   session is one socket in the bench and in the server, so the sessions
 *   are capped by the open-files limit (RLIMIT_NOFILE) of this process; the
 *   watches keep their N/10 (more per session) and the row says so.
 * - children N/10 under one parent (standalone): the longest probe read
 *   while they are created, heap and RSS per child, then the whole listing
 *   page by page (getChildrenPage, Conclave opcode 1002, 1,000 names a
 *   page: each page's time) and as one getChildren.
 *
 * Memory: memory-guard.ts; a row that would not fit is an 'unavailable'
 * row saying why, a running one is stopped when available memory runs low.
 * Invariants: every phase has a deadline; the fresh deployments are stopped
 * in a finally. Bench-only: nothing of server/.
 */
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import type { Client } from '../../client/index.js'
import { type Deployment, leaderIndex, modes, startCpu } from './deploy.js'
import { Histogram, inParallel, withTimeout } from './load.js'
import { checkFits } from './memory-guard.js'
import { closeSessions, connectMember, openSessions } from './sessions.js'
import type { BenchCase, CaseContext, CaseResult } from './workloads.js'
import {
  deadlineFor,
  footprint,
  load,
  longestMs,
  type Probe,
  probeLoop,
  recoveredMs,
  scaleRun,
  sizedRun,
  snapshotPhase,
} from './workloads-memory.js'
import { MANY_MISSED, snapshotsSent } from './workloads-resync.js'

/** A session's socket in this process and in the server; the rest of the table is kept clear. */
const FDS_KEPT_FREE = 1000
const PAGE = 1000
const BATCH = 100
const VALUE = new Uint8Array(100).fill(0x61)

export function sizeText(n: number): string {
  if (n >= 1_000_000 && n % 100_000 === 0) return `${n / 1_000_000}M`
  if (n >= 1000 && n % 100 === 0) return `${n / 1000}k`
  return String(n)
}

// ------------------------------------------------------------ znodes (3 servers)

interface Members {
  leader: number
  follower: number
  all: number[]
}

async function members(dep: Deployment): Promise<Members> {
  const leader = await leaderIndex(dep)
  if (leader === undefined) throw new Error('no leader')
  return { leader, follower: (leader + 1) % dep.size, all: Array.from({ length: dep.size }, (_, i) => i) }
}

/** Loads n znodes while a prober per member reads; the load time and each member's longest read. */
async function loadProbed(clients: Client[], probers: Client[], n: number) {
  const probes: Probe[] = probers.map(() => [])
  let loaded = false
  const probing = probers.map((zk, i) => probeLoop(zk, probes[i]!, () => loaded))
  const t0 = performance.now()
  try {
    await load(clients, n)
  } finally {
    loaded = true
    await Promise.all(probing)
  }
  return { loadMs: performance.now() - t0, stalls: probes.map(longestMs) }
}

/** Follower down, MANY_MISSED writes, follower up: its recovery, the leader's SNAP, ms until it follows. */
async function resyncPhase(dep: Deployment, m: Members, writer: Client, n: number) {
  await dep.kill9(m.follower)
  for (let i = 0; i < MANY_MISSED; i += BATCH) {
    const batch = []
    for (let k = i; k < Math.min(MANY_MISSED, i + BATCH); k++)
      batch.push(writer.setData(`/m/p${k % 100}/n${k % n}`, VALUE))
    await withTimeout(Promise.all(batch), 30_000, 'setData')
  }
  const t0 = performance.now()
  await dep.restart(m.follower)
  // 100 µs per znode: a 1M follower under a load average of 30 took 117 s (recovery 39 s, SNAP 26 s).
  const deadline = t0 + 120_000 + n / 10
  while ((await modes(dep).catch(() => []))[m.follower] !== 'follower') {
    if (performance.now() > deadline)
      throw new Error(`the follower did not follow within ${deadline - t0} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const out: Record<string, number> = {
    followerRecoveryMs: await recoveredMs(dep, m.follower),
    restartToFollowingMs: Math.round(performance.now() - t0),
  }
  const snap = dep.target === 'conclave' ? snapshotsSent(dep, m.leader).last : undefined
  if (snap !== undefined) {
    out.snapSentMB = Math.round((snap.bytes ?? Number.NaN) / 2 ** 20)
    out.snapSentMs = snap.ms ?? Number.NaN
    out.leaderSnapLoopMaxMs = snap.loopMaxMs ?? Number.NaN
  }
  return out
}

async function znodesPhases(ctx: CaseContext, dep: Deployment, n: number): Promise<CaseResult> {
  const m = await members(dep)
  const probers = await Promise.all(m.all.map((i) => connectMember(dep, i)))
  let clients: Client[] = []
  try {
    clients = await openSessions(dep, 8)
    const base = await Promise.all(m.all.map((i) => footprint(dep, i)))
    ctx.progress(`loading ${sizeText(n)} znodes into ${dep.size} servers`)
    const cpuStop = startCpu(dep)
    const { loadMs, stalls } = await loadProbed(clients, probers, n)
    const cpu = cpuStop()
    const after = await Promise.all(m.all.map((i) => footprint(dep, i)))
    const perZnode = (k: 'rss' | 'heap') =>
      Math.round(Math.max(...m.all.map((i) => (after[i]![k] - base[i]![k]) / n)))
    ctx.progress('snapshot on the leader')
    const snap = await snapshotPhase(dep, [probers[m.leader]!, ...clients], m.leader, deadlineFor(120_000, n))
    await closeSessions(clients)
    clients = []
    ctx.progress(`follower down, ${MANY_MISSED} writes behind, restart`)
    // The phases before it are measured already: a follower that does not come back is a note, not a lost row.
    const resync = await resyncPhase(dep, m, probers[m.leader]!, n).catch((err: unknown) => {
      ctx.progress(`follower restart: ${String(err)}`)
      return { resyncFailed: 1 } as Record<string, number>
    })
    return {
      throughput: (n * 1000) / loadMs,
      unit: 'znode/s',
      cpu,
      metrics: {
        size: n,
        znodes: n,
        rssPerZnodeB: perZnode('rss'),
        heapPerZnodeB: perZnode('heap'),
        rssMaxMB: Math.round(Math.max(...after.map((f) => f.rss)) / 2 ** 20),
        heapMaxMB: Math.round(Math.max(...after.map((f) => f.heap)) / 2 ** 20),
        loadS: Math.round(loadMs / 100) / 10,
        loadStallMs: Math.max(...stalls),
        leaderLoadStallMs: stalls[m.leader]!,
        ...snap,
        ...resync,
      },
      notes: [
        ...(resync.resyncFailed === 1
          ? ['the follower restart did not finish in time (resyncFailed=1)']
          : []),
        'per-znode costs: the largest of the 3 servers; stalls: C = 1 reads on every member; snapshot: the leader',
        `restart: a follower ${MANY_MISSED} writes behind (a SNAP for Conclave), its own recovery included`,
      ],
    }
  } finally {
    await closeSessions([...clients, ...probers])
  }
}

async function znodesRun(ctx: CaseContext, n: number): Promise<CaseResult> {
  const loadTxns = Math.ceil(n / BATCH) + 150
  return sizedRun(
    ctx,
    n,
    3,
    // Every server snapshots after a random count in [snapCount/2, snapCount]: after the load.
    { kind: 'ensemble', logLevel: 'info', snapCount: 2 * (loadTxns + 500) },
    (dep) => znodesPhases(ctx, dep, n),
  )
}

// ------------------------------------------------------------ sessions + watches

/** The soft open-files limit of this process (what a server started from it inherits). */
export function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
  return m === null || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1])
}

async function sessionsRun(ctx: CaseContext, n: number): Promise<CaseResult> {
  const wanted = Math.ceil(n / 100)
  const watches = Math.ceil(n / 10)
  const cap = openFilesLimit() - FDS_KEPT_FREE
  const sessions = Math.min(wanted, cap)
  const perSession = Math.ceil(watches / sessions)
  // Sessions and watches on one standalone server: well under a GB at 100k sessions, 1M watches.
  checkFits(ctx.dep.target, 0, 1)
  const r = await scaleRun(ctx, {
    sessions,
    watchesPerSession: perSession,
    watchedNodes: Math.max(perSession, 10_000),
    // The longest session timeout the servers grant at tickTime 2000: fewer pings to hold.
    sessionTimeoutMs: 20 * ctx.opts.tickTime,
  })
  r.metrics = { size: n, ...r.metrics, sessionsWanted: wanted }
  if (sessions < wanted)
    r.notes.push(
      `sessions capped at ${sessions} (not ${wanted}): one socket each in this process and in the server, RLIMIT_NOFILE ${cap + FDS_KEPT_FREE}`,
    )
  return r
}

// ------------------------------------------------------------ children of one parent

const childName = (i: number, n: number) => `c${String((i * 7919) % n).padStart(10, '0')}`

/** Every page of /c, timed: how many names, and the pages' times. */
async function listPages(zk: Client): Promise<{ names: number; pages: Histogram; totalMs: number }> {
  const pages = new Histogram()
  let names = 0
  let after: string | undefined
  const t0 = performance.now()
  for (;;) {
    const t = performance.now()
    const page = await withTimeout(
      zk.getChildrenPage('/c', after === undefined ? { limit: PAGE } : { limit: PAGE, after }),
      30_000,
      'getChildrenPage',
    )
    pages.recordMs(performance.now() - t)
    names += page.children.length
    if (page.next === undefined) break
    after = page.next
  }
  return { names, pages, totalMs: performance.now() - t0 }
}

async function childrenPhases(
  ctx: CaseContext,
  dep: Deployment,
  n: number,
  size: number,
): Promise<CaseResult> {
  const prober = await connectMember(dep, 0)
  let clients: Client[] = []
  try {
    clients = await openSessions(dep, 8)
    const base = await footprint(dep)
    await clients[0]!.create('/c')
    ctx.progress(`creating ${sizeText(n)} children of /c`)
    const probe: Probe = []
    let loaded = false
    const probing = probeLoop(prober, probe, () => loaded)
    const t0 = performance.now()
    try {
      const batches = Array.from({ length: Math.ceil(n / BATCH) }, (_, b) => b)
      await inParallel(batches, clients.length, async (b) => {
        const ops = []
        for (let i = b * BATCH; i < Math.min(n, (b + 1) * BATCH); i++)
          ops.push({ op: 'create' as const, path: `/c/${childName(i, n)}`, data: VALUE })
        await withTimeout(clients[b % clients.length]!.multi(ops), 60_000, 'multi')
      })
    } finally {
      loaded = true
      await probing
    }
    const loadMs = performance.now() - t0
    const after = await footprint(dep)
    const metrics: Record<string, number> = {
      size,
      children: n,
      rssPerChildB: Math.round((after.rss - base.rss) / n),
      heapPerChildB: Math.round((after.heap - base.heap) / n),
      loadStallMs: longestMs(probe),
    }
    const notes: string[] = []
    ctx.progress('listing page by page')
    if (dep.target === 'conclave') {
      const listed = await listPages(prober)
      if (listed.names !== n) throw new Error(`listed ${listed.names} of ${n} children`)
      Object.assign(metrics, {
        pages: listed.pages.count,
        pageP50Ms: listed.pages.percentileMs(0.5),
        pageP99Ms: listed.pages.percentileMs(0.99),
        pageMaxMs: listed.pages.maxMs,
        listAllPagedMs: Math.round(listed.totalMs),
      })
    } else notes.push('no paginated listing (a Conclave opcode)')
    const t1 = performance.now()
    try {
      const all = await withTimeout(prober.getChildren('/c'), 60_000, 'getChildren')
      if (all.length !== n) throw new Error(`getChildren returned ${all.length} of ${n}`)
      metrics.getChildrenAllMs = Math.round(performance.now() - t1)
    } catch (err) {
      notes.push(`one getChildren of all: ${(err as { code?: string }).code ?? String(err)}`)
    }
    return { throughput: (n * 1000) / loadMs, unit: 'child/s', metrics, notes }
  } finally {
    await closeSessions([...clients, prober])
  }
}

/** size/10 children of one parent. */
async function childrenRun(ctx: CaseContext, size: number): Promise<CaseResult> {
  const n = Math.ceil(size / 10)
  return sizedRun(ctx, n, 1, {}, (dep) => childrenPhases(ctx, dep, n, size))
}

// ------------------------------------------------------------ cases

export type GrowthKind = 'znodes' | 'sessions' | 'children'

export function growthLabel(kind: GrowthKind, n: number): string {
  const what = {
    znodes: `${sizeText(n)} znodes, 3 servers`,
    sessions: `${sizeText(Math.ceil(n / 100))} sessions + ${sizeText(Math.ceil(n / 10))} watches`,
    children: `${sizeText(Math.ceil(n / 10))} children of one parent`,
  }[kind]
  return `growth ${sizeText(n)}: ${what}`
}

/** Per kind, smallest size first: a run that is cut short still has each kind's small sizes. */
export function growthCases(sizes: readonly number[]): BenchCase[] {
  const sorted = [...sizes].sort((a, b) => a - b)
  const kinds: { kind: GrowthKind; deploy: 'standalone' | 'ensemble'; run: typeof znodesRun }[] = [
    { kind: 'children', deploy: 'standalone', run: childrenRun },
    { kind: 'sessions', deploy: 'standalone', run: sessionsRun },
    { kind: 'znodes', deploy: 'ensemble', run: znodesRun },
  ]
  return kinds.flatMap((k) =>
    sorted.map((n) => ({
      workload: 'growth' as const,
      label: growthLabel(k.kind, n),
      deploys: [k.deploy],
      run: (ctx: CaseContext) => k.run(ctx, n),
    })),
  )
}
