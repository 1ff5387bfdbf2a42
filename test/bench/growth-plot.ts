/**
 * The growth workload's plot (issue 21): each row's cost against its size,
 * log-log (a slope of one is linear growth; a flat per-item cost is linear
 * total cost), as an SVG made here and turned into a PNG by Debian's
 * chromium driven by playwright-core (a screenshot of the SVG), written to
 * docs/scale-growth.png. Rows that did not run are listed under the panels
 * with their reason.
 *
 * Run by the bench at the end of a run with growth rows, or by hand to merge
 * several runs (later files win for the same target, row and size):
 *   node dist/test/bench/growth-plot.js test/bench/results/bench-A.json test/bench/results/bench-B.json [-o out.png]
 *
 * Invariants: formatting only; a missing or non-finite value is left out of
 * its line, never drawn as zero. Bench-only: imports node:* freely, nothing
 * of server/.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { closeAll, launchChromium } from '../helpers/browser.js'
import type { Row } from './report.js'

export const PLOT_PATH = fileURLToPath(new URL('../../../docs/scale-growth.png', import.meta.url))

type Kind = 'znodes' | 'sessions' | 'children'

interface Point {
  target: Row['target']
  kind: Kind
  size: number
  metrics: Record<string, number>
}

interface Series {
  kind: Kind
  metric: string
  name: string
  /** Multiplies the metric into the panel's unit. */
  scale?: number
}

interface Panel {
  title: string
  unit: string
  series: Series[]
}

const PANELS: Panel[] = [
  {
    title: 'Znodes on 3 servers: memory of the largest server',
    unit: 'GB',
    series: [
      { kind: 'znodes', metric: 'rssMaxMB', name: 'RSS', scale: 1 / 1024 },
      { kind: 'znodes', metric: 'heapMaxMB', name: 'heap', scale: 1 / 1024 },
    ],
  },
  {
    title: 'Znodes on 3 servers: snapshot, recovery, SNAP',
    unit: 's',
    series: [
      { kind: 'znodes', metric: 'loadS', name: 'load' },
      { kind: 'znodes', metric: 'snapshotMs', name: 'snapshot (leader)', scale: 1e-3 },
      { kind: 'znodes', metric: 'followerRecoveryMs', name: 'recovery (follower)', scale: 1e-3 },
      { kind: 'znodes', metric: 'snapSentMs', name: 'SNAP sent', scale: 1e-3 },
      { kind: 'znodes', metric: 'restartToFollowingMs', name: 'restart → following', scale: 1e-3 },
    ],
  },
  {
    title: 'Znodes on 3 servers: longest stall',
    unit: 'ms',
    series: [
      { kind: 'znodes', metric: 'loadStallMs', name: 'probe read, loading' },
      { kind: 'znodes', metric: 'snapshotStallMs', name: 'probe read, snapshot' },
      { kind: 'znodes', metric: 'serverLoopStallMs', name: 'server loop, snapshot' },
      { kind: 'znodes', metric: 'leaderSnapLoopMaxMs', name: 'leader loop, SNAP' },
    ],
  },
  {
    title: 'Sessions (N/100) + watches (N/10): one server',
    unit: 'MB',
    series: [
      { kind: 'sessions', metric: 'rssSessionsMB', name: 'RSS, sessions held' },
      { kind: 'sessions', metric: 'rssMB', name: 'RSS, with the watches' },
    ],
  },
  {
    title: 'Children (N/10) of one parent: listing',
    unit: 'ms',
    series: [
      { kind: 'children', metric: 'listAllPagedMs', name: 'all pages' },
      { kind: 'children', metric: 'pageP99Ms', name: 'one page, p99' },
      { kind: 'children', metric: 'getChildrenAllMs', name: 'one getChildren' },
      { kind: 'children', metric: 'loadStallMs', name: 'probe read, creating' },
    ],
  },
  {
    title: 'Cost per item (flat = linear growth)',
    unit: 'B',
    series: [
      { kind: 'znodes', metric: 'rssPerZnodeB', name: 'RSS per znode' },
      { kind: 'znodes', metric: 'heapPerZnodeB', name: 'heap per znode' },
      { kind: 'sessions', metric: 'rssPerWatchB', name: 'RSS per watch' },
      { kind: 'children', metric: 'rssPerChildB', name: 'RSS per child' },
    ],
  },
]

const KIND_OF: [RegExp, Kind][] = [
  [/ znodes, 3 servers$/, 'znodes'],
  [/ watches$/, 'sessions'],
  [/ children of one parent$/, 'children'],
]

function kindOf(label: string): Kind | undefined {
  return KIND_OF.find(([re]) => re.test(label))?.[1]
}

