/**
 * Txn codec: round trip of every Txn shape (property) and clean
 * TxnDecodeError on garbage, truncation and corruption (never another error
 * type); null data in the log. (The log of a random workload — decoded,
 * re-encoded to the same bytes and applied to a second tree — is checked at
 * every step in test/unit/tree/digest-snapshot.test.ts.)
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DataTree } from '../../../server/tree/data-tree.js'
import { decodeTxn, encodeTxn, TxnDecodeError } from '../../../server/txn/codec.js'
import type { SubTxn, Txn, TxnBody } from '../../../server/txn/txn.js'
import type { Acl } from '../../../shared/acl.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import { ErrorCode } from '../../../shared/errors.js'
import { CreateFlag, type CreateMode } from '../../../shared/opcodes.js'
import { Leader } from '../state/harness.js'

const str = fc.string({ maxLength: 20, unit: 'binary' })
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
const safe = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
const acl: fc.Arbitrary<Acl[]> = fc.array(
  fc.record({ perms: int32, id: fc.record({ scheme: str, id: str }) }),
  { maxLength: 3 },
)
const codes = Object.values(ErrorCode)

const sub: fc.Arbitrary<SubTxn> = fc.oneof(
  fc.record({
    type: fc.constant('create' as const),
    path: str,
    data: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null, freq: 5 }),
    acl,
    mode: fc.constantFrom(...(Object.keys(CreateFlag) as CreateMode[])),
    ttlMs: fc.integer({ min: 0, max: 2 ** 40 }),
    parentCversion: int32,
  }),
  fc.record({ type: fc.constant('delete' as const), path: str }),
  fc.record({
    type: fc.constant('setData' as const),
    path: str,
    data: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null, freq: 5 }),
    version: int32,
  }),
  fc.record({ type: fc.constant('check' as const), path: str, version: int32 }),
)

const body: fc.Arbitrary<TxnBody> = fc.oneof(
  sub,
  fc.record({ type: fc.constant('setACL' as const), path: str, acl, aversion: int32 }),
  fc.record({ type: fc.constant('multi' as const), ops: fc.array(sub, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('createSession' as const), timeoutMs: fc.integer({ min: 1, max: 2 ** 40 }) }),
  fc.record({ type: fc.constant('closeSession' as const), paths: fc.array(str, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('deleteContainer' as const), path: str }),
  fc.record({ type: fc.constant('error' as const), code: fc.constantFrom(...codes) }),
  fc.record({
    type: fc.constant('error' as const),
    code: fc.constantFrom(...codes),
    results: fc.array(fc.constantFrom(...codes), { maxLength: 4 }),
  }),
)

const txn: fc.Arbitrary<Txn> = fc
  .record({
    sessionId: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    cxid: int32,
    zxid: safe,
    timeMs: safe,
    body,
  })
  .map(({ body, ...hdr }) => ({ ...hdr, ...body }))

describe('Txn codec', () => {
  it('round-trips every Txn shape', () => {
    fc.assert(
      fc.property(txn, (t) => {
        expect(decodeTxn(encodeTxn(t))).toEqual(t)
      }),
      { numRuns: 2000 },
    )
  })

  it('throws TxnDecodeError, and only that, on garbage and corruption', () => {
    expect(() => decodeTxn(new Uint8Array(0))).toThrow(TxnDecodeError)
    expect(() => decodeTxn(Uint8Array.of(0, 0, 0, 3, 0, 0, 0, 1))).toThrow(/format/)
    const good = encodeTxn({ sessionId: 1n, cxid: 1, zxid: 5, timeMs: 9, type: 'delete', path: '/a' })
    expect(() => decodeTxn(Uint8Array.of(...good, 0))).toThrow(/trailing/)
    for (let n = 0; n < good.length; n++) expect(() => decodeTxn(good.subarray(0, n))).toThrow(TxnDecodeError)
    fc.assert(
      fc.property(
        txn,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.uint8Array({ maxLength: 8 }),
        (t, at, x, patch) => {
          const bytes = encodeTxn(t)
          // One byte flipped; or cut anywhere and followed by a few random bytes.
          const cut = Uint8Array.from([...bytes.subarray(0, at % bytes.length), ...patch])
          bytes[at % bytes.length]! ^= x
          for (const input of [bytes, cut]) {
            try {
              decodeTxn(input)
            } catch (e) {
              expect(e).toBeInstanceOf(TxnDecodeError)
            }
          }
        },
      ),
      { numRuns: 2000 },
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeTxn(bytes)
        } catch (e) {
          expect(e).toBeInstanceOf(TxnDecodeError)
        }
      }),
      { numRuns: 2000 },
    )
  })
})

const EMPTY = new Uint8Array(0)

function createWith(l: Leader, path: string, data: Uint8Array | null) {
  return l.run({ type: 'create', path, data, acl: OPEN_ACL_UNSAFE, mode: 'persistent' })
}

describe('null data in the Txn log', () => {
  it('encodes null as length -1 and empty as 0, and decodes each as itself', () => {
    const hdr = { sessionId: 1n, cxid: 2, zxid: 3, timeMs: 4 }
    const createOp = (data: Uint8Array | null): SubTxn => ({
      type: 'create',
      path: '/a',
      data,
      acl: [...OPEN_ACL_UNSAFE],
      mode: 'persistent',
      ttlMs: 0,
      parentCversion: 1,
    })
    const create = (data: Uint8Array | null): Txn => ({ ...hdr, ...createOp(data) })
    const nul = encodeTxn(create(null))
    const empty = encodeTxn(create(EMPTY))
    // FORMAT_VERSION, type, header (8+4+8+8), path '/a' (4+2), then the data length.
    const at = 4 + 4 + 28 + 6
    expect([...nul.subarray(at, at + 4)]).toEqual([0xff, 0xff, 0xff, 0xff])
    expect([...empty.subarray(at, at + 4)]).toEqual([0, 0, 0, 0])
    expect(decodeTxn(nul)).toEqual(create(null))
    expect(decodeTxn(empty)).toEqual(create(EMPTY))
    const set: Txn = { ...hdr, type: 'setData', path: '/a', data: null, version: 3 }
    expect(decodeTxn(encodeTxn(set))).toEqual(set)
    const multi: Txn = {
      ...hdr,
      type: 'multi',
      ops: [createOp(null), { type: 'setData', path: '/a', data: null, version: 1 }],
    }
    expect(decodeTxn(encodeTxn(multi))).toEqual(multi)
  })

  it('replaying a log with null data rebuilds the same tree', () => {
    const l = new Leader()
    createWith(l, '/n', null)
    createWith(l, '/e', EMPTY)
    l.run({
      type: 'multi',
      ops: [
        { type: 'create', path: '/m', data: null, acl: OPEN_ACL_UNSAFE, mode: 'persistent' },
        { type: 'setData', path: '/e', data: null, version: -1 },
      ],
    })
    const copy = new DataTree()
    for (const p of l.log) copy.apply(decodeTxn(p.bytes))
    expect(copy.getData('/n')!.data).toBeNull()
    expect(copy.getData('/m')!.data).toBeNull()
    expect(copy.getData('/e')!.data).toBeNull()
    expect(copy.digest()).toBe(l.tree.digest())
  })
})
