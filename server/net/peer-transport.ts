/**
 * PeerTransport: the server-to-server links of an ensemble, on each
 * server's peer port. One TCP connection per pair of servers (the server
 * with the higher id dials), length-prefixed binary messages, FIFO per link.
 * The messages sent to a peer during one turn of the event loop leave in one
 * write at the end of that turn (the check phase, right after the poll
 * phase's I/O callbacks): a profile of the 3-node ensemble under write load
 * had the leader spending ~30% of its busy time in write syscalls when each
 * message was written on its own.
 *
 * Identity: both ends prove they know the ensemble secret with an HMAC over
 * a fresh nonce from the other end and both server ids, so a stray process
 * (or a server of another ensemble) cannot join or impersonate a member.
 *
 * Quorum TLS (optional): the link is TLS with mutual authentication; each
 * end checks the other's certificate against the ensemble's CA and, when
 * names are configured, that it carries one of them; only then does the
 * HMAC handshake run, inside TLS and bound to the TLS session (its exported
 * keying material is part of the proof, so a proof cannot be relayed onto
 * another connection). Without a secret, the HMAC is keyed with nothing and
 * the certificate alone authenticates the peer.
 *
 * A broken link is reported once (`onDown`); the dialer reconnects with
 * back-off (100 ms doubling to 2 s). Messages sent while a link is down are
 * dropped: ZAB recovers by re-synchronising, as over a broken TCP stream.
 * A starting server knocks on every peer with a higher id (as ZooKeeper's
 * lower id connects and is called back): a connection whose proven hello
 * says "knock" is closed and its sender dialed at once, instead of at the
 * dialer's next retry (up to 2 s later: a restarted follower with the
 * lower id waited that long for its leader). A knock never replaces an
 * open link.
 *
 * The peers follow the membership (`setPeers`, from the configurations the
 * server's ZAB view holds): a new id, or a known id at a new address, is
 * dialed there (by the higher id, as always); a server gone from every
 * configuration has its link closed. A dialer no configuration names yet (a
 * joining server that follows until a reconfig adds it) is accepted once it
 * has proved the secret (or its certificate), up to `outsiderLinksMax`
 * such links; connections still in their handshake are at most
 * `handshakesMax`. A limit hit is logged (at most every LIMIT_LOG_INTERVAL_MS).
 *
 * Fault injection for tests: `setBlocked(ids)` drops links to those peers
 * and refuses new ones (a partition), without touching the process.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type Server, Socket } from 'node:net'
import { type SecureContext, TLSSocket, connect as tlsConnect } from 'node:tls'
import { FrameDecoder } from '../../shared/framing.js'
import { SERVER_ID_MAX } from '../config.js'
import { certificateNames, peerVerifyError, x509Subject } from './x509-identity.js'

export interface PeerAddress {
  id: number
  host: string
  port: number
}

export interface PeerTransportOptions {
  selfId: number
  listenHost: string
  listenPort: number
  /** The other members and their peer addresses (setPeers changes them). */
  peers: PeerAddress[]
  /** Open links from servers not in `peers` kept at most (config peerOutsiderLinksMax). */
  outsiderLinksMax: number
  /** Accepted connections in their handshake at once, at most (config peerHandshakesMax). */
  handshakesMax: number
  /** The ensemble secret both ends prove; undefined only with `tls` (the certificates authenticate). */
  secret: string | undefined
  /** Quorum TLS; undefined: plaintext links. */
  tls?: PeerTlsOptions | undefined
  messageBytesMax: number
  onMessage: (from: number, payload: Uint8Array) => void
  /** A link came up; `conn` identifies it for `send`. */
  onUp: (peer: number, conn: number) => void
  onDown: (peer: number) => void
  onWarn: (msg: string, detail: Record<string, unknown>) => void
}

export interface PeerTlsOptions {
  /** The context for a new link: this server's certificate and key, the ensemble's CA (it follows the files). */
  context: () => SecureContext
  /** Names a peer's certificate must carry one of (certificateNames in x509-identity.ts); empty: any the CA issued. */
  allowedNames: readonly string[]
}

const MAGIC = 'conclave-peer-v1'
const NONCE_BYTES = 16
const HANDSHAKE_TIMEOUT_MS = 5000
/** A limit hit is logged at most this often (a refused dialer retries every 2 s). */
const LIMIT_LOG_INTERVAL_MS = 10_000
/** A link closed because its peer left the configuration: its last messages get this long to leave. */
const RETIRE_LINGER_MS = 1000
/** The label of the TLS keying material the proofs are bound to (RFC 5705 exporter). */
const TLS_EXPORTER_LABEL = 'EXPORTER-conclave-peer-v1'

