/**
 * `npm run bench [-- flags]`: Conclave's benchmark suite. Starts the
 * deployments (standalone, then a 3-node ensemble on 127.0.0.1), runs every
 * selected workload against Conclave and, with `--vs zookeeper`, against
 * Apache ZooKeeper in the same run (alternating which goes first), prints a
 * table on stdout and writes JSON under test/bench/results/. Progress goes
 * to stderr.
 *
 * Invariants: every server process is reaped on exit, on an error and on
 * Ctrl-C (reaper.ts); every case runs under a deadline and a failing or
 * unavailable case becomes a row with its reason, never a hang or an abort
 * of the whole run; a watchdog bounds the whole run.
 * Bench-only: imports node:* freely, nothing of server/.
 */
import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { CPU_PROF_ENV } from './conclave-cluster.js'
import {
  type DeployKind,
  type Deployment,
  startDeployment,
  type TargetName,
  type Transport,
} from './deploy.js'
import { writeGrowthPlot } from './growth-plot.js'
import { withTimeout } from './load.js'
import { killAllSync } from './reaper.js'
import { machineInfo, type Row, renderTable, writeJson } from './report.js'
import { clientOptions } from './sessions.js'
import {
  type BenchCase,
  type BenchOptions,
  type CaseContext,
  type CaseSettings,
  loadCases,
  mergeRepeats,
  NotRunError,
  WORKLOADS,
  type WorkloadName,
} from './workloads.js'
import { failoverCase, localSessionCase, lockCase, sessionCase, watchCase } from './workloads-coord.js'
import { growthCases } from './workloads-growth.js'
import { memoryCase, scaleCase } from './workloads-memory.js'
import { resyncCase } from './workloads-resync.js'
import { zookeeperAvailable } from './zookeeper-ensemble.js'

const USAGE = `usage: npm run bench -- [flags]
  --quick                 short run (< 3 min): 1 s per case, 1 repeat, 100k-znode memory only, no scale
  --vs zookeeper          also run every workload against Apache ZooKeeper (Debian's package), alternating
  --only w1,w2            workloads: ${WORKLOADS.join(', ')}
  --deploy D              standalone | ensemble | both (default both)
  --duration-ms N         measured time per closed-loop case (default 10000, quick 1000)
  --repeats N             closed-loop repeats; the table shows medians (default 3, quick 1)
  --transport ws|tcp      how the SDK reaches Conclave (default ws; ZooKeeper is always tcp)
  --tick-time N           tickTime of every server (default 2000)
  --znodes N[,N]          memory workload sizes (default 100000,1000000; quick 100000); resync uses the largest
  --sessions N            scale workload sessions (default 10000)
  --sizes N[,N]           growth workload sizes (default 1000000,3000000,10000000): per N, N znodes on 3
                          servers, N/100 sessions + N/10 watches, N/10 children of one parent; writes
                          docs/scale-growth.png. Not in a default run: --only growth
  --cpu-prof DIR          profile every Conclave server (node --cpu-prof) into DIR; servers stop with SIGTERM
  --exactly-once on|off   the SDK's exactly-once write retries (default on): off measures what they cost
  --help`

interface CliArgs {
  opts: BenchOptions
  vs: boolean
  only: Set<WorkloadName>
  deploys: DeployKind[]
  transport: Transport
}

function intFlag(name: string, v: string | undefined): number {
  const n = Number(v)
  if (v === undefined || !Number.isInteger(n) || n <= 0) throw new Error(`--${name} needs a positive integer`)
  return n
}

function defaults(quick: boolean): BenchOptions {
  return {
    quick,
    durationMs: quick ? 1000 : 10_000,
    warmupMs: quick ? 250 : 2000,
    repeats: quick ? 1 : 3,
    opTimeoutMs: quick ? 5000 : 10_000,
    tickTime: 2000,
    watchRounds: quick ? 20 : 200,
    sessionCount: 500,
    // Both servers' JITs take 2,000-3,000 sessions to reach their steady rate (measured: rounds of 500).
    sessionWarmup: quick ? 100 : 2000,
    failoverRepeats: quick ? 2 : 5,
    memoryZnodes: quick ? [100_000] : [100_000, 1_000_000],
    scaleSessions: 10_000,
    growthSizes: [1_000_000, 3_000_000, 10_000_000],
  }
}

