/**
 * ClientListener: the client port. One TCP listener serves both WebSocket
 * (our SDK: one jute packet per binary message) and ZooKeeper's raw TCP
 * framing (a 4-byte length before each packet): a connection whose first
 * bytes are an HTTP request line gets the WebSocket handshake
 * (ws-connection.ts); anything else is ZooKeeper TCP. Both become a
 * ClientConnection; everything after framing is shared. With TLS configured,
 * a connection whose first byte starts a TLS record is handed to
 * client-tls.ts, and its decrypted stream is sniffed the same way.
 *
 * Limits: frame size (checked before buffering), connections per IP, and a
 * deadline: a connection without a session handshake done (ConnectRequest
 * answered) within handshakeTimeoutMs of being accepted is closed, whatever
 * stage it is in — silent, mid-TLS, mid-upgrade, upgraded and silent (issue
 * 15). A connection that breaks a limit is closed with a logged reason.
 * The first bytes are sniffed only once they tell: a first read of `G` or
 * `ru` waits for more. A plain HTTP GET that is not an upgrade may be taken
 * by `plainRequest` (the snapshot endpoint, admin/snapshot-endpoint.ts).
 * The only node:net importer for clients, with ws-connection.ts.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { FrameDecoder } from '../../shared/framing.js'
import {
  acceptTls,
  type ClientTlsIdentity,
  type ClientTlsOptions,
  refusePlaintext,
  TLS_HANDSHAKE_RECORD,
} from './client-tls.js'
import { SocketConnection } from './socket-connection.js'
import { type RequestHead, readUpgrade, WsConnection } from './ws-connection.js'

export interface ClientConnection {
  readonly id: number
  readonly remoteAddress: string
  /** The client's port, when the transport has one (the admin's `cons`). */
  readonly remotePort?: number | undefined
  readonly transport: 'ws' | 'tcp'
  /** Set when the connection came over TLS; its client certificate's subject when it gave a verified one. */
  tls?: ClientTlsIdentity | undefined
  /** Sends one packet (without a length prefix; the transport frames it); the caller may reuse `packet` once this returns. */
  send(packet: Uint8Array): void
  /** Bytes queued for the peer and not yet written. */
  bufferedBytes(): number
  /** `normal`: the client asked for the end (WebSocket close code 1000); otherwise 1008 with the reason. */
  close(reason: string, normal?: boolean): void
  /** The session handshake is done (a ConnectRequest answered): the handshake deadline no longer applies. */
  established(): void
  pauseReading(): void
  resumeReading(): void
  onPacket: (packet: Uint8Array) => void
  onClose: (reason: string) => void
}

export interface ClientListenerOptions {
  host: string
  port: number
  frameBytesMax: number
  connectionsPerIpMax: number
  /** Browser origins allowed to open a WebSocket (`*`: any); handshakes without an Origin are always allowed. */
  allowedOrigins: readonly string[]
  onConnection: (conn: ClientConnection) => void
  onReject: (remoteAddress: string, reason: string) => void
  /** ZooKeeper's four-letter words (`echo srvr | nc host port`): the text to answer, or undefined if unknown. */
  fourLetterWord: (word: string) => string | undefined
  /** TLS on this port (client-tls.ts); undefined: plaintext only. */
  tls?: ClientTlsOptions | undefined
  /** A connection whose session handshake is not done this long after it was accepted is closed. */
  handshakeTimeoutMs: number
  /**
   * A plain HTTP request (not a WebSocket upgrade), such as the snapshot
   * endpoint's: true if it took the socket (the handshake deadline then no
   * longer applies), false to answer it as a bad upgrade.
   */
  plainRequest?: (socket: Socket, req: PlainHttpRequest) => boolean
}

/** A plain HTTP request's head, as the listener parsed it. */
export interface PlainHttpRequest {
  method: string
  path: string
  /** Field names lower-cased. */
  headers: Map<string, string>
  remoteAddress: string
  tls: ClientTlsIdentity | undefined
}

/** A parsed request head that is not a WebSocket upgrade as a plain request; undefined unless HTTP/1.0 or 1.1. */
export function plainRequest(head: RequestHead): Omit<PlainHttpRequest, 'remoteAddress' | 'tls'> | undefined {
  if (head.major !== '1' || (head.minor !== '0' && head.minor !== '1')) return undefined
  return { method: head.method, path: head.path, headers: head.headers }
}

const HTTP_METHODS = ['GET ', 'HEAD ', 'POST ', 'PUT ', 'DELETE ', 'CONNECT ', 'OPTIONS ', 'TRACE ', 'PATCH ']