/** The growth rows that ran, one per target, kind and size (the last one wins). */
export function growthPoints(rows: readonly Row[]): Point[] {
  const byKey = new Map<string, Point>()
  for (const r of rows) {
    const kind = kindOf(r.label)
    const size = r.result?.metrics.size
    if (r.workload !== 'growth' || r.status !== 'ok' || kind === undefined || size === undefined) continue
    byKey.set(`${r.target}|${kind}|${size}`, { target: r.target, kind, size, metrics: r.result!.metrics })
  }
  return [...byKey.values()].sort((a, b) => a.size - b.size)
}

/** The growth rows that did not run or failed, one line each (the last one per label and target). */
function notRun(rows: readonly Row[]): string[] {
  const lines = new Map<string, string>()
  for (const r of rows) {
    if (r.workload !== 'growth') continue
    const key = `${r.target}|${r.label}`
    if (r.status === 'ok') lines.delete(key)
    else lines.set(key, `${r.target} ${r.label}: ${(r.reason ?? r.status).split('\n')[0]!.slice(0, 140)}`)
  }
  return [...lines.values()]
}

// ------------------------------------------------------------ drawing

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e']
const W = 1500
const PANEL_W = 480
const PANEL_H = 330
const MARGIN = { left: 62, right: 12, top: 30, bottom: 96 }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function sizeLabel(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toPrecision(3)}M`
  if (n >= 1e3) return `${+(n / 1e3).toPrecision(3)}k`
  return String(n)
}

function valueLabel(v: number): string {
  if (v >= 1e3) return sizeLabel(v)
  return String(+v.toPrecision(2))
}

/** Ticks 1, 2, 5 × 10^k inside [lo, hi] (at least the ends' powers of ten). */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = []
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e
      if (v >= lo && v <= hi) out.push(v)
    }
  return out
}

interface Line {
  name: string
  color: string
  dashed: boolean
  xy: [number, number][]
}

function panelLines(panel: Panel, points: Point[]): Line[] {
  const lines: Line[] = []
  panel.series.forEach((s, i) => {
    for (const target of ['conclave', 'zookeeper'] as const) {
      const xy = points
        .filter((p) => p.kind === s.kind && p.target === target)
        .map((p) => [p.size, (p.metrics[s.metric] ?? Number.NaN) * (s.scale ?? 1)] as [number, number])
        .filter(([, y]) => Number.isFinite(y) && y > 0)
      if (xy.length > 0)
        lines.push({
          name: `${s.name}${target === 'zookeeper' ? ' (ZooKeeper)' : ''}`,
          color: COLORS[i % COLORS.length]!,
          dashed: target === 'zookeeper',
          xy,
        })
    }
  })
  return lines
}

function drawPanel(panel: Panel, lines: Line[], sizes: number[], x0: number, y0: number): string {
  const pw = PANEL_W - MARGIN.left - MARGIN.right
  const ph = PANEL_H - MARGIN.top - MARGIN.bottom
  const out = [
    `<text x="${x0 + 8}" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(panel.title)}</text>`,
  ]
  const ys = lines.flatMap((l) => l.xy.map(([, y]) => y))
  if (ys.length === 0 || sizes.length === 0) {
    out.push(`<text x="${x0 + 20}" y="${y0 + 80}" font-size="13" fill="#888">no data</text>`)
    return out.join('\n')
  }
  const [xlo, xhi] = [Math.min(...sizes) / 1.4, Math.max(...sizes) * 1.4]
  const [ylo, yhi] = [Math.min(...ys) / 2, Math.max(...ys) * 2]
  const px = (x: number) => x0 + MARGIN.left + (Math.log(x / xlo) / Math.log(xhi / xlo)) * pw
  const py = (y: number) => y0 + MARGIN.top + ph - (Math.log(y / ylo) / Math.log(yhi / ylo)) * ph
  const bottom = y0 + MARGIN.top + ph
  out.push(
    `<rect x="${x0 + MARGIN.left}" y="${y0 + MARGIN.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
  )
  for (const s of sizes)
    out.push(
      `<line x1="${px(s)}" x2="${px(s)}" y1="${y0 + MARGIN.top}" y2="${bottom}" stroke="#eee"/>`,
      `<text x="${px(s)}" y="${bottom + 14}" font-size="11" text-anchor="middle">${sizeLabel(s)}</text>`,
    )
  for (const t of logTicks(ylo, yhi))
    out.push(
      `<line x1="${x0 + MARGIN.left}" x2="${x0 + MARGIN.left + pw}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/>`,
      `<text x="${x0 + MARGIN.left - 4}" y="${py(t) + 4}" font-size="11" text-anchor="end">${valueLabel(t)}</text>`,
    )
  out.push(
    `<text x="${x0 + 14}" y="${y0 + MARGIN.top + ph / 2}" font-size="11" transform="rotate(-90 ${x0 + 14} ${y0 + MARGIN.top + ph / 2})" text-anchor="middle">${esc(panel.unit)} (log)</text>`,
    `<text x="${x0 + MARGIN.left + pw}" y="${bottom + 28}" font-size="11" text-anchor="end">size N (log)</text>`,
  )
  lines.forEach((l, i) => {
    const d = l.xy
      .map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`)
      .join(' ')
    const dash = l.dashed ? ' stroke-dasharray="6 4"' : ''
    out.push(`<path d="${d}" fill="none" stroke="${l.color}" stroke-width="2"${dash}/>`)
    for (const [x, y] of l.xy)
      out.push(
        `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3.5" fill="${l.color}"/>`,
        `<text x="${(px(x) + 5).toFixed(1)}" y="${(py(y) - 5).toFixed(1)}" font-size="10" fill="${l.color}">${valueLabel(y)}</text>`,
      )
    const lx = x0 + MARGIN.left + (i % 2) * (pw / 2)
    const ly = bottom + 46 + Math.floor(i / 2) * 15
    out.push(
      `<line x1="${lx}" x2="${lx + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${l.color}" stroke-width="2"${dash}/>`,
      `<text x="${lx + 25}" y="${ly}" font-size="11">${esc(l.name)}</text>`,
    )
  })
  return out.join('\n')
}

