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
 * Limits: frame size (checked before buffering), connections per IP; a
 * connection that breaks a limit is closed with a logged reason.
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
import { corkForTurn } from './cork.js'
import { SocketConnection } from './socket-connection.js'
import { readUpgrade, WsConnection } from './ws-connection.js'

export interface ClientConnection {
  readonly id: number
  readonly remoteAddress: string
  /** The client's port, when the transport has one (the admin's `cons`). */
  readonly remotePort?: number | undefined
  readonly transport: 'ws' | 'tcp'
  /** Set when the connection came over TLS; its client certificate's subject when it gave a verified one. */
  tls?: ClientTlsIdentity | undefined
  /** Sends one packet (without a length prefix; the transport frames it). */
  send(packet: Uint8Array): void
  /** Bytes queued for the peer and not yet written. */
  bufferedBytes(): number
  /** `normal`: the client asked for the end (WebSocket close code 1000); otherwise 1008 with the reason. */
  close(reason: string, normal?: boolean): void
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
}

const HTTP_METHOD = /^(GET|HEAD|POST|PUT|OPTIONS) /
const FOUR_LETTERS = /^[a-z]{4}\r?\n?$/

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
    const head = Buffer.allocUnsafe(4)
    head.writeInt32BE(packet.length, 0)
    corkForTurn(this.socket)
    this.socket.write(head)
    this.socket.write(packet)
  }

  close(reason: string): void {
    this.end(reason)
  }
}

export class ClientListener {
  private readonly server: Server
  private readonly perIp = new Map<string, number>()
  private readonly sockets = new Set<Socket>()

  constructor(private readonly opts: ClientListenerOptions) {
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket))
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
    socket.once('close', () => {
      this.sockets.delete(socket)
      const left = (this.perIp.get(addr) ?? 1) - 1
      if (left <= 0) this.perIp.delete(addr)
      else this.perIp.set(addr, left)
    })
    socket.on('error', () => {})
    const tls = this.opts.tls
    if (tls === undefined) return this.sniff(socket, addr, undefined)
    socket.once('data', (first: Buffer) => {
      if (first[0] === TLS_HANDSHAKE_RECORD)
        return acceptTls(
          socket,
          first,
          tls,
          (secure, identity) => this.sniff(secure, addr, identity),
          (why) => this.opts.onReject(addr, why),
        )
      if (tls.only) {
        refusePlaintext(socket, first)
        return this.opts.onReject(
          addr,
          'plaintext connection refused: this port takes only TLS (clientTlsOnly)',
        )
      }
      this.sniff(socket, addr, undefined, first)
    })
  }

  /** Tells a WebSocket upgrade, a four-letter word and ZooKeeper framing apart by the first bytes (decrypted, under TLS). */
  private sniff(socket: Socket, addr: string, tls: ClientTlsIdentity | undefined, read?: Buffer): void {
    const onFirst = (first: Buffer): void => {
      const head = first.subarray(0, 8).toString('latin1')
      if (FOUR_LETTERS.test(first.toString('latin1'))) {
        const answer = this.opts.fourLetterWord(first.toString('latin1', 0, 4))
        if (answer !== undefined) {
          socket.end(answer)
          return
        }
      }
      if (HTTP_METHOD.test(head)) {
        readUpgrade(
          socket,
          first,
          this.opts.allowedOrigins,
          (rest) => {
            const conn: ClientConnection = new WsConnection(socket, addr, this.opts.frameBytesMax, rest)
            conn.tls = tls
            this.opts.onConnection(conn)
          },
          (why) => this.opts.onReject(addr, why),
        )
      } else {
        const conn: ClientConnection = new TcpConnection(socket, addr, this.opts.frameBytesMax, first)
        conn.tls = tls
        this.opts.onConnection(conn)
      }
    }
    if (read !== undefined) onFirst(read)
    else socket.once('data', onFirst)
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
    for (const s of this.sockets) s.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}
