/**
 * ACL text as zkCli reads and prints it. Input: a comma-separated list of
 * `scheme:id:perms` (`world:anyone:cdrwa,digest:user:hash:r,auth::cdrwa`);
 * the scheme ends at the first ':', the perms follow the last one, so ids
 * may contain ':' (digest hashes, IPv6). Perms are letters from `crwda` in
 * any order. Output: zkCli's getAcl form, `'scheme,'id` then `: perms` with
 * perms in zkCli's order c, d, r, w, a.
 * Invariants: pure; parse(format(x)) round-trips; an unknown perm letter, an
 * empty entry or a missing part is a ShellUsageError (zkCli silently drops
 * them, which hides typos that lock people out).
 * Imports only shared/ and the shell's tokenizer (for its error class).
 */
import type { Acl } from '../../shared/acl.js'
import { Perms } from '../../shared/opcodes.js'
import { ShellUsageError } from './shell-tokenize.js'

const PERM_LETTERS: [string, number][] = [
  ['c', Perms.CREATE],
  ['d', Perms.DELETE],
  ['r', Perms.READ],
  ['w', Perms.WRITE],
  ['a', Perms.ADMIN],
]

export function parsePerms(text: string): number {
  let perms = 0
  for (const ch of text) {
    const bit = PERM_LETTERS.find(([l]) => l === ch.toLowerCase())?.[1]
    if (bit === undefined)
      throw new ShellUsageError(`invalid permission '${ch}' in '${text}': use letters from crwda`)
    perms |= bit
  }
  return perms
}

/** zkCli's permission string: c, d, r, w, a in that order. */
export function permString(perms: number): string {
  return PERM_LETTERS.filter(([, bit]) => (perms & bit) !== 0)
    .map(([l]) => l)
    .join('')
}

function parseOneAcl(entry: string): Acl {
  const first = entry.indexOf(':')
  const last = entry.lastIndexOf(':')
  if (first < 0 || first === last)
    throw new ShellUsageError(`bad ACL '${entry}': expected scheme:id:perms (e.g. world:anyone:cdrwa)`)
  const scheme = entry.slice(0, first)
  if (scheme === '') throw new ShellUsageError(`bad ACL '${entry}': the scheme is empty`)
  return { id: { scheme, id: entry.slice(first + 1, last) }, perms: parsePerms(entry.slice(last + 1)) }
}

/** Parses `scheme:id:perms[,scheme:id:perms…]`. */
export function parseAclText(text: string): Acl[] {
  const entries = text.split(',').map((s) => s.trim())
  if (entries.some((e) => e === '')) throw new ShellUsageError(`bad ACL list '${text}': empty entry`)
  return entries.map(parseOneAcl)
}

/** The compact `scheme:id:perms,…` form (what parseAclText reads). */
export function aclToText(acl: readonly Acl[]): string {
  return acl.map((a) => `${a.id.scheme}:${a.id.id}:${permString(a.perms)}`).join(',')
}

/** zkCli's getAcl output: two lines per entry, `'scheme,'id` and `: perms`. */
export function formatAclList(acl: readonly Acl[]): string {
  return acl.map((a) => `'${a.id.scheme},'${a.id.id}\n: ${permString(a.perms)}\n`).join('')
}