function applyFlag(a: CliArgs, name: string, v: string | undefined): void {
  const o = a.opts
  switch (name) {
    case 'vs':
      if (v !== 'zookeeper') throw new Error('--vs takes `zookeeper`')
      a.vs = true
      return
    case 'only':
      a.only = new Set(
        (v ?? '').split(',').map((w) => {
          if (!(WORKLOADS as readonly string[]).includes(w)) throw new Error(`unknown workload '${w}'`)
          return w as WorkloadName
        }),
      )
      return
    case 'deploy':
      if (v !== 'standalone' && v !== 'ensemble' && v !== 'both')
        throw new Error('--deploy: standalone|ensemble|both')
      a.deploys = v === 'both' ? ['standalone', 'ensemble'] : [v]
      return
    case 'transport':
      if (v !== 'ws' && v !== 'tcp') throw new Error('--transport: ws|tcp')
      a.transport = v
      return
    case 'duration-ms':
      o.durationMs = intFlag(name, v)
      o.warmupMs = Math.min(o.warmupMs, Math.round(o.durationMs / 4))
      return
    case 'repeats':
      o.repeats = intFlag(name, v)
      return
    case 'tick-time':
      o.tickTime = intFlag(name, v)
      return
    case 'znodes':
      o.memoryZnodes = (v ?? '').split(',').map((x) => intFlag(name, x))
      return
    case 'sessions':
      o.scaleSessions = intFlag(name, v)
      return
    case 'sizes':
      o.growthSizes = (v ?? '').split(',').map((x) => intFlag(name, x))
      return
    case 'exactly-once':
      if (v !== 'on' && v !== 'off') throw new Error('--exactly-once: on|off')
      clientOptions.exactlyOnce = v === 'on'
      return
    case 'cpu-prof':
      if (v === undefined || v === '') throw new Error('--cpu-prof needs a directory')
      process.env[CPU_PROF_ENV] = resolve(v)
      return
    default:
      throw new Error(`unknown flag --${name}`)
  }
}

export function parseCli(argv: string[]): CliArgs | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help'
  const quick = argv.includes('--quick')
  const a: CliArgs = {
    opts: defaults(quick),
    vs: false,
    // growth runs for an hour or more and needs most of the machine's memory: only when asked for.
    only: new Set(WORKLOADS.filter((w) => w !== 'growth' && !(quick && w === 'scale'))),
    deploys: ['standalone', 'ensemble'],
    transport: 'ws',
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--quick') continue
    if (!arg.startsWith('--')) throw new Error(`unexpected argument '${arg}'`)
    const eq = arg.indexOf('=')
    const name = arg.slice(2, eq < 0 ? undefined : eq)
    applyFlag(a, name, eq < 0 ? argv[++i] : arg.slice(eq + 1))
  }
  return a
}

function allCases(opts: BenchOptions): BenchCase[] {
  return [
    ...loadCases(),
    watchCase,
    sessionCase,
    localSessionCase,
    lockCase,
    ...opts.memoryZnodes.map(memoryCase),
    scaleCase,
    // Last: they kill and restart servers (resync on its own ensemble, at the largest memory size).
    failoverCase,
    resyncCase(Math.max(...opts.memoryZnodes)),
    ...growthCases(opts.growthSizes),
  ]
}

// ------------------------------------------------------------ progress

const t0 = performance.now()
const tty = process.stderr.isTTY === true

function progress(text: string): void {
  const stamp = `[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s]`
  if (tty) process.stderr.write(`\r\x1b[K${stamp} ${text.slice(0, (process.stderr.columns ?? 120) - 10)}`)
  else process.stderr.write(`${stamp} ${text}\n`)
}

function progressLine(text: string): void {
  progress(text)
  if (tty) process.stderr.write('\n')
}

// ------------------------------------------------------------ running

interface Run {
  args: CliArgs
  rows: Row[]
}

function caseDeadlineMs(c: BenchCase, o: BenchOptions): number {
  // 10 minutes plus 1 ms per unit of the largest size (10M: about 3 hours).
  if (c.workload === 'growth') return 600_000 + Math.max(...o.growthSizes)
  if (c.workload === 'memory' || c.workload === 'scale' || c.workload === 'resync')
    return o.quick ? 240_000 : 3_600_000
  if (c.workload === 'failover') return o.failoverRepeats * 150_000
  return 120_000 + o.repeats * (o.durationMs + o.warmupMs) * 3
}

