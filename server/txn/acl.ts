/**
 * ACL rules, as ZooKeeper's ZooKeeperServer.checkACL and
 * PrepRequestProcessor.fixupACL apply them. Schemes: world (only
 * `world:anyone`), auth (expanded at create/setACL time to the caller's
 * authenticated ids), digest (`user:base64(sha1(user:password))`, matched
 * exactly), ip (an IPv4 address, or address/bits), x509 (a TLS client
 * certificate's subject DN in RFC 2253 form, matched exactly; ZooKeeper's
 * X509AuthenticationProvider). A connection holding the
 * super id (scheme `super`, or the operator's super digest) passes every
 * check.
 *
 * Invariants: pure functions of their arguments; an empty ACL list on a
 * znode grants everything (ZooKeeper's rule); fixupAcl never returns an
 * empty list or one containing `auth`.
 * Must not import anything but shared/ and server/txn/.
 */
import type { Acl, Id } from '../../shared/acl.js'
import { Perms } from '../../shared/opcodes.js'

/** Schemes whose ids an `auth` ACL expands to (ZooKeeper: providers with isAuthenticated()). */
const AUTHENTICATED_SCHEMES: ReadonlySet<string> = new Set(['digest', 'x509'])

/** Parses dotted-quad IPv4 into a 32-bit unsigned number; undefined if it is not one. */
export function parseIpv4(text: string): number | undefined {
  const v4 = text.startsWith('::ffff:') ? text.slice(7) : text
  const parts = v4.split('.')
  if (parts.length !== 4) return undefined
  let n = 0
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined
    const b = Number(p)
    if (b > 255) return undefined
    n = n * 256 + b
  }
  return n
}

/** An ip ACL id: `a.b.c.d` or `a.b.c.d/bits` (0..32). */
function parseIpAcl(expr: string): { addr: number; bits: number } | undefined {
  const slash = expr.indexOf('/')
  const addr = parseIpv4(slash < 0 ? expr : expr.slice(0, slash))
  if (addr === undefined) return undefined
  if (slash < 0) return { addr, bits: 32 }
  const bitsText = expr.slice(slash + 1)
  if (!/^[0-9]{1,2}$/.test(bitsText)) return undefined
  const bits = Number(bitsText)
  return bits <= 32 ? { addr, bits } : undefined
}

/** Whether a client address matches an ip ACL id (IPAuthenticationProvider.matches). */
export function ipMatches(clientIp: string, aclExpr: string): boolean {
  const acl = parseIpAcl(aclExpr)
  const client = parseIpv4(clientIp)
  if (acl === undefined || client === undefined) return false
  if (acl.bits === 0) return true
  const shift = 32 - acl.bits
  // Compare the top `bits` bits; division keeps it exact for bits = 32 (no 32-bit shift wrap).
  return Math.floor(client / 2 ** shift) === Math.floor(acl.addr / 2 ** shift)
}

/** Whether an ACL id is well formed for its scheme (ServerAuthenticationProvider.isValid). */
export function isValidAclId(id: Id): boolean {
  switch (id.scheme) {
    case 'world':
      return id.id === 'anyone'
    case 'digest': {
      // `user:hash`: exactly one ':' with something on both sides.
      const parts = id.id.split(':')
      return parts.length === 2 && parts[0]!.length > 0 && parts[1]!.length > 0
    }
    case 'ip':
      return parseIpAcl(id.id) !== undefined
    case 'x509':
      // A distinguished name: at least one `type=value` (X500Principal parses it in ZooKeeper).
      return /^[^=,+]+=/.test(id.id)
    default:
      return false
  }
}

/** Whether the caller is the super user: scheme `super`, or a digest id equal to the super digest. */
export function isSuper(authIds: readonly Id[], superDigest?: string): boolean {
  for (const a of authIds) {
    if (a.scheme === 'super') return true
    if (superDigest !== undefined && a.scheme === 'digest' && a.id === superDigest) return true
  }
  return false
}

function idMatches(authId: Id, aclId: Id): boolean {
  if (authId.scheme !== aclId.scheme) return false
  if (aclId.scheme === 'ip') return ipMatches(authId.id, aclId.id)
  return authId.id === aclId.id
}

/** ZooKeeper's checkACL: may a caller with `authIds` do `perm` on a znode with `acl`? */
export function checkAcl(
  acl: readonly Acl[],
  perm: number,
  authIds: readonly Id[],
  superDigest?: string,
): boolean {
  if (acl.length === 0) return true
  if (isSuper(authIds, superDigest)) return true
  for (const a of acl) {
    if ((a.perms & perm) === 0) continue
    if (a.id.scheme === 'world' && a.id.id === 'anyone') return true
    for (const authId of authIds) if (idMatches(authId, a.id)) return true
  }
  return false
}

/** Entries an ACL list may have unless the server says otherwise (its aclEntriesMax). */
export const ACL_ENTRIES_MAX_DEFAULT = 64

/** One key per distinct entry (JSON: no two entries share one). */
function aclEntryKey(a: Acl): string {
  return JSON.stringify([a.perms, a.id.scheme, a.id.id])
}

/**
 * ZooKeeper's fixupACL: removes duplicates, rejects an empty list, bad
 * perms, unknown schemes and malformed ids, and expands `auth` entries to
 * the caller's authenticated ids. Returns undefined for INVALID_ACL, which
 * is also the answer to more than `entriesMax` entries, as sent or as
 * expanded (issue 15: 18,000 entries took seconds of a leader's CPU when
 * duplicates were found by comparing every pair).
 */
export function fixupAcl(
  acl: readonly Acl[],
  authIds: readonly Id[],
  entriesMax = ACL_ENTRIES_MAX_DEFAULT,
): Acl[] | undefined {
  if (acl.length > entriesMax) return undefined
  const seen = new Set<string>()
  const unique: Acl[] = []
  for (const a of acl) {
    const key = aclEntryKey(a)
    if (seen.has(key)) continue
    seen.add(key)
    unique.push(a)
  }
  if (unique.length === 0) return undefined
  const out: Acl[] = []
  for (const a of unique) {
    if (!Number.isInteger(a.perms) || a.perms < 0 || a.perms > Perms.ALL) return undefined
    if (a.id.scheme === 'auth') {
      const ids = authIds.filter((id) => AUTHENTICATED_SCHEMES.has(id.scheme))
      if (ids.length === 0) return undefined
      for (const id of ids) out.push({ perms: a.perms, id: { scheme: id.scheme, id: id.id } })
    } else {
      if (!isValidAclId(a.id)) return undefined
      out.push({ perms: a.perms, id: { scheme: a.id.scheme, id: a.id.id } })
    }
  }
  return out.length <= entriesMax ? out : undefined
}
