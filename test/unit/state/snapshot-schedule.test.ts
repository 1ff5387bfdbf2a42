/**
 * When a server snapshots: after a random count of txns in [snapCount/2,
 * snapCount], so the members of an ensemble (which apply the same txns) do
 * not all snapshot at the same zxid.
 */
import { describe, expect, it } from 'vitest'
import { nextSnapshotAfter, opsIn } from '../../../server/state/snapshotter.js'

describe('snapshot schedule', () => {
  it('draws from [snapCount/2, snapCount], spread over the range', () => {
    for (const snapCount of [10, 11, 100_000]) {
      const draws = Array.from({ length: 2000 }, () => nextSnapshotAfter(snapCount))
      for (const d of draws) {
        expect(Number.isInteger(d)).toBe(true)
        expect(d).toBeGreaterThanOrEqual(Math.ceil(snapCount / 2))
        expect(d).toBeLessThanOrEqual(snapCount)
      }
      // Three servers pick different points almost always: many distinct values, both halves used.
      expect(new Set(draws).size).toBeGreaterThan(Math.min(5, snapCount / 2))
      const mid = (snapCount * 3) / 4
      expect(draws.some((d) => d < mid)).toBe(true)
      expect(draws.some((d) => d > mid)).toBe(true)
    }
  })

  it('counts a Txn by the operations it carries', () => {
    const stat = undefined as never
    expect(opsIn({ type: 'setData', stat })).toBe(1)
    expect(opsIn({ type: 'createSession', timeoutMs: 4000 })).toBe(1)
    expect(opsIn({ type: 'multi', results: [] })).toBe(1)
    expect(
      opsIn({ type: 'multi', results: Array.from({ length: 100 }, () => ({ type: 'delete' as const })) }),
    ).toBe(100)
    expect(opsIn({ type: 'closeSession', deleted: ['/a', '/b'] })).toBe(3)
    expect(opsIn({ type: 'error', code: -101 as never })).toBe(1)
  })
})
