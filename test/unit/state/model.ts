/**
 * The reference model of the replicated state (TreeDb around the DataTree):
 * deliberately naive, a Map of path → plain record, requests executed one
 * at a time in prep order, ZooKeeper's rules written out again from the spec
 * (client-api.md) and the reference notes (§2.2–2.5, 2.9), independently of
 * server/tree, server/txn and server/state. It gives what every request
 * must answer (the code and a multi's per-op codes when it fails, else the
 * result with its Stats) and the watch changes it makes.
 *
 * Visible cversion is kept as what the spec says clients see — child
 * creates plus child deletes — not as 2*creates − numChildren, so the
 * tree's 2*cversion − numChildren formula is checked, not copied. (The system nodes under
 * '/' and '/zookeeper' are there from the start without a create, which
 * ZooKeeper shows as −1 per such child.) Versions wrap as a signed int32 and
 * skip −1, as ZooKeeper's checkAndIncVersion (ZOOKEEPER-4743).
 */

import type { OpResult, TxnResult } from '../../../server/txn/apply.js'
import type { MultiOpRequest, PrepRequest } from '../../../server/txn/request.js'
import type { Acl, Id } from '../../../shared/acl.js'
import { OPEN_ACL_UNSAFE, READ_ACL_UNSAFE } from '../../../shared/acl.js'
import type { ErrorCode } from '../../../shared/errors.js'
import { pathError } from '../../../shared/paths.js'
import type { WireStat } from '../../../shared/stat.js'
import { type Dump, hex, type NodeDump } from '../tree/compare.js'

export type Kind = 'normal' | 'ephemeral' | 'container' | 'ttl'

export interface MNode {
  /** null: no data (distinct from empty bytes, as ZooKeeper). */
  data: Uint8Array | null
  acl: Acl[]
  kind: Kind
  owner: bigint
  ttl: number
  czxid: number
  mzxid: number
  pzxid: number
  ctime: number
  mtime: number
  version: number
  aversion: number
  /** Children ever created under this node (the next sequence number). */
  creates: number
  /** Children ever deleted from under this node. */
  deletes: number
  /** Children present without a create (the system nodes). */
  system: number
}

export interface Ctx {
  zxid: number
  timeMs: number
  sessionId: bigint
  authIds: readonly Id[]
}

export interface MChange {
  type: 'created' | 'deleted' | 'dataChanged' | 'childrenChanged'
  path: string
  zxid: number
}

/** What applying the request's Txn must return (a failed request is an `error` Txn), and its changes. */
export interface MResult {
  result: TxnResult
  changes: MChange[]
}

const SPECIAL = new Set(['/', '/zookeeper', '/zookeeper/quota', '/zookeeper/config'])

const MIB = 1024 * 1024
const TTL_MAX = 2 ** 40 - 1
const READ = 1
const WRITE = 2
const CREATE = 4
const DELETE = 8
const ADMIN = 16

class Failure {
  constructor(readonly err: ErrorCode) {}
}

function fail(err: ErrorCode): never {
  throw new Failure(err)
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i === 0 ? '/' : path.slice(0, i)
}

function ip4(s: string): number | undefined {
  const p = s.split('.')
  if (p.length !== 4 || p.some((x) => !/^\d+$/.test(x) || Number(x) > 255)) return undefined
  return p.reduce((acc, x) => acc * 256 + Number(x), 0)
}

/** The ip scheme: exact address, or IPv4 network/bits. */
export function modelIpMatch(aclId: string, addr: string): boolean {
  if (!aclId.includes('/')) return aclId === addr
  const [net, bits] = aclId.split('/') as [string, string]
  const a = ip4(net)
  const b = ip4(addr)
  if (a === undefined || b === undefined) return false
  const size = 2 ** (32 - Number(bits))
  return Math.floor(a / size) === Math.floor(b / size)
}

export function modelAllowed(acl: readonly Acl[], perm: number, ids: readonly Id[]): boolean {
  if (acl.length === 0 || ids.some((i) => i.scheme === 'super')) return true
  return acl.some(
    (a) =>
      (a.perms & perm) !== 0 &&
      ((a.id.scheme === 'world' && a.id.id === 'anyone') ||
        ids.some(
          (i) =>
            i.scheme === a.id.scheme && (i.scheme === 'ip' ? modelIpMatch(a.id.id, i.id) : i.id === a.id.id),
        )),
  )
}

