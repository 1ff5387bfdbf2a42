/**
 * AclCache: ACL lists interned and reference-counted, as ZooKeeper's
 * ReferenceCountedACLCache does, so the millions of znodes that share a
 * handful of ACL lists store one small integer each.
 *
 * Invariants: a ref is live while its count is > 0; equal lists (same
 * entries, same order) share one ref; a list handed out is frozen and
 * never changes; refs of released lists are reused (lowest-first is not
 * promised, but reuse is deterministic: a LIFO free list).
 * Must not import anything but shared/ and server/tree/.
 */
import type { Acl } from '../../shared/acl.js'
import { fail } from '../../shared/assert.js'
import { Hasher } from './hash.js'

interface Entry {
  acl: readonly Acl[]
  key: string
  count: number
  /** Two-lane hash of the key, folded into each node's digest. */
  hashA: number
  hashB: number
}

/** A canonical, unambiguous text for an ACL list (order matters, as in ZooKeeper). */
export function aclKey(acl: readonly Acl[]): string {
  return JSON.stringify(acl.map((a) => [a.perms, a.id.scheme, a.id.id]))
}

function freeze(acl: readonly Acl[]): readonly Acl[] {
  return Object.freeze(acl.map((a) => Object.freeze({ perms: a.perms, id: Object.freeze({ ...a.id }) })))
}

export class AclCache {
  private readonly entries: (Entry | undefined)[] = []
  private readonly byKey = new Map<string, number>()
  private readonly free: number[] = []

  /**
   * The last list interned and its key: loading a snapshot interns the same
   * (frozen) list object for every znode that shares it (the reader decodes
   * each ACL once), and building the key was ~9% of recovering 1M znodes.
   */
  private lastAcl: readonly Acl[] | undefined
  private lastKey = ''

  /** Takes one reference to the list, interning it if new; returns its ref. */
  intern(acl: readonly Acl[]): number {
    let key: string
    if (acl === this.lastAcl) key = this.lastKey
    else {
      key = aclKey(acl)
      // Only a frozen list can be remembered by identity: it cannot have changed since.
      this.lastAcl = Object.isFrozen(acl) ? acl : undefined
      this.lastKey = key
    }
    const known = this.byKey.get(key)
    if (known !== undefined) {
      this.entries[known]!.count++
      return known
    }
    const h = new Hasher(0x61636c).str(key)
    const entry: Entry = { acl: freeze(acl), key, count: 1, hashA: h.finishA(), hashB: h.finishB() }
    const ref = this.free.pop() ?? this.entries.length
    this.entries[ref] = entry
    this.byKey.set(key, ref)
    return ref
  }

  /** Drops one reference; the list is forgotten when none is left. */
  release(ref: number): void {
    const entry = this.entry(ref)
    entry.count--
    if (entry.count > 0) return
    this.entries[ref] = undefined
    this.byKey.delete(entry.key)
    this.free.push(ref)
  }

  get(ref: number): readonly Acl[] {
    return this.entry(ref).acl
  }

  key(ref: number): string {
    return this.entry(ref).key
  }

  hashA(ref: number): number {
    return this.entry(ref).hashA
  }

  hashB(ref: number): number {
    return this.entry(ref).hashB
  }

  /** Distinct lists held. */
  get size(): number {
    return this.byKey.size
  }

  private entry(ref: number): Entry {
    const entry = this.entries[ref]
    if (entry === undefined) fail(`ACL ref ${ref} is not live`)
    return entry
  }
}