/** What a connection's first bytes say it is; 'more' while they could still be more than one thing. */
export type FirstBytes = 'http' | 'four-letter' | 'zookeeper' | 'more'

function isLower(b: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (b[i]! < 0x61 || b[i]! > 0x7a) return false
  return true
}

/**
 * An HTTP request line starts with an upper-case method and a space, a
 * four-letter word with four lower-case letters; ZooKeeper framing starts
 * with a length (its first byte is 0 for any packet under 16 MiB), and so
 * does anything else, which the frame limit then refuses.
 */
export function sniffFirstBytes(b: Uint8Array): FirstBytes {
  if (b.length === 0) return 'more'
  const c = b[0]!
  if (c >= 0x61 && c <= 0x7a) {
    if (b.length < 4) return isLower(b, b.length) ? 'more' : 'zookeeper'
    return isLower(b, 4) ? 'four-letter' : 'zookeeper'
  }
  if (c < 0x41 || c > 0x5a) return 'zookeeper'
  let prefix = false
  for (const m of HTTP_METHODS) {
    const n = Math.min(m.length, b.length)
    let same = true
    for (let i = 0; i < n && same; i++) same = b[i] === m.charCodeAt(i)
    if (!same) continue
    if (b.length >= m.length) return 'http'
    prefix = true
  }
  return prefix ? 'more' : 'zookeeper'
}

/** One accepted socket's handshake deadline, and the connection made of it once there is one. */
interface HandshakeDeadline {
  readonly socket: Socket
  readonly addr: string
  /** performance.now() at accept. */
  readonly at: number
  conn: ClientConnection | undefined
}

/**
 * The handshake deadlines of the connections still without a session, in
 * the order they were accepted — the order they fall due, every one having
 * the same timeout — under ONE timer, armed for the earliest. A timer per
 * connection (created, unref'd, cleared at its session's handshake) was ~3%
 * of a server's CPU opening and closing sessions back to back.
 */
class HandshakeDeadlines {
  private readonly pending = new Set<HandshakeDeadline>()
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly ms: number,
    private readonly expire: (d: HandshakeDeadline) => void,
  ) {}

  add(d: HandshakeDeadline): void {
    this.pending.add(d)
    if (this.timer === undefined) this.arm(this.ms)
  }

  /** The deadline no longer applies (a session, a closed socket, a request someone else took). */
  done(d: HandshakeDeadline): void {
    this.pending.delete(d)
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.sweep, ms)
    this.timer.unref()
  }

  /** Expires what is due, in order, and re-arms for the next (one may come due a little later). */
  private readonly sweep = (): void => {
    this.timer = undefined
    const now = performance.now()
    for (const d of this.pending) {
      const left = d.at + this.ms - now
      if (left > 0) return this.arm(left)
      this.pending.delete(d)
      this.expire(d)
    }
  }

  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.pending.clear()
  }
}

const LENGTH_PREFIX = new Uint8Array(4)
const LENGTH_PREFIX_VIEW = new DataView(LENGTH_PREFIX.buffer)

class TcpConnection extends SocketConnection implements ClientConnection {
  readonly transport = 'tcp' as const
  private readonly decoder: FrameDecoder

  constructor(socket: Socket, remoteAddress: string, frameBytesMax: number, first: Uint8Array) {
    super(socket, remoteAddress, first)
    this.decoder = new FrameDecoder(frameBytesMax)
  }

  protected feed(chunk: Uint8Array): void {
    let packets: Uint8Array[]
    try {
      packets = this.decoder.push(chunk)
    } catch (err) {
      this.close(`bad frame: ${(err as Error).message}`)
      return
    }
    for (const p of packets) {
      if (this.closed) return
      this.onPacket(p)
    }
  }

  send(packet: Uint8Array): void {
    if (this.closed) return
    // output() copies it, so one length prefix serves every packet.
    LENGTH_PREFIX_VIEW.setInt32(0, packet.length)
    this.output(LENGTH_PREFIX, packet)
  }

  close(reason: string): void {
    this.end(reason)
  }
}

export class ClientListener {
  private readonly server: Server
  private readonly perIp = new Map<string, number>()
  private readonly sockets = new Set<Socket>()
  private readonly deadlines: HandshakeDeadlines