function proof(
  secret: string,
  nonce: Uint8Array,
  prover: number,
  verifier: number,
  binding: Uint8Array,
): Buffer {
  return createHmac('sha256', secret)
    .update(MAGIC)
    .update(nonce)
    .update(`${prover}>${verifier}`)
    .update(binding)
    .digest()
}

/** A dialer's hello (kind 2) as a knock: proven the same way, answered by closing and dialing back. */
const KNOCK = 4

type Phase = 'tls' | 'await-nonce' | 'await-hello' | 'await-proof' | 'open' | 'closed'

/** One authenticated link. Handshake messages are frames: [kind byte, …]. */
let nextLinkId = 1

class Link {
  phase: Phase
  peerId = 0
  readonly connId = nextLinkId++
  private readonly decoder: FrameDecoder
  private readonly myNonce = randomBytes(NONCE_BYTES)
  private readonly timer: NodeJS.Timeout
  /** The TLS session's exported keying material the proofs are bound to (empty without TLS). */
  private binding: Uint8Array = new Uint8Array(0)
  /** The TCP connection is up (a dialer's TLS error before that is just an unreachable peer). */
  private connected: boolean
  /** A dial that a newer address or a removal replaced: its end schedules no retry. */
  superseded = false
  /** A dialer that only asks its (higher-id) peer to dial back: it never opens, and is not retried. */
  knock = false
  /** An accepted connection counted in the transport's handshakes until it opens or closes. */
  private handshaking: boolean
  /** Messages sent this turn, not yet written (flush), and their bytes with the length prefixes. */
  private pending: Uint8Array[] = []
  pendingBytes = 0

  constructor(
    readonly socket: Socket,
    readonly dialer: boolean,
    private readonly t: PeerTransport,
    readonly expectedPeer: number,
  ) {
    this.decoder = new FrameDecoder(t.opts.messageBytesMax)
    const secure = socket instanceof TLSSocket
    this.phase = secure ? 'tls' : dialer ? 'await-nonce' : 'await-hello'
    this.connected = !dialer
    this.handshaking = !dialer
    if (!dialer) t.handshakes(1)
    socket.setNoDelay(true)
    socket.on('data', (c: Buffer) => this.feed(c))
    socket.once('connect', () => {
      this.connected = true
    })
    socket.on('error', (err) => {
      if (this.phase === 'tls' && this.connected) this.fail(`TLS handshake failed: ${err.message}`)
    })
    socket.on('close', () => this.closed())
    this.timer = setTimeout(() => this.fail('handshake timed out'), HANDSHAKE_TIMEOUT_MS)
    this.timer.unref()
    if (secure) socket.once(dialer ? 'secureConnect' : 'secure', () => this.secured(socket))
    else if (!dialer) this.sendNonce()
  }

  /** The acceptor speaks first: its nonce. */
  private sendNonce(): void {
    this.write(Buffer.concat([Buffer.from([1]), this.myNonce]))
  }

  /** TLS is up: the peer's certificate must verify against the CA and carry an allowed name. */
  private secured(socket: TLSSocket): void {
    if (this.phase !== 'tls') return
    const why = this.t.refusedCertificate(socket)
    if (why !== undefined) return this.fail(why)
    this.binding = socket.exportKeyingMaterial(32, TLS_EXPORTER_LABEL, Buffer.from(MAGIC))
    this.phase = this.dialer ? 'await-nonce' : 'await-hello'
    if (!this.dialer) this.sendNonce()
  }

  /**
   * Queues one message (not copied: the caller does not change it after);
   * the messages of one event-loop turn leave in one write (flush).
   */
  write(bytes: Uint8Array): void {
    if (this.pending.length === 0) this.t.flushAtTurnEnd(this)
    this.pending.push(bytes)
    this.pendingBytes += 4 + bytes.length
  }

  /**
   * Writes the queued messages as one buffer, each after its 4-byte length:
   * one allocation, one copy and one write request per turn, where writing
   * each framed message to a corked socket cost an allocation and a copy
   * per message and a writev of all of them.
   */
  flush(): void {
    const pending = this.pending
    if (pending.length === 0) return
    const out = Buffer.allocUnsafe(this.pendingBytes)
    let at = 0
    for (const m of pending) {
      out.writeUInt32BE(m.length, at)
      out.set(m, at + 4)
      at += 4 + m.length
    }
    this.pending = []
    this.pendingBytes = 0
    if (!this.socket.destroyed) this.socket.write(out)
  }

