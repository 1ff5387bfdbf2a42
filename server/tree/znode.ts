/**
 * ZNode: one node of the DataTree, kept compact (memory per znode is a
 * product target): plain number fields, the children Set only when there
 * are children, the ACL list shared through the tree's AclCache, and the
 * shared 0n owner for non-ephemeral nodes.
 *
 * `cversion` here is ZooKeeper's STORED cversion: the number of child
 * creates, which is also the next sequential suffix. Clients see
 * 2 * cversion - numChildren (creates + deletes), as DataNode.copyStat does.
 *
 * Pure: imports only shared/.
 */
import type { Acl } from '../../shared/acl.js'
import type { WireStat } from '../../shared/stat.js'

export const NodeKind = { normal: 0, ephemeral: 1, container: 2, ttl: 3 } as const
export type NodeKind = (typeof NodeKind)[keyof typeof NodeKind]

export class ZNode {
  children: Set<string> | null = null
  constructor(
    public data: Uint8Array,
    public acl: readonly Acl[],
    public kind: NodeKind,
    public ephemeralOwner: bigint,
    public ttlMs: number,
    public czxid: number,
    public mzxid: number,
    public pzxid: number,
    public ctime: number,
    public mtime: number,
    public version: number,
    public cversion: number,
    public aversion: number,
  ) {}

  get numChildren(): number {
    return this.children === null ? 0 : this.children.size
  }

  /** The Stat clients see. */
  stat(): WireStat {
    const n = this.numChildren
    return {
      czxid: this.czxid,
      mzxid: this.mzxid,
      ctime: this.ctime,
      mtime: this.mtime,
      version: this.version,
      cversion: (this.cversion * 2 - n) | 0,
      aversion: this.aversion,
      // Containers and TTL nodes show 0 (ZooKeeper's getClientEphemeralOwner).
      ephemeralOwner: this.kind === NodeKind.ephemeral ? this.ephemeralOwner : 0n,
      dataLength: this.data.length,
      numChildren: n,
      pzxid: this.pzxid,
    }
  }

  addChild(name: string): void {
    if (this.children === null) this.children = new Set()
    this.children.add(name)
  }

  removeChild(name: string): boolean {
    if (this.children === null || !this.children.delete(name)) return false
    if (this.children.size === 0) this.children = null
    return true
  }
}

/** UTF-16 code unit order: JavaScript's default sort, spelled out. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
