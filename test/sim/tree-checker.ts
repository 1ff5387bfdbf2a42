/**
 * TreeChecker: the invariants of the replicated DataTree, checked on every
 * apply and every restore (SNAP or disk snapshot) of every server, next to
 * the ZAB-level Checker (which already compares tree digests at equal
 * zxid through SimStateMachine.digest()).
 *
 *  - Ephemerals agree: at equal applied zxid every server has the same
 *    sessions owning the same ephemeral paths. On the first apply of each
 *    zxid and on every restore, a scan of every znode: each ephemeral is
 *    owned by a live session and indexed under it, and the index lists
 *    nothing else.
 *  - A closed session is gone: once its closeSession is applied, the
 *    session has no ephemerals and is no longer in the tree.
 *  - No acknowledged create lost: a create acknowledged at zxid z is in the
 *    tree with czxid z at every zxid until a committed Txn deletes it
 *    (checked on the first server to apply each new zxid; equal digests
 *    carry it to the others).
 *  - Sequential numbers are unique per parent (per incarnation of the
 *    parent: one created again starts from 0), increasing in zxid order.
 *
 * Invariants of this file: a violation throws at once (through `fail`), so
 * the trace ends at the failing event. Global bookkeeping happens once per
 * zxid, on the first server to apply it (prefix agreement makes that order
 * the committed order).
 */
import type { TreeDb } from '../../server/state/tree-db.js'
import type { SimNode } from './sim-node.js'
import { closedSessionOf, TreeStateMachine } from './tree-state-machine.js'

const hex = (z: number) => `0x${z.toString(16)}`
const sid = (id: bigint) => id.toString(16)

/** Sequential children are named `<parent>/s-<10 digits>` under `/q<n>` (tree-workload.ts). */
const SEQUENTIAL = /^(\/q\d+)\/s-(\d{10})$/

function treeOf(node: SimNode): TreeStateMachine {
  const sm = node.sm
  if (!(sm instanceof TreeStateMachine)) throw new Error('TreeChecker needs the tree state machine')
  return sm
}

export class TreeChecker {
  /** Canonical ephemerals (session -> paths) per applied zxid. */
  private readonly ephemeralsAt = new Map<number, string>()
  /** closeSession Txns by zxid (read from the committed bytes). */
  private readonly closeAt = new Map<number, bigint>()
  private readonly lastDeletedAt = new Map<string, number>()
  /** Acknowledged creates not yet deleted: path -> the zxid that created it. */
  private readonly liveAcked = new Map<string, number>()
  private readonly lastSequence = new Map<string, number>()
  sequentialCreates = 0
  sessionsClosed = 0
  ackedCreates = 0
  ephemeralsDeletedOnClose = 0

  constructor(
    private readonly nodes: readonly SimNode[],
    private readonly fail: (invariant: string, detail: string) => never,
  ) {}

  onCommit(node: SimNode, zxid: number, data: Uint8Array): void {
    // Not past a fuzzy snapshot's end yet: the tree is between states (the first server to
    // apply a zxid is never such a server: the leader applied everything the snapshot caught).
    if (zxid < treeOf(node).fuzzyEndZxid) return
    const db = treeOf(node).db
    const first = !this.ephemeralsAt.has(zxid)
    if (first) {
      const closed = closedSessionOf(data)
      if (closed !== undefined) this.closeAt.set(zxid, closed)
    }
    const closed = this.closeAt.get(zxid)
    if (closed !== undefined) {
      const left = db.ephemerals(closed)
      if (left.length > 0 || db.hasSession(closed)) {
        this.fail(
          'ephemerals-closed',
          `n${node.id} at ${hex(zxid)}: session ${sid(closed)} closed, still has ${left.join(',') || 'its session'}`,
        )
      }
    }
    const canon = this.ephemeralsOf(db)
    if (first) {
      this.scan(node, db, zxid)
      this.ephemeralsAt.set(zxid, canon)
      this.firstApply(node, zxid)
    } else if (this.ephemeralsAt.get(zxid) !== canon) {
      this.fail(
        'ephemerals-agree',
        `n${node.id} at ${hex(zxid)}: ephemerals {${canon}} != {${this.ephemeralsAt.get(zxid)}}`,
      )
    }
  }

