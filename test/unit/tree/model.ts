/**
 * A tiny reference model of ZooKeeper's write semantics: a Map of path ->
 * node, applied one request at a time (no overlay, no slots, no digest),
 * written from ZooKeeper's rules independently of server/tree and
 * server/txn. Property tests compare the real thing against it.
 */

import type { OpResult, TxnResult } from '../../../server/txn/apply.js'
import type { MultiOpRequest, PrepRequest } from '../../../server/txn/request.js'
import { type Acl, type Id, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE } from '../../../shared/acl.js'
import { CreateFlag, Perms, TTL_MS_MAX } from '../../../shared/opcodes.js'
import { pathError } from '../../../shared/paths.js'
import type { WireStat } from '../../../shared/stat.js'

type Kind = 'persistent' | 'ephemeral' | 'container' | 'ttl'

export interface MNode {
  /** null: no data (distinct from empty bytes, as ZooKeeper). */
  data: Uint8Array | null
  acl: Acl[]
  czxid: number
  mzxid: number
  pzxid: number
  ctime: number
  mtime: number
  version: number
  creates: number
  aversion: number
  kind: Kind
  owner: bigint
  ttl: number
}

export interface Ctx {
  zxid: number
  timeMs: number
  sessionId: bigint
  authIds: Id[]
}

class Fail {
  constructor(readonly code: string) {}
}

const parentOf = (p: string) => (p.lastIndexOf('/') <= 0 ? '/' : p.slice(0, p.lastIndexOf('/')))
const next = (v: number) => (((v + 1) | 0) === -1 ? 0 : (v + 1) | 0)
const SPECIAL = ['/', '/zookeeper', '/zookeeper/quota', '/zookeeper/config']

export class Model {
  nodes = new Map<string, MNode>()
  sessions = new Map<bigint, number>()

  constructor() {
    const z = { czxid: 0, mzxid: 0, pzxid: 0, ctime: 0, mtime: 0, version: 0, creates: 0, aversion: 0 }
    const base = { ...z, data: new Uint8Array(0), kind: 'persistent' as Kind, owner: 0n, ttl: 0 }
    for (const p of ['/', '/zookeeper', '/zookeeper/quota'])
      this.nodes.set(p, { ...base, acl: [...OPEN_ACL_UNSAFE] })
    this.nodes.set('/zookeeper/config', { ...base, acl: [...READ_ACL_UNSAFE], aversion: -1 })
  }

  children(p: string): string[] {
    const out: string[] = []
    for (const k of this.nodes.keys())
      if (k !== '/' && parentOf(k) === p) out.push(k.slice(k.lastIndexOf('/') + 1))
    return out.sort()
  }

  stat(p: string): WireStat {
    const n = this.nodes.get(p)!
    const kids = this.children(p).length
    return {
      czxid: n.czxid,
      mzxid: n.mzxid,
      ctime: n.ctime,
      mtime: n.mtime,
      version: n.version,
      cversion: n.creates * 2 - kids,
      aversion: n.aversion,
      ephemeralOwner: n.kind === 'ephemeral' ? n.owner : 0n,
      dataLength: n.data?.length ?? 0,
      numChildren: kids,
      pzxid: n.pzxid,
    }
  }

  /** Containers that had a child and have none; childless TTL nodes past their TTL. */
  reapable(nowMs: number): string[] {
    const out: string[] = []
    for (const [p, n] of this.nodes) {
      if (this.children(p).length > 0) continue
      if ((n.kind === 'container' && n.creates > 0) || (n.kind === 'ttl' && nowMs - n.mtime > n.ttl))
        out.push(p)
    }
    return out.sort()
  }

  exec(req: PrepRequest, ctx: Ctx): TxnResult {
    try {
      return this.run(req, ctx)
    } catch (e) {
      if (e instanceof Fail) return { type: 'error', code: e.code as never }
      throw e
    }
  }

