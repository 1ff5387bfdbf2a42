/**
 * Coordination workloads: watch fan-out (50 sessions watch one node; the
 * time from the write's completion to each notification), session
 * establishment (open and close sessions, 16 in flight, after a warm-up;
 * median of the repeats), lock hand-off (8
 * sessions contend for one recipes Lock) and leader failover (kill -9 the
 * leader under a C = 1 writer; time to the first successful write).
 *
 * Invariants: every wait has a deadline; sessions are closed and a killed
 * member is restarted (and the quorum awaited) before the case returns.
 * Bench-only: nothing of server/.
 */
import { performance } from 'node:perf_hooks'
import { Client, ErrorCode } from '../../client/index.js'
import { Lock } from '../../recipes/index.js'
import { waitFor } from '../helpers/wait.js'
import { type CpuReport, leaderIndex, QUORUM_MS, startCpu, waitQuorum } from './deploy.js'
import { errorName, Histogram, inParallel, median, summarizeSample, withTimeout } from './load.js'
import {
  CLOSE_TIMEOUT_MS,
  clientOptions,
  closeSessions,
  connectMember,
  ensurePath,
  openSessions,
} from './sessions.js'
import { type BenchCase, type CaseContext, caseRoot, KIB } from './workloads.js'

const WATCHERS = 50
const NOTIFY_TIMEOUT_MS = 5_000

function countError(names: Record<string, number>, err: unknown): void {
  const n = errorName(err)
  names[n] = (names[n] ?? 0) + 1
}

interface WatchSamples {
  /** Notification time minus the time the writer saw setData complete (negative: it came first). */
  afterAck: number[]
  /** Notification time minus the time setData was issued. */
  afterIssue: number[]
  missed: number
}

function watchResult(w: WatchSamples, rounds: number, elapsedMs: number) {
  const issue = summarizeSample(w.afterIssue)
  const early = w.afterAck.filter((d) => d < 0).length
  return {
    throughput: (w.afterAck.length * 1000) / elapsedMs,
    unit: 'notif/s',
    latency: summarizeSample(w.afterAck),
    ops: w.afterAck.length,
    errors: w.missed,
    metrics: {
      rounds,
      beforeAckPct: w.afterAck.length ? (early / w.afterAck.length) * 100 : Number.NaN,
      fromIssueP50Ms: issue.p50,
      fromIssueP99Ms: issue.p99,
    },
    notes: [
      'latency: write completion -> each notification (negative: before the reply)',
      ...(w.missed ? [`${w.missed} notifications missed`] : []),
    ],
  }
}

async function watchRound(watchers: Client[], writer: Client, path: string, w: WatchSamples) {
  const arrivals: number[] = []
  let all!: () => void
  const allArrived = new Promise<void>((r) => (all = r))
  const onEvent = () => {
    arrivals.push(performance.now())
    if (arrivals.length === watchers.length) all()
  }
  await Promise.all(watchers.map((zk) => zk.getData(path, { watch: onEvent })))
  const issuedAt = performance.now()
  await writer.setData(path, KIB)
  const doneAt = performance.now()
  await withTimeout(allArrived, NOTIFY_TIMEOUT_MS, 'notifications').catch(() => {})
  for (const a of arrivals) {
    w.afterAck.push(a - doneAt)
    w.afterIssue.push(a - issuedAt)
  }
  w.missed += watchers.length - arrivals.length
}

export const watchCase: BenchCase = {
  workload: 'watch',
  label: `watch fan-out ${WATCHERS}`,
  deploys: ['standalone', 'ensemble'],
  async run(ctx) {
    const clients = await openSessions(ctx.dep, WATCHERS + 1)
    const writer = clients.pop()!
    try {
      const path = `${caseRoot('watch')}/w`
      await ensurePath(writer, path, KIB)
      await Promise.all(clients.map((zk) => zk.sync(path)))
      const samples: WatchSamples = { afterAck: [], afterIssue: [], missed: 0 }
      const stop = startCpu(ctx.dep)
      const t0 = performance.now()
      const budget = t0 + Math.max(ctx.opts.durationMs * 3, 5_000)
      let rounds = 0
      for (; rounds < ctx.opts.watchRounds && performance.now() < budget; rounds++)
        await watchRound(clients, writer, path, samples)
      const cpu = stop()
      return { ...watchResult(samples, rounds, performance.now() - t0), cpu }
    } finally {
      await closeSessions([...clients, writer])
    }
  },
}

interface SessionRound {
  throughput: number
  open: Histogram
  close: Histogram
  cpu: CpuReport
}

