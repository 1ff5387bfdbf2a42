/**
 * FencedResource against a reference model (fast-check): per resource, a
 * token is accepted iff it is at least the highest accepted so far; a
 * rejection is a StaleTokenError naming both tokens and changes nothing.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FencedResource, STALE_FENCING_TOKEN, StaleTokenError } from '../../../recipes/fenced-resource.js'

describe('FencedResource', () => {
  it('accepts exactly the tokens the model accepts', () => {
    const op = fc.record({ resource: fc.constantFrom('a', 'b', 'c'), token: fc.integer({ min: 0, max: 50 }) })
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const guard = new FencedResource()
        const model = new Map<string, number>()
        for (const { resource, token } of ops) {
          const expectOk = token >= (model.get(resource) ?? Number.NEGATIVE_INFINITY)
          let ok = true
          try {
            guard.check(resource, token)
          } catch (err) {
            ok = false
            expect(err).toBeInstanceOf(StaleTokenError)
            expect((err as StaleTokenError).code).toBe(STALE_FENCING_TOKEN)
            expect((err as StaleTokenError).highest).toBe(model.get(resource))
          }
          expect(ok).toBe(expectOk)
          if (ok) model.set(resource, token)
          expect(guard.highest(resource)).toBe(model.get(resource))
        }
      }),
    )
  })

  it('runs the action only for a fresh token', () => {
    const guard = new FencedResource()
    const writes: string[] = []
    guard.run('orders', 7, () => writes.push('B'))
    expect(() => guard.run('orders', 5, () => writes.push('A (stale)'))).toThrow(StaleTokenError)
    guard.run('orders', 7, () => writes.push('B again'))
    expect(writes).toEqual(['B', 'B again'])
    expect(() => guard.check('orders', Number.NaN)).toThrow(TypeError)
  })
})