  private run(req: PrepRequest, ctx: Ctx): TxnResult {
    switch (req.type) {
      case 'createSession':
        if (req.timeoutMs <= 0) throw new Fail('BAD_ARGUMENTS')
        if (this.sessions.has(ctx.sessionId)) throw new Fail('RUNTIME_INCONSISTENCY')
        this.sessions.set(ctx.sessionId, req.timeoutMs)
        return { type: 'createSession', timeoutMs: req.timeoutMs }
      case 'closeSession': {
        const mine = [...this.nodes].filter(([, n]) => n.kind === 'ephemeral' && n.owner === ctx.sessionId)
        const deleted = mine.map(([p]) => p).sort()
        for (const p of deleted) this.remove(p, ctx.zxid)
        this.sessions.delete(ctx.sessionId)
        return { type: 'closeSession', deleted }
      }
      case 'reap':
        return this.reap(req.path, ctx)
      case 'multi':
        return this.multi(req.ops, ctx)
      case 'setACL':
        return this.setAcl(req.path, req.acl, req.version, ctx)
      default:
        return this.op(req, ctx)
    }
  }

  private multi(ops: readonly MultiOpRequest[], ctx: Ctx): TxnResult {
    const saved = new Map([...this.nodes].map(([p, n]) => [p, { ...n }]))
    const results: OpResult[] = []
    for (let i = 0; i < ops.length; i++) {
      try {
        results.push(this.op(ops[i]!, ctx))
      } catch (e) {
        if (!(e instanceof Fail)) throw e
        this.nodes = saved
        const codes = ops.map((_, j) => (j < i ? 'OK' : j === i ? e.code : 'RUNTIME_INCONSISTENCY'))
        return { type: 'error', code: e.code as never, results: codes as never }
      }
    }
    // A stat in a multi result is the node's stat right after that op; recompute nothing (ops fixed them).
    return { type: 'multi', results }
  }

  private allowed(acl: Acl[], perm: number, ctx: Ctx): boolean {
    if (acl.length === 0) return true
    return acl.some(
      (a) =>
        (a.perms & perm) !== 0 &&
        ((a.id.scheme === 'world' && a.id.id === 'anyone') ||
          ctx.authIds.some((x) => x.scheme === a.id.scheme && x.id === a.id.id)),
    )
  }

  private get(p: string, perm: number, ctx: Ctx): MNode {
    const n = this.nodes.get(p)
    if (n === undefined) throw new Fail('NO_NODE')
    if (!this.allowed(n.acl, perm, ctx)) throw new Fail('NO_AUTH')
    return n
  }

  private fixAcl(acl: readonly Acl[], ctx: Ctx): Acl[] {
    if (acl.length === 0) throw new Fail('INVALID_ACL')
    const out: Acl[] = []
    for (const a of acl) {
      if (a.id.scheme !== 'auth') out.push(a)
      else {
        const ids = ctx.authIds.filter((x) => x.scheme === 'digest')
        if (ids.length === 0) throw new Fail('INVALID_ACL')
        for (const id of ids) out.push({ perms: a.perms, id })
      }
    }
    return out
  }

  private version(current: number, expected: number): number {
    if (expected !== -1 && expected !== current) throw new Fail('BAD_VERSION')
    return next(current)
  }

  private op(req: MultiOpRequest, ctx: Ctx): OpResult {
    if (!this.sessions.has(ctx.sessionId)) throw new Fail('SESSION_EXPIRED')
    switch (req.type) {
      case 'create':
        return this.create(req, ctx)
      case 'delete': {
        if (pathError(req.path) !== null || SPECIAL.includes(req.path)) throw new Fail('BAD_ARGUMENTS')
        this.get(parentOf(req.path), Perms.DELETE, ctx)
        const n = this.nodes.get(req.path)
        if (n === undefined) throw new Fail('NO_NODE')
        this.version(n.version, req.version)
        if (this.children(req.path).length > 0) throw new Fail('NOT_EMPTY')
        this.remove(req.path, ctx.zxid)
        return { type: 'delete' }
      }
      case 'setData': {
        if (pathError(req.path) !== null) throw new Fail('BAD_ARGUMENTS')
        const n = this.get(req.path, Perms.WRITE, ctx)
        n.version = this.version(n.version, req.version)
        n.data = req.data === null ? null : req.data.slice()
        n.mzxid = ctx.zxid
        n.mtime = ctx.timeMs
        return { type: 'setData', stat: this.stat(req.path) }
      }
      case 'check': {
        if (pathError(req.path) !== null) throw new Fail('BAD_ARGUMENTS')
        const n = this.get(req.path, Perms.READ, ctx)
        this.version(n.version, req.version)
        return { type: 'check' }
      }
    }
  }