/** ZooKeeper's fixupACL for the schemes the tests use. */
export function modelFixup(acl: readonly Acl[], ids: readonly Id[]): Acl[] | undefined {
  if (acl.length === 0) return undefined
  const out: Acl[] = []
  for (const a of acl) {
    const { scheme, id } = a.id
    if (scheme === 'world' && id === 'anyone') out.push(a)
    else if (scheme === 'auth') {
      const mine = ids.filter((i) => i.scheme === 'digest')
      if (mine.length === 0) return undefined
      for (const m of mine) out.push({ perms: a.perms, id: { scheme: m.scheme, id: m.id } })
    } else if (scheme === 'digest' && /^[^:]+:[^:]+$/.test(id)) out.push(a)
    else if (a.perms < 0 || a.perms > 31) return undefined
    else if (scheme === 'ip' && ip4(id.split('/')[0]!) !== undefined) out.push(a)
    else return undefined
  }
  return out.filter(
    (a, i) =>
      out.findIndex((b) => b.perms === a.perms && b.id.scheme === a.id.scheme && b.id.id === a.id.id) === i,
  )
}

const MODES = [
  'persistent',
  'ephemeral',
  'persistentSequential',
  'ephemeralSequential',
  'container',
  'persistentWithTtl',
  'persistentSequentialWithTtl',
]

/** The version after `v`: a signed int32 that never becomes −1. */
function nextVersion(v: number): number {
  const n = (v + 1) | 0
  return n === -1 ? 0 : n
}

function seq(n: number): string {
  return String(n).padStart(10, '0')
}

export class Model {
  nodes = new Map<string, MNode>()
  sessions = new Map<bigint, number>()

  constructor() {
    const sys = (system: number): MNode => ({
      data: new Uint8Array(0),
      acl: [...OPEN_ACL_UNSAFE],
      kind: 'normal',
      owner: 0n,
      ttl: 0,
      czxid: 0,
      mzxid: 0,
      pzxid: 0,
      ctime: 0,
      mtime: 0,
      version: 0,
      aversion: 0,
      creates: 0,
      deletes: 0,
      system,
    })
    this.nodes.set('/', sys(1))
    this.nodes.set('/zookeeper', sys(2))
    this.nodes.set('/zookeeper/quota', sys(0))
    // ZooKeeper sets this one's ACL with setACL(…, -1): READ for anyone, aversion -1.
    this.nodes.set('/zookeeper/config', { ...sys(0), acl: [...READ_ACL_UNSAFE], aversion: -1 })
  }

  children(path: string): string[] {
    const out: string[] = []
    for (const p of this.nodes.keys()) {
      if (p !== '/' && parentOf(p) === path) out.push(p.slice(p.lastIndexOf('/') + 1))
    }
    return out.sort()
  }

  stat(path: string): WireStat {
    const n = this.nodes.get(path)!
    const numChildren = this.children(path).length
    return {
      czxid: n.czxid,
      mzxid: n.mzxid,
      ctime: n.ctime,
      mtime: n.mtime,
      version: n.version,
      cversion: (n.creates + n.deletes - n.system) | 0,
      aversion: n.aversion,
      ephemeralOwner: n.kind === 'ephemeral' ? n.owner : 0n,
      dataLength: n.data?.length ?? 0,
      numChildren,
      pzxid: n.pzxid,
    }
  }

  /** Containers that had a child and have none; TTL nodes without children unchanged for longer than their TTL. */
  reapable(now: number): string[] {
    const out: string[] = []
    for (const [p, n] of this.nodes) {
      if (this.children(p).length > 0) continue
      if (n.kind === 'container' && n.creates !== 0) out.push(p)
      if (n.kind === 'ttl' && now - n.mtime > n.ttl) out.push(p)
    }
    return out.sort()
  }

  ephemeralsOf(id: bigint): string[] {
    return [...this.nodes].filter(([, n]) => n.kind === 'ephemeral' && n.owner === id).map(([p]) => p)
  }

  /** An independent copy (a state to go back to). */
  clone(): Model {
    const m = new Model()
    m.nodes = this.copyNodes()
    m.sessions = new Map(this.sessions)
    return m
  }