  constructor(private readonly opts: ClientListenerOptions) {
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket))
    const ms = opts.handshakeTimeoutMs
    // Closes the socket, or the connection made of it, if its session handshake is not done in time.
    this.deadlines = new HandshakeDeadlines(ms, (d) => {
      const reason = `no session within handshakeTimeoutMs (${ms} ms)`
      if (d.conn !== undefined) d.conn.close(reason)
      else d.socket.destroy()
      this.opts.onReject(d.addr, reason)
    })
  }

  private accept(socket: Socket): void {
    const addr = socket.remoteAddress ?? 'unknown'
    const n = (this.perIp.get(addr) ?? 0) + 1
    if (this.opts.connectionsPerIpMax > 0 && n > this.opts.connectionsPerIpMax) {
      this.opts.onReject(
        addr,
        `too many connections from ${addr} (maxClientCnxns=${this.opts.connectionsPerIpMax})`,
      )
      socket.destroy()
      return
    }
    this.perIp.set(addr, n)
    this.sockets.add(socket)
    const deadline: HandshakeDeadline = { socket, addr, at: performance.now(), conn: undefined }
    this.deadlines.add(deadline)
    socket.once('close', () => {
      this.deadlines.done(deadline)
      this.sockets.delete(socket)
      const left = (this.perIp.get(addr) ?? 1) - 1
      if (left <= 0) this.perIp.delete(addr)
      else this.perIp.set(addr, left)
    })
    socket.on('error', () => {})
    const tls = this.opts.tls
    if (tls === undefined) return this.sniff(socket, addr, undefined, deadline)
    socket.once('data', (first: Buffer) => {
      if (first[0] === TLS_HANDSHAKE_RECORD)
        return acceptTls(
          socket,
          first,
          tls,
          (secure, identity) => this.sniff(secure, addr, identity, deadline),
          (why) => this.opts.onReject(addr, why),
        )
      if (tls.only) {
        refusePlaintext(socket, first)
        return this.opts.onReject(
          addr,
          'plaintext connection refused: this port takes only TLS (clientTlsOnly)',
        )
      }
      this.sniff(socket, addr, undefined, deadline, first)
    })
  }

  /** A connection is made: the deadline now closes it (with a reason it can read), until its session is established. */
  private adopt(
    conn: WsConnection | TcpConnection,
    tls: ClientTlsIdentity | undefined,
    deadline: HandshakeDeadline,
  ): void {
    const client: ClientConnection = conn
    client.tls = tls
    deadline.conn = conn
    conn.onEstablished = () => this.deadlines.done(deadline)
    this.opts.onConnection(conn)
    conn.start()
  }

  /** Tells a WebSocket upgrade, a four-letter word and ZooKeeper framing apart by the first bytes (decrypted, under TLS). */
  private sniff(
    socket: Socket,
    addr: string,
    tls: ClientTlsIdentity | undefined,
    deadline: HandshakeDeadline,
    read?: Buffer,
  ): void {
    let first = read ?? Buffer.alloc(0)
    const known = read === undefined ? 'more' : sniffFirstBytes(read)
    if (known !== 'more') return this.dispatch(known, socket, addr, tls, deadline, first)
    const more = (chunk: Buffer): void => {
      first = first.length === 0 ? chunk : Buffer.concat([first, chunk])
      const kind = sniffFirstBytes(first)
      if (kind === 'more') return
      // Off before the hand-over: whatever takes the socket over reads from the next chunk on
      // (this one is its `first`), and may put bytes back (unshift) without them coming here.
      socket.off('data', more)
      this.dispatch(kind, socket, addr, tls, deadline, first)
    }
    socket.on('data', more)
  }

  private dispatch(
    kind: Exclude<FirstBytes, 'more'>,
    socket: Socket,
    addr: string,
    tls: ClientTlsIdentity | undefined,
    deadline: HandshakeDeadline,
    first: Buffer,
  ): void {
    if (kind === 'four-letter') {
      const answer = this.opts.fourLetterWord(first.toString('latin1', 0, 4))
      if (answer !== undefined) {
        socket.end(answer)
        return
      }
    }
    if (kind === 'http') {
      readUpgrade(
        socket,
        first,
        this.opts.allowedOrigins,
        (rest, upgrade) =>
          this.adopt(new WsConnection(socket, addr, this.opts.frameBytesMax, rest, upgrade), tls, deadline),
        (why) => this.opts.onReject(addr, why),
        (head) => {
          const plain = this.opts.plainRequest
          const req = plain === undefined ? undefined : plainRequest(head)
          if (req === undefined || !plain!(socket, { ...req, remoteAddress: addr, tls })) return false
          this.deadlines.done(deadline)
          return true
        },
      )
      return
    }
    this.adopt(new TcpConnection(socket, addr, this.opts.frameBytesMax, first), tls, deadline)
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject)
        const a = this.server.address()
        resolve(typeof a === 'object' && a !== null ? a.port : this.opts.port)
      })
    })
  }

  close(): Promise<void> {
    this.deadlines.stop()
    for (const s of this.sockets) s.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}
