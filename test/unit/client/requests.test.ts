/**
 * Client-side validation and request building, without a server: paths,
 * the 1 MiB data limit, versions, create modes and their opcodes, TTL rules,
 * ACL shape, multi ops, chroot.
 */
import { describe, expect, it } from 'vitest'
import {
  buildCreate,
  buildMulti,
  checkAcl,
  checkDeletePath,
  checkVersion,
  DATA_BYTES_MAX,
  normalizeChroot,
  toData,
} from '../../../client/requests.js'
import type { MultiOp } from '../../../client/types.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import { ZkError } from '../../../shared/errors.js'
import { OpCode } from '../../../shared/opcodes.js'

function codeOf(fn: () => unknown): string {
  try {
    fn()
    return 'ok'
  } catch (err) {
    if (!ZkError.is(err)) throw err
    return err.code
  }
}

describe('buildCreate', () => {
  it('maps modes to opcodes and flags', () => {
    const cases = [
      ['persistent', OpCode.create, 0],
      ['ephemeral', OpCode.create, 1],
      ['persistentSequential', OpCode.create, 2],
      ['ephemeralSequential', OpCode.create, 3],
      ['container', OpCode.createContainer, 4],
    ] as const
    for (const [mode, op, flags] of cases)
      expect(buildCreate('/a', 'x', { mode }, undefined)).toMatchObject({ op, flags })
    expect(buildCreate('/a', 'x', { mode: 'persistentWithTtl', ttlMs: 5 }, undefined)).toMatchObject({
      op: OpCode.createTTL,
      flags: 5,
      ttl: 5,
    })
    expect(buildCreate('/a', 'x', { mode: 'persistentSequentialWithTtl', ttlMs: 5 }, undefined).flags).toBe(6)
  })

  it('defaults to persistent, empty data, world:anyone ALL; applies the chroot', () => {
    const req = buildCreate('/a', undefined, undefined, '/app')
    expect(req).toEqual({
      op: OpCode.create,
      path: '/app/a',
      data: new Uint8Array(),
      acl: [...OPEN_ACL_UNSAFE],
      flags: 0,
      ttl: 0,
    })
    expect(buildCreate('/', 'x', undefined, '/app').path).toBe('/app')
    expect(new TextDecoder().decode(buildCreate('/a', 'héllo', undefined, undefined).data)).toBe('héllo')
  })

  it('allows a trailing slash only for sequential modes', () => {
    expect(codeOf(() => buildCreate('/q/', '', undefined, undefined))).toBe('BAD_ARGUMENTS')
    expect(buildCreate('/q/', '', { mode: 'persistentSequential' }, undefined).path).toBe('/q/')
    expect(buildCreate('/q/', '', { mode: 'ephemeralSequential' }, undefined).path).toBe('/q/')
  })

  it('enforces the TTL rules', () => {
    expect(codeOf(() => buildCreate('/a', '', { mode: 'persistentWithTtl' }, undefined))).toBe(
      'BAD_ARGUMENTS',
    )
    for (const ttlMs of [0, -1, 1.5, 2 ** 40, Number.NaN])
      expect(codeOf(() => buildCreate('/a', '', { mode: 'persistentWithTtl', ttlMs }, undefined))).toBe(
        'BAD_ARGUMENTS',
      )
    for (const mode of ['persistent', 'ephemeral', 'container', 'persistentSequential'] as const)
      expect(codeOf(() => buildCreate('/a', '', { mode, ttlMs: 10 }, undefined))).toBe('BAD_ARGUMENTS')
    expect(
      codeOf(() => buildCreate('/a', '', { mode: 'persistentWithTtl', ttlMs: 2 ** 40 - 1 }, undefined)),
    ).toBe('ok')
  })

  it('refuses unknown modes and malformed ACLs', () => {
    expect(codeOf(() => buildCreate('/a', '', { mode: 'toString' as never }, undefined))).toBe(
      'BAD_ARGUMENTS',
    )
    expect(codeOf(() => buildCreate('/a', '', { mode: 'nope' as never }, undefined))).toBe('BAD_ARGUMENTS')
    expect(codeOf(() => checkAcl([{ perms: 1.5, id: { scheme: 'world', id: 'anyone' } }], '/a'))).toBe(
      'BAD_ARGUMENTS',
    )
    expect(codeOf(() => checkAcl([{ perms: 1 } as never], '/a'))).toBe('BAD_ARGUMENTS')
    expect(codeOf(() => checkAcl('x' as never, '/a'))).toBe('BAD_ARGUMENTS')
    expect(codeOf(() => checkAcl([], '/a'))).toBe('ok')
  })
})

