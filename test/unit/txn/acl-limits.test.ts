/**
 * ACL lists a client cannot make the leader pay for (issue 15): at most
 * `entriesMax` entries as sent and as `auth` expands them (INVALID_ACL past
 * either), and duplicates found in linear time — 18,000 entries took
 * seconds of CPU when every pair was compared.
 */
import { describe, expect, it } from 'vitest'
import { ACL_ENTRIES_MAX_DEFAULT, fixupAcl } from '../../../server/txn/acl.js'
import type { Acl, Id } from '../../../shared/acl.js'

const digest = (i: number): Acl => ({ perms: 31, id: { scheme: 'digest', id: `user${i}:hash${i}=` } })
const list = (n: number): Acl[] => Array.from({ length: n }, (_, i) => digest(i))

describe('fixupAcl limits', () => {
  it(`takes ${ACL_ENTRIES_MAX_DEFAULT} entries by default and refuses one more`, () => {
    expect(fixupAcl(list(ACL_ENTRIES_MAX_DEFAULT), [])).toHaveLength(ACL_ENTRIES_MAX_DEFAULT)
    expect(fixupAcl(list(ACL_ENTRIES_MAX_DEFAULT + 1), [])).toBeUndefined()
  })

  it('counts entries as sent, duplicates included, and as `auth` expands them', () => {
    const twice = [...list(3), ...list(3)]
    expect(fixupAcl(twice, [], 6)).toEqual(list(3))
    expect(fixupAcl(twice, [], 5)).toBeUndefined()
    const ids: Id[] = Array.from({ length: 4 }, (_, i) => ({ scheme: 'digest', id: `u${i}:h` }))
    const auth: Acl[] = [
      { perms: 1, id: { scheme: 'auth', id: '' } },
      { perms: 2, id: { scheme: 'auth', id: '' } },
    ]
    expect(fixupAcl(auth, ids, 8)).toHaveLength(8)
    expect(fixupAcl(auth, ids, 7)).toBeUndefined()
  })

  it('removes duplicates of a long list in linear time, keeping the first of each in order', () => {
    const n = 50_000
    const long = [...list(n), ...list(n).reverse()]
    const t0 = performance.now()
    const out = fixupAcl(long, [], 2 * n)
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(out).toEqual(list(n))
  })
})