async function runCase(
  run: Run,
  c: BenchCase,
  dep: Deployment,
  deploy: DeployKind,
  override: Partial<BenchOptions> = {},
): Promise<Row> {
  const { transport } = run.args
  const opts = { ...run.args.opts, ...override }
  const what = `${deploy} ${dep.target} ${c.label}`
  const ctx: CaseContext = {
    dep,
    opts,
    fresh: (extra) =>
      startDeployment({
        target: dep.target,
        kind: 'standalone',
        tickTime: opts.tickTime,
        transport,
        ...extra,
      }),
    progress: (text) => progress(`${what}: ${text}`),
  }
  progress(`${what} …`)
  const started = performance.now()
  const base = { deploy, workload: c.workload, label: c.label, target: dep.target, transport: dep.scheme }
  try {
    const result = await withTimeout(c.run(ctx), caseDeadlineMs(c, opts), c.label)
    const r = result.throughput === undefined ? '' : ` ${Math.round(result.throughput)} ${result.unit ?? ''}`
    progressLine(`${what}:${r} p99 ${result.latency?.p99.toFixed(2) ?? '-'} ms`)
    return { ...base, status: 'ok', result, elapsedMs: performance.now() - started }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    const status = err instanceof NotRunError ? 'unavailable' : 'failed'
    progressLine(`${what}: ${status.toUpperCase()} ${reason.split('\n')[0]}`)
    return { ...base, status, reason, elapsedMs: performance.now() - started }
  }
}

async function startTarget(
  run: Run,
  target: TargetName,
  kind: DeployKind,
  settings: CaseSettings = {},
): Promise<Deployment | string> {
  if (target === 'zookeeper' && !zookeeperAvailable())
    return 'Apache ZooKeeper is not installed (apt-get install zookeeper)'
  progress(`${kind} ${target}: starting`)
  try {
    const dep = await startDeployment({
      target,
      kind,
      tickTime: run.args.opts.tickTime,
      transport: run.args.transport,
      ...settings,
    })
    progressLine(`${kind} ${target}: up (${dep.size} server${dep.size > 1 ? 's' : ''})`)
    return dep
  } catch (err) {
    const reason = `${kind} ${target} did not come up: ${err instanceof Error ? err.message : String(err)}`
    progressLine(reason.split('\n')[0]!)
    return reason
  }
}

/**
 * A closed-loop case against more than one target: its repeats alternate between
 * the targets (A B, B A, A B …), each repeat a run of its own, so drift on a noisy
 * machine hits every target alike; the row is the repeats' medians.
 */
async function runInterleaved(
  run: Run,
  c: BenchCase,
  deps: Map<TargetName, Deployment | string>,
  kind: DeployKind,
  caseIndex: number,
): Promise<void> {
  const targets = [...deps.keys()].filter((t) => typeof deps.get(t) !== 'string')
  const rows = new Map<TargetName, Row[]>(targets.map((t) => [t, []]))
  for (let r = 0; r < run.args.opts.repeats; r++) {
    const order = (caseIndex + r) % 2 === 0 ? targets : [...targets].reverse()
    for (const t of order)
      rows.get(t)!.push(await runCase(run, c, deps.get(t) as Deployment, kind, { repeats: 1 }))
  }
  for (const t of targets) {
    const all = rows.get(t)!
    const failed = all.find((row) => row.status !== 'ok')
    const elapsedMs = all.reduce((s, row) => s + row.elapsedMs, 0)
    if (failed !== undefined) run.rows.push({ ...failed, elapsedMs })
    else run.rows.push({ ...all[0]!, result: mergeRepeats(all.map((row) => row.result!)), elapsedMs })
  }
}

async function runDeploy(run: Run, kind: DeployKind): Promise<void> {
  const targets: TargetName[] = run.args.vs ? ['conclave', 'zookeeper'] : ['conclave']
  const cases = allCases(run.args.opts).filter(
    (c) => c.deploys.includes(kind) && run.args.only.has(c.workload),
  )
  // The default deployments first; a case with settings of its own gets its own (in their order).
  const groups = new Map<string, BenchCase[]>()
  for (const c of cases) {
    const key = JSON.stringify(c.settings ?? {})
    groups.set(key, [...(groups.get(key) ?? []), c])
  }
  let caseIndex = 0
  for (const group of groups.values()) {
    await runGroup(run, kind, targets, group, caseIndex)
    caseIndex += group.length
  }
}