/** The whole figure: a title, six panels (3 × 2), the rows that did not run. */
export function growthSvg(
  rows: readonly Row[],
  subtitle: string,
): { svg: string; width: number; height: number } {
  const points = growthPoints(rows)
  const sizes = [...new Set(points.map((p) => p.size))].sort((a, b) => a - b)
  const missing = notRun(rows)
  const top = 52
  const height = top + 2 * PANEL_H + 24 + missing.length * 16 + 10
  const body = PANELS.map((p, i) =>
    drawPanel(
      p,
      panelLines(p, points),
      sizes,
      10 + (i % 3) * (PANEL_W + 10),
      top + Math.floor(i / 3) * PANEL_H,
    ),
  )
  const foot = missing.map(
    (m, i) =>
      `<text x="16" y="${top + 2 * PANEL_H + 18 + i * 16}" font-size="12" fill="#a33">not run: ${esc(m)}</text>`,
  )
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" font-family="DejaVu Sans, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="16" y="24" font-size="18" font-weight="bold">Conclave: cost against size N (log-log; dashed: ZooKeeper 3.8)</text>`,
    `<text x="16" y="43" font-size="12" fill="#555">${esc(subtitle)}</text>`,
    ...body,
    ...foot,
    '</svg>',
  ].join('\n')
  return { svg, width: W, height }
}

/** Renders the plot of these rows to a PNG (chromium screenshot of the SVG); returns its path. */
export async function writeGrowthPlot(
  rows: readonly Row[],
  path = PLOT_PATH,
  subtitle?: string,
): Promise<string> {
  const sub =
    subtitle ??
    `npm run bench -- --only growth, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; N znodes of 100 B on 3 servers, N/100 sessions + N/10 watches, N/10 children`
  const { svg, width, height } = growthSvg(rows, sub)
  const browser = await launchChromium()
  try {
    const page = await browser.newPage({ viewport: { width, height } })
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`)
    await page.screenshot({ path, clip: { x: 0, y: 0, width, height } })
  } finally {
    await closeAll()
  }
  return path
}

/** `growth-plot.js FILE.json… [-o OUT.png]`: merges the growth rows of several bench runs into one plot. */
async function main(argv: string[]): Promise<number> {
  const o = argv.indexOf('-o')
  const out = o < 0 ? PLOT_PATH : resolve(argv[o + 1] ?? '')
  const files = o < 0 ? argv : argv.filter((_, i) => i !== o && i !== o + 1)
  if (files.length === 0) {
    process.stderr.write('usage: node dist/test/bench/growth-plot.js BENCH.json… [-o OUT.png]\n')
    return 2
  }
  const docs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as { rows: Row[]; startedAt: string })
  const dates = docs.map((d) => d.startedAt.slice(0, 16).replace('T', ' ')).join(', ')
  const subtitle = `runs of npm run bench -- --only growth (${dates} UTC): N znodes of 100 B on 3 servers, N/100 sessions + N/10 watches, N/10 children`
  process.stdout.write(
    `${await writeGrowthPlot(
      docs.flatMap((d) => d.rows),
      out,
      subtitle,
    )}\n`,
  )
  return 0
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1]))
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`)
      process.exit(1)
    },
  )
