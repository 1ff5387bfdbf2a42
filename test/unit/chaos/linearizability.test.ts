/**
 * Self-tests of the linearizability checker (test/chaos/linearizability.ts)
 * on histories known to be linearizable and known not to be, including the
 * stale read after a write that completed (the shape of ZOOKEEPER-1675), a
 * lost write, a read of a value never written, and indeterminate writes that
 * may or may not have happened; and a property: histories made by running
 * operations against a real sequential register with random overlaps always
 * pass, and the same histories with one read made stale fail.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  checkOperations,
  checkPartitioned,
  type Operation,
  type RegisterInput,
  type RegisterOutput,
  znodeRegister,
} from '../../chaos/linearizability.js'

type Op = Operation<RegisterInput, RegisterOutput>

const op = (
  client: number,
  input: RegisterInput,
  output: RegisterOutput | undefined,
  at: number,
  to: number,
): Op => ({
  client,
  input,
  output,
  invokedAt: at,
  returnedAt: output === undefined ? Number.POSITIVE_INFINITY : to,
})
const read = (c: number, value: string | null, version: number, at: number, to: number): Op =>
  op(
    c,
    { f: 'read' },
    value === null ? { ok: false, error: 'NO_NODE' } : { ok: true, value, version },
    at,
    to,
  )
const create = (c: number, value: string, at: number, to: number): Op =>
  op(c, { f: 'create', value }, { ok: true, version: 0 }, at, to)
const write = (c: number, value: string, version: number | undefined, at: number, to: number): Op =>
  op(c, { f: 'write', value }, version === undefined ? undefined : { ok: true, version }, at, to)

describe('linearizability checker', () => {
  it('accepts a sequential history and overlapping writes read in either order', () => {
    expect(
      checkOperations(znodeRegister, [create(1, 'a', 0, 1), write(1, 'b', 1, 2, 3), read(2, 'b', 1, 4, 5)])
        .result,
    ).toBe('ok')
    // Two overlapping writes land in either order: here c first (version 1), then b (version 2).
    const h = [create(1, 'a', 0, 1), write(1, 'b', 2, 2, 10), write(2, 'c', 1, 3, 9), read(3, 'b', 2, 11, 12)]
    expect(checkOperations(znodeRegister, h).result).toBe('ok')
  })

  it('refuses a stale read after a write completed (ZOOKEEPER-1675 shape)', () => {
    const h = [create(1, 'a', 0, 1), write(1, 'b', 1, 2, 3), read(2, 'a', 0, 4, 5)]
    const r = checkOperations(znodeRegister, h)
    expect(r.result).toBe('illegal')
  })

  it('refuses a read of a value never written, and a lost acknowledged write', () => {
    expect(checkOperations(znodeRegister, [create(1, 'a', 0, 1), read(2, 'z', 0, 2, 3)]).result).toBe(
      'illegal',
    )
    // b acknowledged at version 1, then reads see the node at version 1 with a again.
    const lost = [create(1, 'a', 0, 1), write(1, 'b', 1, 2, 3), read(2, 'a', 1, 4, 5)]
    expect(checkOperations(znodeRegister, lost).result).toBe('illegal')
  })

  it('lets an indeterminate write take effect late or never, but not before it was invoked', () => {
    const late = [
      create(1, 'a', 0, 1),
      write(1, 'b', undefined, 2, 0),
      read(2, 'a', 0, 3, 4),
      read(2, 'b', 1, 5, 6),
    ]
    expect(checkOperations(znodeRegister, late).result).toBe('ok')
    const never = [create(1, 'a', 0, 1), write(1, 'b', undefined, 2, 0), read(2, 'a', 0, 30, 40)]
    expect(checkOperations(znodeRegister, never).result).toBe('ok')
    const early = [create(1, 'a', 0, 1), read(2, 'b', 1, 2, 3), write(1, 'b', undefined, 4, 0)]
    expect(checkOperations(znodeRegister, early).result).toBe('illegal')
  })

  it('checks compare-and-set on the version', () => {
    const cas = (c: number, value: string, v: number, out: RegisterOutput, at: number, to: number) =>
      op(c, { f: 'cas', value, version: v }, out, at, to)
    const ok = [
      create(1, 'a', 0, 1),
      cas(1, 'b', 0, { ok: true, version: 1 }, 2, 3),
      cas(2, 'c', 0, { ok: false, error: 'BAD_VERSION' }, 4, 5),
    ]
    expect(checkOperations(znodeRegister, ok).result).toBe('ok')
    // Two CAS on version 0 both succeeding is a lost update.
    const both = [
      create(1, 'a', 0, 1),
      cas(1, 'b', 0, { ok: true, version: 1 }, 2, 10),
      cas(2, 'c', 0, { ok: true, version: 1 }, 3, 9),
    ]
    expect(checkOperations(znodeRegister, both).result).toBe('illegal')
  })

  it('partitions by key: one bad key fails, the others are checked independently', () => {
    const byKey = new Map<string, Op[]>([
      ['/a', [create(1, 'a', 0, 1), read(2, 'a', 0, 2, 3)]],
      ['/b', [create(1, 'x', 0, 1), write(1, 'y', 1, 2, 3), read(2, 'x', 0, 4, 5)]],
    ])
    const r = checkPartitioned(znodeRegister, byKey)
    expect(r.ok).toBe(false)
    expect(r.illegal.map((i) => i.key)).toEqual(['/b'])
  })

  it('says unknown rather than passing when the search is cut short', () => {
    const h: Op[] = [create(0, 'v', 0, 1)]
    for (let i = 0; i < 12; i++) h.push(write(i, `w${i}`, undefined, 2, 0))
    h.push(read(99, 'nope', 99, 3, 4))
    expect(checkOperations(znodeRegister, h, 1000).result).toBe('unknown')
  })

  it('accepts histories made from a real register with random overlaps, and refuses them with a stale read', () => {
    const arb = fc.array(
      fc.record({
        kind: fc.constantFrom('read', 'write', 'read'),
        clients: fc.integer({ min: 1, max: 4 }),
        stretch: fc.integer({ min: 0, max: 3 }),
      }),
      { minLength: 3, maxLength: 40 },
    )
    fc.assert(
      fc.property(arb, fc.integer({ min: 0, max: 1_000 }), (steps, pick) => {
        // Operations take effect at times 10, 20, 30…; each is invoked up to `stretch` slots
        // before and returns up to `stretch` slots after, so neighbours overlap.
        let value = 'v0'
        let version = 0
        const h: Op[] = [create(0, 'v0', 0, 5)]
        const reads: number[] = []
        steps.forEach((s, i) => {
          const t = 10 * (i + 1)
          const at = t - 1 - 3 * s.stretch
          const to = t + 1 + 3 * s.stretch
          if (s.kind === 'write') {
            value = `v${i + 1}`
            version++
            h.push(write(s.clients, value, version, Math.max(6, at), to))
          } else {
            reads.push(h.length)
            h.push(read(s.clients, value, version, Math.max(6, at), to))
          }
        })
        expect(checkOperations(znodeRegister, h).result).toBe('ok')
        // A read that returns a value from two writes back, after both completed, is stale.
        const staleAt = reads.find((ri) => {
          const r = h[ri]!
          const out = r.output as { version: number }
          return (
            out.version >= 2 &&
            h.slice(1, ri).filter((o) => o.input.f === 'write' && o.returnedAt < r.invokedAt).length >= 2
          )
        })
        if (staleAt === undefined) return
        const r = h[staleAt]!
        const out = r.output as { value: string; version: number }
        const bad = [...h]
        bad[staleAt] = { ...r, output: { ok: true, value: `v-stale${pick}`, version: out.version - 2 } }
        expect(checkOperations(znodeRegister, bad).result).toBe('illegal')
      }),
      { numRuns: 200 },
    )
  })
})
