/**
 * The WebSocket side of the client port: the server's half of RFC 6455's
 * opening handshake (parsed from the bytes the listener sniffed, without
 * Node's HTTP server) and WsConnection, a ClientConnection whose packets are
 * binary messages framed by shared/websocket.ts.
 *
 * Profiling 500 sessions opened and closed over ws:// showed Node's HTTP
 * server (parser, IncomingMessage, ServerResponse) plus the `ws` package's
 * upgrade, stream-based receiver and closing sequence (which ends an
 * already-ended socket, building an error each time) costing the servers
 * ~1 ms of CPU per session more than ZooKeeper's TCP framing; this does the
 * same work with one parse of the request head and one write of the answer.
 *
 * A handshake carrying an Origin header (a browser) is accepted only from an
 * origin in allowedOrigins (or with `*` there); non-browser clients send none.
 *
 * Invariants: a request head is at most REQUEST_HEAD_BYTES_MAX bytes and
 * must be complete within HANDSHAKE_TIMEOUT_MS; anything that is not a valid
 * upgrade gets an HTTP error answer and the socket is closed. A frame that
 * breaks the framing rules or the size limit closes the connection with the
 * matching close code before its payload is buffered.
 */
import { createHash } from 'node:crypto'
import type { Socket } from 'node:net'
import {
  CloseCode,
  closePayload,
  encodeFrame,
  frameHeader,
  HANDSHAKE_GUID,
  headerTokens,
  Opcode,
  parseHeaderLines,
  WsFrameDecoder,
  WsProtocolError,
} from '../../shared/websocket.js'
import type { ClientConnection } from './client-listener.js'
import { corkForTurn } from './cork.js'
import { SocketConnection } from './socket-connection.js'

export const REQUEST_HEAD_BYTES_MAX = 8 * 1024
export const HANDSHAKE_TIMEOUT_MS = 10_000
const HEADERS_MAX = 64
const KEY = /^[A-Za-z0-9+/]{22}==$/

export interface UpgradeRequest {
  /** Sec-WebSocket-Key (any path is accepted: the port serves one thing). */
  key: string
}

/** An HTTP answer to a request that is not a WebSocket upgrade we accept. */
export interface Refusal {
  status: number
  text: string
  headers?: Record<string, string>
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  426: 'Upgrade Required',
  431: 'Request Header Fields Too Large',
}

/** Parses a request head (everything before the blank line) as a WebSocket upgrade. */
export function parseUpgradeRequest(
  head: string,
  allowedOrigins: readonly string[] = [],
): UpgradeRequest | Refusal {
  const lines = head.split('\r\n')
  const requestLine = /^([A-Z]+) (\S+) HTTP\/(\d)\.(\d)$/.exec(lines[0] ?? '')
  if (requestLine === null) return { status: 400, text: 'malformed request line' }
  if (lines.length - 1 > HEADERS_MAX) return { status: 431, text: `more than ${HEADERS_MAX} header lines` }
  const headers = parseHeaderLines(lines.slice(1))
  if (headers === undefined) return { status: 400, text: 'malformed header line' }
  if (!headerTokens(headers, 'upgrade').includes('websocket'))
    return { status: 426, text: 'conclave: use a WebSocket or ZooKeeper TCP client on this port' }
  const [, method, , major, minor] = requestLine
  if (method !== 'GET') return { status: 405, text: 'a WebSocket upgrade must be a GET' }
  if (Number(major) < 1 || (major === '1' && Number(minor) < 1))
    return { status: 400, text: 'a WebSocket upgrade needs HTTP/1.1' }
  if (!headerTokens(headers, 'connection').includes('upgrade'))
    return { status: 400, text: 'Connection header must include Upgrade' }
  if (headers.get('sec-websocket-version') !== '13')
    return {
      status: 426,
      text: 'unsupported WebSocket version (13 is spoken)',
      headers: { 'Sec-WebSocket-Version': '13' },
    }
  const key = headers.get('sec-websocket-key') ?? ''
  if (!KEY.test(key)) return { status: 400, text: 'missing or invalid Sec-WebSocket-Key' }
  const origin = headers.get('origin')
  if (origin !== undefined && !allowedOrigins.includes('*') && !allowedOrigins.includes(origin))
    return { status: 403, text: `origin ${origin.slice(0, 200)} is not in allowedOrigins` }
  return { key }
}

export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + HANDSHAKE_GUID)
    .digest('base64')
}

