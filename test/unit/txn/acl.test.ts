/**
 * ACL rules: checkAcl per scheme (world, digest, ip and CIDR, super) and
 * fixupAcl validation and `auth` expansion, then the same rules as prep
 * applies them (NO_AUTH per operation, INVALID_ACL).
 */
import { describe, expect, it } from 'vitest'
import { checkAcl, fixupAcl, ipMatches, isValidAclId } from '../../../server/txn/acl.js'
import { type Acl, CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE } from '../../../shared/acl.js'
import { Perms } from '../../../shared/opcodes.js'
import { generateDigest } from '../../helpers/sha1.js'
import { enc, errorCode, Leader } from '../state/harness.js'

const alice = { scheme: 'digest', id: generateDigest('alice:pw') }
const bob = { scheme: 'digest', id: generateDigest('bob:pw') }
const local = { scheme: 'ip', id: '10.1.2.3' }

describe('checkAcl', () => {
  it('world:anyone grants its perms to everyone, and only those', () => {
    expect(checkAcl(READ_ACL_UNSAFE, Perms.READ, [])).toBe(true)
    expect(checkAcl(READ_ACL_UNSAFE, Perms.WRITE, [])).toBe(false)
  })

  it('digest matches the exact id', () => {
    const acl: Acl[] = [{ perms: Perms.ALL, id: alice }]
    expect(checkAcl(acl, Perms.DELETE, [local, alice])).toBe(true)
    expect(checkAcl(acl, Perms.DELETE, [local, bob])).toBe(false)
  })

  it('ip matches an address or a CIDR block (IPv4-mapped IPv6 too)', () => {
    expect(ipMatches('10.1.2.3', '10.1.2.3')).toBe(true)
    expect(ipMatches('10.1.2.4', '10.1.2.3')).toBe(false)
    expect(ipMatches('10.1.200.9', '10.1.0.0/16')).toBe(true)
    expect(ipMatches('10.2.0.1', '10.1.0.0/16')).toBe(false)
    expect(ipMatches('::ffff:10.1.2.3', '10.1.2.0/24')).toBe(true)
    expect(ipMatches('1.2.3.4', '0.0.0.0/0')).toBe(true)
    expect(ipMatches('::1', '10.1.2.3')).toBe(false)
    expect(
      checkAcl([{ perms: Perms.READ, id: { scheme: 'ip', id: '10.1.0.0/16' } }], Perms.READ, [local]),
    ).toBe(true)
  })

  it('super (scheme or configured digest) bypasses; an empty list grants everything', () => {
    const acl: Acl[] = [{ perms: Perms.READ, id: alice }]
    expect(checkAcl(acl, Perms.ADMIN, [{ scheme: 'super', id: '' }])).toBe(true)
    expect(checkAcl(acl, Perms.ADMIN, [bob], bob.id)).toBe(true)
    expect(checkAcl(acl, Perms.ADMIN, [bob], alice.id)).toBe(false)
    expect(checkAcl([], Perms.ADMIN, [])).toBe(true)
  })
})

describe('fixupAcl', () => {
  it('rejects empty lists, unknown schemes, malformed ids and bad perms', () => {
    expect(fixupAcl([], [])).toBeUndefined()
    expect(fixupAcl([{ perms: 31, id: { scheme: 'foo', id: 'x' } }], [])).toBeUndefined()
    expect(fixupAcl([{ perms: 31, id: { scheme: 'world', id: 'someone' } }], [])).toBeUndefined()
    expect(fixupAcl([{ perms: 32, id: { scheme: 'world', id: 'anyone' } }], [])).toBeUndefined()
    for (const id of ['user', 'user:', ':hash', 'a:b:c'])
      expect(isValidAclId({ scheme: 'digest', id })).toBe(false)
    for (const id of ['1.2.3', '1.2.3.256', '1.2.3.4/33', 'a.b.c.d', '::1'])
      expect(isValidAclId({ scheme: 'ip', id })).toBe(false)
    expect(isValidAclId({ scheme: 'ip', id: '10.0.0.0/8' })).toBe(true)
  })

  it('expands auth to the authenticated (digest) ids and removes duplicates', () => {
    expect(fixupAcl(CREATOR_ALL_ACL, [local])).toBeUndefined()
    expect(fixupAcl(CREATOR_ALL_ACL, [local, alice, bob])).toEqual([
      { perms: Perms.ALL, id: alice },
      { perms: Perms.ALL, id: bob },
    ])
    expect(fixupAcl([...OPEN_ACL_UNSAFE, ...OPEN_ACL_UNSAFE], [])).toEqual(OPEN_ACL_UNSAFE)
  })
})

