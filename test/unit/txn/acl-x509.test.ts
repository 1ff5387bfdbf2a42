/**
 * The x509 ACL scheme (ZooKeeper's X509AuthenticationProvider): an id is a
 * certificate subject DN in RFC 2253 form, matched exactly; it is an
 * authenticated scheme, so an `auth` ACL expands to the caller's x509 id.
 */
import { describe, expect, it } from 'vitest'
import { checkAcl, fixupAcl, isValidAclId } from '../../../server/txn/acl.js'
import type { Acl } from '../../../shared/acl.js'
import { Perms } from '../../../shared/opcodes.js'

const a = { scheme: 'x509', id: 'CN=client-a,O=Conclave Test' }
const b = { scheme: 'x509', id: 'CN=client-b,O=Conclave Test' }
const ip = { scheme: 'ip', id: '127.0.0.1' }

describe('the x509 scheme', () => {
  it('takes a distinguished name as its id', () => {
    expect(isValidAclId(a)).toBe(true)
    expect(isValidAclId({ scheme: 'x509', id: 'CN=a\\, b,O=x' })).toBe(true)
    expect(isValidAclId({ scheme: 'x509', id: '' })).toBe(false)
    expect(isValidAclId({ scheme: 'x509', id: 'client-a' })).toBe(false)
    expect(isValidAclId({ scheme: 'x509', id: '=nobody' })).toBe(false)
  })

  it('matches the exact subject, and nothing else', () => {
    const acl: Acl[] = [{ perms: Perms.READ, id: a }]
    expect(checkAcl(acl, Perms.READ, [ip, a])).toBe(true)
    expect(checkAcl(acl, Perms.READ, [ip, b])).toBe(false)
    expect(checkAcl(acl, Perms.READ, [ip, { scheme: 'x509', id: 'CN=client-a' }])).toBe(false)
    expect(checkAcl(acl, Perms.READ, [ip, { scheme: 'digest', id: a.id }])).toBe(false)
    expect(checkAcl(acl, Perms.WRITE, [ip, a])).toBe(false)
  })

  it('is what an auth ACL expands to for a client authenticated by certificate', () => {
    const auth: Acl[] = [{ perms: Perms.ALL, id: { scheme: 'auth', id: '' } }]
    expect(fixupAcl(auth, [ip, a])).toEqual([{ perms: Perms.ALL, id: a }])
    expect(fixupAcl(auth, [ip])).toBeUndefined()
    expect(fixupAcl([{ perms: Perms.ALL, id: a }], [ip])).toEqual([{ perms: Perms.ALL, id: a }])
  })
})
