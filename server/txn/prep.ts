/**
 * prep: a client write (or a write the server makes: session create and
 * close, reaping) + the current tree + the outstanding changes of Txns
 * prepped but not yet applied → a Txn, or an error code. Pure and
 * synchronous. Checks and their order follow ZooKeeper's
 * PrepRequestProcessor. A multi is one Txn, all-or-nothing: on a failing op
 * its changes are rolled back and it uses no sequence number.
 *
 * Pure: imports only shared/ and server/txn, server/tree.
 */
import type { Acl, Id } from '../../shared/acl.js'
import { ErrorCode } from '../../shared/errors.js'
import {
  createModeOfFlag,
  isEphemeralMode,
  isSequentialMode,
  isTtlMode,
  OpCode,
  Perms,
  TTL_MS_MAX,
} from '../../shared/opcodes.js'
import { parentPath, pathError, sequenceSuffix } from '../../shared/paths.js'
import type { MultiResult } from '../../shared/records.js'
import { checkAcl, fixupAcl } from '../tree/acl-check.js'
import { compareNames, NodeKind } from '../tree/znode.js'
import type { Txn, TxnOp } from './txn-types.js'

export const DATA_BYTES_MAX = 1024 * 1024

export type PrepRequest =
  | { kind: 'create'; path: string; data: Uint8Array; acl: Acl[]; flags: number; ttlMs: number; op: number }
  | { kind: 'delete'; path: string; version: number }
  | { kind: 'setData'; path: string; data: Uint8Array; version: number }
  | { kind: 'setACL'; path: string; acl: Acl[]; version: number }
  | { kind: 'check'; path: string; version: number }
  | { kind: 'multi'; ops: PrepRequest[] }
  | { kind: 'createSession'; sessionId: bigint; timeoutMs: number }
  | { kind: 'closeSession'; sessionId: bigint }
  | { kind: 'reap'; path: string }

/** What prep needs to know of a node (from the tree, or as an outstanding change left it). */
export interface NodeRecord {
  exists: boolean
  version: number
  /** Stored cversion: child creates so far. */
  cversion: number
  aversion: number
  numChildren: number
  kind: number
  owner: bigint
  ttlMs: number
  mtime: number
  acl: readonly Acl[]
}

export interface PrepView {
  node(path: string): NodeRecord | undefined
  hasSession(id: bigint): boolean
  ephemeralsOf(id: bigint): Iterable<string>
}

export interface PrepContext {
  zxid: number
  timeMs: number
  sessionId: bigint
  cxid: number
  authIds: readonly Id[]
}

export type PrepResult = { ok: true; txn: Txn } | { ok: false; err: ErrorCode; results?: MultiResult[] }

class Fail {
  constructor(readonly err: ErrorCode) {}
}

/**
 * Outstanding changes: the effect of every Txn prepped but not yet applied,
 * per path, tagged with its zxid (ZooKeeper's outstandingChanges).
 */
export class Outstanding implements PrepView {
  private readonly byPath = new Map<string, { zxid: number; rec: NodeRecord | null }>()
  private readonly sessions = new Map<bigint, { zxid: number; live: boolean }>()

  constructor(private readonly base: PrepView) {}

  node(path: string): NodeRecord | undefined {
    const c = this.byPath.get(path)
    if (c !== undefined) return c.rec ?? undefined
    return this.base.node(path)
  }

  hasSession(id: bigint): boolean {
    const s = this.sessions.get(id)
    return s !== undefined ? s.live : this.base.hasSession(id)
  }

  /**
   * The session's ephemerals as the outstanding changes leave them: those
   * in the tree not deleted since, plus those created by prepped Txns (as
   * ZooKeeper's closeSession prep merges outstandingChanges), so that a
   * closeSession prepped before its session's creates are applied deletes
   * them in the overlay too.
   */
  ephemeralsOf(id: bigint): Iterable<string> {
    const out: string[] = []
    for (const p of this.base.ephemeralsOf(id)) if (!this.byPath.has(p)) out.push(p)
    for (const [p, c] of this.byPath) {
      if (c.rec !== null && c.rec.kind === NodeKind.ephemeral && c.rec.owner === id) out.push(p)
    }
    return out
  }

