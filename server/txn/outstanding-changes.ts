/**
 * OutstandingChanges: ZooKeeper's outstandingChanges. Prep must see the
 * effects of Txns it already prepped that the tree has not applied yet
 * (versions, existence, cversion and so sequence numbers, child counts,
 * sessions), or pipelined requests would be judged against stale state.
 * It is a PrepView layered over another PrepView (the tree): `record(txn)`
 * adds a prepped Txn's effects, `applied(zxid)` forgets what the tree now
 * reflects, `clear()` drops everything (leader change).
 *
 * It also knows the exactly-once writes prepped and not yet applied
 * (session, xid -> zxid), so a write re-sent meanwhile is not prepped twice.
 *
 * Invariants: an entry stores a znode's or session's whole state as of the
 * newest prepped Txn touching it (null = deleted), with that Txn's zxid; an
 * entry is dropped once a Txn with an equal or larger zxid is applied; a
 * scratch overlay (for a multi) is discarded on failure, so a failed multi
 * leaves no trace (and uses no sequence number).
 * Must not import anything but shared/ and server/txn/.
 */
import { fail } from '../../shared/assert.js'
import { isEphemeralMode, isTtlMode } from '../../shared/opcodes.js'
import { parentPath } from '../../shared/paths.js'
import type { NodeKindName, PrepNode, PrepView } from './prep-view.js'
import type { Txn, TxnBody } from './txn.js'

interface Entry<T> {
  zxid: number
  value: T | null
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** The session owning an entry's znode, when it is a live ephemeral. */
function ownerOf(e: Entry<PrepNode> | undefined): bigint | undefined {
  return e?.value?.kind === 'ephemeral' ? e.value.ephemeralOwner : undefined
}

export class OutstandingChanges implements PrepView {
  private readonly nodes = new Map<string, Entry<PrepNode>>()
  private readonly sessionEntries = new Map<bigint, Entry<number>>()
  /**
   * Session -> paths whose entry is a live ephemeral it owns, so ephemerals()
   * does not walk every entry (a burst of closing sessions with thousands of
   * ephemerals each made that quadratic).
   */
  private readonly owned = new Map<bigint, Set<string>>()
  /** Entries in the order set, as parallel arrays: the zxid and the key (a path, or a session id). */
  private queueZxids: number[] = []
  private queueKeys: (string | bigint)[] = []
  private head = 0
  /** Exactly-once writes prepped, not yet applied: session -> xid -> zxid. */
  private readonly writesInFlight = new Map<bigint, Map<number, number>>()
  /** The same, in prep order, for dropping them once applied. */
  private writesQueue: { zxid: number; sessionId: bigint; xid: number }[] = []
  private writesHead = 0

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

  /** The base's ephemerals of the session, less those an entry deleted or replaced, plus those entries created. */
  ephemerals(sessionId: bigint): string[] {
    const out: string[] = []
    for (const path of this.base.ephemerals(sessionId)) {
      const e = this.nodes.get(path)
      if (e === undefined || ownerOf(e) === sessionId) out.push(path)
    }
    const mine = this.owned.get(sessionId)
    if (mine === undefined) return out
    const fromBase = new Set(out)
    for (const path of mine) if (!fromBase.has(path)) out.push(path)
    return out.sort(compareNames)
  }

  /** Records the effects of a prepped Txn (an error Txn has none, but an exactly-once one is in flight). */
  record(txn: Txn): void {
    this.recordBody(txn, txn)
    if (txn.remember !== undefined) this.recordWrite(txn.sessionId, txn.cxid, txn.zxid)
  }

  /** The zxid of the session's exactly-once write `xid`, if it was prepped and is not applied yet. */
  writeInFlight(sessionId: bigint, xid: number): number | undefined {
    return this.writesInFlight.get(sessionId)?.get(xid)
  }

  private recordWrite(sessionId: bigint, xid: number, zxid: number): void {
    let m = this.writesInFlight.get(sessionId)
    if (m === undefined) this.writesInFlight.set(sessionId, (m = new Map()))
    m.set(xid, zxid)
    this.writesQueue.push({ zxid, sessionId, xid })
  }

