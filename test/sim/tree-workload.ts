/**
 * TreeWorkload: simulated ZooKeeper clients of the simulated servers'
 * real request path. Each client opens a connection (SimLink) to a serving
 * server, speaks ZooKeeper's wire protocol to the server's own
 * ClientHandler and RequestPipeline (sim-server.ts), creates a session,
 * pings it every third of its timeout, and pipelines up to `pipelineMax`
 * writes: creates (persistent, ephemeral, sequential), setData and delete
 * with versions, multis, and an explicit closeSession; sometimes it walks
 * away instead (its connection closes; the leader's session tracker expires
 * the session once its timeout has passed without a ping).
 *
 * Everything between the client's bytes and its replies is the server's
 * code: forwarding to the leader, prep, propose, the ZAB driver, apply,
 * session table, held failed-prep replies, per-session FIFO. A connection
 * the server closes (LOOKING, expiry, crash) or a request unanswered for
 * `requestTimeoutMs` makes the client give its session up and open a new
 * one elsewhere — unless it is an exactly-once client (about two in
 * three): those ask for the feature in their ConnectRequest, send their
 * writes with ConclaveOpCode.exactlyOnce, and after a lost connection (or a
 * CONNECTION_LOSS answer) resume the same session on another server and
 * send every unanswered write again, same xids, oldest first, as the SDK
 * does. The OnceChecker (once-checker.ts) holds their writes to
 * exactly-once: applied at most once, answered with that one result.
 *
 * Two more clients hold a persistent-recursive watch on '/' and resume it
 * after every lost connection (watch-resumer.ts): their events must be
 * exactly the applied changes, in order, once each.
 *
 * Sessions moving to a server that lags: an exactly-once client sometimes
 * moves its session on right after the server answered its ConnectRequest,
 * and a session moving on goes, half the time, to the serving server that
 * has applied the least. A ping reply's zxid does not count as seen (as in
 * ZooKeeper's client and the SDK), and a ConnectResponse carries none: the
 * client's lastZxidSeen does not protect it there. The ResumeChecker
 * (resume-checker.ts) watches every EXPIRED answer to a resume, where the
 * server sends it.
 *
 * Invariants checked here: per-session FIFO (replies arrive in request
 * order; a session's Txns commit in cxid order; replies' zxids never go
 * back, successful writes' strictly increase); a successful write's zxid is
 * a committed entry (the Checker's acked writes); acknowledged creates go
 * to the TreeChecker.
 *
 * Mutations (mutations.ts), bugs of a client library: `requestedPath` takes
 * the path a create asked for as the node it made (wrong for a sequential
 * node); `lifoReplies` handles a write reply after the packet that follows it.
 */
import type { Prng } from '../../server/core/prng.js'
import type { Acl } from '../../shared/acl.js'
import { errorCodeOf } from '../../shared/errors.js'
import { JuteReader, JuteWriter } from '../../shared/jute.js'
import { OpCode, Xid } from '../../shared/opcodes.js'
import {
  ConclaveFeature,
  decodeConnectResponse,
  encodeConnectRequest,
  encodeRequest,
  isOnceWriteOp,
  type MultiWriteOp,
  type Request,
  readReplyHeader,
  readResponseBody,
} from '../../shared/records.js'
import type { Checker } from './checker.js'
import { clientReply, OnceChecker } from './once-checker.js'
import { ResumeChecker } from './resume-checker.js'
import type { SimLink } from './sim-link.js'
import type { SimNode } from './sim-node.js'
import type { TreeChecker } from './tree-checker.js'
import type { TreeStateMachine } from './tree-state-machine.js'
import { WatchResumer } from './watch-resumer.js'
import type { SimWorkload } from './workload.js'

const enc = new TextEncoder()
const ACL: Acl[] = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }]
const PASSWORD_BYTES = 16
/** Clients holding a resumable watch on '/' (watch-resumer.ts). */
const WATCHERS = 2

/** A client write, as generated (converted to a wire request when sent). */
type Op =
  | { k: 'create'; p: string; d: string; f: number }
  | { k: 'delete'; p: string; v: number }
  | { k: 'setData'; p: string; d: string; v: number }
  | { k: 'check'; p: string; v: number }
  | { k: 'multi'; ops: Op[] }
  | { k: 'closeSession' }

