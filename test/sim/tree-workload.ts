/**
 * TreeWorkload: simulated ZooKeeper clients over the real DataTree. Each
 * client holds one session on one serving server and pipelines up to
 * `pipelineMax` writes: creates (persistent, ephemeral, sequential),
 * setData and delete with versions, multis, and an explicit closeSession;
 * sometimes it abandons its session instead, and the leader closes it once
 * its timeout has passed without a heartbeat.
 *
 * How a write travels, as in server/node.ts: the client's server, if it
 * leads, preps the request against its TreeDb (zxid = the one ZabPeer will
 * assign) and proposes the Txn; a learner forwards it to its leader in an
 * APP message and the leader does the same, answering a prep failure with
 * an APP reply. The client's server replies to the client when it applies
 * the committed Txn (matched by session and cxid), or at once on a prep
 * failure; replies leave in cxid order. A server that goes LOOKING or
 * crashes drops its clients; they abandon their sessions and open new ones
 * elsewhere. A request unanswered for `requestTimeoutMs` does the same.
 *
 * Invariants checked here: per-session FIFO (a session's Txns commit in
 * cxid order, replies reach the client in cxid order, committed replies'
 * zxids increase); the leader's proposal gets the zxid its prep used.
 * Acknowledged creates go to the TreeChecker.
 */
import type { Prng } from '../../server/core/prng.js'
import type { WriteRequest } from '../../server/db.js'
import type { RoleEvent, ServerId } from '../../server/zab/index.js'
import type { Acl } from '../../shared/acl.js'
import { makeZxid, zxidEpoch } from '../../shared/zxid.js'
import type { Checker } from './checker.js'
import type { SimNode } from './sim-node.js'
import type { TreeChecker } from './tree-checker.js'
import { replyOf, type TreeReply, type TreeStateMachine } from './tree-state-machine.js'
import type { SimWorkload } from './workload.js'

const enc = new TextEncoder()
const dec = new TextDecoder()
const ACL: Acl[] = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }]

/** A client write as it travels (JSON-safe): converted to a WriteRequest by the leader. */
type Op =
  | { k: 'create'; p: string; d: string; f: number }
  | { k: 'delete'; p: string; v: number }
  | { k: 'setData'; p: string; d: string; v: number }
  | { k: 'check'; p: string; v: number }
  | { k: 'multi'; ops: Op[] }
  | { k: 'createSession'; t: number }
  | { k: 'closeSession' }

interface Forward {
  s: string
  c: number
  op: Op
}

interface Failure {
  s: string
  c: number
  e: string
}

interface Pending {
  readonly cxid: number
  readonly op: Op
  readonly issuedAt: number
  reply?: { err: string; zxid: number; paths: string[] }
}

interface Client {
  readonly index: number
  /** The session (established or being created) and the server holding its connection. */
  session: bigint | undefined
  established: boolean
  server: ServerId
  incarnation: number
  nextCxid: number
  queue: Pending[]
  connectAt: number
  lastReplyCxid: number
  lastReplyZxid: number
  /** Sequential nodes this client created, to delete some later. */
  readonly mine: string[]
}

export interface TreeWorkloadOptions {
  clients: number
  keys: number
  pipelineMax: number
  sessionTimeoutMs: number
  requestTimeoutMs: number
}

const sid = (id: bigint) => id.toString(16)

function describe(op: Op): string {
  switch (op.k) {
    case 'create':
      return `create ${op.p} f${op.f}`
    case 'delete':
    case 'check':
      return `${op.k} ${op.p} v${op.v}`
    case 'setData':
      return `setData ${op.p} v${op.v}`
    case 'multi':
      return `multi[${op.ops.map(describe).join('; ')}]`
    case 'createSession':
    case 'closeSession':
      return op.k
  }
}

