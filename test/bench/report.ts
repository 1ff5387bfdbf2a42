/**
 * The bench's output: a fixed-width table on stdout (one row per case and
 * target, plus a Conclave/ZooKeeper ratio row when both ran) and a JSON file
 * under test/bench/results/ (gitignored) with the machine it ran on.
 *
 * Invariants: formatting only; a missing or non-finite number prints as
 * '-' (and as null in JSON); unavailable and failed rows carry their reason.
 * Bench-only: imports node:* freely, nothing of server/.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DeployKind, TargetName } from './deploy.js'
import type { CaseResult, WorkloadName } from './workloads.js'

export interface Row {
  deploy: DeployKind
  workload: WorkloadName
  label: string
  target: TargetName
  transport: string
  status: 'ok' | 'unavailable' | 'failed'
  reason?: string
  result?: CaseResult
  elapsedMs: number
}

export function fmt(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-'
  const a = Math.abs(n)
  if (a >= 100) return String(Math.round(n))
  if (a >= 10) return n.toFixed(1)
  return n.toFixed(2)
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b)) return '-'
  // A ratio of signed values (a notification before the reply) or of zero means nothing.
  if (a <= 0 || b <= 0) return '-'
  return `${(a / b).toFixed(2)}x`
}

function cpuText(r: CaseResult | undefined): string {
  const s = r?.cpu?.servers
  if (s === undefined) return '-'
  return s.map((v) => (Number.isFinite(v) ? String(Math.round(v)) : '-')).join('/')
}

function cpuTotal(r: CaseResult | undefined): number | undefined {
  const s = r?.cpu?.servers.filter((v) => Number.isFinite(v))
  return s === undefined || s.length === 0 ? undefined : s.reduce((a, v) => a + v, 0)
}

function details(row: Row): string {
  if (row.status !== 'ok')
    return `${row.status.toUpperCase()}: ${(row.reason ?? '').split('\n')[0]!.slice(0, 150)}`
  const r = row.result!
  const parts = Object.entries(r.metrics).map(([k, v]) => `${k}=${fmt(v)}`)
  const errs = Object.entries(r.errorNames ?? {}).map(([k, v]) => `${k}:${v}`)
  if (errs.length > 0) parts.push(`errors{${errs.join(',')}}`)
  return [...parts, ...r.notes].join(' ')
}

const HEAD = [
  'deploy',
  'case',
  'target',
  'throughput',
  'unit',
  '±%',
  'p50ms',
  'p99ms',
  'p99.9ms',
  'err',
  'cpu srv%',
  'cli%',
]

function cells(row: Row): string[] {
  const r = row.result
  return [
    row.deploy,
    row.label,
    row.target === 'conclave' ? `conclave/${row.transport}` : 'zookeeper',
    fmt(r?.throughput),
    r?.unit ?? '',
    fmt(r?.spreadPct),
    fmt(r?.latency?.p50),
    fmt(r?.latency?.p99),
    fmt(r?.latency?.p999),
    r?.errors === undefined ? '-' : String(r.errors),
    cpuText(r),
    fmt(r?.cpu?.client),
  ]
}

function ratioCells(c: Row, z: Row): string[] {
  const a = c.result!
  const b = z.result!
  return [
    c.deploy,
    c.label,
    'C/Z ratio',
    ratio(a.throughput, b.throughput),
    '',
    '',
    ratio(a.latency?.p50, b.latency?.p50),
    ratio(a.latency?.p99, b.latency?.p99),
    ratio(a.latency?.p999, b.latency?.p999),
    '',
    ratio(cpuTotal(a), cpuTotal(b)),
    '',
  ]
}

function ratioDetails(c: Row, z: Row): string {
  const a = c.result!.metrics
  const b = z.result!.metrics
  return Object.keys(a)
    .filter((k) => k in b && k !== 'znodes' && k !== 'repeats' && k !== 'sessions' && k !== 'rounds')
    .map((k) => `${k} ${ratio(a[k], b[k])}`)
    .join(' ')
}

/** The table, with a ratio row after each Conclave/ZooKeeper pair that both ran. */
export function renderTable(rows: readonly Row[]): string {
  const lines: { cells: string[]; detail: string }[] = []
  const seen = new Set<string>()
  for (const row of rows) {
    const key = `${row.deploy}|${row.label}`
    if (seen.has(key)) continue
    seen.add(key)
    const group = rows.filter((r) => `${r.deploy}|${r.label}` === key)
    for (const r of group) lines.push({ cells: cells(r), detail: details(r) })
    const c = group.find((r) => r.target === 'conclave' && r.status === 'ok')
    const z = group.find((r) => r.target === 'zookeeper' && r.status === 'ok')
    if (c && z) lines.push({ cells: ratioCells(c, z), detail: ratioDetails(c, z) })
  }
  const widths = HEAD.map((h, i) => Math.max(h.length, ...lines.map((l) => l.cells[i]!.length)))
  const numeric = (i: number) => i >= 3 && i !== 4
  const line = (cs: string[], detail: string) =>
    `${cs.map((c, i) => (numeric(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ')}  ${detail}`.trimEnd()
  return [line(HEAD, 'details'), ...lines.map((l) => line(l.cells, l.detail))].join('\n')
}

/** stdout and stderr of a short command (`java -version` prints to stderr). */
function tryRun(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { timeout: 10_000, encoding: 'utf8' })
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim()
}

export function machineInfo(): Record<string, unknown> {
  const cpu = cpus()
  return {
    cores: cpu.length,
    cpuModel: cpu[0]?.model,
    memoryBytes: totalmem(),
    /** 1, 5 and 15 minute load averages when the run ended: how busy the shared machine was. */
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    platform: process.platform,
    kernel: release(),
    arch: process.arch,
    java: existsSync('/usr/bin/java')
      ? tryRun('/usr/bin/java', ['-version'])
          .split('\n')
          .find((l) => l.includes('version'))
      : undefined,
  }
}

const RESULTS = fileURLToPath(new URL('../../../test/bench/results/', import.meta.url))

/** Writes the run's JSON; returns its path. */
export function writeJson(doc: Record<string, unknown>, stamp: string, dir = RESULTS): string {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `bench-${stamp}.json`)
  writeFileSync(
    path,
    `${JSON.stringify(doc, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`,
  )
  return path
}