  private feed(chunk: Buffer): void {
    let frames: Uint8Array[]
    try {
      frames = this.decoder.push(chunk)
    } catch (err) {
      return this.fail(`bad frame: ${(err as Error).message}`)
    }
    for (const f of frames) {
      if (this.phase === 'closed') return
      if (this.phase === 'open') {
        if (!this.t.isDeafTo(this.peerId)) this.t.opts.onMessage(this.peerId, f)
      } else this.handshake(Buffer.from(f.buffer, f.byteOffset, f.byteLength))
    }
  }

  /** Dialer: nonce → hello(id, nonce', proof). Acceptor: hello → proof back, open. Dialer: proof → open. */
  private handshake(f: Buffer): void {
    const { selfId } = this.t.opts
    const secret = this.t.opts.secret ?? ''
    const binding = this.binding
    if (this.phase === 'await-nonce' && f[0] === 1 && f.length === 1 + NONCE_BYTES) {
      const hello = Buffer.alloc(1 + 4 + NONCE_BYTES + 32)
      hello[0] = this.knock ? KNOCK : 2
      hello.writeInt32BE(selfId, 1)
      this.myNonce.copy(hello, 5)
      proof(secret, f.subarray(1), selfId, this.expectedPeer, binding).copy(hello, 5 + NONCE_BYTES)
      this.write(hello)
      this.phase = 'await-proof'
      return
    }
    if (
      this.phase === 'await-hello' &&
      (f[0] === 2 || f[0] === KNOCK) &&
      f.length === 1 + 4 + NONCE_BYTES + 32
    ) {
      const id = f.readInt32BE(1)
      const theirNonce = f.subarray(5, 5 + NONCE_BYTES)
      const given = f.subarray(5 + NONCE_BYTES)
      if (id < 1 || id > SERVER_ID_MAX || id === selfId) return this.fail(`bad server id ${id}`)
      if (!timingSafeEqual(given, proof(secret, this.myNonce, id, selfId, binding)))
        return this.fail(`server ${id} does not know the ensemble secret`)
      if (f[0] === KNOCK) {
        this.fail('knock answered', false)
        return this.t.knocked(id)
      }
      // Only a proven peer is weighed against the limits, so a stranger cannot use them up.
      const refused = this.t.refusal(id)
      if (refused !== undefined) return this.fail(refused, false)
      this.peerId = id
      this.write(Buffer.concat([Buffer.from([3]), proof(secret, theirNonce, selfId, id, binding)]))
      return this.open()
    }
    if (this.phase === 'await-proof' && f[0] === 3 && f.length === 33) {
      if (!timingSafeEqual(f.subarray(1), proof(secret, this.myNonce, this.expectedPeer, selfId, binding)))
        return this.fail(`server ${this.expectedPeer} does not know the ensemble secret`)
      this.peerId = this.expectedPeer
      return this.open()
    }
    this.fail(`unexpected handshake message in phase ${this.phase}`)
  }

  private handshakeOver(): void {
    if (!this.handshaking) return
    this.handshaking = false
    this.t.handshakes(-1)
  }

  private open(): void {
    clearTimeout(this.timer)
    this.handshakeOver()
    this.phase = 'open'
    this.t.linkUp(this)
  }

  /** Closes the link now; `log`: say why (a limit's refusal is logged by the transport, throttled). */
  fail(reason: string, log = true): void {
    if (this.phase === 'closed') return
    const peer = this.peerId || this.expectedPeer
    // An acceptor does not know who is calling before the handshake: say where from.
    if (log)
      this.t.opts.onWarn('peer link failed', {
        peer: peer === 0 ? 'unknown' : peer,
        ...(peer === 0 ? { remote: `${this.socket.remoteAddress}:${this.socket.remotePort}` } : {}),
        reason,
      })
    this.socket.destroy()
    this.closed()
  }

  /**
   * Ends the link because its peer left the configuration: reported down at
   * once, but the messages already written (the COMMIT of that change) may
   * still leave before the connection closes.
   */
  retire(): void {
    if (this.phase !== 'open') return this.fail('removed from the configuration', false)
    this.closed(false)
    this.flush()
    this.socket.end()
    setTimeout(() => this.socket.destroy(), RETIRE_LINGER_MS).unref()
  }