interface Pending {
  readonly xid: number
  readonly op: Op
  issuedAt: number
  /** Another write of the session was unanswered when this one was sent. */
  readonly behind: boolean
  /** Times sent (an exactly-once client sends it again on its session's next connection). */
  sends: number
  /** The highest zxid applied anywhere when it was last sent. */
  sentAtZxid: number
  /**
   * Sent without the exactly-once header by a client that asks for it: its
   * connection did not grant it (a local session's). As in the SDK, a lost
   * connection answers it CONNECTION_LOSS; it is never sent again.
   */
  notOnce: boolean
}

interface Client {
  readonly index: number
  /** Asks for exactly-once writes, and keeps its session (and its unanswered writes) across connections. */
  readonly once: boolean
  link: SimLink | undefined
  /** Waiting for the ConnectResponse of this connection. */
  handshake: boolean
  /** Set once the ConnectResponse arrives; kept across connections by an exactly-once client. */
  session: bigint | undefined
  password: Uint8Array
  /** The server granted exactly-once writes on this connection. */
  granted: boolean
  server: number
  nextXid: number
  queue: Pending[]
  connectAt: number
  lastPingAt: number
  lastReplyZxid: number
  lastWriteZxid: number
  /** The highest zxid this client has seen (sent in its next ConnectRequest, as real clients do). */
  seenZxid: number
  /** Sequential nodes this client created, to delete some later. */
  readonly mine: string[]
  /** lifoReplies: a write reply held back until the next packet has been handled. */
  held?: Uint8Array | undefined
}

export interface TreeWorkloadOptions {
  clients: number
  keys: number
  pipelineMax: number
  sessionTimeoutMs: number
  requestTimeoutMs: number
  /** A planted client bug (mutations.ts), or none. */
  mutation?: 'requestedPath' | 'lifoReplies' | undefined
  /** The servers make local sessions: a closeSession may be answered without a Txn. */
  localSessions?: boolean
}

const sid = (id: bigint | undefined) => (id === undefined ? '-' : id.toString(16))

/** The last zxid a server has applied. */
const applied = (n: SimNode) => (n.sm as TreeStateMachine).db.lastZxid

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
    case 'closeSession':
      return op.k
  }
}

function toMultiOp(op: Op): MultiWriteOp {
  switch (op.k) {
    case 'create':
      return { op: OpCode.create, path: op.p, data: enc.encode(op.d), acl: ACL, flags: op.f, ttl: 0 }
    case 'delete':
      return { op: OpCode.delete, path: op.p, version: op.v }
    case 'setData':
      return { op: OpCode.setData, path: op.p, data: enc.encode(op.d), version: op.v }
    case 'check':
      return { op: OpCode.check, path: op.p, version: op.v }
    default:
      throw new Error(`${op.k} in a multi`)
  }
}

function toRequest(op: Op): Request {
  if (op.k === 'closeSession') return { op: OpCode.closeSession }
  if (op.k === 'multi') return { op: OpCode.multi, ops: op.ops.map(toMultiOp) }
  return toMultiOp(op) as Request
}

const OP_OF: Record<Op['k'], number> = {
  create: OpCode.create,
  delete: OpCode.delete,
  setData: OpCode.setData,
  check: OpCode.check,
  multi: OpCode.multi,
  closeSession: OpCode.closeSession,
}

/** Paths a successful reply says were created and still exist after it: a multi may delete what it created. */
function createdPaths(op: Op, body: ReturnType<typeof readResponseBody> | undefined): string[] {
  if (body === undefined) return []
  if (op.k === 'create' && 'path' in body) return [body.path]
  if (op.k !== 'multi' || !('results' in body)) return []
  const live = new Set<string>()
  op.ops.forEach((o, i) => {
    const r = body.results[i]
    if (o.k === 'create' && r !== undefined && 'path' in r) live.add(r.path)
    else if (o.k === 'delete') live.delete(o.p)
  })
  return [...live]
}