  onRestore(node: SimNode, zxid: number): void {
    if (zxid < treeOf(node).fuzzyEndZxid) return
    const db = treeOf(node).db
    this.scan(node, db, zxid)
    const canon = this.ephemeralsOf(db)
    const known = this.ephemeralsAt.get(zxid)
    if (known !== undefined && known !== canon)
      this.fail('ephemerals-agree', `n${node.id} restored ${hex(zxid)}: ephemerals {${canon}} != {${known}}`)
  }

  /** The client of `path` was told its create succeeded at `zxid`. */
  onAckedCreate(path: string, zxid: number): void {
    this.ackedCreates++
    // Deleted (by a Txn some server applied already) before the acknowledgement arrived.
    if ((this.lastDeletedAt.get(path) ?? 0) > zxid) return
    const known = this.liveAcked.get(path)
    if (known === undefined || known < zxid) this.liveAcked.set(path, zxid)
  }

  /** Canonical form of the ephemeral index: live sessions in id order, each with its paths. */
  private ephemeralsOf(db: TreeDb): string {
    const ids = [...db.sessions()].map((s) => s.id).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const parts: string[] = []
    for (const id of ids) {
      const paths = db.ephemerals(id)
      if (paths.length > 0) parts.push(`${sid(id)}:${paths.join(',')}`)
    }
    return parts.join(';')
  }

  /**
   * Every znode against the ephemeral index: each ephemeral znode is owned
   * by a live session and listed under it; the index lists nothing else.
   */
  private scan(node: SimNode, db: TreeDb, zxid: number): void {
    let ephemeral = 0
    for (const path of db.tree.paths()) {
      const meta = db.tree.nodeMeta(path)!
      if (meta.kind !== 'ephemeral') continue
      ephemeral++
      const owner = meta.ephemeralOwner
      if (!db.hasSession(owner))
        this.fail(
          'ephemeral-owner-live',
          `n${node.id} at ${hex(zxid)}: ${path} owned by closed ${sid(owner)}`,
        )
      if (!db.ephemerals(owner).includes(path))
        this.fail('ephemeral-index', `n${node.id} at ${hex(zxid)}: ${path} not indexed under ${sid(owner)}`)
    }
    let indexed = 0
    for (const s of db.sessions()) indexed += db.ephemerals(s.id).length
    if (indexed !== ephemeral)
      this.fail('ephemeral-index', `n${node.id} at ${hex(zxid)}: ${ephemeral} ephemerals, ${indexed} indexed`)
  }

  /** Global bookkeeping for a zxid applied for the first time, and the acked-create check. */
  private firstApply(node: SimNode, zxid: number): void {
    const sm = treeOf(node)
    const out = sm.lastOutcome!
    const closing = this.closeAt.has(zxid)
    if (closing) this.sessionsClosed++
    for (const c of out.changes) {
      if (c.type === 'deleted') {
        this.lastDeletedAt.set(c.path, zxid)
        this.liveAcked.delete(c.path)
        // A parent created again numbers its sequential children from 0 again.
        this.lastSequence.delete(c.path)
        if (closing) this.ephemeralsDeletedOnClose++
      } else if (c.type === 'created') {
        const m = SEQUENTIAL.exec(c.path)
        if (m) this.onSequential(m[1]!, Number(m[2]), c.path, zxid)
      }
    }
    for (const [path, czxid] of this.liveAcked) {
      const stat = sm.db.get(path)?.stat
      if (stat === undefined || stat.czxid !== czxid) {
        this.fail(
          'acked-create-lost',
          `n${node.id} at ${hex(zxid)}: ${path} acked at ${hex(czxid)} is ${stat ? `czxid ${hex(stat.czxid)}` : 'missing'}`,
        )
      }
    }
  }

  private onSequential(parent: string, seq: number, path: string, zxid: number): void {
    this.sequentialCreates++
    const last = this.lastSequence.get(parent) ?? -1
    if (seq <= last)
      this.fail('sequence-unique', `${path} created at ${hex(zxid)} after sequence ${last} under ${parent}`)
    this.lastSequence.set(parent, seq)
  }

  /** Cheap checks after every scheduler event. */
  afterEvent(): void {
    for (const n of this.nodes) {
      if (!n.up) continue
      const sm = treeOf(n)
      if (sm.db.lastZxid !== sm.appliedZxid)
        this.fail('tree-apply', `n${n.id} tree at ${hex(sm.db.lastZxid)}, applied ${hex(sm.appliedZxid)}`)
    }
  }
}
