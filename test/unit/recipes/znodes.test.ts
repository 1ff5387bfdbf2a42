/**
 * Unit tests of the recipes' pure helpers: sequence-number sorting (with
 * protected and mixed prefixes), Curator's protected names, session-id
 * comparison, priority keys that sort like their priorities, path checks.
 * Property tests use fast-check against simple reference models.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { mutexPredicate } from '../../../recipes/lock-core.js'
import { priorityKey } from '../../../recipes/priority-queue.js'
import {
  checkNodeName,
  isProtected,
  joinPath,
  newGuid,
  protectedName,
  sameSession,
  sequenceOf,
  sortBySequence,
  stripProtected,
} from '../../../recipes/znodes.js'

const seq = (n: number): string => String(n).padStart(10, '0')

describe('sequenceOf', () => {
  it("reads the 10-digit suffix after a '-' as positive (regression: 'lock-0000000001' was -1)", () => {
    expect(sequenceOf('lock-0000000001')).toBe(1)
    expect(sequenceOf(`_c_${newGuid()}-lock-0000000042`)).toBe(42)
    expect(sequenceOf('qn-2147483647')).toBe(2147483647)
    expect(sequenceOf('ready')).toBeNaN()
  })
})

describe('sortBySequence', () => {
  it('orders by sequence number whatever the prefix, and drops names without one', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { maxLength: 30 }),
        fc.array(fc.constantFrom('lock-', '__READ__', '__WRIT__', 'latch-'), {
          minLength: 30,
          maxLength: 30,
        }),
        fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        (numbers, prefixes, protect) => {
          const names = numbers.map((n, i) => {
            const plain = `${prefixes[i]}${seq(n)}`
            return protect[i] ? `_c_${newGuid()}-${plain}` : plain
          })
          const out = sortBySequence([...names, 'ready', 'locks'])
          expect(out.map(sequenceOf)).toEqual([...numbers].sort((a, b) => a - b))
        },
      ),
    )
  })
})

describe('protected names', () => {
  it('round-trip: stripProtected(protectedName(guid, p) + seq) === p + seq', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.stringMatching(/^[a-z_]{0,10}-?$/), fc.nat(), (guid, prefix, n) => {
        const name = `${protectedName(guid, prefix)}${seq(n)}`
        expect(isProtected(name)).toBe(true)
        expect(stripProtected(name)).toBe(`${prefix}${seq(n)}`)
      }),
    )
    expect(isProtected('lock-0000000001')).toBe(false)
    expect(stripProtected('lock-0000000001')).toBe('lock-0000000001')
  })
})

describe('sameSession', () => {
  it('compares session ids as 64-bit numbers', () => {
    expect(sameSession('0x100000a', '0x100000A')).toBe(true)
    expect(sameSession('0xffffffffffffffff', '-1')).toBe(true)
    expect(sameSession('0x1', '0x2')).toBe(false)
    expect(sameSession('0x0', 'garbage')).toBe(false)
  })
})

describe('priorityKey', () => {
  it('sorts like the priorities it encodes', () => {
    const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
    fc.assert(
      fc.property(int32, int32, (a, b) => {
        const ka = priorityKey(a)
        const kb = priorityKey(b)
        expect(Math.sign(a - b)).toBe(ka < kb ? -1 : ka > kb ? 1 : 0)
      }),
    )
    expect(() => priorityKey(2 ** 31)).toThrow(/BAD_ARGUMENTS/)
    expect(() => priorityKey(0.5)).toThrow(/BAD_ARGUMENTS/)
  })
})

describe('paths and predicates', () => {
  it('joins paths and checks node names', () => {
    expect(joinPath('/', 'a')).toBe('/a')
    expect(joinPath('/a', 'b')).toBe('/a/b')
    expect(checkNodeName('member-1', 'id')).toBe('member-1')
    for (const bad of ['', 'a/b', '.', '..', 'x\u0000'])
      expect(() => checkNodeName(bad, 'id')).toThrow(/BAD_ARGUMENTS/)
  })

  it('mutex: the first holds, every other watches exactly its predecessor', () => {
    const sorted = ['a', 'b', 'c', 'd']
    expect(mutexPredicate(sorted, 0)).toEqual({ acquired: true })
    for (let i = 1; i < sorted.length; i++)
      expect(mutexPredicate(sorted, i)).toEqual({ acquired: false, watch: sorted[i - 1] })
  })
})
