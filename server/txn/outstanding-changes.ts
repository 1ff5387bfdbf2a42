/**
 * OutstandingChanges: ZooKeeper's outstandingChanges. Prep must see the
 * effects of Txns it already prepped that the tree has not applied yet
 * (versions, existence, cversion and so sequence numbers, child counts,
 * sessions), or pipelined requests would be judged against stale state.
 * It is a PrepView layered over another PrepView (the tree): `record(txn)`
 * adds a prepped Txn's effects, `applied(zxid)` forgets what the tree now
 * reflects, `clear()` drops everything (leader change).
 *
 * Invariants: an entry stores a znode's or session's whole state as of the
 * newest prepped Txn touching it (null = deleted), with that Txn's zxid; an
 * entry is dropped once a Txn with an equal or larger zxid is applied; a
 * scratch overlay (for a multi) is discarded on failure, so a failed multi
 * leaves no trace (and uses no sequence number).
 * Must not import anything but shared/ and server/txn/.
 */
import { assert } from '../../shared/assert.js'
import { isEphemeralMode, isTtlMode } from '../../shared/opcodes.js'
import { parentPath } from '../../shared/paths.js'
import type { NodeKindName, PrepNode, PrepView } from './prep-view.js'
import type { Txn, TxnBody } from './txn.js'

interface Entry<T> {
  zxid: number
  value: T | null
}

type Key = { node: string } | { session: bigint }

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export class OutstandingChanges implements PrepView {
  private readonly nodes = new Map<string, Entry<PrepNode>>()
  private readonly sessionEntries = new Map<bigint, Entry<number>>()
  private queue: { zxid: number; key: Key }[] = []
  private head = 0

  constructor(private readonly base: PrepView) {}

  /** Entries held (znodes and sessions). */
  get size(): number {
    return this.nodes.size + this.sessionEntries.size
  }

  nodeMeta(path: string): PrepNode | undefined {
    const e = this.nodes.get(path)
    if (e !== undefined) return e.value ?? undefined
    return this.base.nodeMeta(path)
  }

  hasSession(sessionId: bigint): boolean {
    const e = this.sessionEntries.get(sessionId)
    if (e !== undefined) return e.value !== null
    return this.base.hasSession(sessionId)
  }

  ephemerals(sessionId: bigint): string[] {
    const set = new Set(this.base.ephemerals(sessionId))
    for (const [path, e] of this.nodes) {
      if (e.value !== null && e.value.kind === 'ephemeral' && e.value.ephemeralOwner === sessionId)
        set.add(path)
      else set.delete(path)
    }
    return [...set].sort(compareNames)
  }

  /** Records the effects of a prepped Txn (an error Txn has none). */
  record(txn: Txn): void {
    this.recordBody(txn, txn)
  }

  /** Records one Txn body's effects under a header's zxid, session and time. */
  recordBody(body: TxnBody, hdr: { zxid: number; sessionId: bigint; timeMs: number }): void {
    const z = hdr.zxid
    switch (body.type) {
      case 'create': {
        const parent = this.mustGet(parentPath(body.path))
        this.setNode(parentPath(body.path), z, {
          ...parent,
          cversion: body.parentCversion,
          numChildren: parent.numChildren + 1,
        })
        const kind: NodeKindName = isEphemeralMode(body.mode)
          ? 'ephemeral'
          : body.mode === 'container'
            ? 'container'
            : isTtlMode(body.mode)
              ? 'ttl'
              : 'persistent'
        this.setNode(body.path, z, {
          version: 0,
          cversion: 0,
          aversion: 0,
          numChildren: 0,
          kind,
          ephemeralOwner: kind === 'ephemeral' ? hdr.sessionId : 0n,
          ttlMs: body.ttlMs,
          mtime: hdr.timeMs,
          acl: body.acl,
        })
        return
      }
      case 'delete':
      case 'deleteContainer':
        return this.recordDelete(body.path, z)
      case 'setData':
        return this.setNode(body.path, z, {
          ...this.mustGet(body.path),
          version: body.version,
          mtime: hdr.timeMs,
        })
      case 'setACL':
        return this.setNode(body.path, z, {
          ...this.mustGet(body.path),
          aversion: body.aversion,
          acl: body.acl,
        })
      case 'multi':
        for (const op of body.ops) this.recordBody(op, hdr)
        return
      case 'createSession':
        return this.setSession(hdr.sessionId, z, body.timeoutMs)
      case 'closeSession':
        for (const path of body.paths) this.recordDelete(path, z)
        return this.setSession(hdr.sessionId, z, null)
      case 'check':
      case 'error':
        return
    }
  }

  private recordDelete(path: string, zxid: number): void {
    const parent = this.mustGet(parentPath(path))
    this.setNode(parentPath(path), zxid, { ...parent, numChildren: parent.numChildren - 1 })
    this.setNode(path, zxid, null)
  }

  private mustGet(path: string): PrepNode {
    const n = this.nodeMeta(path)
    assert(n !== undefined, `outstanding change on missing znode ${path}`)
    return n
  }

  private setNode(path: string, zxid: number, value: PrepNode | null): void {
    this.nodes.set(path, { zxid, value })
    this.queue.push({ zxid, key: { node: path } })
  }

  private setSession(id: bigint, zxid: number, value: number | null): void {
    this.sessionEntries.set(id, { zxid, value })
    this.queue.push({ zxid, key: { session: id } })
  }

  /** The tree has applied every Txn up to `zxid`: drop what it now reflects. */
  applied(zxid: number): void {
    while (this.head < this.queue.length && this.queue[this.head]!.zxid <= zxid) {
      const { key } = this.queue[this.head++]!
      if ('node' in key) {
        const e = this.nodes.get(key.node)
        if (e !== undefined && e.zxid <= zxid) this.nodes.delete(key.node)
      } else {
        const e = this.sessionEntries.get(key.session)
        if (e !== undefined && e.zxid <= zxid) this.sessionEntries.delete(key.session)
      }
    }
    // Compact the consumed prefix now and then so the queue does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
  }

  /** Forgets everything (prepped Txns that will never be applied, e.g. after a leader change). */
  clear(): void {
    this.nodes.clear()
    this.sessionEntries.clear()
    this.queue = []
    this.head = 0
  }
}