  private create(req: Extract<MultiOpRequest, { type: 'create' }>, ctx: Ctx): OpResult {
    const ttlMode = req.mode.includes('Ttl')
    const ttl = req.ttlMs
    if (!(req.mode in CreateFlag)) throw new Fail('BAD_ARGUMENTS')
    if (ttlMode ? ttl === undefined || ttl <= 0 || ttl > TTL_MS_MAX : ttl !== undefined && ttl >= 0)
      throw new Fail('BAD_ARGUMENTS')
    const seq = req.mode.includes('Sequential') || req.mode === 'ephemeralSequential'
    if (pathError(req.path, seq) !== null) throw new Fail('BAD_ARGUMENTS')
    const acl = this.fixAcl(req.acl, ctx)
    const parentPath = parentOf(req.path)
    const parent = this.get(parentPath, Perms.CREATE, ctx)
    const path = seq ? req.path + String(parent.creates).padStart(10, '0') : req.path
    if (this.nodes.has(path)) throw new Fail('NODE_EXISTS')
    if (parent.kind === 'ephemeral') throw new Fail('NO_CHILDREN_FOR_EPHEMERALS')
    parent.creates++
    parent.pzxid = ctx.zxid
    const kind: Kind = req.mode.startsWith('ephemeral')
      ? 'ephemeral'
      : req.mode === 'container'
        ? 'container'
        : ttlMode
          ? 'ttl'
          : 'persistent'
    this.nodes.set(path, {
      data: req.data === null ? null : req.data.slice(),
      acl,
      czxid: ctx.zxid,
      mzxid: ctx.zxid,
      pzxid: ctx.zxid,
      ctime: ctx.timeMs,
      mtime: ctx.timeMs,
      version: 0,
      creates: 0,
      aversion: 0,
      kind,
      owner: kind === 'ephemeral' ? ctx.sessionId : 0n,
      ttl: ttlMode ? ttl! : 0,
    })
    return { type: 'create', path, stat: this.stat(path) }
  }

  private setAcl(path: string, acl: readonly Acl[], version: number, ctx: Ctx): TxnResult {
    if (!this.sessions.has(ctx.sessionId)) throw new Fail('SESSION_EXPIRED')
    if (pathError(path) !== null) throw new Fail('BAD_ARGUMENTS')
    const fixed = this.fixAcl(acl, ctx)
    const n = this.get(path, Perms.ADMIN, ctx)
    n.aversion = this.version(n.aversion, version)
    n.acl = fixed
    return { type: 'setACL', stat: this.stat(path) }
  }

  private reap(path: string, ctx: Ctx): TxnResult {
    if (pathError(path) !== null || SPECIAL.includes(path)) throw new Fail('BAD_ARGUMENTS')
    const n = this.nodes.get(path)
    if (n === undefined) throw new Fail('NO_NODE')
    if (this.children(path).length > 0) throw new Fail('NOT_EMPTY')
    if (!this.reapable(ctx.timeMs).includes(path)) throw new Fail('BAD_VERSION')
    this.remove(path, ctx.zxid)
    return { type: 'deleteContainer', path }
  }

  private remove(path: string, zxid: number): void {
    this.nodes.delete(path)
    const parent = this.nodes.get(parentOf(path))!
    parent.pzxid = Math.max(parent.pzxid, zxid)
  }
}