describe('ACLs in prep', () => {
  it('needs CREATE on the parent, DELETE on the parent, WRITE, ADMIN and READ (check) on the node', () => {
    const l = new Leader()
    const own: Acl[] = [{ perms: Perms.ALL, id: alice }]
    l.create('/p', '', 'persistent', { acl: own, authIds: [alice] })
    l.create('/p/c', '', 'persistent', { acl: own, authIds: [alice] })
    const as = (authIds: { scheme: string; id: string }[]) => ({ authIds })
    expect(errorCode(l.create('/p/x', '', 'persistent', as([bob])))).toBe('NO_AUTH')
    expect(errorCode(l.run({ type: 'delete', path: '/p/c', version: -1 }, as([bob])))).toBe('NO_AUTH')
    // ZooKeeper's order: the parent's DELETE is checked before whether the child exists.
    expect(errorCode(l.run({ type: 'delete', path: '/p/missing', version: -1 }, as([bob])))).toBe('NO_AUTH')
    expect(errorCode(l.run({ type: 'setData', path: '/p/c', data: enc('x'), version: -1 }, as([bob])))).toBe(
      'NO_AUTH',
    )
    expect(
      errorCode(l.run({ type: 'setACL', path: '/p/c', acl: OPEN_ACL_UNSAFE, version: -1 }, as([bob]))),
    ).toBe('NO_AUTH')
    const check = l.run({ type: 'multi', ops: [{ type: 'check', path: '/p/c', version: -1 }] }, as([bob]))
    expect(check.result).toEqual({ type: 'error', code: 'NO_AUTH', results: ['NO_AUTH'] })
    expect(
      errorCode(
        l.run({ type: 'delete', path: '/p/c', version: -1 }, { authIds: [bob], superDigest: bob.id }),
      ),
    ).toBe(undefined)
  })

  it('matches ip ids by CIDR block', () => {
    const l = new Leader()
    l.create('/net', '', 'persistent', {
      acl: [{ perms: Perms.ALL, id: { scheme: 'ip', id: '10.0.0.0/8' } }],
    })
    const set = (ip: string) =>
      errorCode(
        l.run(
          { type: 'setData', path: '/net', data: enc(''), version: -1 },
          { authIds: [{ scheme: 'ip', id: ip }] },
        ),
      )
    expect(set('10.200.0.1')).toBeUndefined()
    expect(set('11.0.0.1')).toBe('NO_AUTH')
  })

  it('stores auth expanded, and answers INVALID_ACL when the creator has no authenticated id', () => {
    const l = new Leader()
    expect(errorCode(l.create('/a', '', 'persistent', { acl: CREATOR_ALL_ACL, authIds: [local] }))).toBe(
      'INVALID_ACL',
    )
    l.create('/a', '', 'persistent', { acl: CREATOR_ALL_ACL, authIds: [local, alice] })
    expect(l.tree.getAcl('/a')!.acl).toEqual([{ perms: Perms.ALL, id: alice }])
    expect(errorCode(l.run({ type: 'setACL', path: '/a', acl: [], version: -1 }, { authIds: [alice] }))).toBe(
      'INVALID_ACL',
    )
    const worldBob: Acl[] = [{ perms: Perms.ALL, id: { scheme: 'world', id: 'bob' } }]
    expect(errorCode(l.create('/b', '', 'persistent', { acl: worldBob }))).toBe('INVALID_ACL')
    expect(errorCode(l.create('/b', '', 'persistent', { acl: [] }))).toBe('INVALID_ACL')
  })
})