  private appliedWrites(zxid: number): void {
    const q = this.writesQueue
    while (this.writesHead < q.length && q[this.writesHead]!.zxid <= zxid) {
      const w = q[this.writesHead++]!
      const m = this.writesInFlight.get(w.sessionId)
      if (m?.get(w.xid) === w.zxid) {
        m.delete(w.xid)
        if (m.size === 0) this.writesInFlight.delete(w.sessionId)
      }
    }
    if (this.writesHead > 1024 && this.writesHead * 2 > q.length) {
      this.writesQueue = q.slice(this.writesHead)
      this.writesHead = 0
    }
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
        return this.recordDeletes([body.path], z)
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
        this.recordDeletes(body.paths, z)
        return this.setSession(hdr.sessionId, z, null)
      case 'check':
      case 'error':
        return
    }
  }

  /** Deletes leaf znodes; each parent's child count is set once (a closeSession may delete thousands under one). */
  private recordDeletes(paths: readonly string[], zxid: number): void {
    const removed = new Map<string, number>()
    for (const path of paths) {
      const parent = parentPath(path)
      removed.set(parent, (removed.get(parent) ?? 0) + 1)
    }
    for (const [parent, count] of removed) {
      const meta = this.mustGet(parent)
      this.setNode(parent, zxid, { ...meta, numChildren: meta.numChildren - count })
    }
    for (const path of paths) this.setNode(path, zxid, null)
  }

  private mustGet(path: string): PrepNode {
    const n = this.nodeMeta(path)
    if (n === undefined) fail(`outstanding change on missing znode ${path}`)
    return n
  }

  private setNode(path: string, zxid: number, value: PrepNode | null): void {
    const entry: Entry<PrepNode> = { zxid, value }
    const before = ownerOf(this.nodes.get(path))
    const after = ownerOf(entry)
    if (before !== after) {
      if (before !== undefined) this.disown(before, path)
      if (after !== undefined) {
        let set = this.owned.get(after)
        if (set === undefined) this.owned.set(after, (set = new Set()))
        set.add(path)
      }
    }
    this.nodes.set(path, entry)
    this.queueZxids.push(zxid)
    this.queueKeys.push(path)
  }

  private disown(owner: bigint, path: string): void {
    const set = this.owned.get(owner)!
    set.delete(path)
    if (set.size === 0) this.owned.delete(owner)
  }

  private setSession(id: bigint, zxid: number, value: number | null): void {
    this.sessionEntries.set(id, { zxid, value })
    this.queueZxids.push(zxid)
    this.queueKeys.push(id)
  }

  /** The tree has applied every Txn up to `zxid`: drop what it now reflects. */
  applied(zxid: number): void {
    if (this.writesQueue.length > this.writesHead) this.appliedWrites(zxid)
    const zxids = this.queueZxids
    const keys = this.queueKeys
    while (this.head < zxids.length && zxids[this.head]! <= zxid) {
      const key = keys[this.head++]!
      if (typeof key === 'string') {
        const e = this.nodes.get(key)
        if (e !== undefined && e.zxid <= zxid) {
          this.nodes.delete(key)
          const owner = ownerOf(e)
          if (owner !== undefined) this.disown(owner, key)
        }
      } else {
        const e = this.sessionEntries.get(key)
        if (e !== undefined && e.zxid <= zxid) this.sessionEntries.delete(key)
      }
    }
    // Compact the consumed prefix now and then so the queue does not grow without bound.
    if (this.head > 1024 && this.head * 2 > zxids.length) {
      this.queueZxids = zxids.slice(this.head)
      this.queueKeys = keys.slice(this.head)
      this.head = 0
    }
  }

  /** Forgets everything (prepped Txns that will never be applied, e.g. after a leader change). */
  clear(): void {
    this.nodes.clear()
    this.sessionEntries.clear()
    this.owned.clear()
    this.queueZxids = []
    this.queueKeys = []
    this.head = 0
    this.writesInFlight.clear()
    this.writesQueue = []
    this.writesHead = 0
  }
}
