/**
 * OutputArena (server/net/output-arena.ts): a piece keeps its bytes until it
 * is released, whatever is put and released meanwhile (a connection's turn
 * is written from its pieces one check phase later), and slabs are
 * recycled, so the arena stays a few slabs under any amount of output.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { OutputArena, PIECE_BYTES_MAX, type Piece } from '../../../server/net/output-arena.js'

/** A part whose bytes say which put made it. */
function partOf(n: number, size: number): Uint8Array {
  return new Uint8Array(size).fill(n % 251)
}

function intact(view: Uint8Array, n: number, size: number, more = 0): boolean {
  // A two-part piece: the first part's bytes, then the second's (filled with n + 1).
  return (
    view.length === size + more &&
    view.subarray(0, size).every((b) => b === n % 251) &&
    view.subarray(size).every((b) => b === (n + 1) % 251)
  )
}

describe('OutputArena', () => {
  it('keeps every held piece intact across puts and releases', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            size: fc.integer({ min: 0, max: PIECE_BYTES_MAX / 2 }),
            // A second part (a frame header's packet), or none.
            more: fc.option(fc.integer({ min: 0, max: PIECE_BYTES_MAX / 2 }), { nil: undefined }),
            releases: fc.nat(4),
          }),
          { minLength: 1, maxLength: 400 },
        ),
        (steps) => {
          const arena = new OutputArena()
          const held: { piece: Piece; n: number; size: number; more: number }[] = []
          steps.forEach((step, n) => {
            const piece =
              step.more === undefined
                ? arena.put(partOf(n, step.size))
                : arena.put(partOf(n, step.size), partOf(n + 1, step.more))
            held.push({ piece, n, size: step.size, more: step.more ?? 0 })
            // Release the oldest few, as connections write their turns in order.
            for (let k = 0; k < step.releases && held.length > 0; k++) {
              const h = held.shift()!
              expect(intact(h.piece.view, h.n, h.size, h.more)).toBe(true)
              arena.release(h.piece)
            }
          })
          for (const h of held) {
            expect(intact(h.piece.view, h.n, h.size, h.more)).toBe(true)
            arena.release(h.piece)
          }
        },
      ),
      { numRuns: 60 },
    )
  })

  it('needs a few slabs for a long run of turns, each written before the next', () => {
    const arena = new OutputArena()
    const slabs = new Set<unknown>()
    for (let turn = 0; turn < 2_000; turn++) {
      const pieces = Array.from({ length: 20 }, (_, i) => arena.put(partOf(turn + i, 1_000 + i * 37)))
      for (const p of pieces) slabs.add(p.slab)
      for (const p of pieces) arena.release(p)
    }
    expect(slabs.size).toBeLessThanOrEqual(3)
  })

  it('recycles a full slab once its pieces are released, when each turn fills more than a slab', () => {
    const arena = new OutputArena()
    const slabs = new Set<unknown>()
    for (let turn = 0; turn < 500; turn++) {
      const pieces = Array.from({ length: 20 }, (_, i) => arena.put(partOf(turn + i, 4_000)))
      for (const p of pieces) slabs.add(p.slab)
      for (const p of pieces) arena.release(p)
    }
    expect(slabs.size).toBeLessThanOrEqual(3)
  })

  it('refuses a piece over PIECE_BYTES_MAX and a second release', () => {
    const arena = new OutputArena()
    expect(() => arena.put(new Uint8Array(PIECE_BYTES_MAX + 1))).toThrow(/over/)
    // Two parts count together.
    expect(() => arena.put(new Uint8Array(PIECE_BYTES_MAX), new Uint8Array(1))).toThrow(/over/)
    const p = arena.put(new Uint8Array(10))
    arena.release(p)
    expect(() => arena.release(p)).toThrow(/released twice/)
  })
})
