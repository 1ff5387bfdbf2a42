/**
 * DataTree: the replicated state — znodes by path, sessions, the ephemeral
 * index, container/TTL reaping candidates, and an incremental digest.
 * `apply(txn)` is deterministic and idempotent (Txns carry absolute
 * values), returning the reply for the client and the watch changes in the
 * order they happened.
 *
 * Invariants: every node but '/' has its parent in the tree and is in the
 * parent's children; ephemerals have no children and are indexed under
 * their owner; the digest equals the sum of the hashes of all nodes and
 * sessions.
 *
 * Pure: imports only shared/ and server/tree, server/txn.
 */
import type { Acl } from '../../shared/acl.js'
import { OPEN_ACL_UNSAFE } from '../../shared/acl.js'
import { assert } from '../../shared/assert.js'
import type { ErrorCode } from '../../shared/errors.js'
import { OpCode } from '../../shared/opcodes.js'
import { baseName, parentPath } from '../../shared/paths.js'
import type { MultiResult, Response } from '../../shared/records.js'
import type { Txn, TxnOp } from '../txn/txn-types.js'
import { Hasher, Lanes } from './tree-digest.js'
import { compareNames, NodeKind, ZNode } from './znode.js'

export type ChangeType = 'created' | 'deleted' | 'dataChanged' | 'childrenChanged'
export interface Change {
  type: ChangeType
  path: string
}

export interface ApplyResult {
  err: ErrorCode
  body: Response | undefined
  changes: Change[]
  sessionCreated?: { id: bigint; timeoutMs: number }
  sessionClosed?: bigint
}

const ZERO = 0n

/** Reference-counted ACL lists: nodes with equal ACLs share one frozen array. */
class AclCache {
  private readonly lists = new Map<string, { acl: readonly Acl[]; refs: number }>()

  take(acl: readonly Acl[]): readonly Acl[] {
    const key = acl.map((a) => `${a.perms}|${a.id.scheme}|${a.id.id}`).join('\n')
    let e = this.lists.get(key)
    if (e === undefined) {
      e = {
        acl: Object.freeze(acl.map((a) => Object.freeze({ perms: a.perms, id: Object.freeze({ ...a.id }) }))),
        refs: 0,
      }
      this.lists.set(key, e)
    }
    e.refs++
    return e.acl
  }

  release(acl: readonly Acl[]): void {
    const key = acl.map((a) => `${a.perms}|${a.id.scheme}|${a.id.id}`).join('\n')
    const e = this.lists.get(key)
    if (e !== undefined && --e.refs <= 0) this.lists.delete(key)
  }

  get size(): number {
    return this.lists.size
  }
}

export class DataTree {
  readonly nodes = new Map<string, ZNode>()
  readonly sessions = new Map<bigint, number>()
  readonly ephemerals = new Map<bigint, Set<string>>()
  /** Containers that have had a child and have none now: reap at once. */
  readonly emptyContainers = new Set<string>()
  /** TTL nodes without children: reap once unchanged for their TTL. */
  readonly idleTtlNodes = new Set<string>()
  readonly acls = new AclCache()
  lastZxid = 0
  private readonly lanes = new Lanes()

  constructor(empty = false) {
    if (empty) return
    this.nodes.set('/', this.makeNode(new Uint8Array(0), OPEN_ACL_UNSAFE, NodeKind.normal, ZERO, 0, 0, 0))
    this.addSystemNode('/zookeeper')
    this.addSystemNode('/zookeeper/quota')
    this.addSystemNode('/zookeeper/config')
    for (const n of this.nodes.keys()) this.lanes.add(this.hashNode(n, this.nodes.get(n)!))
  }

  private addSystemNode(path: string): void {
    const node = this.makeNode(new Uint8Array(0), OPEN_ACL_UNSAFE, NodeKind.normal, ZERO, 0, 0, 0)
    this.nodes.set(path, node)
    this.nodes.get(parentPath(path))!.addChild(baseName(path))
  }

  makeNode(
    data: Uint8Array,
    acl: readonly Acl[],
    kind: NodeKind,
    owner: bigint,
    ttl: number,
    zxid: number,
    time: number,
  ) {
    return new ZNode(data, this.acls.take(acl), kind, owner, ttl, zxid, zxid, zxid, time, time, 0, 0, 0)
  }

  // ------------------------------------------------------------ queries

  get(path: string): ZNode | undefined {
    return this.nodes.get(path)
  }