function toWrite(op: Op, sessionId: bigint): WriteRequest {
  switch (op.k) {
    case 'create':
      return { kind: 'create', path: op.p, data: enc.encode(op.d), acl: ACL, flags: op.f, ttlMs: 0, op: 1 }
    case 'delete':
      return { kind: 'delete', path: op.p, version: op.v }
    case 'setData':
      return { kind: 'setData', path: op.p, data: enc.encode(op.d), version: op.v }
    case 'check':
      return { kind: 'check', path: op.p, version: op.v }
    case 'multi':
      return { kind: 'multi', ops: op.ops.map((o) => toWrite(o, sessionId)) }
    case 'createSession':
      return { kind: 'createSession', sessionId, timeoutMs: op.t }
    case 'closeSession':
      return { kind: 'closeSession', sessionId }
  }
}

/**
 * Paths a successful reply says were created and still exist after the
 * Txn: a multi may delete what an earlier op of it created.
 */
function createdPaths(op: Op, reply: TreeReply): string[] {
  if (reply.err !== 'OK') return []
  if (op.k === 'create') return reply.created.filter((p) => p !== undefined)
  if (op.k !== 'multi') return []
  const live = new Set<string>()
  op.ops.forEach((o, i) => {
    const path = reply.created[i]
    if (o.k === 'create' && path !== undefined) live.add(path)
    else if (o.k === 'delete') live.delete(o.p)
  })
  return [...live]
}

export class TreeWorkload implements SimWorkload {
  private readonly clients: Client[] = []
  /** Abandoned sessions the leader must expire: id -> when, and the leadership that last tried. */
  private readonly expiring = new Map<bigint, { dueAt: number; triedBy: string }>()
  private sessionSeq = 0
  writesIssued = 0
  writesAcked = 0
  readonly syncsDone = 0
  lastAckAt = -1
  readonly stats = {
    sessions: 0,
    closes: 0,
    abandons: 0,
    expiries: 0,
    prepFailures: 0,
    connectionLosses: 0,
    multis: 0,
    failuresBehindWaiting: 0,
  }

  constructor(
    private readonly nodes: readonly SimNode[],
    private readonly checker: Checker,
    private readonly tree: TreeChecker,
    private readonly prng: Prng,
    private readonly opts: TreeWorkloadOptions,
    private readonly clock: () => number,
    private readonly trace: (line: string) => void,
  ) {
    for (let i = 0; i < opts.clients; i++) {
      this.clients.push({
        index: i,
        session: undefined,
        established: false,
        server: 0,
        incarnation: 0,
        nextCxid: 1,
        queue: [],
        connectAt: 0,
        lastReplyCxid: 0,
        lastReplyZxid: 0,
        mine: [],
      })
    }
  }

  private node(id: ServerId): SimNode {
    return this.nodes[id - 1]!
  }

  private connected(c: Client): SimNode | undefined {
    if (c.session === undefined) return undefined
    const n = this.node(c.server)
    return n.up && n.incarnation === c.incarnation ? n : undefined
  }

  // ------------------------------------------------------------ client actions

  /** One client acts (the simulation calls this every few ms), and the leader expires sessions. */
  issueWrite(): void {
    this.expireSessions()
    const c = this.prng.pick(this.clients)
    const now = this.clock()
    if (c.session !== undefined && this.connected(c) === undefined) return this.lose(c, 'server crashed')
    const head = c.queue[0]
    if (head && now - head.issuedAt > this.opts.requestTimeoutMs) return this.lose(c, 'request timed out')
    if (c.session === undefined) return this.connect(c)
    if (!c.established) {
      if (now - c.connectAt > this.opts.requestTimeoutMs) this.lose(c, 'connect timed out')
      return
    }
    const n = this.node(c.server)
    if (n.paused || c.queue.length >= this.opts.pipelineMax) return
    if (c.queue.some((q) => q.op.k === 'closeSession')) return
    const r = this.prng.int(0, 99)
    if (r < 3) return this.submit(c, { k: 'closeSession' })
    if (r < 5) return this.abandon(c)
    this.submit(c, this.randomOp(c))
  }