/** Opens and closes n sessions, 16 in flight, spread over the members. */
async function sessionRound(
  ctx: CaseContext,
  n: number,
  errorNames: Record<string, number>,
): Promise<SessionRound> {
  const open = new Histogram()
  const close = new Histogram()
  const stop = startCpu(ctx.dep)
  const t0 = performance.now()
  await inParallel(
    Array.from({ length: n }, (_, i) => i),
    16,
    async (i) => {
      const a = performance.now()
      try {
        const zk = await connectMember(ctx.dep, i)
        const b = performance.now()
        open.recordMs(b - a)
        await withTimeout(zk.close(), CLOSE_TIMEOUT_MS, 'close')
        close.recordMs(performance.now() - b)
      } catch (err) {
        countError(errorNames, err)
      }
    },
  )
  const cpu = stop()
  return { throughput: (open.count * 1000) / (performance.now() - t0), open, close, cpu }
}

export const sessionCase: BenchCase = {
  workload: 'session',
  label: 'session open+close',
  deploys: ['standalone', 'ensemble'],
  async run(ctx) {
    const n = ctx.opts.sessionCount
    await sessionRound(ctx, ctx.opts.sessionWarmup, {})
    const errorNames: Record<string, number> = {}
    const rounds: SessionRound[] = []
    for (let r = 0; r < ctx.opts.repeats; r++) rounds.push(await sessionRound(ctx, n, errorNames))
    const open = new Histogram()
    const close = new Histogram()
    for (const r of rounds) {
      open.merge(r.open)
      close.merge(r.close)
    }
    const tps = rounds.map((r) => r.throughput)
    const mid = median(tps)
    const errors = Object.values(errorNames).reduce((s, v) => s + v, 0)
    return {
      throughput: mid,
      unit: 'sess/s',
      ...(rounds.length > 1 ? { spreadPct: ((Math.max(...tps) - Math.min(...tps)) / mid) * 100 } : {}),
      latency: open.summary(),
      ops: open.count,
      errors,
      errorNames,
      cpu: {
        servers: rounds[0]!.cpu.servers.map((_, i) =>
          median(rounds.map((r) => r.cpu.servers[i] ?? Number.NaN)),
        ),
        client: median(rounds.map((r) => r.cpu.client)),
      },
      metrics: {
        sessions: n,
        ...(rounds.length > 1 ? { repeats: rounds.length } : {}),
        closeP50Ms: close.percentileMs(0.5),
        closeP99Ms: close.percentileMs(0.99),
      },
      notes: [
        `latency: connect; 16 in flight; after ${ctx.opts.sessionWarmup} warm-up sessions; throughput: median of rounds`,
      ],
    }
  },
}

/**
 * The session case against servers with local sessions on: Conclave's
 * --local-sessions, ZooKeeper's localSessionsEnabled=true and
 * localSessionsUpgradingEnabled=true (which only its ensemble honours: see
 * zookeeper-ensemble.ts). The default row above is unchanged.
 */
export const localSessionCase: BenchCase = {
  ...sessionCase,
  label: 'session open+close (local sessions)',
  settings: { localSessions: true },
}

const CONTENDERS = 8

interface LockStats {
  acquisitions: number
  handoff: Histogram
  errorNames: Record<string, number>
  lastReleaseAt: number | undefined
}

async function contend(zk: Client, path: string, deadline: number, signal: AbortSignal, s: LockStats) {
  while (performance.now() < deadline) {
    const lock = new Lock(zk, path)
    try {
      await lock.acquire({ timeoutMs: 10_000, signal })
    } catch (err) {
      if (!signal.aborted) countError(s.errorNames, err)
      await new Promise((r) => setTimeout(r, 5))
      continue
    }
    const at = performance.now()
    s.acquisitions++
    if (s.lastReleaseAt !== undefined) s.handoff.recordMs(at - s.lastReleaseAt)
    s.lastReleaseAt = performance.now()
    await withTimeout(lock.release(), 10_000, 'release').catch((err: unknown) =>
      countError(s.errorNames, err),
    )
  }
}

export const lockCase: BenchCase = {
  workload: 'lock',
  label: `lock hand-off ${CONTENDERS}`,
  deploys: ['standalone', 'ensemble'],
  async run(ctx) {
    const clients = await openSessions(ctx.dep, CONTENDERS)
    const ac = new AbortController()
    try {
      const path = caseRoot('lock')
      await ensurePath(clients[0]!, path)
      await Promise.all(clients.map((zk) => zk.sync(path)))
      const s: LockStats = {
        acquisitions: 0,
        handoff: new Histogram(),
        errorNames: {},
        lastReleaseAt: undefined,
      }
      const stop = startCpu(ctx.dep)
      const t0 = performance.now()
      const deadline = t0 + ctx.opts.durationMs
      const timer = setTimeout(() => ac.abort(new Error('bench: time is up')), ctx.opts.durationMs)
      await Promise.all(clients.map((zk) => contend(zk, path, deadline, ac.signal, s)))
      clearTimeout(timer)
      const elapsedMs = performance.now() - t0
      const errors = Object.values(s.errorNames).reduce((a, v) => a + v, 0)
      return {
        throughput: (s.acquisitions * 1000) / elapsedMs,
        unit: 'acq/s',
        latency: s.handoff.summary(),
        ops: s.acquisitions,
        errors,
        errorNames: s.errorNames,
        cpu: stop(),
        metrics: {},
        notes: ['latency: release() called -> next holder acquired'],
      }
    } finally {
      ac.abort(new Error('bench: done'))
      await closeSessions(clients)
    }
  },
}

