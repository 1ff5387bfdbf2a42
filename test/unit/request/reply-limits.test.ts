/**
 * childrenFit: whether a getChildren(2) reply fits in a packet limit,
 * counting each name's UTF-8 bytes exactly near the limit (a cheap bound of
 * 3 bytes per UTF-16 unit decides the rest).
 */
import { describe, expect, it } from 'vitest'
import { childrenFit } from '../../../server/request/read-ops.js'

/** The reply's size as the server's check counts it: 100 bytes of header, count and Stat, then 4 + UTF-8 per name. */
const size = (names: string[]) => 100 + names.reduce((n, s) => n + 4 + Buffer.byteLength(s), 0)

describe('childrenFit', () => {
  it('accepts a list exactly at the limit and refuses one byte more (ASCII)', () => {
    const names = Array.from({ length: 1000 }, (_, i) => `n-${i}`)
    const exact = size(names)
    expect(childrenFit(names, exact)).toBe(true)
    expect(childrenFit(names, exact - 1)).toBe(false)
  })

  it('counts multi-byte names by their UTF-8 length, not by 3 bytes per unit', () => {
    // 'é' is 2 bytes in UTF-8, '€' 3, '😀' 4 (two UTF-16 units).
    const names = Array.from({ length: 500 }, (_, i) => `é€😀-${i}`)
    const exact = size(names)
    expect(exact).toBeLessThan(100 + names.reduce((n, s) => n + 4 + 3 * s.length, 0))
    expect(childrenFit(names, exact)).toBe(true)
    expect(childrenFit(names, exact - 1)).toBe(false)
  })

  it('fits an empty list in any packet that holds the rest of the reply', () => {
    expect(childrenFit([], 100)).toBe(true)
    expect(childrenFit([], 99)).toBe(false)
  })
})