  /** The model in the shape of dumpTree (test/unit/tree/compare.ts). */
  dump(): Dump {
    const nodes: Record<string, NodeDump> = {}
    for (const path of [...this.nodes.keys()].sort()) {
      const n = this.nodes.get(path)!
      nodes[path] = {
        stat: this.stat(path),
        data: hex(n.data),
        acl: n.acl.map((a) => ({ perms: a.perms, scheme: a.id.scheme, id: a.id.id })),
        children: this.children(path),
      }
    }
    const ephemerals: Record<string, string[]> = {}
    for (const path of [...this.nodes.keys()].sort()) {
      const n = this.nodes.get(path)!
      if (n.kind === 'ephemeral') (ephemerals[String(n.owner)] ??= []).push(path)
    }
    return {
      nodes,
      sessions: [...this.sessions].map(([id, t]): [string, number] => [String(id), t]).sort(),
      ephemerals: Object.fromEntries(Object.entries(ephemerals).sort()),
    }
  }

  exec(req: PrepRequest, ctx: Ctx): MResult {
    if (req.type === 'multi') return this.multi(req.ops, ctx)
    const changes: MChange[] = []
    try {
      return { result: this.one(req, ctx, changes), changes }
    } catch (e) {
      if (e instanceof Failure) return { result: { type: 'error', code: e.err }, changes: [] }
      throw e
    }
  }

  private copyNodes(): Map<string, MNode> {
    const m = new Map<string, MNode>()
    for (const [p, n] of this.nodes) m.set(p, { ...n })
    return m
  }

  private multi(ops: readonly MultiOpRequest[], ctx: Ctx): MResult {
    const saved = this.copyNodes()
    const changes: MChange[] = []
    const results: OpResult[] = []
    for (let i = 0; i < ops.length; i++) {
      try {
        const op = ops[i]!
        if (!['create', 'delete', 'setData', 'check'].includes(op.type)) fail('BAD_ARGUMENTS')
        results.push(this.one(op, ctx, changes) as OpResult)
      } catch (e) {
        if (!(e instanceof Failure)) throw e
        this.nodes = saved
        return {
          result: {
            type: 'error',
            code: e.err,
            results: ops.map((_, j) => (j < i ? 'OK' : j === i ? e.err : 'RUNTIME_INCONSISTENCY')),
          },
          changes: [],
        }
      }
    }
    return { result: { type: 'multi', results }, changes }
  }

  private node(path: string): MNode {
    return this.nodes.get(path) ?? fail('NO_NODE')
  }

  private version(expected: number, actual: number): void {
    if (expected !== -1 && expected !== actual) fail('BAD_VERSION')
  }

  private path(path: string, sequential = false): void {
    if (pathError(path, sequential) !== null) fail('BAD_ARGUMENTS')
  }

  private remove(path: string, ctx: Ctx, changes: MChange[]): void {
    this.nodes.delete(path)
    const parent = this.nodes.get(parentOf(path))!
    parent.deletes++
    parent.pzxid = Math.max(parent.pzxid, ctx.zxid)
    changes.push(
      { type: 'deleted', path, zxid: ctx.zxid },
      { type: 'childrenChanged', path: parentOf(path), zxid: ctx.zxid },
    )
  }

  private session(ctx: Ctx): void {
    if (!this.sessions.has(ctx.sessionId)) fail('SESSION_EXPIRED')
  }