describe('data, versions, paths', () => {
  it('accepts exactly 1 MiB and refuses one byte more', () => {
    expect(DATA_BYTES_MAX).toBe(1_048_576)
    expect(toData(new Uint8Array(DATA_BYTES_MAX), '/a').length).toBe(DATA_BYTES_MAX)
    expect(codeOf(() => toData(new Uint8Array(DATA_BYTES_MAX + 1), '/a'))).toBe('BAD_ARGUMENTS')
    expect(codeOf(() => toData('x'.repeat(DATA_BYTES_MAX + 1), '/a'))).toBe('BAD_ARGUMENTS')
    expect(codeOf(() => toData(42 as never, '/a'))).toBe('BAD_ARGUMENTS')
  })

  it('checks versions', () => {
    expect(checkVersion(-1, '/a')).toBe(-1)
    expect(checkVersion(2 ** 31 - 1, '/a')).toBe(2 ** 31 - 1)
    for (const v of [-2, 1.5, 2 ** 31, Number.NaN])
      expect(codeOf(() => checkVersion(v, '/a'))).toBe('BAD_ARGUMENTS')
  })

  it('refuses to delete the root', () => {
    expect(codeOf(() => checkDeletePath('/'))).toBe('BAD_ARGUMENTS')
    expect(codeOf(() => checkDeletePath('/a'))).toBe('ok')
  })

  it('normalizes chroots', () => {
    expect(normalizeChroot(undefined)).toBeUndefined()
    expect(normalizeChroot('/')).toBeUndefined()
    expect(normalizeChroot('/app/x')).toBe('/app/x')
    expect(codeOf(() => normalizeChroot('app'))).toBe('BAD_ARGUMENTS')
    expect(codeOf(() => normalizeChroot('/app/'))).toBe('BAD_ARGUMENTS')
  })
})

describe('buildMulti', () => {
  it('builds every op with the chroot applied', () => {
    const req = buildMulti(
      [
        { op: 'create', path: '/a', data: 'x', mode: 'ephemeral' },
        { op: 'delete', path: '/b' },
        { op: 'setData', path: '/c', data: 'y', version: 2 },
        { op: 'check', path: '/d', version: 0 },
      ],
      '/app',
    )
    expect(req.ops.map((o) => [o.op, o.path])).toEqual([
      [OpCode.create, '/app/a'],
      [OpCode.delete, '/app/b'],
      [OpCode.setData, '/app/c'],
      [OpCode.check, '/app/d'],
    ])
    expect(req.ops[1]).toMatchObject({ version: -1 })
  })

  it.each<[string, unknown]>([
    ['an unknown op', [{ op: 'rename', path: '/a' }]],
    ['a check without version', [{ op: 'check', path: '/a' }]],
    ['a bad path', [{ op: 'delete', path: '/a/' }]],
    ['deleting the root', [{ op: 'delete', path: '/' }]],
    ['a bad version', [{ op: 'setData', path: '/a', data: '', version: -5 }]],
    ['too much data', [{ op: 'setData', path: '/a', data: new Uint8Array(DATA_BYTES_MAX + 1) }]],
    ['a TTL mode without ttlMs', [{ op: 'create', path: '/a', mode: 'persistentWithTtl' }]],
    ['a non-object op', [null]],
    ['a non-array', 'x'],
  ])('refuses %s', (_what, ops) => {
    expect(codeOf(() => buildMulti(ops as MultiOp[], undefined))).toBe('BAD_ARGUMENTS')
  })
})