  issueSync(): void {}

  onSyncDone(_node: SimNode, _requestId: number): void {}

  private connect(c: Client): void {
    const serving = this.nodes.filter((n) => n.up && !n.paused && n.peer.status().serving)
    if (serving.length === 0) return
    const n = this.prng.pick(serving)
    // Unique per run: client index in the high bits, a counter below (as server ids prefix real ones).
    c.session = (BigInt(c.index + 1) << 40n) | BigInt(++this.sessionSeq)
    c.established = false
    c.server = n.id
    c.incarnation = n.incarnation
    c.nextCxid = 1
    c.queue = []
    c.connectAt = this.clock()
    c.lastReplyCxid = 0
    c.lastReplyZxid = 0
    this.writesIssued++
    this.trace(`client ${c.index} -> n${n.id} createSession ${sid(c.session)}`)
    this.route(n, c.session, 0, { k: 'createSession', t: this.opts.sessionTimeoutMs })
  }

  private submit(c: Client, op: Op): void {
    const cxid = c.nextCxid++
    c.queue.push({ cxid, op, issuedAt: this.clock() })
    this.writesIssued++
    if (op.k === 'multi') this.stats.multis++
    this.trace(`client ${c.index} -> n${c.server} ${sid(c.session!)}#${cxid} ${describe(op)}`)
    this.route(this.node(c.server), c.session!, cxid, op)
  }

  /** The client walks away: its session lives on until the leader expires it. */
  private abandon(c: Client): void {
    this.stats.abandons++
    if (c.session !== undefined)
      this.expiring.set(c.session, { dueAt: this.clock() + this.opts.sessionTimeoutMs, triedBy: '' })
    c.session = undefined
    c.established = false
    c.queue = []
  }

  private lose(c: Client, why: string): void {
    this.stats.connectionLosses++
    this.trace(`client ${c.index} session ${c.session?.toString(16)} lost: ${why}`)
    this.abandon(c)
  }

  private randomOp(c: Client): Op {
    const p = this.prng
    const d = () => `/d${p.int(0, 2)}`
    const child = () => `${d()}/${p.pick(['c', 'e'])}${p.int(0, this.opts.keys - 1)}`
    const any = () => (p.chance(0.2) ? d() : p.chance(0.2) && c.mine.length > 0 ? p.pick(c.mine) : child())
    const version = () => p.pick([-1, -1, 0, 1, 2])
    const r = p.int(0, 99)
    if (r < 8) return { k: 'create', p: p.chance(0.5) ? d() : `/q${p.int(0, 1)}`, d: 'dir', f: 0 }
    if (r < 26)
      return { k: 'create', p: `${d()}/c${p.int(0, this.opts.keys - 1)}`, d: `v${c.nextCxid}`, f: 0 }
    if (r < 44) return { k: 'create', p: `${d()}/e${p.int(0, this.opts.keys - 1)}`, d: 'eph', f: 1 }
    if (r < 58) return { k: 'create', p: `/q${p.int(0, 1)}/s-`, d: 'seq', f: p.pick([2, 3]) }
    if (r < 73) return { k: 'setData', p: any(), d: `v${c.nextCxid}`, v: version() }
    if (r < 88) return { k: 'delete', p: any(), v: version() }
    const ops: Op[] = []
    for (let i = p.int(2, 3); i > 0; i--) {
      const q = p.int(0, 3)
      if (q === 0) ops.push({ k: 'create', p: child(), d: 'm', f: p.pick([0, 1]) })
      else if (q === 1) ops.push({ k: 'setData', p: any(), d: 'm', v: version() })
      else if (q === 2) ops.push({ k: 'delete', p: any(), v: version() })
      else ops.push({ k: 'check', p: any(), v: version() })
    }
    return { k: 'multi', ops }
  }

  // ------------------------------------------------------------ servers