  /** Changes in the order they were made, to forget them in O(1) each once applied. */
  private readonly order: { zxid: number; path?: string; session?: bigint }[] = []
  private head = 0

  set(path: string, zxid: number, rec: NodeRecord | null): void {
    this.byPath.set(path, { zxid, rec })
    this.order.push({ zxid, path })
  }

  setSession(id: bigint, zxid: number, live: boolean): void {
    this.sessions.set(id, { zxid, live })
    this.order.push({ zxid, session: id })
  }

  /** Forgets changes of Txns up to `zxid`, now applied (a later change to the same path stays). */
  applied(zxid: number): void {
    while (this.head < this.order.length && this.order[this.head]!.zxid <= zxid) {
      const o = this.order[this.head++]!
      if (o.path !== undefined && (this.byPath.get(o.path)?.zxid ?? Infinity) <= zxid)
        this.byPath.delete(o.path)
      if (o.session !== undefined && (this.sessions.get(o.session)?.zxid ?? Infinity) <= zxid)
        this.sessions.delete(o.session)
    }
    if (this.head > 4096 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head)
      this.head = 0
    }
  }

  get size(): number {
    return this.byPath.size + this.sessions.size
  }

  clear(): void {
    this.byPath.clear()
    this.sessions.clear()
    this.order.length = 0
    this.head = 0
  }

  /** For multi rollback. */
  save(): [
    Map<string, { zxid: number; rec: NodeRecord | null }>,
    Map<bigint, { zxid: number; live: boolean }>,
  ] {
    return [new Map(this.byPath), new Map(this.sessions)]
  }

  restore(s: ReturnType<Outstanding['save']>): void {
    this.byPath.clear()
    for (const [k, v] of s[0]) this.byPath.set(k, v)
    this.sessions.clear()
    for (const [k, v] of s[1]) this.sessions.set(k, v)
  }
}

function need(cond: boolean, err: ErrorCode): void {
  if (!cond) throw new Fail(err)
}

function checkVersion(expected: number, actual: number): void {
  need(expected === -1 || expected === actual, ErrorCode.BAD_VERSION)
}

export function prep(req: PrepRequest, view: Outstanding, ctx: PrepContext): PrepResult {
  if (req.kind === 'multi') return prepMulti(req.ops, view, ctx)
  try {
    const op = prepOne(req, view, ctx)
    return {
      ok: true,
      txn: { sessionId: ctx.sessionId, cxid: ctx.cxid, zxid: ctx.zxid, timeMs: ctx.timeMs, op },
    }
  } catch (e) {
    if (e instanceof Fail) return { ok: false, err: e.err }
    throw e
  }
}

function prepMulti(ops: PrepRequest[], view: Outstanding, ctx: PrepContext): PrepResult {
  const saved = view.save()
  const txns: TxnOp[] = []
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i]!
    try {
      need(
        o.kind === 'create' || o.kind === 'delete' || o.kind === 'setData' || o.kind === 'check',
        ErrorCode.BAD_ARGUMENTS,
      )
      txns.push(prepOne(o, view, ctx))
    } catch (e) {
      if (!(e instanceof Fail)) throw e
      view.restore(saved)
      const results: MultiResult[] = ops.map((_, j) => ({
        type: OpCode.error,
        err: j < i ? 0 : j === i ? errno(e.err) : errno(ErrorCode.RUNTIME_INCONSISTENCY),
      }))
      return { ok: false, err: e.err, results }
    }
  }
  return {
    ok: true,
    txn: {
      sessionId: ctx.sessionId,
      cxid: ctx.cxid,
      zxid: ctx.zxid,
      timeMs: ctx.timeMs,
      op: { type: 'multi', ops: txns },
    },
  }
}

const ERRNO: Partial<Record<ErrorCode, number>> = {
  BAD_ARGUMENTS: -8,
  RUNTIME_INCONSISTENCY: -2,
  NO_NODE: -101,
  NO_AUTH: -102,
  BAD_VERSION: -103,
  NO_CHILDREN_FOR_EPHEMERALS: -108,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
  INVALID_ACL: -114,
  UNIMPLEMENTED: -6,
}

