/**
 * ACL text: zkCli's `scheme:id:perms` list in, zkCli's getAcl form out.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  aclToText,
  formatAclList,
  parseAclText,
  parsePerms,
  permString,
} from '../../../client/shell/shell-acl.js'
import { Perms } from '../../../shared/opcodes.js'

describe('ACL text', () => {
  it('parses world, digest (ids with colons) and auth entries', () => {
    expect(parseAclText('world:anyone:cdrwa,digest:user:smGaoVKd/cQkjm7b88GyorAUz20=:r,auth::cd')).toEqual([
      { id: { scheme: 'world', id: 'anyone' }, perms: Perms.ALL },
      { id: { scheme: 'digest', id: 'user:smGaoVKd/cQkjm7b88GyorAUz20=' }, perms: Perms.READ },
      { id: { scheme: 'auth', id: '' }, perms: Perms.CREATE | Perms.DELETE },
    ])
  })

  it('accepts perms in any order and case', () => {
    expect(parsePerms('awrdc')).toBe(Perms.ALL)
    expect(parsePerms('RW')).toBe(Perms.READ | Perms.WRITE)
    expect(parsePerms('')).toBe(0)
  })

  it('rejects unknown perms, empty entries and missing parts', () => {
    expect(() => parseAclText('world:anyone:rx')).toThrow(/invalid permission 'x'/)
    expect(() => parseAclText('world:anyone:r,')).toThrow(/empty entry/)
    expect(() => parseAclText('world:anyone')).toThrow(/scheme:id:perms/)
    expect(() => parseAclText(':anyone:r')).toThrow(/scheme is empty/)
  })

  it("prints perms in zkCli's order", () => {
    expect(permString(Perms.ALL)).toBe('cdrwa')
    expect(permString(Perms.READ | Perms.ADMIN)).toBe('ra')
    expect(permString(0)).toBe('')
  })

  it("prints getAcl's two-line form", () => {
    expect(formatAclList(parseAclText('world:anyone:cdrwa,ip:10.0.0.1:r'))).toBe(
      "'world,'anyone\n: cdrwa\n'ip,'10.0.0.1\n: r\n",
    )
  })

  it('round-trips text form', () => {
    const entry = fc.record({
      id: fc.record({
        scheme: fc.stringMatching(/^[a-z]{1,8}$/),
        id: fc.stringMatching(/^[a-zA-Z0-9:=/.]{0,12}$/),
      }),
      perms: fc.integer({ min: 0, max: Perms.ALL }),
    })
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 4 }), (acl) => {
        expect(parseAclText(aclToText(acl))).toEqual(acl)
      }),
    )
  })
})