  private closed(destroy = true): void {
    if (this.phase === 'closed') return
    const wasOpen = this.phase === 'open'
    this.phase = 'closed'
    clearTimeout(this.timer)
    this.handshakeOver()
    if (destroy) {
      this.socket.destroy()
      this.pending = []
      this.pendingBytes = 0
    }
    this.t.linkDown(this, wasOpen)
  }
}

export class PeerTransport {
  private readonly server: Server
  private readonly links = new Map<number, Link>()
  private readonly backoff = new Map<number, number>()
  private readonly timers = new Map<number, NodeJS.Timeout>()
  /** Peers we are dialing now, and the attempt (one at a time per peer). */
  private readonly dialing = new Map<number, Link>()
  /** The other members' addresses, by id: the newest configuration naming each (setPeers). */
  private book = new Map<number, PeerAddress>()
  /** Accepted connections still in their handshake. */
  private handshaking = 0
  /** When each limit was last logged (LIMIT_LOG_INTERVAL_MS). */
  private readonly limitLogged = new Map<string, number>()
  private blocked = new Set<number>()
  /** Test hook: peers whose messages are dropped on arrival while their links stay up (a one-way partition). */
  private deafTo = new Set<number>()
  private closing = false
  /** Every socket this transport opened or accepted and not yet closed: close() ends them all, handshaking ones too. */
  private readonly sockets = new Set<Socket>()
  /** Links with messages queued this turn; one setImmediate (the check phase, right after this turn's I/O) writes them all. */
  private toFlush: Link[] = []
  private readonly flushAll = (): void => {
    const links = this.toFlush
    this.toFlush = []
    for (const l of links) l.flush()
  }

  /** A link queued its first message of this turn (Link.write). */
  flushAtTurnEnd(link: Link): void {
    if (this.toFlush.length === 0) setImmediate(this.flushAll)
    this.toFlush.push(link)
  }

  private own<S extends Socket>(socket: S): S {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
    return socket
  }

  constructor(readonly opts: PeerTransportOptions) {
    for (const p of opts.peers) if (p.id !== opts.selfId) this.book.set(p.id, p)
    this.server = createServer((socket) => {
      if (this.closing) return socket.destroy()
      if (this.handshaking >= this.opts.handshakesMax) {
        this.limitHit('handshakes', 'too many peer connections in their handshake; closing a new one', {
          remote: `${socket.remoteAddress}:${socket.remotePort}`,
          limit: this.opts.handshakesMax,
          setting: 'peerHandshakesMax',
        })
        return socket.destroy()
      }
      this.own(socket)
      const tls = this.opts.tls
      new Link(
        tls === undefined
          ? socket
          : new TLSSocket(socket, {
              isServer: true,
              secureContext: tls.context(),
              requestCert: true,
              // Judged in refusedCertificate, so that the reason is logged.
              rejectUnauthorized: false,
            }),
        false,
        this,
        0,
      )
    })
  }

  /** Why a peer's TLS certificate is refused (no certificate, not from the CA, no allowed name); undefined if it is not. */
  refusedCertificate(socket: TLSSocket): string | undefined {
    const cert = socket.getPeerX509Certificate()
    if (cert === undefined) return 'peer certificate refused: the peer gave no TLS certificate'
    const why = peerVerifyError(socket)
    if (why !== undefined) return `peer certificate refused: ${why}; subject ${x509Subject(cert)}`
    const allowed = this.opts.tls?.allowedNames ?? []
    if (allowed.length === 0) return undefined
    const names = certificateNames(cert)
    if (names.some((n) => allowed.includes(n))) return undefined
    return `peer certificate refused: none of its names (${names.join('; ')}) is in quorumTlsAllowedNames`
  }

  /** Why a proven peer `id` may not have a link now (blocked, or one outsider too many); undefined: it may. */
  refusal(id: number): string | undefined {
    if (this.blocked.has(id)) return 'peer blocked'
    if (this.book.has(id)) return undefined
    let outsiders = 0
    for (const l of this.links.values()) if (!this.book.has(l.peerId)) outsiders++
    if (outsiders < this.opts.outsiderLinksMax) return undefined
    const why = `server ${id} is in no configuration this server knows, and ${outsiders} such links are open (peerOutsiderLinksMax)`
    this.limitHit('outsiders', 'peer link refused: too many links from servers outside the configuration', {
      peer: id,
      limit: this.opts.outsiderLinksMax,
      setting: 'peerOutsiderLinksMax',
    })
    return why
  }