/** Cases with the same settings, on one deployment per target started for them and stopped after. */
async function runGroup(
  run: Run,
  kind: DeployKind,
  targets: TargetName[],
  cases: BenchCase[],
  firstIndex: number,
): Promise<void> {
  const interleaved = (c: BenchCase) =>
    c.closedLoop === true && run.args.opts.repeats > 1 && targets.length > 1
  const deps = new Map<TargetName, Deployment | string>()
  try {
    for (const t of targets) deps.set(t, await startTarget(run, t, kind, cases[0]?.settings))
    for (const [j, c] of cases.entries()) {
      const i = firstIndex + j
      // Alternate which target goes first, so drift on a noisy machine hits both alike.
      const order = i % 2 === 0 ? targets : [...targets].reverse()
      for (const t of order) {
        const dep = deps.get(t)!
        if (typeof dep === 'string') {
          run.rows.push({
            deploy: kind,
            workload: c.workload,
            label: c.label,
            target: t,
            transport: t === 'conclave' ? run.args.transport : 'tcp',
            status: 'unavailable',
            reason: dep,
            elapsedMs: 0,
          })
        } else if (!interleaved(c)) run.rows.push(await runCase(run, c, dep, kind))
      }
      if (interleaved(c)) await runInterleaved(run, c, deps, kind, i)
    }
  } finally {
    for (const d of deps.values()) if (typeof d !== 'string') await d.stop().catch(() => {})
  }
}

function stampNow(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19)
}

function finish(run: Run, startedAt: string, argv: string[], interrupted: string | undefined): void {
  if (tty) process.stderr.write('\n')
  process.stdout.write(`${renderTable(run.rows)}\n`)
  const path = writeJson(
    {
      version: 1,
      command: `npm run bench -- ${argv.join(' ')}`.trim(),
      startedAt,
      finishedAt: new Date().toISOString(),
      ...(interrupted === undefined ? {} : { interrupted }),
      machine: machineInfo(),
      options: {
        ...run.args.opts,
        vs: run.args.vs,
        deploys: run.args.deploys,
        transport: run.args.transport,
      },
      rows: run.rows,
    },
    `${stampNow()}${run.args.opts.quick ? '-quick' : ''}`,
  )
  process.stderr.write(`results: ${path}\n`)
}

function installExitHandlers(onAbort: (why: string) => void): void {
  process.on('exit', killAllSync)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => onAbort(sig))
  process.on('uncaughtException', (err) => onAbort(`uncaught: ${err.stack ?? String(err)}`))
  // Work abandoned by a timed-out case may still reject later; it must not end the run.
  process.on('unhandledRejection', (err) => {
    if (process.env.BENCH_DEBUG) process.stderr.write(`\n(stray rejection: ${String(err)})\n`)
  })
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCli>
  try {
    parsed = parseCli(argv)
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`)
    return 2
  }
  if (parsed === 'help') {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const run: Run = { args: parsed, rows: [] }
  const startedAt = new Date().toISOString()
  let aborted = false
  const abort = (why: string) => {
    if (aborted) return
    aborted = true
    killAllSync()
    progressLine(`aborting: ${why.split('\n')[0]}`)
    finish(run, startedAt, argv, why)
    process.exit(why === 'SIGINT' ? 130 : 1)
  }
  installExitHandlers(abort)
  const limitMs = parsed.opts.quick ? 15 * 60_000 : 8 * 3_600_000
  const watchdog = setTimeout(() => abort(`watchdog: the run took over ${limitMs / 60_000} min`), limitMs)
  watchdog.unref()
  for (const kind of parsed.deploys) await runDeploy(run, kind)
  if (run.rows.some((r) => r.workload === 'growth' && r.status === 'ok')) {
    try {
      progressLine(`growth plot: ${await writeGrowthPlot(run.rows)}`)
    } catch (err) {
      progressLine(`growth plot not written: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  clearTimeout(watchdog)
  killAllSync()
  finish(run, startedAt, argv, undefined)
  return 0
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`)
    killAllSync()
    process.exit(1)
  },
)
