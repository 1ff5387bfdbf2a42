/**
 * ByteQueue (shared/byte-queue.ts) against a plain array: any bytes pushed in
 * chunks of any sizes (small ones are copied into blocks, large ones kept)
 * come out of peek, take and drop exactly as they went in, and views handed
 * out by take stay valid after more is pushed.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ByteQueue, SMALL_CHUNK_BYTES } from '../../../shared/byte-queue.js'

type Step = { push: number } | { take: number } | { drop: number } | { peek: number }

describe('ByteQueue', () => {
  it('gives back exactly what was pushed, whatever the chunk sizes', () => {
    const sizes = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 2 * SMALL_CHUNK_BYTES }))
    const step = fc.oneof(
      sizes.map((n): Step => ({ push: n })),
      sizes.map((n): Step => ({ take: n })),
      fc.integer({ min: 0, max: 40 }).map((n): Step => ({ drop: n })),
      fc.integer({ min: 1, max: 14 }).map((n): Step => ({ peek: n })),
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
        const q = new ByteQueue()
        const model: number[] = []
        const handedOut: [Uint8Array, number[]][] = []
        let next = 0
        for (const s of steps) {
          if ('push' in s) {
            const chunk = new Uint8Array(s.push)
            for (let i = 0; i < chunk.length; i++) chunk[i] = next++ & 0xff
            q.push(chunk)
            model.push(...chunk)
          } else if ('take' in s) {
            const n = Math.min(s.take, model.length)
            const got = q.take(n)
            const want = model.splice(0, n)
            expect([...got]).toEqual(want)
            handedOut.push([got, want])
          } else if ('drop' in s) {
            const n = Math.min(s.drop, model.length)
            q.drop(n)
            model.splice(0, n)
          } else if (s.peek <= model.length) {
            expect([...q.peek(s.peek, new Uint8Array(14)).subarray(0, s.peek)]).toEqual(
              model.slice(0, s.peek),
            )
          }
          expect(q.length).toBe(model.length)
        }
        for (const [view, want] of handedOut) expect([...view]).toEqual(want)
      }),
      { numRuns: 300 },
    )
  })
})