  /** Counts accepted connections in their handshake (Link calls it). */
  handshakes(delta: number): void {
    this.handshaking += delta
  }

  /** Logs that a limit refused a connection, at most once per LIMIT_LOG_INTERVAL_MS per limit. */
  private limitHit(limit: string, msg: string, detail: Record<string, unknown>): void {
    const now = Date.now()
    if (now - (this.limitLogged.get(limit) ?? Number.NEGATIVE_INFINITY) < LIMIT_LOG_INTERVAL_MS) return
    this.limitLogged.set(limit, now)
    this.opts.onWarn(msg, detail)
  }

  /** The other members' addresses as this transport follows them now. */
  peers(): PeerAddress[] {
    return [...this.book.values()]
  }

  /**
   * The members and their addresses changed (a configuration was seen): a
   * new peer, or one at a new address, is dialed there (if we dial it: the
   * higher id does; an attempt at its old address is abandoned); a peer in
   * none of them has its link closed and is no longer dialed. A link that is
   * up stays up when its peer's address changes: it reached that peer.
   */
  setPeers(peers: readonly PeerAddress[]): void {
    const next = new Map<number, PeerAddress>()
    for (const p of peers) if (p.id !== this.opts.selfId) next.set(p.id, p)
    const before = this.book
    this.book = next
    for (const id of before.keys()) if (!next.has(id)) this.forget(id)
    for (const p of next.values()) {
      const old = before.get(p.id)
      if (old !== undefined && old.host === p.host && old.port === p.port) continue
      if (p.id > this.opts.selfId || this.links.has(p.id)) continue
      this.stopDialing(p.id)
      this.backoff.delete(p.id)
      this.dial(p.id)
    }
  }

  /** A peer left every configuration: no more dialing, its link (if any) ends. */
  private forget(id: number): void {
    this.stopDialing(id)
    this.backoff.delete(id)
    this.links.get(id)?.retire()
  }

  /** Cancels a pending retry to `id` (a stale timer entry would block every later retry). */
  private cancelRetry(id: number): void {
    const t = this.timers.get(id)
    if (t !== undefined) clearTimeout(t)
    this.timers.delete(id)
  }