  /** Children names, sorted (UTF-16 order); undefined if the node does not exist. */
  children(path: string): string[] | undefined {
    const n = this.nodes.get(path)
    if (n === undefined) return undefined
    return n.children === null ? [] : [...n.children].sort(compareNames)
  }

  descendantCount(path: string): number {
    let count = 0
    const stack = [path]
    while (stack.length > 0) {
      const p = stack.pop()!
      const n = this.nodes.get(p)
      if (n?.children == null) continue
      for (const c of n.children) {
        count++
        stack.push(p === '/' ? `/${c}` : `${p}/${c}`)
      }
    }
    return count
  }

  digest(): string {
    return this.lanes.toString()
  }

  get nodeCount(): number {
    return this.nodes.size
  }

  hashNode(path: string, n: ZNode): [number, number] {
    const h = new Hasher().str(path).bytes(n.data)
    h.num(n.czxid).num(n.mzxid).num(n.pzxid).num(n.ctime).num(n.mtime)
    h.int(n.version).int(n.cversion).int(n.aversion).int(n.kind).num(n.ttlMs).big(n.ephemeralOwner)
    for (const a of n.acl) h.int(a.perms).str(a.id.scheme).str(a.id.id)
    return h.done()
  }

  private hashSession(id: bigint, timeoutMs: number): [number, number] {
    return new Hasher().str('\u0000session').big(id).int(timeoutMs).done()
  }

  /** Runs `mutate` on a node, keeping the digest and reaping candidates current. */
  private update(path: string, n: ZNode, mutate: () => void): void {
    this.lanes.sub(this.hashNode(path, n))
    mutate()
    this.lanes.add(this.hashNode(path, n))
    this.trackReapable(path, n)
  }

  private trackReapable(path: string, n: ZNode): void {
    if (n.kind === NodeKind.container) {
      if (n.cversion > 0 && n.children === null) this.emptyContainers.add(path)
      else this.emptyContainers.delete(path)
    } else if (n.kind === NodeKind.ttl) {
      if (n.children === null) this.idleTtlNodes.add(path)
      else this.idleTtlNodes.delete(path)
    }
  }

  // ------------------------------------------------------------ reaping

  /** Containers and TTL nodes eligible for removal now, sorted. */
  reapable(nowMs: number): string[] {
    const out = [...this.emptyContainers]
    for (const p of this.idleTtlNodes) {
      const n = this.nodes.get(p)
      if (n !== undefined && nowMs - n.mtime > n.ttlMs) out.push(p)
    }
    return out.sort(compareNames)
  }

  /** When the next node becomes eligible (ms since epoch), if any. */
  nextReapAtMs(): number | undefined {
    if (this.emptyContainers.size > 0) return 0
    let at: number | undefined
    for (const p of this.idleTtlNodes) {
      const n = this.nodes.get(p)
      if (n === undefined) continue
      const t = n.mtime + n.ttlMs + 1
      if (at === undefined || t < at) at = t
    }
    return at
  }

  // ------------------------------------------------------------ apply

  /** Applies a committed Txn. `replay` tolerates Txns whose effects are already (partly) in the tree. */
  apply(txn: Txn, replay = false): ApplyResult {
    const changes: Change[] = []
    const res = this.applyOp(txn, txn.op, changes, replay)
    if (txn.zxid > this.lastZxid) this.lastZxid = txn.zxid
    return { ...res, changes }
  }