export class TreeWorkload implements SimWorkload {
  private readonly clients: Client[] = []
  readonly once: OnceChecker
  readonly watchers: WatchResumer
  readonly resumes: ResumeChecker
  /** Per session, the cxid of its last committed Txn (first apply of each zxid only). */
  private readonly lastCommittedCxid = new Map<bigint, number>()
  private maxAppliedZxid = 0
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
    /** Exactly-once clients: sessions resumed elsewhere, writes sent again, writes left unanswered by an expiry. */
    moves: 0,
    /** Of those, moved right after the session was created (to catch a server that lags behind it). */
    quickMoves: 0,
    resent: 0,
    lostWithSession: 0,
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
    this.once = new OnceChecker((inv, detail) => this.checker.fail(inv, detail))
    this.watchers = new WatchResumer(
      nodes,
      prng.fork('watchers'),
      WATCHERS,
      opts.sessionTimeoutMs,
      clock,
      (inv, detail) => this.checker.fail(inv, detail),
      trace,
    )
    this.resumes = new ResumeChecker(nodes, (inv, detail) => this.checker.fail(inv, detail))
    for (let i = 0; i < opts.clients; i++) {
      this.clients.push({
        index: i,
        once: i % 3 !== 2,
        link: undefined,
        handshake: false,
        session: undefined,
        password: new Uint8Array(PASSWORD_BYTES),
        granted: false,
        server: 0,
        nextXid: 1,
        queue: [],
        connectAt: 0,
        lastPingAt: 0,
        lastReplyZxid: 0,
        lastWriteZxid: 0,
        seenZxid: 0,
        mine: [],
      })
    }
  }

  // ------------------------------------------------------------ client actions

  /** One client acts (the simulation calls this every few ms); every connected client pings on time. */
  issueWrite(): void {
    const now = this.clock()
    for (const c of this.clients) this.ping(c, now)
    this.watchers.tick()
    const c = this.prng.pick(this.clients)
    if (c.link === undefined) return this.connect(c)
    const head = c.queue[0]
    if (head && now - head.issuedAt > this.opts.requestTimeoutMs) return this.drop(c, 'request timed out')
    if (c.handshake) {
      if (now - c.connectAt > this.opts.requestTimeoutMs) this.drop(c, 'connect timed out')
      return
    }
    if (c.queue.length >= this.opts.pipelineMax) return
    if (c.queue.some((q) => q.op.k === 'closeSession')) return
    const r = this.prng.int(0, 99)
    if (r < 3) return this.submit(c, { k: 'closeSession' })
    if (r < 5) return this.abandon(c)
    this.submit(c, this.randomOp(c))
  }

  issueSync(): void {}

  onSyncDone(_node: SimNode, _requestId: number): void {}

  onApp(_node: SimNode, _from: number, _payload: Uint8Array): void {}

  /** Opens a connection: a new session, or (an exactly-once client's) the session it has, resumed. */
  private connect(c: Client): void {
    const serving = this.nodes.filter((n) => n.up && !n.paused && n.server && n.peer.status().serving)
    if (serving.length === 0) return
    // A session moving on goes to another server when there is one.
    const elsewhere = serving.filter((n) => n.id !== c.server)
    const moving = c.session !== undefined && elsewhere.length > 0
    // Half the time to the server that has applied the least (it may not know the session yet).
    const n =
      moving && this.prng.chance(0.5)
        ? elsewhere.reduce((a, b) => (applied(b) < applied(a) ? b : a))
        : this.prng.pick(moving ? elsewhere : serving)
    const link = n.openLink(
      { packet: (p) => this.receive(c, link, p), closed: (why) => this.onClosed(c, link, why) },
      this.prng.fork(`link-${c.index}`),
    )
    if (link === undefined) return
    const resume = c.session !== undefined
    if (resume) this.watchResume(n, link, c.session!)
    c.link = link
    c.handshake = true
    c.server = n.id
    c.connectAt = this.clock()
    c.lastPingAt = c.connectAt
    if (!resume) {
      c.nextXid = 1
      c.queue = []
      c.lastReplyZxid = 0
      c.lastWriteZxid = 0
      this.writesIssued++
    }
    this.trace(
      `client ${c.index} -> n${n.id} ${resume ? `resume ${sid(c.session)}` : 'connect'} (seen 0x${c.seenZxid.toString(16)})`,
    )
    const w = new JuteWriter(64)
    encodeConnectRequest(w, {
      protocolVersion: 0,
      lastZxidSeen: BigInt(c.seenZxid),
      timeOut: this.opts.sessionTimeoutMs,
      sessionId: c.session ?? 0n,
      passwd: c.password,
      readOnly: false,
      features: c.once ? ConclaveFeature.exactlyOnce : undefined,
    })
    link.write(w.finish())
  }

  /** The server's first packet on `link` is its answer to the resume: an EXPIRED one goes to the ResumeChecker. */
  private watchResume(n: SimNode, link: SimLink, session: bigint): void {
    const send = link.send.bind(link)
    const closedBefore = this.resumes.closedOnLeader(session)
    let answered = false
    link.send = (packet) => {
      if (!answered) {
        answered = true
        if (decodeConnectResponse(packet).timeOut <= 0) {
          this.trace(`n${n.id} tells ${sid(session)} it expired`)
          this.resumes.onRefused(n, session)
        } else this.resumes.onAccepted(n, session, closedBefore)
      }
      send(packet)
    }
  }

  /** Sends a write; an exactly-once client's go with the oldest xid it still waits on. */
  private send(c: Client, xid: number, req: Request): void {
    const w = new JuteWriter(128)
    const once = c.granted && isOnceWriteOp(req.op) ? { ackXid: c.queue[0]!.xid } : undefined
    encodeRequest(w, xid, req, once)
    c.link!.write(w.finish())
  }

  private submit(c: Client, op: Op): void {
    const xid = c.nextXid++
    const req = toRequest(op)
    c.queue.push({
      xid,
      op,
      issuedAt: this.clock(),
      behind: c.queue.length > 0,
      sends: 1,
      sentAtZxid: this.maxAppliedZxid,
      notOnce: c.once && !c.granted && isOnceWriteOp(req.op),
    })
    this.writesIssued++
    if (op.k === 'multi') this.stats.multis++
    this.trace(`client ${c.index} -> n${c.server} ${sid(c.session)}#${xid} ${describe(op)}`)
    this.send(c, xid, req)
  }

  /** Pings every third of the session timeout, as ZooKeeper clients do. */
  private ping(c: Client, now: number): void {
    if (c.handshake || c.link === undefined || now - c.lastPingAt < this.opts.sessionTimeoutMs / 3) return
    c.lastPingAt = now
    this.send(c, Xid.ping, { op: OpCode.ping })
  }

  /** The client walks away: its connection closes; its session lives on until the leader expires it. */
  private abandon(c: Client): void {
    this.stats.abandons++
    this.trace(`client ${c.index} abandons ${sid(c.session)}`)
    this.reset(c)
  }

  private lose(c: Client, why: string): void {
    this.stats.connectionLosses++
    this.trace(`client ${c.index} session ${sid(c.session)} lost: ${why}`)
    this.reset(c)
  }

  /** The connection is gone: an exactly-once client with a session moves it elsewhere; others give it up. */
  private drop(c: Client, why: string): void {
    if (!c.once || c.session === undefined) return this.lose(c, why)
    // Writes sent without exactly-once (not granted) are not sent again: their outcome is unknown.
    const kept = c.queue.filter((p) => !p.notOnce)
    if (kept.length < c.queue.length) {
      this.stats.lostWithSession += c.queue.length - kept.length
      c.queue = kept
    }
    this.stats.moves++
    this.trace(`client ${c.index} session ${sid(c.session)} moves on (${c.queue.length} unanswered): ${why}`)
    c.link?.hangUp()
    c.link = undefined
    c.handshake = false
    c.granted = false
    c.held = undefined
  }

  private reset(c: Client): void {
    c.link?.hangUp()
    c.link = undefined
    c.handshake = false
    c.granted = false
    c.session = undefined
    c.password = new Uint8Array(PASSWORD_BYTES)
    c.queue = []
    c.held = undefined
  }

  private randomOp(c: Client): Op {
    const p = this.prng
    const d = () => `/d${p.int(0, 2)}`
    const child = () => `${d()}/${p.pick(['c', 'e'])}${p.int(0, this.opts.keys - 1)}`
    const any = () => (p.chance(0.2) ? d() : p.chance(0.2) && c.mine.length > 0 ? p.pick(c.mine) : child())
    const version = () => p.pick([-1, -1, 0, 1, 2])
    const r = p.int(0, 99)
    if (r < 8) return { k: 'create', p: p.chance(0.5) ? d() : `/q${p.int(0, 1)}`, d: 'dir', f: 0 }
    if (r < 26) return { k: 'create', p: `${d()}/c${p.int(0, this.opts.keys - 1)}`, d: `v${c.nextXid}`, f: 0 }
    if (r < 44) return { k: 'create', p: `${d()}/e${p.int(0, this.opts.keys - 1)}`, d: 'eph', f: 1 }
    if (r < 58) return { k: 'create', p: `/q${p.int(0, 1)}/s-`, d: 'seq', f: p.pick([2, 3]) }
    if (r < 73) return { k: 'setData', p: any(), d: `v${c.nextXid}`, v: version() }
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

  // ------------------------------------------------------------ what the client hears

  private onClosed(c: Client, link: SimLink | undefined, why: string): void {
    if (c.link !== link || link === undefined) return
    c.link = undefined
    this.drop(c, `connection closed: ${why}`)
  }

  /** A packet from the link (the lifoReplies mutation may hold a write reply back behind the next packet). */
  private receive(c: Client, link: SimLink | undefined, packet: Uint8Array): void {
    if (this.opts.mutation !== 'lifoReplies' || c.handshake) return this.onPacket(c, link, packet)
    if (c.held === undefined && c.queue.length >= 2 && readReplyHeader(new JuteReader(packet)).xid > 0) {
      c.held = packet
      return
    }
    const held = c.held
    c.held = undefined
    this.onPacket(c, link, packet)
    if (held !== undefined) this.onPacket(c, link, held)
  }

  private onPacket(c: Client, link: SimLink | undefined, packet: Uint8Array): void {
    if (c.link !== link || link === undefined) return
    if (c.handshake) return this.onConnectResponse(c, packet)
    const r = new JuteReader(packet)
    const h = readReplyHeader(r)
    // A ping reply's zxid is not taken as seen (ZooKeeper's client and the SDK return before).
    if (h.xid === Xid.ping) return
    if (h.zxid > 0n) c.seenZxid = Math.max(c.seenZxid, Number(h.zxid))
    if (h.xid === Xid.notification) return
    const p = c.queue.shift()
    if (p === undefined || p.xid !== h.xid)
      return this.checker.fail('session-fifo', `client ${c.index}: reply to #${h.xid}, expected #${p?.xid}`)
    let zxid = Number(h.zxid)
    const err = errorCodeOf(h.err)
    if (zxid < c.lastReplyZxid)
      this.checker.fail('session-fifo', `client ${c.index}: reply zxid went back to 0x${zxid.toString(16)}`)
    c.lastReplyZxid = zxid
    this.trace(`client ${c.index} <- #${p.xid} ${err} 0x${zxid.toString(16)}`)
    const exactlyOnce = c.granted && p.op.k !== 'closeSession'
    if (exactlyOnce && err === 'CONNECTION_LOSS') {
      // It may have been applied: send it again, with everything after it, on another connection.
      c.queue.unshift(p)
      return this.drop(c, `#${p.xid} answered CONNECTION_LOSS`)
    }
    const body = err === 'OK' && r.remaining > 0 ? readResponseBody(r, OP_OF[p.op.k]) : undefined
    // An exactly-once write's reply is its one apply's result; its zxid is that apply's (the
    // reply's may be later: a write answered again is answered once the server has applied it).
    if (exactlyOnce)
      zxid = this.once.onReply(c.session!, p.xid, clientReply(err, body), p.sends, p.sentAtZxid) ?? zxid
    // A failed multi is answered OK with an error result per op (as ZooKeeper does).
    const multiFailed =
      body !== undefined && 'results' in body && body.results.some((x) => x.type === OpCode.error)
    if (err !== 'OK' || multiFailed) {
      this.stats.prepFailures++
      if (p.behind) this.stats.failuresBehindWaiting++
      return
    }
    // A local session's closeSession is answered without a Txn, at the zxid the server has applied.
    if (this.opts.localSessions === true && p.op.k === 'closeSession' && zxid <= c.lastWriteZxid) return
    if (zxid <= c.lastWriteZxid)
      this.checker.fail(
        'session-fifo',
        `client ${c.index}: write acked at 0x${zxid.toString(16)}, not after 0x${c.lastWriteZxid.toString(16)}`,
      )
    c.lastWriteZxid = zxid
    this.acked(zxid)
    // requestedPath: the bug under test names a create's node by the path it asked for.
    const created =
      this.opts.mutation === 'requestedPath' && p.op.k === 'create' ? [p.op.p] : createdPaths(p.op, body)
    for (const path of created) {
      this.tree.onAckedCreate(path, zxid)
      if (!path.includes('/s-')) continue
      if (c.mine.length < 16) c.mine.push(path)
      else c.mine[this.prng.int(0, 15)] = path
    }
    if (p.op.k === 'closeSession') {
      this.stats.closes++
      this.reset(c)
    }
  }

  private onConnectResponse(c: Client, packet: Uint8Array): void {
    const res = decodeConnectResponse(packet)
    const resumed = c.session !== undefined
    if (res.timeOut <= 0 || (resumed && res.sessionId !== c.session)) {
      // The session expired meanwhile: what it had in flight is lost (applied at most once).
      this.stats.lostWithSession += c.queue.length
      return this.lose(c, resumed ? 'session expired while it moved' : 'session refused')
    }
    c.handshake = false
    c.session = res.sessionId
    c.password = res.passwd.slice()
    c.granted = c.once && ((res.features ?? 0) & ConclaveFeature.exactlyOnce) !== 0
    if (!resumed) {
      this.stats.sessions++
      this.writesAcked++
      this.lastAckAt = this.clock()
    }
    this.trace(
      `client ${c.index} <- session ${sid(c.session)} (${res.timeOut} ms${resumed ? ', resumed' : ''})`,
    )
    // A connection that does not grant exactly-once (a local session's) cannot take them again.
    if (!c.granted && c.queue.length > 0) {
      this.stats.lostWithSession += c.queue.length
      c.queue = []
    }
    // Every unanswered write again, oldest first, same xid (they were all sent exactly-once).
    for (const p of c.queue) {
      p.sends++
      p.issuedAt = this.clock()
      p.sentAtZxid = this.maxAppliedZxid
      this.stats.resent++
      this.trace(`client ${c.index} -> n${c.server} ${sid(c.session)}#${p.xid} again (${p.sends}x)`)
      this.send(c, p.xid, toRequest(p.op))
    }
    // Sometimes a new session moves on at once (its server died, say): to a server that may lag.
    if (!resumed && c.once && this.prng.chance(0.2)) {
      this.stats.quickMoves++
      this.drop(c, 'moves right after its session was created')
      this.connect(c)
    }
  }

  private acked(zxid: number): void {
    this.writesAcked++
    this.lastAckAt = this.clock()
    this.checker.onAckedZxid(zxid)
  }

  // ------------------------------------------------------------ what the servers apply

  onCommitted(n: SimNode, zxid: number, _data: Uint8Array): void {
    this.watchers.onCommitted(n, zxid)
    if (zxid <= this.maxAppliedZxid) return
    this.maxAppliedZxid = zxid
    const out = (n.sm as TreeStateMachine).lastOutcome
    if (out === undefined) return
    this.once.onApplied(out, zxid)
    if (out.sessionClosed !== undefined) {
      if (out.cxid === 0) this.stats.expiries++
      this.lastCommittedCxid.delete(out.sessionClosed)
      return
    }
    if (out.cxid <= 0) return
    const last = this.lastCommittedCxid.get(out.sessionId) ?? 0
    if (out.cxid <= last)
      this.checker.fail(
        'session-fifo',
        `n${n.id}: session ${sid(out.sessionId)} committed cxid ${out.cxid} after ${last}`,
      )
    this.lastCommittedCxid.set(out.sessionId, out.cxid)
  }
}
