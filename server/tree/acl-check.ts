/**
 * ACL checks and validation, as ZooKeeper's schemes: world (anyone), auth
 * (expanded at create time to the creator's authenticated ids), digest
 * (`user:base64(sha1(user:password))` — the hash is made where credentials
 * arrive, not here), ip (an address, or IPv4 address/bits), and the
 * operator's super id, which bypasses every check.
 *
 * Pure: imports only shared/.
 */
import type { Acl, Id } from '../../shared/acl.js'
import { Perms } from '../../shared/opcodes.js'

function ipv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text)
  if (m === null) return undefined
  const parts = m.slice(1).map(Number)
  if (parts.some((p) => p > 255)) return undefined
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0
}

/** Does an `ip` ACL id (address or address/bits) cover this client address? */
export function ipMatches(aclId: string, addr: string): boolean {
  const [net, bitsText] = aclId.split('/')
  if (bitsText === undefined) return net === addr
  const a = ipv4(net ?? '')
  const b = ipv4(addr)
  const bits = Number(bitsText)
  if (a === undefined || b === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return false
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  return (a & mask) >>> 0 === (b & mask) >>> 0
}

/** May a client with these ids do `perm` on a node with this ACL? */
export function checkAcl(acl: readonly Acl[], perm: number, authIds: readonly Id[]): boolean {
  if (acl.length === 0) return true
  for (const id of authIds) if (id.scheme === 'super') return true
  for (const a of acl) {
    if ((a.perms & perm) === 0) continue
    const { scheme, id } = a.id
    if (scheme === 'world' && id === 'anyone') return true
    for (const mine of authIds) {
      if (mine.scheme !== scheme) continue
      if (scheme === 'ip' ? ipMatches(id, mine.id) : mine.id === id) return true
    }
  }
  return false
}

/**
 * Validates an ACL list and expands `auth` entries to the creator's ids
 * (ZooKeeper's fixupACL). Returns undefined for an invalid list.
 */
export function fixupAcl(acl: readonly Acl[], authIds: readonly Id[]): Acl[] | undefined {
  if (acl.length === 0) return undefined
  const out: Acl[] = []
  for (const a of acl) {
    if (!Number.isInteger(a.perms) || a.perms < 0 || a.perms > Perms.ALL) return undefined
    const { scheme, id } = a.id
    if (scheme === 'world') {
      if (id !== 'anyone') return undefined
      out.push(a)
    } else if (scheme === 'auth') {
      const mine = authIds.filter((x) => x.scheme !== 'ip' && x.scheme !== 'super')
      if (mine.length === 0) return undefined
      for (const m of mine) out.push({ perms: a.perms, id: { scheme: m.scheme, id: m.id } })
    } else if (scheme === 'digest') {
      if (id.split(':').length !== 2 || id.startsWith(':')) return undefined
      out.push(a)
    } else if (scheme === 'ip') {
      const [net, bits] = id.split('/')
      if (ipv4(net ?? '') === undefined && !/^[0-9a-fA-F:]+$/.test(net ?? '')) return undefined
      if (bits !== undefined && !/^\d{1,2}$/.test(bits)) return undefined
      out.push(a)
    } else {
      return undefined
    }
  }
  // Duplicates collapse, as ZooKeeper's removeDuplicates does.
  const seen = new Set<string>()
  return out.filter((a) => {
    const k = `${a.perms}:${a.id.scheme}:${a.id.id}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}