function errno(code: ErrorCode): number {
  return ERRNO[code] ?? -1
}

function validPath(path: string, sequential = false): void {
  need(pathError(path, sequential) === null, ErrorCode.BAD_ARGUMENTS)
}

function prepOne(req: PrepRequest, view: Outstanding, ctx: PrepContext): TxnOp {
  switch (req.kind) {
    case 'create':
      return prepCreate(req, view, ctx)
    case 'delete': {
      validPath(req.path)
      need(req.path !== '/', ErrorCode.BAD_ARGUMENTS)
      // ZooKeeper's order: the parent, its DELETE permission, then the node
      // (so a client without DELETE learns nothing of which children exist).
      const parentP = parentPath(req.path)
      const parent = view.node(parentP)
      need(parent !== undefined, ErrorCode.NO_NODE)
      need(checkAcl(parent!.acl, Perms.DELETE, ctx.authIds), ErrorCode.NO_AUTH)
      const node = view.node(req.path)
      need(node !== undefined, ErrorCode.NO_NODE)
      checkVersion(req.version, node!.version)
      need(node!.numChildren === 0, ErrorCode.NOT_EMPTY)
      view.set(req.path, ctx.zxid, null)
      view.set(parentP, ctx.zxid, { ...parent!, numChildren: parent!.numChildren - 1 })
      return { type: 'delete', path: req.path }
    }
    case 'setData': {
      validPath(req.path)
      need(req.data.length <= DATA_BYTES_MAX, ErrorCode.BAD_ARGUMENTS)
      const node = view.node(req.path)
      need(node !== undefined, ErrorCode.NO_NODE)
      need(checkAcl(node!.acl, Perms.WRITE, ctx.authIds), ErrorCode.NO_AUTH)
      checkVersion(req.version, node!.version)
      const version = (node!.version + 1) | 0
      view.set(req.path, ctx.zxid, { ...node!, version, mtime: ctx.timeMs })
      return { type: 'setData', path: req.path, data: req.data, version }
    }
    case 'setACL': {
      validPath(req.path)
      const node = view.node(req.path)
      need(node !== undefined, ErrorCode.NO_NODE)
      need(checkAcl(node!.acl, Perms.ADMIN, ctx.authIds), ErrorCode.NO_AUTH)
      const acl = fixupAcl(req.acl, ctx.authIds)
      need(acl !== undefined, ErrorCode.INVALID_ACL)
      checkVersion(req.version, node!.aversion)
      const aversion = (node!.aversion + 1) | 0
      view.set(req.path, ctx.zxid, { ...node!, aversion, acl: acl! })
      return { type: 'setACL', path: req.path, acl: acl!, aversion }
    }
    case 'check': {
      validPath(req.path)
      const node = view.node(req.path)
      need(node !== undefined, ErrorCode.NO_NODE)
      need(checkAcl(node!.acl, Perms.READ, ctx.authIds), ErrorCode.NO_AUTH)
      checkVersion(req.version, node!.version)
      return { type: 'check', path: req.path }
    }
    case 'createSession':
      need(!view.hasSession(req.sessionId), ErrorCode.NODE_EXISTS)
      view.setSession(req.sessionId, ctx.zxid, true)
      return { type: 'createSession', sessionId: req.sessionId, timeoutMs: req.timeoutMs }
    case 'closeSession':
      return prepClose(req.sessionId, view, ctx)
    case 'reap':
      return prepReap(req.path, view, ctx)
    case 'multi':
      throw new Fail(ErrorCode.BAD_ARGUMENTS)
  }
}

