/**
 * SimNetwork: the peer links of a simulated ensemble, modelled as what ZAB
 * actually runs on: one TCP connection per pair of servers.
 *
 * What is modelled, and why:
 *  - FIFO per direction of a connection, with a per-message delay drawn from
 *    a distribution (a base latency plus rare long stalls that, as in TCP,
 *    hold back everything behind them). Messages are never reordered or
 *    duplicated within a connection: TCP does not do that, and ZAB relies on
 *    it. Reordering exists only between different connections.
 *  - Loss is a connection break: in-flight messages are lost, both ends
 *    learn of it (peerDisconnected) after independent detection delays, and
 *    the pair reconnects after a back-off if both ends are up and not
 *    partitioned. Messages sent on a dead connection vanish.
 *  - Partitions block directions (symmetric, asymmetric, isolate-one,
 *    split). A blocked direction holds its messages (TCP retransmits); if the
 *    block lasts longer than tcpTimeoutMs the connection breaks. New
 *    connections need both directions open.
 *  - A crashed node's connections break; peers notice after a delay.
 *
 * Mutations (mutations.ts; each breaks one of the promises above):
 * `corruptProposal` flips a bit of every PROPOSAL's payload, `duplicateUpToDate`
 * delivers every UPTODATE twice, `slowApp` carries APP messages apart from
 * the connection's FIFO and slower, `noReconnect` never re-establishes a
 * connection that broke.
 *
 * Invariants: a message is delivered at most once, in order, and only on the
 * connection it was sent on (a process that has not yet noticed a break
 * cannot write into the next connection: the driver contract in
 * server/zab/zab-peer.ts); peerDisconnected always precedes the
 * next peerConnected of the same pair at each end.
 */
import type { Prng } from '../../server/core/prng.js'
import { decodePeerMessage, encodePeerMessage } from '../../server/zab/index.js'
import type { Scheduler } from './scheduler.js'

export interface NetworkParams {
  latencyMsMin: number
  latencyMsMax: number
  /** Probability that one message stalls its direction for a long delay. */
  stallProbability: number
  stallMsMax: number
  /** Probability that sending a message breaks the connection instead. */
  breakProbability: number
  detectMsMax: number
  reconnectMs: number
  tcpTimeoutMs: number
  /** A planted bug (mutations.ts), or none. */
  mutation?: NetworkMutation | undefined
}

export type NetworkMutation = 'corruptProposal' | 'duplicateUpToDate' | 'slowApp' | 'noReconnect'

/** slowApp: the most an APP message is delayed beyond the connection's latency. */
const SLOW_APP_MS_MAX = 200

export interface NetworkHooks {
  isUp(node: number): boolean
  /** Changes on every restart, so a stale notification never reaches a new incarnation. */
  incarnation(node: number): number
  deliver(to: number, from: number, bytes: Uint8Array): void
  /** `conn` identifies the connection; sends must name it (a socket, not a peer id). */
  connected(node: number, peer: number, conn: number): void
  disconnected(node: number, peer: number): void
  trace(line: string): void
}

interface Direction {
  lastDeliverAt: number
  held: Uint8Array[]
}

interface Conn {
  readonly a: number
  readonly b: number
  up: boolean
  gen: number
  /** Ends that still have to be told of the last break. */
  pendingDown: number
  retrying: boolean
  readonly dirs: Map<number, Direction>
}

export class SimNetwork {
  private readonly conns = new Map<string, Conn>()
  private readonly blocked = new Set<string>()
  breaks = 0
  stalls = 0
  messages = 0

  constructor(
    private readonly sched: Scheduler,
    private readonly prng: Prng,
    private readonly params: NetworkParams,
    private readonly hooks: NetworkHooks,
  ) {}

  private key(a: number, b: number): string {
    return a < b ? `${a}-${b}` : `${b}-${a}`
  }

  private conn(a: number, b: number): Conn {
    const k = this.key(a, b)
    let c = this.conns.get(k)
    if (!c) {
      c = {
        a: Math.min(a, b),
        b: Math.max(a, b),
        up: false,
        gen: 0,
        pendingDown: 0,
        retrying: false,
        dirs: new Map(),
      }
      c.dirs.set(c.a, { lastDeliverAt: 0, held: [] })
      c.dirs.set(c.b, { lastDeliverAt: 0, held: [] })
      this.conns.set(k, c)
    }
    return c
  }

  isBlocked(from: number, to: number): boolean {
    return this.blocked.has(`${from}>${to}`)
  }

  /** Connects every pair at the start. */
  start(nodes: readonly number[]): void {
    for (const a of nodes) for (const b of nodes) if (a < b) this.tryConnect(this.conn(a, b))
  }

  /**
   * Sends on connection `connId` (as the sender last saw it connected). A
   * write to a connection that has since died goes nowhere, even if a new
   * one to the same peer is up: that is a different socket.
   */
  send(from: number, to: number, connId: number, bytes: Uint8Array): void {
    const c = this.conn(from, to)
    if (!c.up || c.gen !== connId) return
    this.messages++
    if (this.prng.chance(this.params.breakProbability)) {
      this.breakConn(from, to, 'message loss')
      return
    }
    const dir = c.dirs.get(from)!
    let delay = this.prng.int(this.params.latencyMsMin, this.params.latencyMsMax)
    if (this.prng.chance(this.params.stallProbability)) {
      this.stalls++
      delay += this.prng.int(1, this.params.stallMsMax)
    }
    const gen = c.gen
    const mutation = this.params.mutation
    const type = mutation === undefined ? undefined : decodePeerMessage(bytes).type
    if (mutation === 'slowApp' && type === 'APP') {
      // The bug under test: its own, slower stream, not ordered with the ZAB messages.
      this.sched.after(delay + this.prng.int(1, SLOW_APP_MS_MAX), () => this.arrive(c, gen, from, to, bytes))
      return
    }
    if (mutation === 'corruptProposal' && type === 'PROPOSAL') bytes = flipLastPayloadBit(bytes)
    const at = Math.max(this.sched.now + delay, dir.lastDeliverAt)
    dir.lastDeliverAt = at
    this.sched.at(at, () => this.arrive(c, gen, from, to, bytes))
    if (mutation === 'duplicateUpToDate' && type === 'UPTODATE')
      this.sched.at(at, () => this.arrive(c, gen, from, to, bytes))
  }

