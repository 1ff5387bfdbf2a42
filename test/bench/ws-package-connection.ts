/**
 * Measurement only: the server's WebSocket side as the `ws` package would
 * do it — Node's HTTP parser for the upgrade (the sniffed bytes unshifted
 * and the socket handed to an http.Server), then `noServer` +
 * `handleUpgrade` with `maxPayload`, `perMessageDeflate: false` and
 * `autoPong: false` (a pong only while less than 64 KiB waits, as ours).
 * It exports what server/net/ws-connection.ts exports to the client
 * listener (readUpgrade, WsConnection), and ws-package/hooks.mjs swaps it in
 * for a server started with the hook, so the two can be benchmarked on the
 * same server (docs/architecture.md, design notes). Not shipped: `ws` is a
 * dev dependency.
 */
import { createServer } from 'node:http'
import type { Socket } from 'node:net'
import { type WebSocket, WebSocketServer } from 'ws'
import { FRAME_BYTES_MAX_DEFAULT } from '../../shared/framing.js'

const PONG_BACKLOG_BYTES_MAX = 64 * 1024

interface Pending {
  allowedOrigins: readonly string[]
  onUpgrade: (rest: Buffer) => void
  onRefused: (why: string) => void
}

const pending = new WeakMap<Socket, Pending>()
const upgraded = new WeakMap<Socket, WebSocket>()
const wss = new WebSocketServer({
  noServer: true,
  maxPayload: FRAME_BYTES_MAX_DEFAULT,
  perMessageDeflate: false,
  autoPong: false,
})
const http = createServer((_req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' })
  res.end('conclave: use a WebSocket or ZooKeeper TCP client on this port\n')
})
http.on('upgrade', (req, socket: Socket, head: Buffer) => {
  const p = pending.get(socket)
  if (p === undefined) return socket.destroy()
  pending.delete(socket)
  const origin = req.headers.origin
  if (origin !== undefined && !p.allowedOrigins.includes('*') && !p.allowedOrigins.includes(origin)) {
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    return p.onRefused(`refused handshake (403): origin ${origin}`)
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    upgraded.set(socket, ws)
    p.onUpgrade(Buffer.alloc(0))
  })
})

/** As server/net/ws-connection.ts's: the sniffed bytes go back into the socket, and Node's HTTP server reads the head. */
export function readUpgrade(
  socket: Socket,
  first: Buffer,
  allowedOrigins: readonly string[],
  onUpgrade: (rest: Buffer) => void,
  onRefused: (why: string) => void,
): void {
  pending.set(socket, { allowedOrigins, onUpgrade, onRefused })
  socket.unshift(first)
  http.emit('connection', socket)
}

let nextConnectionId = 1_000_000_000

/** A ClientConnection over a ws WebSocket. */
export class WsConnection {
  readonly id = nextConnectionId++
  readonly transport = 'ws' as const
  tls: unknown
  onPacket: (packet: Uint8Array) => void = () => {}
  onClose: (reason: string) => void = () => {}
  onEstablished: () => void = () => {}
  private readonly ws: WebSocket
  private closed = false

  constructor(
    socket: Socket,
    readonly remoteAddress: string,
    _frameBytesMax: number,
    _rest: Buffer,
  ) {
    this.ws = upgraded.get(socket)!
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return this.close('text messages are not part of the protocol')
      if (!this.closed) this.onPacket(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    })
    this.ws.on('ping', (data: Buffer) => {
      if (this.ws.bufferedAmount < PONG_BACKLOG_BYTES_MAX) this.ws.pong(data)
    })
    this.ws.on('close', (code: number, reason: Buffer) => this.finish(`websocket closed (${code} ${reason})`))
    this.ws.on('error', () => {})
  }

  send(packet: Uint8Array): void {
    if (!this.closed) this.ws.send(packet)
  }

  bufferedBytes(): number {
    return this.ws.bufferedAmount
  }

  close(reason: string, normal = false): void {
    if (this.closed) return
    this.ws.close(normal ? 1000 : 1008, Buffer.from(reason).subarray(0, 123).toString())
    this.finish(reason)
  }

  pauseReading(): void {
    this.ws.pause()
  }

  resumeReading(): void {
    this.ws.resume()
  }

  established(): void {
    const f = this.onEstablished
    this.onEstablished = () => {}
    f()
  }

  private finish(reason: string): void {
    if (this.closed) return
    this.closed = true
    this.onClose(reason)
  }
}