// ------------------------------------------------------------ failover

const WRITE_TIMEOUT_MS = 2_000

interface WriterState {
  /** The writer gives up this long after it starts (the repeat then counts as 'never'). */
  deadlineMs: number
  killedAt: number | undefined
  okBeforeKill: number
  errorNames: Record<string, number>
}

/** Writes at C = 1 until a write issued after the kill succeeds; returns when that happened. */
async function writeUntilRecovered(
  connect: () => Promise<Client>,
  path: string,
  st: WriterState,
): Promise<{ recoveredAt: number | undefined; zk: Client | undefined }> {
  let zk: Client | undefined
  const deadline = performance.now() + st.deadlineMs
  while (performance.now() < deadline) {
    const t = performance.now()
    try {
      // A session that expired while the ensemble had no leader is replaced, as an application would.
      if (zk === undefined || zk.state === 'expired' || zk.state === 'closed') zk = await connect()
      await withTimeout(zk.setData(path, KIB), WRITE_TIMEOUT_MS, 'setData')
      if (st.killedAt === undefined) st.okBeforeKill++
      else if (t >= st.killedAt) return { recoveredAt: performance.now(), zk }
    } catch (err) {
      countError(st.errorNames, err)
      if ((err as { code?: unknown }).code === ErrorCode.SESSION_EXPIRED) zk = undefined
      await new Promise((r) => setTimeout(r, 5))
    }
  }
  return { recoveredAt: undefined, zk }
}

async function failoverOnce(ctx: CaseContext, path: string, errorNames: Record<string, number>) {
  const dep = ctx.dep
  await waitQuorum(dep, QUORUM_MS)
  const leader = await leaderIndex(dep)
  if (leader === undefined) throw new Error('no leader before the kill')
  const st: WriterState = {
    deadlineMs: ctx.opts.quick ? 20_000 : 60_000,
    killedAt: undefined,
    okBeforeKill: 0,
    errorNames,
  }
  const connect = () => Client.connect(dep.connectString(), clientOptions)
  const writer = writeUntilRecovered(connect, path, st)
  try {
    // The writer must be running against the healthy ensemble before the kill.
    await waitFor(() => st.okBeforeKill >= 10, { timeoutMs: 10_000, what: 'writes before the kill' })
    st.killedAt = performance.now()
    await dep.kill9(leader)
    const { recoveredAt, zk } = await writer
    if (zk !== undefined) await withTimeout(zk.close(), CLOSE_TIMEOUT_MS, 'close').catch(() => {})
    return recoveredAt === undefined ? undefined : recoveredAt - st.killedAt
  } finally {
    st.killedAt ??= performance.now()
    await writer.catch(() => {})
    if (dep.pid(leader) === undefined) await dep.restart(leader)
    await waitQuorum(dep, QUORUM_MS)
  }
}

export const failoverCase: BenchCase = {
  workload: 'failover',
  label: 'leader failover',
  deploys: ['ensemble'],
  async run(ctx) {
    const path = `${caseRoot('failover')}/x`
    const setup = await connectMember(ctx.dep, 0)
    await ensurePath(setup, path, KIB).finally(() => setup.close())
    const h = new Histogram()
    const errorNames: Record<string, number> = {}
    const samples: number[] = []
    let never = 0
    let broken: string | undefined
    for (let r = 0; r < ctx.opts.failoverRepeats && broken === undefined; r++) {
      ctx.progress(`repeat ${r + 1}/${ctx.opts.failoverRepeats}`)
      try {
        const ms = await failoverOnce(ctx, path, errorNames)
        if (ms === undefined) never++
        else {
          h.recordMs(ms)
          samples.push(Math.round(ms))
        }
      } catch (err) {
        // The ensemble did not come back: later repeats cannot run. Keep what was measured.
        const why = err instanceof Error ? err.message : String(err)
        if (samples.length === 0) throw new Error(`repeat ${r + 1}: ${why}`)
        broken = `repeat ${r + 1}: ${why}`
      }
    }
    return {
      latency: h.summary(),
      ops: h.count,
      errors: never + (broken === undefined ? 0 : 1),
      errorNames,
      metrics: { repeats: samples.length + never },
      notes: [
        `kill -9 leader -> first write ok, ms: ${samples.join(', ')}${never ? `; ${never} never` : ''}`,
        ...(broken === undefined ? [] : [`STOPPED at ${broken.split('\n')[0]}`]),
      ],
      ...(broken === undefined ? {} : { log: broken }),
    }
  },
}