  /** The client's server handles a write: it preps it if it leads, else forwards it to its leader. */
  private route(n: SimNode, sessionId: bigint, cxid: number, op: Op): void {
    const st = n.peer.status()
    if (st.role === 'LEADING') {
      const err = this.prepAndPropose(n, sessionId, cxid, op)
      if (err !== undefined) this.onFailure(n, sessionId, cxid, err)
    } else if (st.leaderId !== undefined) {
      const fwd: Forward = { s: sessionId.toString(), c: cxid, op }
      n.appSend(st.leaderId, enc.encode(`t:${JSON.stringify(fwd)}`))
    }
  }

  /** Leader: prep against its own TreeDb, then propose; returns the error if prep refused. */
  private prepAndPropose(n: SimNode, sessionId: bigint, cxid: number, op: Op): string | undefined {
    const st = n.peer.status()
    if (st.role !== 'LEADING' || !st.serving) return 'CONNECTION_LOSS'
    const sm = n.sm as TreeStateMachine
    // The zxid ZabPeer will assign (zab-replicator.ts nextZxid).
    const zxid = zxidEpoch(st.lastZxid) === st.epoch ? st.lastZxid + 1 : makeZxid(st.epoch, 1)
    const out = sm.db.prep(toWrite(op, sessionId), {
      zxid,
      timeMs: this.clock(),
      sessionId,
      cxid,
      authIds: [],
    })
    if (!out.ok) {
      this.stats.prepFailures++
      return out.err
    }
    const res = n.propose(out.txn)
    if (!res?.ok || res.zxid !== zxid) {
      this.checker.fail(
        'propose-zxid',
        `n${n.id} prepped at 0x${zxid.toString(16)}, proposal: ${JSON.stringify(res)}`,
      )
    }
    return undefined
  }

  onApp(n: SimNode, from: ServerId, payload: Uint8Array): void {
    const text = dec.decode(payload)
    if (text.startsWith('t:')) {
      // node.ts drops forwarded writes when it no longer leads; the client times out.
      if (n.peer.status().role !== 'LEADING') return
      const f = JSON.parse(text.slice(2)) as Forward
      const err = this.prepAndPropose(n, BigInt(f.s), f.c, f.op)
      if (err !== undefined) {
        const failure: Failure = { s: f.s, c: f.c, e: err }
        n.appSend(from, enc.encode(`f:${JSON.stringify(failure)}`))
      }
    } else if (text.startsWith('f:')) {
      const f = JSON.parse(text.slice(2)) as Failure
      this.onFailure(n, BigInt(f.s), f.c, f.e)
    }
  }

  onRole(n: SimNode, role: RoleEvent): void {
    // node.ts closes every client connection when its server goes LOOKING.
    if (role.role !== 'LOOKING') return
    for (const c of this.clients) {
      if (c.session !== undefined && c.server === n.id && c.incarnation === n.incarnation)
        this.lose(c, `n${n.id} is LOOKING`)
    }
  }

  private clientOn(n: SimNode, sessionId: bigint): Client | undefined {
    for (const c of this.clients) {
      if (c.session === sessionId && c.server === n.id && c.incarnation === n.incarnation) return c
    }
    return undefined
  }

  /** A prep failure reaches the client's server: that request is answered (in cxid order). */
  private onFailure(n: SimNode, sessionId: bigint, cxid: number, err: string): void {
    const c = this.clientOn(n, sessionId)
    if (c === undefined) return
    if (cxid === 0) {
      // createSession refused: the client gives up on that session id.
      if (!c.established) this.lose(c, `createSession refused: ${err}`)
      return
    }
    const p = c.queue.find((q) => q.cxid === cxid)
    if (p === undefined || p.reply !== undefined) return
    // Coverage: ClientHandler.completeWrite (node.ts) answers only the oldest waiting write,
    // so it would drop these and leave the session's later commits unmatched.
    if (c.queue.find((q) => q.reply === undefined) !== p) this.stats.failuresBehindWaiting++
    p.reply = { err, zxid: 0, paths: [] }
    this.flush(c)
  }

