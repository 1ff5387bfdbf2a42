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
 * Invariants: a request head is at most REQUEST_HEAD_BYTES_MAX bytes, its
 * lines end in CRLF, and it is read in one pass over the bytes as they come
 * (no re-scan, one concatenation); anything that is not a valid upgrade gets
 * an HTTP error answer and the socket is closed. (The listener closes a
 * connection with no session within handshakeTimeoutMs, head or not.) A
 * frame that breaks the framing rules or the size limit closes the
 * connection with the matching close code before its payload is buffered.
 * A client's pings are answered with at most one pong waiting to be sent:
 * a client that pings and never reads costs no memory for them (RFC 6455
 * section 5.5.3 allows answering only the latest ping).
 */
import { hash } from 'node:crypto'
import type { Socket } from 'node:net'
import {
  CloseCode,
  closePayload,
  encodeFrame,
  frameHeader,
  HANDSHAKE_GUID,
  type HeaderFields,
  headerTokens,
  Opcode,
  parseHeaderLines,
  type WsEvent,
  WsFrameDecoder,
  WsProtocolError,
} from '../../shared/websocket.js'
import type { ClientConnection } from './client-listener.js'
import { SocketConnection } from './socket-connection.js'

export const REQUEST_HEAD_BYTES_MAX = 8 * 1024
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

/** A request head's request line and header fields, parsed once for every use of it. */
export interface RequestHead {
  method: string
  path: string
  /** The HTTP version's digits. */
  major: string
  minor: string
  headers: HeaderFields
}

/** Parses a request head (everything before the blank line): its request line and header lines. */
export function parseRequestHead(head: string): RequestHead | Refusal {
  const lines = head.split('\r\n')
  const requestLine = /^([A-Z]+) (\S+) HTTP\/(\d)\.(\d)$/.exec(lines[0] ?? '')
  if (requestLine === null) return { status: 400, text: 'malformed request line' }
  if (lines.length - 1 > HEADERS_MAX) return { status: 431, text: `more than ${HEADERS_MAX} header lines` }
  const headers = parseHeaderLines(lines.slice(1))
  if (headers === undefined) return { status: 400, text: 'malformed header line' }
  return {
    method: requestLine[1]!,
    path: requestLine[2]!,
    major: requestLine[3]!,
    minor: requestLine[4]!,
    headers,
  }
}

/** Does the request ask for a WebSocket? (Whether it may have one is parseUpgradeRequest's.) */
export function asksUpgrade(req: RequestHead): boolean {
  return headerTokens(req.headers, 'upgrade').includes('websocket')
}

/** Parses a request head (everything before the blank line, or parsed) as a WebSocket upgrade. */
export function parseUpgradeRequest(
  head: string | RequestHead,
  allowedOrigins: readonly string[] = [],
): UpgradeRequest | Refusal {
  const req = typeof head === 'string' ? parseRequestHead(head) : head
  if ('status' in req) return req
  const { headers, method, major, minor } = req
  if (!asksUpgrade(req))
    return { status: 426, text: 'conclave: use a WebSocket or ZooKeeper TCP client on this port' }
  if (method !== 'GET') return { status: 405, text: 'a WebSocket upgrade must be a GET' }
  if (Number(major) < 1 || (major === '1' && Number(minor) < 1))
    return { status: 400, text: 'a WebSocket upgrade needs HTTP/1.1' }
  // RFC 7230 section 5.4: a server must answer 400 to an HTTP/1.1 request without Host.
  if (!headers.has('host')) return { status: 400, text: 'missing Host header' }
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
  return hash('sha1', key + HANDSHAKE_GUID, 'base64')
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

const CR = 0x0d
const LF = 0x0a

/** The end of a request head, or why it is refused. */
export type HeadResult = { head: string; rest: Buffer } | Refusal

/**
 * Reads a request head as its bytes arrive, each byte looked at once: lines
 * must end in CRLF (a bare LF or CR is refused at once, not left to wait for
 * a CRLF CRLF that never comes), and the head must end within
 * REQUEST_HEAD_BYTES_MAX bytes. The chunks are joined once, at the end.
 */
export class RequestHeadReader {
  private readonly chunks: Buffer[] = []
  private bytes = 0
  /** Bytes on the current line so far, CR excluded. */
  private lineBytes = 0
  private sawCr = false

  /** Feeds a chunk; returns the head and what followed it, a refusal, or undefined for more. */
  push(chunk: Buffer): HeadResult | undefined {
    this.chunks.push(chunk)
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!
      if (this.sawCr && b !== LF) return { status: 400, text: 'a CR not followed by LF in the request head' }
      if (b === LF) {
        if (!this.sawCr) return { status: 400, text: 'request head lines must end in CRLF, not a bare LF' }
        this.sawCr = false
        if (this.lineBytes === 0) return this.finish(this.bytes + i + 1)
        this.lineBytes = 0
      } else if (b === CR) this.sawCr = true
      else this.lineBytes++
      if (this.bytes + i + 1 >= REQUEST_HEAD_BYTES_MAX)
        return { status: 431, text: `request head over ${REQUEST_HEAD_BYTES_MAX} bytes` }
    }
    this.bytes += chunk.length
    return undefined
  }

  /** `end`: bytes up to and including the blank line's LF. */
  private finish(end: number): HeadResult {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks)
    // The head without its final CRLF CRLF, as parseUpgradeRequest takes it.
    return { head: all.toString('latin1', 0, end - 4), rest: all.subarray(end) }
  }
}