  private applyOp(txn: Txn, op: TxnOp, changes: Change[], replay: boolean): Omit<ApplyResult, 'changes'> {
    switch (op.type) {
      case 'createSession':
        if (!this.sessions.has(op.sessionId)) {
          this.sessions.set(op.sessionId, op.timeoutMs)
          this.lanes.add(this.hashSession(op.sessionId, op.timeoutMs))
        }
        return { err: 'OK', body: undefined, sessionCreated: { id: op.sessionId, timeoutMs: op.timeoutMs } }
      case 'closeSession':
        this.closeSession(op.sessionId, op.paths, txn, changes, replay)
        return { err: 'OK', body: { op: OpCode.closeSession }, sessionClosed: op.sessionId }
      case 'create': {
        const ok = this.create(op, txn, changes, replay)
        const node = this.nodes.get(op.path)
        if (!ok || node === undefined) return { err: 'OK', body: undefined }
        if (op.opcode === OpCode.create) return { err: 'OK', body: { op: OpCode.create, path: op.path } }
        return {
          err: 'OK',
          body: { op: op.opcode as typeof OpCode.create2, path: op.path, stat: node.stat() },
        }
      }
      case 'delete':
      case 'reap':
        this.deleteNode(
          op.path,
          txn.zxid,
          changes,
          replay ? 'replay' : op.type === 'reap' ? 'tolerant' : 'live',
        )
        return { err: 'OK', body: { op: OpCode.delete } }
      case 'setData': {
        const n = this.nodes.get(op.path)
        if (n === undefined) {
          assert(replay, `setData of missing ${op.path} at ${txn.zxid}`)
          return { err: 'OK', body: undefined }
        }
        this.update(op.path, n, () => {
          n.data = op.data.length === 0 ? EMPTY : op.data.slice()
          n.version = op.version
          n.mzxid = txn.zxid
          n.mtime = txn.timeMs
        })
        changes.push({ type: 'dataChanged', path: op.path })
        return { err: 'OK', body: { op: OpCode.setData, stat: n.stat() } }
      }
      case 'setACL': {
        const n = this.nodes.get(op.path)
        if (n === undefined) {
          assert(replay, `setACL of missing ${op.path}`)
          return { err: 'OK', body: undefined }
        }
        this.update(op.path, n, () => {
          this.acls.release(n.acl)
          n.acl = this.acls.take(op.acl)
          n.aversion = op.aversion
        })
        return { err: 'OK', body: { op: OpCode.setACL, stat: n.stat() } }
      }
      case 'check':
        return { err: 'OK', body: { op: OpCode.check } }
      case 'multi':
        return {
          err: 'OK',
          body: { op: OpCode.multi, results: op.ops.map((o) => this.multiOne(txn, o, changes, replay)) },
        }
    }
  }

  private multiOne(txn: Txn, op: TxnOp, changes: Change[], replay: boolean): MultiResult {
    const r = this.applyOp(txn, op, changes, replay).body
    if (r === undefined) return { type: OpCode.check }
    switch (r.op) {
      case OpCode.create:
        return { type: OpCode.create, path: r.path }
      case OpCode.create2:
      case OpCode.createContainer:
      case OpCode.createTTL:
        return { type: r.op, path: r.path, stat: r.stat }
      case OpCode.setData:
        return { type: OpCode.setData, stat: r.stat }
      case OpCode.delete:
        return { type: OpCode.delete }
      default:
        return { type: OpCode.check }
    }
  }

  private create(
    op: Extract<TxnOp, { type: 'create' }>,
    txn: Txn,
    changes: Change[],
    replay: boolean,
  ): boolean {
    const parentP = parentPath(op.path)
    const parent = this.nodes.get(parentP)
    if (parent === undefined) {
      assert(replay, `create ${op.path}: no parent at ${txn.zxid}`)
      return false
    }
    this.update(parentP, parent, () => {
      parent.cversion = op.parentCVersion
      if (txn.zxid > parent.pzxid) parent.pzxid = txn.zxid
      parent.addChild(baseName(op.path))
    })
    if (this.nodes.has(op.path)) {
      assert(replay, `create of existing ${op.path} at ${txn.zxid}`)
      return false
    }
    const data = op.data.length === 0 ? EMPTY : op.data.slice()
    const n = this.makeNode(
      data,
      op.acl,
      op.kind as NodeKind,
      op.ephemeralOwner,
      op.ttlMs,
      txn.zxid,
      txn.timeMs,
    )
    this.nodes.set(op.path, n)
    this.lanes.add(this.hashNode(op.path, n))
    this.trackReapable(op.path, n)
    if (n.kind === NodeKind.ephemeral) {
      let set = this.ephemerals.get(n.ephemeralOwner)
      if (set === undefined) this.ephemerals.set(n.ephemeralOwner, (set = new Set()))
      set.add(op.path)
    }
    changes.push({ type: 'created', path: op.path }, { type: 'childrenChanged', path: parentP })
    return true
  }