function prepCreate(
  req: Extract<PrepRequest, { kind: 'create' }>,
  view: Outstanding,
  ctx: PrepContext,
): TxnOp {
  const mode = createModeOfFlag(req.flags)
  need(mode !== undefined, ErrorCode.BAD_ARGUMENTS)
  const ttlMode = isTtlMode(mode!)
  // createTTL needs a TTL mode and a TTL in range; other opcodes take no TTL.
  need(ttlMode === (req.op === OpCode.createTTL), ErrorCode.BAD_ARGUMENTS)
  if (ttlMode) need(req.ttlMs > 0 && req.ttlMs <= TTL_MS_MAX, ErrorCode.BAD_ARGUMENTS)
  if (req.op === OpCode.createContainer) need(mode === 'container', ErrorCode.BAD_ARGUMENTS)
  need(req.data.length <= DATA_BYTES_MAX, ErrorCode.BAD_ARGUMENTS)
  const sequential = isSequentialMode(mode!)
  validPath(req.path, sequential)
  const acl = fixupAcl(req.acl, ctx.authIds)
  need(acl !== undefined, ErrorCode.INVALID_ACL)
  // A sequential create of '/q/' names a child of '/q' that is just the number.
  const parentP = req.path.length > 1 && req.path.endsWith('/') ? req.path.slice(0, -1) : parentPath(req.path)
  const parent = view.node(parentP)
  need(parent !== undefined, ErrorCode.NO_NODE)
  need(checkAcl(parent!.acl, Perms.CREATE, ctx.authIds), ErrorCode.NO_AUTH)
  const path = sequential ? req.path + sequenceSuffix(parent!.cversion) : req.path
  validPath(path)
  need(view.node(path) === undefined, ErrorCode.NODE_EXISTS)
  need(parent!.kind !== NodeKind.ephemeral, ErrorCode.NO_CHILDREN_FOR_EPHEMERALS)
  const ephemeral = isEphemeralMode(mode!)
  if (ephemeral) need(view.hasSession(ctx.sessionId), ErrorCode.SESSION_EXPIRED)
  const kind = ephemeral
    ? NodeKind.ephemeral
    : mode === 'container'
      ? NodeKind.container
      : ttlMode
        ? NodeKind.ttl
        : NodeKind.normal
  const parentCVersion = (parent!.cversion + 1) | 0
  view.set(parentP, ctx.zxid, { ...parent!, cversion: parentCVersion, numChildren: parent!.numChildren + 1 })
  const owner = ephemeral ? ctx.sessionId : 0n
  view.set(path, ctx.zxid, {
    exists: true,
    version: 0,
    cversion: 0,
    aversion: 0,
    numChildren: 0,
    kind,
    owner,
    ttlMs: ttlMode ? req.ttlMs : 0,
    mtime: ctx.timeMs,
    acl: acl!,
  })
  return {
    type: 'create',
    opcode: req.op,
    path,
    data: req.data,
    acl: acl!,
    kind,
    ephemeralOwner: owner,
    ttlMs: ttlMode ? req.ttlMs : 0,
    parentCVersion,
  }
}

function prepClose(id: bigint, view: Outstanding, ctx: PrepContext): TxnOp {
  need(view.hasSession(id), ErrorCode.SESSION_EXPIRED)
  // The session's ephemerals go with it: later prepped Txns must see them gone.
  const paths: string[] = []
  for (const p of view.ephemeralsOf(id)) {
    const rec = view.node(p)
    if (rec === undefined) continue
    paths.push(p)
    view.set(p, ctx.zxid, null)
    const parentP = parentPath(p)
    const parent = view.node(parentP)
    if (parent !== undefined) view.set(parentP, ctx.zxid, { ...parent, numChildren: parent.numChildren - 1 })
  }
  view.setSession(id, ctx.zxid, false)
  return { type: 'closeSession', sessionId: id, paths: paths.sort(compareNames) }
}

function prepReap(path: string, view: Outstanding, ctx: PrepContext): TxnOp {
  const node = view.node(path)
  need(node !== undefined && node.numChildren === 0, ErrorCode.NO_NODE)
  const eligible =
    (node!.kind === NodeKind.container && node!.cversion > 0) ||
    (node!.kind === NodeKind.ttl && ctx.timeMs - node!.mtime > node!.ttlMs)
  need(eligible, ErrorCode.NOT_EMPTY)
  view.set(path, ctx.zxid, null)
  const parentP = parentPath(path)
  const parent = view.node(parentP)
  if (parent !== undefined) view.set(parentP, ctx.zxid, { ...parent, numChildren: parent.numChildren - 1 })
  return { type: 'reap', path }
}
