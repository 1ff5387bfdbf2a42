/**
 * Result mapping: Stat from the wire, multi results (success list, and the
 * ZkError of a failed multi with one entry per op), chroot stripping, event
 * type names.
 */
import { describe, expect, it } from 'vitest'
import { clientPath, eventTypeName, multiOutcome, toStat } from '../../../client/results.js'
import { ZkError } from '../../../shared/errors.js'
import { EventType, OpCode } from '../../../shared/opcodes.js'
import type { MultiResult, MultiWriteOp } from '../../../shared/records.js'
import { statFromWire, type WireStat } from '../../../shared/stat.js'

const wire: WireStat = {
  czxid: 2 ** 32 + 5,
  mzxid: 2 ** 32 + 9,
  ctime: 1_700_000_000_000,
  mtime: 1_700_000_000_500,
  version: 3,
  cversion: 4,
  aversion: 1,
  ephemeralOwner: 0n,
  dataLength: 10,
  numChildren: 2,
  pzxid: 2 ** 32 + 7,
}

describe('toStat', () => {
  it('equals shared statFromWire, with the owner as 0x-hex', () => {
    expect(toStat(wire)).toEqual(statFromWire(wire))
    expect(toStat(wire).ephemeralOwner).toBe('0x0')
    expect(toStat({ ...wire, ephemeralOwner: 0x1a2bn }).ephemeralOwner).toBe('0x1a2b')
    expect(toStat({ ...wire, ephemeralOwner: -1n }).ephemeralOwner).toBe('0xffffffffffffffff')
  })
})

describe('multiOutcome', () => {
  const ops: MultiWriteOp[] = [
    { op: OpCode.create, path: '/app/a', data: new Uint8Array(), acl: [], flags: 0, ttl: 0 },
    { op: OpCode.setData, path: '/app/b', data: new Uint8Array(), version: -1 },
    { op: OpCode.delete, path: '/app/c', version: -1 },
    { op: OpCode.check, path: '/app/d', version: 1 },
  ]

  it('maps every success result, stripping the chroot', () => {
    const results: MultiResult[] = [
      { type: OpCode.create, path: '/app/a' },
      { type: OpCode.setData, stat: wire },
      { type: OpCode.delete },
      { type: OpCode.check },
    ]
    expect(multiOutcome(results, ops, '/app')).toEqual([
      { op: 'create', path: '/a' },
      { op: 'setData', stat: statFromWire(wire) },
      { op: 'delete' },
      { op: 'check' },
    ])
    const ttl: MultiResult[] = [{ type: OpCode.createTTL, path: '/x', stat: wire }]
    expect(multiOutcome(ttl, ops, undefined)).toEqual([{ op: 'create', path: '/x' }])
  })

  it('turns a failure into a ZkError with one entry per op', () => {
    const results: MultiResult[] = [
      { type: OpCode.error, err: 0 },
      { type: OpCode.error, err: 0 },
      { type: OpCode.error, err: -101 },
      { type: OpCode.error, err: -2 },
    ]
    const err = multiOutcome(results, ops, '/app') as ZkError
    expect(err).toBeInstanceOf(ZkError)
    expect(err.code).toBe('NO_NODE')
    expect(err.path).toBe('/c')
    expect(err.results).toEqual([
      { op: 'error', code: 'OK' },
      { op: 'error', code: 'OK' },
      { op: 'error', code: 'NO_NODE' },
      { op: 'error', code: 'RUNTIME_INCONSISTENCY' },
    ])
  })

  it('maps an unknown error number to SYSTEM_ERROR', () => {
    const err = multiOutcome([{ type: OpCode.error, err: -9999 }], ops, undefined) as ZkError
    expect(err.code).toBe('SYSTEM_ERROR')
  })
})

describe('paths and events', () => {
  it('strips the chroot, leaving foreign paths alone', () => {
    expect(clientPath('/app', '/app')).toBe('/')
    expect(clientPath('/app', '/app/x')).toBe('/x')
    expect(clientPath('/app', '/apple')).toBe('/apple')
    expect(clientPath(undefined, '/x')).toBe('/x')
  })

  it('names the four node events and nothing else', () => {
    expect(eventTypeName(EventType.nodeCreated)).toBe('created')
    expect(eventTypeName(EventType.nodeDeleted)).toBe('deleted')
    expect(eventTypeName(EventType.nodeDataChanged)).toBe('dataChanged')
    expect(eventTypeName(EventType.nodeChildrenChanged)).toBe('childrenChanged')
    expect(eventTypeName(EventType.none)).toBeUndefined()
    expect(eventTypeName(EventType.persistentWatchRemoved)).toBeUndefined()
  })
})