  /**
   * Removes an empty node. `live`: anything else is a bug (prep checked it).
   * `tolerant` (a reap, or a session's ephemerals): a node gone or not
   * empty is left alone. `replay` (the log over a fuzzy snapshot, which may
   * hold nodes from later than this Txn): a missing node still advances
   * its parent's pzxid, as its delete did; a node with children is a later
   * incarnation (this one was empty when deleted), so it goes with its
   * whole subtree — the later Txns in the log create them again.
   */
  private deleteNode(
    path: string,
    zxid: number,
    changes: Change[],
    mode: 'live' | 'tolerant' | 'replay',
  ): void {
    const n = this.nodes.get(path)
    if (n === undefined || path === '/') {
      assert(mode !== 'live', `delete of missing ${path} at ${zxid}`)
      if (mode === 'replay' && path !== '/') this.advancePzxid(parentPath(path), zxid)
      return
    }
    if (n.children !== null) {
      assert(mode !== 'live', `delete of non-empty ${path} at ${zxid}`)
      if (mode !== 'replay') return
      const below: string[] = []
      const stack = [path]
      while (stack.length > 0) {
        const p = stack.pop()!
        for (const c of this.nodes.get(p)?.children ?? []) {
          const cp = `${p}/${c}`
          below.push(cp)
          stack.push(cp)
        }
      }
      // Deepest first: a path sorts after its ancestors.
      for (const p of below.sort(compareNames).reverse()) this.deleteNode(p, zxid, changes, mode)
    }
    this.lanes.sub(this.hashNode(path, n))
    this.nodes.delete(path)
    this.acls.release(n.acl)
    this.emptyContainers.delete(path)
    this.idleTtlNodes.delete(path)
    if (n.kind === NodeKind.ephemeral) {
      const set = this.ephemerals.get(n.ephemeralOwner)
      set?.delete(path)
      if (set?.size === 0) this.ephemerals.delete(n.ephemeralOwner)
    }
    const parentP = parentPath(path)
    const parent = this.nodes.get(parentP)
    if (parent !== undefined) {
      this.update(parentP, parent, () => {
        parent.removeChild(baseName(path))
        if (zxid > parent.pzxid) parent.pzxid = zxid
      })
    }
    changes.push({ type: 'deleted', path }, { type: 'childrenChanged', path: parentP })
  }

  private advancePzxid(path: string, zxid: number): void {
    const n = this.nodes.get(path)
    if (n === undefined || zxid <= n.pzxid) return
    this.update(path, n, () => {
      n.pzxid = zxid
    })
  }

  private closeSession(
    id: bigint,
    paths: readonly string[],
    txn: Txn,
    changes: Change[],
    replay: boolean,
  ): void {
    // Deepest first is not needed (ephemerals have no children); sorted for determinism.
    const own = this.ephemerals.get(id) ?? new Set<string>()
    // Live, the Txn names exactly the indexed ephemerals. In a replay over a
    // fuzzy snapshot some may be gone already (or be another node now): their
    // parents' pzxid still advances, as it did when they were deleted.
    if (replay) for (const p of paths) if (!own.has(p)) this.advancePzxid(parentPath(p), txn.zxid)
    for (const p of [...own].sort(compareNames))
      this.deleteNode(p, txn.zxid, changes, replay ? 'replay' : 'tolerant')
    const timeout = this.sessions.get(id)
    if (timeout !== undefined) {
      this.sessions.delete(id)
      this.lanes.sub(this.hashSession(id, timeout))
    }
  }

  /** Restores a session read from a snapshot. */
  restoreSession(id: bigint, timeoutMs: number): void {
    if (this.sessions.has(id)) return
    this.sessions.set(id, timeoutMs)
    this.lanes.add(this.hashSession(id, timeoutMs))
  }

  /** Inserts a node read from a snapshot (links and indexes come in `finishRestore`). */
  restoreNode(path: string, n: ZNode): void {
    const old = this.nodes.get(path)
    if (old !== undefined) this.lanes.sub(this.hashNode(path, old))
    this.nodes.set(path, n)
  }

  /** After a snapshot is loaded: link children, index ephemerals and reaping candidates, sum the digest. */
  finishRestore(): void {
    for (const n of this.nodes.values()) n.children = null
    for (const [path, n] of this.nodes) {
      if (path !== '/') {
        const parent = this.nodes.get(parentPath(path))
        if (parent === undefined) {
          this.nodes.delete(path)
          continue
        }
        parent.addChild(baseName(path))
      }
      if (n.kind === NodeKind.ephemeral) {
        let set = this.ephemerals.get(n.ephemeralOwner)
        if (set === undefined) this.ephemerals.set(n.ephemeralOwner, (set = new Set()))
        set.add(path)
      }
    }
    this.lanes.a = 0
    this.lanes.b = 0
    this.lanes.count = 0
    for (const [id, t] of this.sessions) this.lanes.add(this.hashSession(id, t))
    for (const [path, n] of this.nodes) {
      this.lanes.add(this.hashNode(path, n))
      this.trackReapable(path, n)
    }
  }
}

const EMPTY = new Uint8Array(0)