  onCommitted(n: SimNode, zxid: number, data: Uint8Array): void {
    const out = (n.sm as TreeStateMachine).lastOutcome
    if (out === undefined) return
    if (out.sessionClosed !== undefined) this.expiring.delete(out.sessionClosed)
    const c = this.clientOn(n, out.sessionId)
    if (c === undefined) return
    if (out.sessionCreated !== undefined) {
      if (!c.established) {
        c.established = true
        this.stats.sessions++
        this.acked(zxid, data)
      }
      return
    }
    if (out.sessionClosed !== undefined && out.cxid === 0) {
      // Expired while the client still held it: not in this workload (only abandoned sessions expire).
      this.checker.fail('session-expiry', `live session ${out.sessionClosed.toString(16)} was expired`)
    }
    const i = c.queue.findIndex((q) => q.cxid === out.cxid)
    if (i < 0) return
    for (let j = 0; j < i; j++) {
      if (c.queue[j]!.reply === undefined)
        this.checker.fail(
          'session-fifo',
          `n${n.id}: session ${out.sessionId.toString(16)} cxid ${out.cxid} committed before ${c.queue[j]!.cxid}`,
        )
    }
    const p = c.queue[i]!
    const reply = replyOf(out)
    p.reply = { err: reply.err, zxid, paths: createdPaths(p.op, reply) }
    this.acked(zxid, data)
    this.flush(c)
  }

  private acked(zxid: number, data: Uint8Array): void {
    this.writesAcked++
    this.lastAckAt = this.clock()
    this.checker.onAcked({ writeId: zxid, key: '', zxid, data })
  }

  /** Replies leave the server in cxid order. */
  private flush(c: Client): void {
    while (c.queue.length > 0 && c.queue[0]!.reply !== undefined) {
      const p = c.queue.shift()!
      const r = p.reply!
      if (p.cxid <= c.lastReplyCxid)
        this.checker.fail('session-fifo', `client ${c.index}: reply ${p.cxid} after ${c.lastReplyCxid}`)
      c.lastReplyCxid = p.cxid
      this.trace(`client ${c.index} <- #${p.cxid} ${r.err} 0x${r.zxid.toString(16)} ${r.paths.join(' ')}`)
      if (r.zxid > 0) {
        if (r.zxid <= c.lastReplyZxid)
          this.checker.fail(
            'session-fifo',
            `client ${c.index}: reply zxid went back to 0x${r.zxid.toString(16)}`,
          )
        c.lastReplyZxid = r.zxid
      }
      for (const path of r.paths) {
        this.tree.onAckedCreate(path, r.zxid)
        if (!path.includes('/s-')) continue
        if (c.mine.length < 16) c.mine.push(path)
        else c.mine[this.prng.int(0, 15)] = path
      }
      if (p.op.k === 'closeSession' && r.err === 'OK') {
        this.stats.closes++
        c.session = undefined
        c.established = false
        c.queue = []
        return
      }
    }
  }

  // ------------------------------------------------------------ the leader's session expiry

  /** Every serving leader closes abandoned sessions past their timeout, once per leadership. */
  private expireSessions(): void {
    if (this.expiring.size === 0) return
    const now = this.clock()
    for (const n of this.nodes) {
      if (!n.up || n.paused) continue
      const st = n.peer.status()
      if (st.role !== 'LEADING' || !st.serving) continue
      const leadership = `${n.id}/${n.incarnation}/${st.epoch}`
      for (const [id, e] of this.expiring) {
        if (e.dueAt > now || e.triedBy === leadership) continue
        e.triedBy = leadership
        this.trace(`n${n.id} expires ${sid(id)}`)
        if (this.prepAndPropose(n, id, 0, { k: 'closeSession' }) === undefined) this.stats.expiries++
      }
    }
  }
}
