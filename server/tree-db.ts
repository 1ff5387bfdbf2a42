/**
 * TreeDb: the Db the server runs on — the DataTree (server/tree) with prep
 * and its outstanding changes (server/txn) — and its recovery from storage:
 * the newest valid snapshot, then the log replayed over it (idempotently:
 * the snapshot is fuzzy).
 */
import type { Logger } from 'pino'
import type { Acl, Id } from '../shared/acl.js'
import { JuteWriter } from '../shared/jute.js'
import type { WireStat } from '../shared/stat.js'
import { formatZxid } from '../shared/zxid.js'
import type { ApplyOutcome, Db, NodeView, PrepContext, PrepOutcome, WriteRequest } from './db.js'
import type { Recovery } from './storage/index.js'
import { checkAcl } from './tree/acl-check.js'
import { snapshotChunks, treeFromSnapshot } from './tree/tree-snapshot.js'
import type { ZNode } from './tree/znode.js'
import { DataTree } from './tree/znode-tree.js'
import { type NodeRecord, Outstanding, type PrepView, prep } from './txn/prep.js'
import { decodeTxn, encodeTxn } from './txn/txn-codec.js'

class NodeViewImpl implements NodeView {
  constructor(private readonly n: ZNode) {}
  get stat(): WireStat {
    return this.n.stat()
  }
  get data(): Uint8Array {
    return this.n.data
  }
  get acl(): readonly Acl[] {
    return this.n.acl
  }
}

export class TreeDb implements Db {
  private outstanding: Outstanding
  private readonly writer = new JuteWriter(1024)

  constructor(public tree: DataTree) {
    this.outstanding = new Outstanding(this.baseView())
  }

  private baseView(): PrepView {
    return {
      node: (path: string): NodeRecord | undefined => {
        const n = this.tree.get(path)
        if (n === undefined) return undefined
        return {
          exists: true,
          version: n.version,
          cversion: n.cversion,
          aversion: n.aversion,
          numChildren: n.numChildren,
          kind: n.kind,
          owner: n.ephemeralOwner,
          ttlMs: n.ttlMs,
          mtime: n.mtime,
          acl: n.acl,
        }
      },
      hasSession: (id) => this.tree.sessions.has(id),
      ephemeralsOf: (id) => this.tree.ephemerals.get(id) ?? [],
    }
  }

  get lastZxid(): number {
    return this.tree.lastZxid
  }

  digest(): string {
    return this.tree.digest()
  }

  get(path: string): NodeView | undefined {
    const n = this.tree.get(path)
    return n === undefined ? undefined : new NodeViewImpl(n)
  }

  children(path: string): string[] | undefined {
    return this.tree.children(path)
  }

  canAccess(acl: readonly Acl[], perm: number, authIds: readonly Id[]): boolean {
    return checkAcl(acl, perm, authIds)
  }

  ephemerals(sessionId: bigint): string[] {
    return [...(this.tree.ephemerals.get(sessionId) ?? [])].sort()
  }

  descendantCount(path: string): number {
    return this.tree.descendantCount(path)
  }

  *sessions(): Iterable<{ id: bigint; timeoutMs: number }> {
    for (const [id, timeoutMs] of this.tree.sessions) yield { id, timeoutMs }
  }

  hasSession(id: bigint): boolean {
    return this.tree.sessions.has(id)
  }

  prep(req: WriteRequest, ctx: PrepContext): PrepOutcome {
    const r = prep(req, this.outstanding, ctx)
    if (r.ok) return { ok: true, txn: encodeTxn(r.txn, this.writer) }
    if (r.results !== undefined) return { ok: false, err: r.err, body: { op: 14, results: r.results } }
    return { ok: false, err: r.err }
  }

  apply(zxid: number, bytes: Uint8Array): ApplyOutcome {
    const txn = decodeTxn(bytes)
    const res = this.tree.apply(txn)
    this.outstanding.applied(zxid)
    return { sessionId: txn.sessionId, cxid: txn.cxid, ...res }
  }

  replay(_zxid: number, bytes: Uint8Array): void {
    this.tree.apply(decodeTxn(bytes), true)
  }

  dropOutstanding(): void {
    this.outstanding.clear()
  }

  reapable(nowMs: number): string[] {
    return this.tree.reapable(nowMs)
  }

  nextReapAtMs(): number | undefined {
    return this.tree.nextReapAtMs()
  }

  snapshotChunks(): Iterator<Uint8Array> {
    return snapshotChunks(this.tree)
  }

  nodeCount(): number {
    return this.tree.nodeCount
  }

  /** Replaces the whole tree (a SNAP from the leader). */
  replaceTree(tree: DataTree): void {
    this.tree = tree
    this.outstanding = new Outstanding(this.baseView())
  }
}

/**
 * Rebuilds the tree from storage: the newest valid snapshot, then the log
 * after it, up to `replayThroughZxid` (everything in standalone mode; in an
 * ensemble only what is known committed — the rest waits for the leader).
 * Returns the entries not replayed, for ZAB.
 */
export function recoverDb(
  recovery: Recovery,
  logger: Logger,
  replayThroughZxid = Number.POSITIVE_INFINITY,
): { db: TreeDb; rest: { zxid: number; data: Uint8Array }[] } {
  const snap = recovery.snapshot
  const tree = snap === undefined ? new DataTree() : treeFromSnapshot(snap.chunks())
  const db = new TreeDb(tree)
  const rest: { zxid: number; data: Uint8Array }[] = []
  let replayed = 0
  for (const e of recovery.logEntries()) {
    if (e.zxid <= replayThroughZxid) {
      db.replay(e.zxid, e.data)
      replayed++
    } else rest.push(e)
  }
  if (snap !== undefined && tree.lastZxid < snap.zxidEnd) tree.lastZxid = snap.zxidEnd
  logger.info(
    { replayed, pending: rest.length, zxid: formatZxid(tree.lastZxid), digest: tree.digest() },
    'tree rebuilt',
  )
  return { db, rest }
}

export function createDb(recovery: Recovery, logger: Logger): TreeDb {
  return recoverDb(recovery, logger).db
}