  private one(req: PrepRequest, ctx: Ctx, changes: MChange[]): TxnResult {
    switch (req.type) {
      case 'create': {
        this.session(ctx)
        const flag = MODES.indexOf(req.mode)
        if (flag < 0) fail('BAD_ARGUMENTS')
        const ttlMode = flag === 5 || flag === 6
        const ttl = req.ttlMs
        if (ttlMode ? !(ttl !== undefined && ttl > 0 && ttl <= TTL_MAX) : ttl !== undefined && ttl >= 0)
          fail('BAD_ARGUMENTS')
        if ((req.data?.length ?? 0) > MIB) fail('BAD_ARGUMENTS')
        const sequential = flag === 2 || flag === 3 || flag === 6
        this.path(req.path, sequential)
        const acl = modelFixup(req.acl, ctx.authIds) ?? fail('INVALID_ACL')
        const parentP =
          req.path.endsWith('/') && req.path !== '/' ? req.path.slice(0, -1) : parentOf(req.path)
        const parent = this.node(parentP)
        if (!modelAllowed(parent.acl, CREATE, ctx.authIds)) fail('NO_AUTH')
        const path = sequential ? req.path + seq(parent.creates) : req.path
        this.path(path)
        if (this.nodes.has(path)) fail('NODE_EXISTS')
        if (parent.kind === 'ephemeral') fail('NO_CHILDREN_FOR_EPHEMERALS')
        const ephemeral = flag === 1 || flag === 3
        parent.creates++
        parent.pzxid = ctx.zxid
        this.nodes.set(path, {
          data: req.data === null ? null : req.data.slice(),
          acl,
          kind: ephemeral ? 'ephemeral' : flag === 4 ? 'container' : ttlMode ? 'ttl' : 'normal',
          owner: ephemeral ? ctx.sessionId : 0n,
          ttl: ttlMode ? ttl! : 0,
          czxid: ctx.zxid,
          mzxid: ctx.zxid,
          pzxid: ctx.zxid,
          ctime: ctx.timeMs,
          mtime: ctx.timeMs,
          version: 0,
          aversion: 0,
          creates: 0,
          deletes: 0,
          system: 0,
        })
        changes.push(
          { type: 'created', path, zxid: ctx.zxid },
          { type: 'childrenChanged', path: parentP, zxid: ctx.zxid },
        )
        return { type: 'create', path, stat: this.stat(path) }
      }
      case 'delete': {
        this.session(ctx)
        this.path(req.path)
        if (SPECIAL.has(req.path)) fail('BAD_ARGUMENTS')
        // ZooKeeper's order: the parent, its DELETE permission, then the node.
        const parent = this.node(parentOf(req.path))
        if (!modelAllowed(parent.acl, DELETE, ctx.authIds)) fail('NO_AUTH')
        const n = this.node(req.path)
        this.version(req.version, n.version)
        if (this.children(req.path).length > 0) fail('NOT_EMPTY')
        this.remove(req.path, ctx, changes)
        return { type: 'delete' }
      }
      case 'setData': {
        this.session(ctx)
        this.path(req.path)
        if ((req.data?.length ?? 0) > MIB) fail('BAD_ARGUMENTS')
        const n = this.node(req.path)
        if (!modelAllowed(n.acl, WRITE, ctx.authIds)) fail('NO_AUTH')
        this.version(req.version, n.version)
        n.data = req.data === null ? null : req.data.slice()
        n.version = nextVersion(n.version)
        n.mzxid = ctx.zxid
        n.mtime = ctx.timeMs
        changes.push({ type: 'dataChanged', path: req.path, zxid: ctx.zxid })
        return { type: 'setData', stat: this.stat(req.path) }
      }
      case 'setACL': {
        this.session(ctx)
        this.path(req.path)
        // ZooKeeper's order: fixupACL before the node is looked up.
        const acl = modelFixup(req.acl, ctx.authIds) ?? fail('INVALID_ACL')
        const n = this.node(req.path)
        if (!modelAllowed(n.acl, ADMIN, ctx.authIds)) fail('NO_AUTH')
        this.version(req.version, n.aversion)
        n.acl = acl
        n.aversion = nextVersion(n.aversion)
        return { type: 'setACL', stat: this.stat(req.path) }
      }
      case 'check': {
        this.session(ctx)
        this.path(req.path)
        const n = this.node(req.path)
        if (!modelAllowed(n.acl, READ, ctx.authIds)) fail('NO_AUTH')
        this.version(req.version, n.version)
        return { type: 'check' }
      }
      case 'createSession':
        if (!(req.timeoutMs > 0)) fail('BAD_ARGUMENTS')
        if (this.sessions.has(ctx.sessionId)) fail('RUNTIME_INCONSISTENCY')
        this.sessions.set(ctx.sessionId, req.timeoutMs)
        return { type: 'createSession', timeoutMs: req.timeoutMs }
      case 'closeSession': {
        // No check: closing an unknown session is a no-op.
        const deleted = this.ephemeralsOf(ctx.sessionId).sort()
        for (const p of deleted) this.remove(p, ctx, changes)
        this.sessions.delete(ctx.sessionId)
        return { type: 'closeSession', deleted }
      }
      case 'reap': {
        this.path(req.path)
        if (SPECIAL.has(req.path)) fail('BAD_ARGUMENTS')
        const n = this.node(req.path)
        if (this.children(req.path).length > 0) fail('NOT_EMPTY')
        const eligible =
          (n.kind === 'container' && n.creates !== 0) || (n.kind === 'ttl' && ctx.timeMs - n.mtime > n.ttl)
        if (!eligible) fail('BAD_VERSION')
        this.remove(req.path, ctx, changes)
        return { type: 'deleteContainer', path: req.path }
      }
      case 'multi':
        return fail('BAD_ARGUMENTS')
    }
  }
}
