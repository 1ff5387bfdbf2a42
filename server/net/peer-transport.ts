/**
 * PeerTransport: the server-to-server links of an ensemble, on each
 * server's peer port. One TCP connection per pair of servers (the server
 * with the higher id dials), length-prefixed binary messages, FIFO per link.
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
 *
 * Fault injection for tests: `setBlocked(ids)` drops links to those peers
 * and refuses new ones (a partition), without touching the process.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type Server, Socket } from 'node:net'
import { type SecureContext, TLSSocket, connect as tlsConnect } from 'node:tls'
import { FrameDecoder, frame } from '../../shared/framing.js'
import { corkForTurn } from './cork.js'
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
  peers: PeerAddress[]
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

  /** Messages written in one event-loop turn leave in one syscall (corkForTurn). */
  write(bytes: Uint8Array): void {
    corkForTurn(this.socket)
    this.socket.write(frame(bytes))
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
      if (this.phase === 'open') this.t.opts.onMessage(this.peerId, f)
      else this.handshake(Buffer.from(f.buffer, f.byteOffset, f.byteLength))
    }
  }

  /** Dialer: nonce → hello(id, nonce', proof). Acceptor: hello → proof back, open. Dialer: proof → open. */
  private handshake(f: Buffer): void {
    const { selfId } = this.t.opts
    const secret = this.t.opts.secret ?? ''
    const binding = this.binding
    if (this.phase === 'await-nonce' && f[0] === 1 && f.length === 1 + NONCE_BYTES) {
      const hello = Buffer.alloc(1 + 4 + NONCE_BYTES + 32)
      hello[0] = 2
      hello.writeInt32BE(selfId, 1)
      this.myNonce.copy(hello, 5)
      proof(secret, f.subarray(1), selfId, this.expectedPeer, binding).copy(hello, 5 + NONCE_BYTES)
      this.write(hello)
      this.phase = 'await-proof'
      return
    }
    if (this.phase === 'await-hello' && f[0] === 2 && f.length === 1 + 4 + NONCE_BYTES + 32) {
      const id = f.readInt32BE(1)
      const theirNonce = f.subarray(5, 5 + NONCE_BYTES)
      const given = f.subarray(5 + NONCE_BYTES)
      if (!this.t.knows(id)) return this.fail(`unknown server id ${id}`)
      if (!timingSafeEqual(given, proof(secret, this.myNonce, id, selfId, binding)))
        return this.fail(`server ${id} does not know the ensemble secret`)
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

  private open(): void {
    clearTimeout(this.timer)
    this.phase = 'open'
    this.t.linkUp(this)
  }

  fail(reason: string): void {
    if (this.phase === 'closed') return
    const peer = this.peerId || this.expectedPeer
    // An acceptor does not know who is calling before the handshake: say where from.
    this.t.opts.onWarn('peer link failed', {
      peer: peer === 0 ? 'unknown' : peer,
      ...(peer === 0 ? { remote: `${this.socket.remoteAddress}:${this.socket.remotePort}` } : {}),
      reason,
    })
    this.socket.destroy()
    this.closed()
  }

  private closed(): void {
    if (this.phase === 'closed') return
    const wasOpen = this.phase === 'open'
    this.phase = 'closed'
    clearTimeout(this.timer)
    this.socket.destroy()
    this.t.linkDown(this, wasOpen)
  }
}

export class PeerTransport {
  private readonly server: Server
  private readonly links = new Map<number, Link>()
  private readonly backoff = new Map<number, number>()
  private readonly timers = new Map<number, NodeJS.Timeout>()
  /** Peers we are dialing now (one attempt at a time per peer). */
  private readonly dialing = new Set<number>()
  private blocked = new Set<number>()
  private closing = false
  /** Every socket this transport opened or accepted and not yet closed: close() ends them all, handshaking ones too. */
  private readonly sockets = new Set<Socket>()

  private own<S extends Socket>(socket: S): S {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
    return socket
  }

  constructor(readonly opts: PeerTransportOptions) {
    this.server = createServer((socket) => {
      if (this.closing) return socket.destroy()
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

  knows(id: number): boolean {
    return id !== this.opts.selfId && this.opts.peers.some((p) => p.id === id) && !this.blocked.has(id)
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.opts.listenPort, this.opts.listenHost, () => resolve())
    })
    for (const p of this.opts.peers) if (p.id < this.opts.selfId) this.dial(p)
  }

  private dial(p: PeerAddress): void {
    // Forget the timer first: a stale entry would block every later retry.
    const t = this.timers.get(p.id)
    if (t !== undefined) clearTimeout(t)
    this.timers.delete(p.id)
    if (this.closing || this.links.has(p.id) || this.dialing.has(p.id)) return
    if (this.blocked.has(p.id)) return this.retry(p)
    this.dialing.add(p.id)
    const tls = this.opts.tls
    if (tls !== undefined) {
      const socket = this.own(
        tlsConnect({
          host: p.host,
          port: p.port,
          secureContext: tls.context(),
          // Judged in refusedCertificate: the CA, then quorumTlsAllowedNames instead of the host name.
          rejectUnauthorized: false,
          checkServerIdentity: () => undefined,
        }),
      )
      new Link(socket, true, this, p.id)
      return
    }
    const socket = this.own(new Socket())
    new Link(socket, true, this, p.id)
    socket.connect(p.port, p.host)
  }

  private retry(p: PeerAddress): void {
    if (this.closing || this.timers.has(p.id)) return
    const delay = Math.min(2000, (this.backoff.get(p.id) ?? 50) * 2)
    this.backoff.set(p.id, delay)
    const t = setTimeout(() => this.dial(p), delay)
    t.unref()
    this.timers.set(p.id, t)
  }

  linkUp(link: Link): void {
    if (link.dialer) this.dialing.delete(link.expectedPeer)
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
    if (link.dialer && !wasOpen) this.dialing.delete(link.expectedPeer)
    if (wasOpen && this.links.get(link.peerId) === link) {
      this.links.delete(link.peerId)
      this.opts.onDown(link.peerId)
    }
    if (link.dialer) {
      const p = this.opts.peers.find((x) => x.id === link.expectedPeer)
      if (p !== undefined) this.retry(p)
    }
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
    return this.links.get(peer)?.socket.writableLength ?? 0
  }

  /** Closes the link to a peer now (ZAB ended its FIFO session); the dialer reconnects. */
  drop(peer: number): void {
    this.links.get(peer)?.fail('closed by the protocol')
  }

  isUp(peer: number): boolean {
    return this.links.has(peer)
  }

  /** Test hook: cut links to these peers and refuse them until unblocked. */
  setBlocked(ids: number[]): void {
    this.blocked = new Set(ids)
    for (const id of ids) this.links.get(id)?.fail('blocked by fault injection')
    for (const p of this.opts.peers) if (p.id < this.opts.selfId && !this.blocked.has(p.id)) this.dial(p)
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