export function upgradeResponse(key: string): string {
  return (
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`
  )
}

export function refusalResponse(r: Refusal): string {
  const body = `${r.text}\n`
  let extra = ''
  for (const [k, v] of Object.entries(r.headers ?? {})) extra += `${k}: ${v}\r\n`
  return (
    `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? 'Error'}\r\nContent-Type: text/plain\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`
  )
}

const HEAD_END = Buffer.from('\r\n\r\n')

/**
 * Reads a request head from `socket` (starting with `first`, already read),
 * then either answers 101 and calls `onUpgrade` with the bytes that followed
 * the head, or answers with an HTTP error and closes the socket.
 */
export function readUpgrade(
  socket: Socket,
  first: Buffer,
  allowedOrigins: readonly string[],
  onUpgrade: (rest: Buffer) => void,
  onRefused: (why: string) => void,
): void {
  let head = first
  const timer = setTimeout(() => {
    socket.off('data', more)
    socket.destroy()
    onRefused('no complete WebSocket handshake within the handshake timeout')
  }, HANDSHAKE_TIMEOUT_MS)
  // A client that goes away mid-handshake is not a timeout (nor worth a warning).
  socket.once('close', () => clearTimeout(timer))
  const refuse = (r: Refusal): void => {
    socket.end(refusalResponse(r))
    setTimeout(() => socket.destroy(), 1000).unref()
    onRefused(`refused handshake (${r.status}): ${r.text}`)
  }
  const tryParse = (): void => {
    const end = head.indexOf(HEAD_END)
    if (end < 0 && head.length <= REQUEST_HEAD_BYTES_MAX) return
    clearTimeout(timer)
    socket.off('data', more)
    if (end < 0 || end > REQUEST_HEAD_BYTES_MAX)
      return refuse({ status: 431, text: `request head over ${REQUEST_HEAD_BYTES_MAX} bytes` })
    const req = parseUpgradeRequest(head.toString('latin1', 0, end), allowedOrigins)
    if ('status' in req) return refuse(req)
    socket.write(upgradeResponse(req.key))
    onUpgrade(head.subarray(end + HEAD_END.length))
  }
  const more = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk])
    tryParse()
  }
  socket.on('data', more)
  tryParse()
}

/** A client connection over WebSocket: one ZooKeeper packet per binary message. */
export class WsConnection extends SocketConnection implements ClientConnection {
  readonly transport = 'ws' as const
  private readonly decoder: WsFrameDecoder
  private closeSent = false

  constructor(socket: Socket, remoteAddress: string, frameBytesMax: number, rest: Buffer) {
    super(socket, remoteAddress, new Uint8Array(rest.buffer, rest.byteOffset, rest.byteLength))
    this.decoder = new WsFrameDecoder({ expectMasked: true, messageBytesMax: frameBytesMax })
  }

  protected feed(chunk: Uint8Array): void {
    let events: ReturnType<WsFrameDecoder['push']>
    try {
      events = this.decoder.push(chunk)
    } catch (err) {
      const code = err instanceof WsProtocolError ? err.closeCode : CloseCode.protocolError
      this.shut(code, `bad frame: ${(err as Error).message}`)
      return
    }
    for (const ev of events) {
      if (this.closed) return
      switch (ev.kind) {
        case 'message':
          this.onPacket(ev.data)
          break
        case 'ping':
          this.writeFrame(Opcode.pong, ev.data)
          break
        case 'pong':
          break
        case 'close': {
          const normal = ev.code === CloseCode.normal || ev.code === CloseCode.noStatus
          const why = normal
            ? this.reason
            : `websocket closed (${ev.code}${ev.reason.length ? ` ${ev.reason}` : ''})`
          // Echo the code, as RFC 6455 section 5.5.1 asks.
          this.shut(ev.code === CloseCode.noStatus ? CloseCode.normal : ev.code, why)
          return
        }
      }
    }
  }

  private writeFrame(opcode: number, payload: Uint8Array): void {
    corkForTurn(this.socket)
    this.socket.write(encodeFrame(opcode, payload))
  }

  send(packet: Uint8Array): void {
    if (this.closed) return
    corkForTurn(this.socket)
    this.socket.write(frameHeader(Opcode.binary, packet.length, false))
    this.socket.write(packet)
  }

  close(reason: string, normal = false): void {
    this.shut(normal ? CloseCode.normal : CloseCode.policyViolation, reason)
  }

  /** Sends a close frame (once), then ends the socket. */
  private shut(code: number, reason: string): void {
    if (this.closed) return
    if (!this.closeSent) {
      this.closeSent = true
      this.writeFrame(Opcode.close, closePayload(code, reason))
    }
    this.end(reason)
  }
}