  private arrive(c: Conn, gen: number, from: number, to: number, bytes: Uint8Array): void {
    if (!c.up || c.gen !== gen) return
    const dir = c.dirs.get(from)!
    if (this.isBlocked(from, to) || dir.held.length > 0) {
      dir.held.push(bytes)
      return
    }
    this.hooks.deliver(to, from, bytes)
  }

  /**
   * Breaks the connection between a and b (if up); both ends are told after
   * a detection delay, except an `initiator` that closed it, which knows at once.
   */
  breakConn(a: number, b: number, reason: string, initiator?: number, connId?: number): void {
    const c = this.conn(a, b)
    if (!c.up || (connId !== undefined && c.gen !== connId)) return
    this.breaks++
    c.up = false
    c.gen++
    for (const d of c.dirs.values()) d.held = []
    this.hooks.trace(`net: break ${c.a}-${c.b} (${reason})`)
    c.pendingDown = 2
    for (const end of [c.a, c.b]) {
      const other = end === c.a ? c.b : c.a
      const inc = this.hooks.incarnation(end)
      const delay = end === initiator ? 0 : this.prng.int(0, this.params.detectMsMax)
      this.sched.after(delay, () => {
        if (this.hooks.isUp(end) && this.hooks.incarnation(end) === inc) this.hooks.disconnected(end, other)
        c.pendingDown--
        if (c.pendingDown === 0) this.scheduleRetry(c)
      })
    }
  }

  /** noReconnect: a connection that was up once (and broke) stays down. */
  private reconnectBroken(c: Conn): boolean {
    return this.params.mutation === 'noReconnect' && c.gen > 0
  }

  private scheduleRetry(c: Conn): void {
    if (c.retrying || this.reconnectBroken(c)) return
    c.retrying = true
    this.sched.after(this.params.reconnectMs + this.prng.int(0, this.params.reconnectMs), () => {
      c.retrying = false
      if (!this.tryConnect(c)) this.scheduleRetry(c)
    })
  }

  private tryConnect(c: Conn): boolean {
    if (c.up) return true
    if (c.pendingDown > 0 || this.reconnectBroken(c)) return false
    if (!this.hooks.isUp(c.a) || !this.hooks.isUp(c.b)) return false
    if (this.isBlocked(c.a, c.b) || this.isBlocked(c.b, c.a)) return false
    c.up = true
    c.gen++
    for (const d of c.dirs.values()) {
      d.held = []
      d.lastDeliverAt = this.sched.now
    }
    this.hooks.trace(`net: connect ${c.a}-${c.b}`)
    this.hooks.connected(c.a, c.b, c.gen)
    this.hooks.connected(c.b, c.a, c.gen)
    return true
  }

  /** A node crashed: its connections break (peers notice after a delay). */
  nodeDown(node: number): void {
    for (const c of this.conns.values())
      if (c.a === node || c.b === node) this.breakConn(c.a, c.b, `${node} crashed`)
  }

  /** A node restarted: reconnect to everyone reachable. */
  nodeUp(node: number): void {
    for (const c of this.conns.values()) {
      if ((c.a === node || c.b === node) && !this.tryConnect(c)) this.scheduleRetry(c)
    }
  }

  /** Blocks directed pairs; held messages wait, and the connection breaks after tcpTimeoutMs. */
  block(pairs: readonly [number, number][]): void {
    for (const [from, to] of pairs) {
      this.blocked.add(`${from}>${to}`)
      const c = this.conn(from, to)
      const gen = c.gen
      this.sched.after(this.params.tcpTimeoutMs, () => {
        if (c.up && c.gen === gen && this.isBlocked(from, to)) this.breakConn(from, to, 'tcp timeout')
      })
    }
  }

  /** Removes every block; held messages flow again, in order, before anything sent later. */
  healAll(): void {
    this.blocked.clear()
    for (const c of this.conns.values()) {
      for (const [from, d] of c.dirs) {
        if (d.held.length === 0) continue
        const to = from === c.a ? c.b : c.a
        const msgs = d.held
        d.held = []
        const gen = c.gen
        for (const m of msgs) if (c.up && c.gen === gen) this.hooks.deliver(to, from, m)
      }
      if (!c.up) this.scheduleRetry(c)
    }
  }
}

/** corruptProposal: the payload's last byte with its low bit flipped (framing intact, so it decodes). */
function flipLastPayloadBit(bytes: Uint8Array): Uint8Array {
  const msg = decodePeerMessage(bytes)
  if (msg.type !== 'PROPOSAL' || msg.data.length === 0) return bytes
  const data = msg.data.slice()
  const last = data.length - 1
  data[last] = data[last]! ^ 1
  return encodePeerMessage({ ...msg, data })
}
