/**
 * The growth plot's data and drawing (test/bench/growth-plot.ts): rows are
 * picked by their label's kind and their size metric (the last run wins, a
 * failed one draws nothing), each series is a line through its sizes on
 * log-log axes, a missing or non-finite value is left out rather than drawn
 * as zero, and the rows that did not run are listed with their reason.
 */
import { describe, expect, it } from 'vitest'
import { growthPoints, growthSvg, sizeLabel } from '../../bench/growth-plot.js'
import type { Row } from '../../bench/report.js'
import { growthLabel } from '../../bench/workloads-growth.js'

function row(label: string, metrics: Record<string, number>, extra: Partial<Row> = {}): Row {
  return {
    deploy: 'ensemble',
    workload: 'growth',
    label,
    target: 'conclave',
    transport: 'ws',
    status: 'ok',
    result: { metrics, notes: [] },
    elapsedMs: 1,
    ...extra,
  }
}

/** The circles of the first panel's RSS line (its colour is the first of the palette). */
function rssCircles(svg: string): { cx: number; cy: number }[] {
  const panel = svg.split('Znodes on 3 servers: snapshot')[0]!
  return [...panel.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)" r="3.5" fill="#1f77b4"\/>/g)].map((m) => ({
    cx: Number(m[1]),
    cy: Number(m[2]),
  }))
}

describe('growth plot', () => {
  it('takes each target, kind and size once, the last run winning, and skips rows that did not run', () => {
    const rows = [
      row(growthLabel('znodes', 1e6), { size: 1e6, rssMaxMB: 100 }),
      row(growthLabel('znodes', 1e6), { size: 1e6, rssMaxMB: 200 }),
      row(growthLabel('children', 1e6), { size: 1e6, listAllPagedMs: 5 }, { deploy: 'standalone' }),
      row(growthLabel('znodes', 3e6), { size: 3e6 }, { status: 'failed', reason: 'boom' }),
      row(growthLabel('sessions', 1e6), { size: 1e6 }, { target: 'zookeeper' }),
    ]
    const points = growthPoints(rows)
    expect(points.map((p) => `${p.target} ${p.kind} ${p.size}`)).toEqual([
      'conclave znodes 1000000',
      'conclave children 1000000',
      'zookeeper sessions 1000000',
    ])
    expect(points[0]!.metrics.rssMaxMB).toBe(200)
  })

  it('draws a line through the sizes, higher for larger values, on log axes', () => {
    const rows = [1e6, 3e6, 1e7].map((n) => row(growthLabel('znodes', n), { size: n, rssMaxMB: n / 1000 }))
    const { svg } = growthSvg(rows, 'sub')
    const c = rssCircles(svg)
    expect(c).toHaveLength(3)
    expect(c[0]!.cx).toBeLessThan(c[1]!.cx)
    expect(c[1]!.cx).toBeLessThan(c[2]!.cx)
    // SVG y grows downwards: larger values sit higher.
    expect(c[0]!.cy).toBeGreaterThan(c[1]!.cy)
    expect(c[1]!.cy).toBeGreaterThan(c[2]!.cy)
    // Log-log and y proportional to x: equal steps in log x give equal steps in log y.
    const slope = (a: { cx: number; cy: number }, b: { cx: number; cy: number }) =>
      (b.cy - a.cy) / (b.cx - a.cx)
    expect(slope(c[0]!, c[1]!)).toBeCloseTo(slope(c[1]!, c[2]!), 1)
    for (const s of ['1M', '3M', '10M']) expect(svg).toContain(`>${s}</text>`)
  })

  it('leaves out a missing or non-finite value instead of drawing it as zero', () => {
    const rows = [
      row(growthLabel('znodes', 1e6), { size: 1e6, rssMaxMB: 700 }),
      row(growthLabel('znodes', 3e6), { size: 3e6, rssMaxMB: Number.NaN }),
      row(growthLabel('znodes', 1e7), { size: 1e7 }),
    ]
    expect(rssCircles(growthSvg(rows, 'sub').svg)).toHaveLength(1)
  })

  it('lists the rows that did not run with their reason, unless a later run of the same row succeeded', () => {
    const label = growthLabel('znodes', 1e7)
    const notRun = row(label, {}, { status: 'unavailable', reason: 'not run: needs ~21.6 GB' })
    const { svg } = growthSvg([notRun, row(growthLabel('znodes', 1e6), { size: 1e6, rssMaxMB: 1 })], 'sub')
    expect(svg).toContain(`not run: conclave ${label}: not run: needs ~21.6 GB`)
    expect(growthSvg([notRun, row(label, { size: 1e7, rssMaxMB: 7000 })], 'sub').svg).not.toContain(
      'not run:',
    )
  })

  it('labels sizes as the bench names them', () => {
    expect([1000, 19_000, 1e6, 3e6, 1e7, 2_500_000].map(sizeLabel)).toEqual([
      '1k',
      '19k',
      '1M',
      '3M',
      '10M',
      '2.5M',
    ])
  })
})