  /** Cancels a pending retry and an attempt in progress to `id`. */
  private stopDialing(id: number): void {
    this.cancelRetry(id)
    const attempt = this.dialing.get(id)
    if (attempt === undefined) return
    attempt.superseded = true
    this.dialing.delete(id)
    attempt.fail('superseded', false)
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.opts.listenPort, this.opts.listenHost, () => resolve())
    })
    this.dialLower()
    for (const id of this.book.keys()) if (id > this.opts.selfId && !this.blocked.has(id)) this.knockOn(id)
  }

  /** Asks a peer with a higher id to dial this server now (see the header); nothing if it cannot be reached. */
  private knockOn(id: number): void {
    const p = this.book.get(id)
    if (p === undefined || this.closing) return
    new Link(this.connect(p), true, this, id).knock = true
  }

  /** Dials every peer with a lower id that has no link (the higher id of a pair dials). */
  private dialLower(): void {
    for (const id of this.book.keys()) if (id < this.opts.selfId && !this.blocked.has(id)) this.dial(id)
  }

  private dial(id: number): void {
    this.cancelRetry(id)
    // The address is looked up now: a retry goes where the newest configuration says.
    const p = this.book.get(id)
    if (p === undefined || this.closing || this.links.has(id) || this.dialing.has(id)) return
    if (this.blocked.has(id)) return this.retry(id)
    this.dialing.set(id, new Link(this.connect(p), true, this, id))
  }

  /** A connection to `p`'s peer port, TLS when quorum TLS is on ('connect' is emitted later: the caller makes its Link now). */
  private connect(p: PeerAddress): Socket {
    const tls = this.opts.tls
    if (tls === undefined) return this.own(new Socket()).connect(p.port, p.host)
    return this.own(
      tlsConnect({
        host: p.host,
        port: p.port,
        secureContext: tls.context(),
        // Judged in refusedCertificate: the CA, then quorumTlsAllowedNames instead of the host name.
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
      }),
    )
  }

  private retry(id: number): void {
    if (this.closing || this.timers.has(id) || !this.book.has(id)) return
    const delay = Math.min(2000, (this.backoff.get(id) ?? 50) * 2)
    this.backoff.set(id, delay)
    const t = setTimeout(() => this.dial(id), delay)
    t.unref()
    this.timers.set(id, t)
  }

  linkUp(link: Link): void {
    if (link.dialer && this.dialing.get(link.expectedPeer) === link) this.dialing.delete(link.expectedPeer)
    const old = this.links.get(link.peerId)
    if (old !== undefined || this.blocked.has(link.peerId) || this.closing) {
      // One link per pair: a newer duplicate replaces nothing.
      link.fail(old !== undefined ? 'duplicate link' : 'peer blocked')
      return
    }
    this.links.set(link.peerId, link)
    this.backoff.delete(link.peerId)
    this.opts.onUp(link.peerId, link.connId)
  }

  linkDown(link: Link, wasOpen: boolean): void {
    if (link.dialer && this.dialing.get(link.expectedPeer) === link) this.dialing.delete(link.expectedPeer)
    if (wasOpen && this.links.get(link.peerId) === link) {
      this.links.delete(link.peerId)
      this.opts.onDown(link.peerId)
    }
    if (link.dialer && !link.superseded && !link.knock) this.retry(link.expectedPeer)
  }

  /**
   * A proven peer with a lower id knocked (it has just started): dial it now
   * rather than at the next retry, unless a link to it is open or an attempt
   * is under way.
   */
  knocked(id: number): void {
    if (id > this.opts.selfId || this.links.has(id) || this.dialing.has(id)) return
    if (!this.book.has(id) || this.blocked.has(id) || this.closing) return
    this.backoff.delete(id)
    this.dial(id)
  }

  /**
   * Sends one message on link `conn` to a peer; false if that link is gone.
   * Binding a send to the link the protocol last saw come up keeps a message
   * meant for a dead connection from leaving on its replacement.
   */
  send(to: number, payload: Uint8Array, conn: number): boolean {
    const link = this.links.get(to)
    if (link === undefined || link.connId !== conn) return false
    link.write(payload)
    return true
  }

  /** Bytes written to the link to `peer` that the kernel has not taken yet (0 without a link). */
  bufferedBytes(peer: number): number {
    const link = this.links.get(peer)
    return link === undefined ? 0 : link.socket.writableLength + link.pendingBytes
  }

  /**
   * Stops or resumes reading the link from `peer` (backpressure: a SNAP
   * arriving faster than this server's storage takes it). A new link is
   * read from the start: a pause belongs to the link it was made on.
   */
  pauseReceiving(peer: number, paused: boolean): void {
    const socket = this.links.get(peer)?.socket
    if (paused) socket?.pause()
    else socket?.resume()
  }

  /** Closes the link to a peer now (ZAB ended its FIFO session); the dialer reconnects. */
  drop(peer: number): void {
    this.links.get(peer)?.fail('closed by the protocol')
  }

  isUp(peer: number): boolean {
    return this.links.has(peer)
  }

  /**
   * Test hook: drop every message these peers send here, keeping the links up
   * and still sending to them — a one-way partition (they hear us, we do not
   * hear them). The empty list ends it, and ends the links that dropped
   * messages (a stream with a gap in it is never delivered further).
   */
  setDeafTo(ids: number[]): void {
    const before = this.deafTo
    this.deafTo = new Set(ids)
    // TCP never delivers a message after losing an earlier one: a link that dropped messages is
    // broken once the partition ends, so the peer reconnects and the stream starts clean.
    for (const id of before) if (!this.deafTo.has(id)) this.links.get(id)?.fail('one-way partition healed')
  }

  /** Whether messages from `id` are dropped on arrival (setDeafTo). */
  isDeafTo(id: number): boolean {
    return this.deafTo.size > 0 && this.deafTo.has(id)
  }

  /** Test hook: cut links to these peers and refuse them until unblocked. */
  setBlocked(ids: number[]): void {
    this.blocked = new Set(ids)
    for (const id of ids) this.links.get(id)?.fail('blocked by fault injection')
    this.dialLower()
  }

  async close(): Promise<void> {
    this.closing = true
    for (const t of this.timers.values()) clearTimeout(t)
    for (const l of this.links.values()) l.socket.destroy()
    // Links still connecting or in their handshake would otherwise hold the process open until they time out.
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((r) => this.server.close(() => r()))
  }
}
