/**
 * The bench's row from separately run repeats (test/bench/workloads.ts
 * mergeRepeats): each number is the median over the repeats, counts add up,
 * the worst max is kept, and the repeat count is recorded.
 */
import { describe, expect, it } from 'vitest'
import { type CaseResult, mergeRepeats } from '../../bench/workloads.js'

function run(throughput: number, p99: number, extra: Partial<CaseResult> = {}): CaseResult {
  return {
    throughput,
    unit: 'ops/s',
    spreadPct: throughput / 100,
    latency: { p50: p99 / 4, p99, p999: p99 * 2, max: p99 * 3, mean: p99 / 3, count: 100 },
    ops: 1000,
    errors: 1,
    errorNames: { CONNECTION_LOSS: 1 },
    cpu: { servers: [throughput / 10, 50], client: 20 },
    metrics: { writeP99Ms: p99 },
    notes: ['n'],
    ...extra,
  }
}

describe('mergeRepeats', () => {
  it('takes medians, sums counts and keeps the worst max', () => {
    const m = mergeRepeats([run(100, 9), run(300, 1), run(200, 5)])
    expect(m.throughput).toBe(200)
    expect(m.spreadPct).toBe(2)
    expect(m.latency).toEqual({ p50: 1.25, p99: 5, p999: 10, max: 27, mean: 5 / 3, count: 300 })
    expect(m.ops).toBe(3000)
    expect(m.errors).toBe(3)
    expect(m.errorNames).toEqual({ CONNECTION_LOSS: 3 })
    expect(m.cpu).toEqual({ servers: [20, 50], client: 20 })
    expect(m.metrics).toEqual({ writeP99Ms: 5, repeats: 3 })
    expect(m.notes).toEqual(['n'])
    expect(m.unit).toBe('ops/s')
  })

  it('returns a single run as it is and refuses none', () => {
    const one = run(100, 2)
    expect(mergeRepeats([one])).toBe(one)
    expect(() => mergeRepeats([])).toThrow(/no results/)
  })
})