/**
 * Reads a request head from `socket` (starting with `first`, already read),
 * offers it to `onPlainRequest` (which may take the socket over), then
 * either accepts the upgrade and calls `onUpgrade` with the bytes that
 * followed the head, or answers with an HTTP error and closes the socket.
 * How long it may take is the listener's handshake deadline. The 101 is
 * written at once to a client that waits for it; a client that sent frames
 * with its request (the SDK's ConnectRequest) does not wait, and gets the
 * 101 as `upgrade` for the connection's first write (with the
 * ConnectResponse: one write and one read fewer per session).
 */
export function readUpgrade(
  socket: Socket,
  first: Buffer,
  allowedOrigins: readonly string[],
  onUpgrade: (rest: Buffer, upgrade: string | undefined) => void,
  onRefused: (why: string) => void,
  /** A request that is not an upgrade may be someone else's (the snapshot endpoint): true if it took the socket. */
  onPlainRequest?: (head: RequestHead) => boolean,
): void {
  const reader = new RequestHeadReader()
  const refuse = (r: Refusal): void => {
    socket.end(refusalResponse(r))
    setTimeout(() => socket.destroy(), 1000).unref()
    onRefused(`refused handshake (${r.status}): ${r.text}`)
  }
  const more = (chunk: Buffer): void => {
    const r = reader.push(chunk)
    if (r === undefined) return
    socket.off('data', more)
    if ('status' in r) return refuse(r)
    // Parsed once, for the plain-request hook and the upgrade both.
    const parsed = parseRequestHead(r.head)
    if ('status' in parsed) return refuse(parsed)
    if (!asksUpgrade(parsed) && onPlainRequest?.(parsed) === true) return
    const req = parseUpgradeRequest(parsed, allowedOrigins)
    if ('status' in req) return refuse(req)
    const answer = upgradeResponse(req.key)
    if (r.rest.length === 0) {
      socket.write(answer)
      onUpgrade(r.rest, undefined)
    } else onUpgrade(r.rest, answer)
  }
  socket.on('data', more)
  more(first)
}

/** The unmasked header of a binary frame of each payload length that fits in the 2-byte form (0..125), shared. */
const SMALL_BINARY_HEADERS: readonly Uint8Array[] = Array.from({ length: 126 }, (_, n) =>
  frameHeader(Opcode.binary, n, false),
)

/** A client connection over WebSocket: one ZooKeeper packet per binary message. */
export class WsConnection extends SocketConnection implements ClientConnection {
  readonly transport = 'ws' as const
  private readonly decoder: WsFrameDecoder
  private closeSent = false
  /** A pong is written and not yet handed to the kernel; `nextPong` answers the latest ping since. */
  private pongWaiting = false
  private nextPong: Uint8Array | undefined
  /** The 101 not yet written (see readUpgrade): it goes before whatever is sent first. */
  private upgrade: string | undefined

  constructor(
    socket: Socket,
    remoteAddress: string,
    frameBytesMax: number,
    rest: Buffer,
    upgrade?: string | undefined,
  ) {
    super(socket, remoteAddress, new Uint8Array(rest.buffer, rest.byteOffset, rest.byteLength))
    this.decoder = new WsFrameDecoder({ expectMasked: true, messageBytesMax: frameBytesMax })
    this.upgrade = upgrade
  }

  /** Every output of this class passes here first, so the 101 leaves before any frame. */
  private answerUpgrade(): void {
    const answer = this.upgrade
    if (answer === undefined) return
    this.upgrade = undefined
    this.output(Buffer.from(answer, 'latin1'))
  }

  protected feed(chunk: Uint8Array): void {
    let events: WsEvent[]
    let breach: WsProtocolError | undefined
    try {
      events = this.decoder.push(chunk)
    } catch (err) {
      breach =
        err instanceof WsProtocolError ? err : new WsProtocolError(CloseCode.protocolError, String(err))
      events = breach.events
    }
    this.handle(events)
    if (breach !== undefined) this.shut(breach.closeCode, `bad frame: ${breach.message}`)
  }

  private handle(events: WsEvent[]): void {
    for (const ev of events) {
      if (this.closed) return
      switch (ev.kind) {
        case 'message':
          this.onPacket(ev.data)
          break
        case 'ping':
          this.pong(ev.data)
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

  /**
   * Answers a ping. While a pong is still waiting to be sent (the client does
   * not read), a later ping only replaces the one waiting after it.
   */
  private pong(data: Uint8Array): void {
    if (this.pongWaiting) {
      // A copy: the payload is a view of the chunk it came in (up to 64 KiB).
      this.nextPong = data.slice()
      return
    }
    this.pongWaiting = true
    // Written now, not gathered: its callback says when the pong has left.
    this.answerUpgrade()
    this.flushOutput()
    this.socket.write(encodeFrame(Opcode.pong, data), () => {
      this.pongWaiting = false
      const next = this.nextPong
      this.nextPong = undefined
      if (next !== undefined && !this.closed) this.pong(next)
    })
  }

  private writeFrame(opcode: number, payload: Uint8Array): void {
    this.answerUpgrade()
    this.output(encodeFrame(opcode, payload))
  }

  send(packet: Uint8Array): void {
    if (this.closed) return
    this.answerUpgrade()
    // Most replies are under 126 bytes: their header comes from a table (output() copies it), not a new array.
    const head =
      packet.length < SMALL_BINARY_HEADERS.length
        ? SMALL_BINARY_HEADERS[packet.length]!
        : frameHeader(Opcode.binary, packet.length, false)
    this.output(head, packet)
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
