/**
 * The SDK's own WebSocket client for Node (ws:// over node:net, wss:// over
 * node:tls): the opening handshake of RFC 6455 written and checked here, then
 * binary messages framed by shared/websocket.ts, one ZooKeeper packet each.
 *
 * Why not the `ws` package: opening and closing a session through it cost
 * the client ~1.8 ms of CPU against ~1.0 ms over tcp:// (Node's HTTP client
 * request, its header writer and parser, the stream-based receiver); this
 * does one write for the request, one parse of the answer and one write per
 * burst of packets: what is sent in one tick is gathered and written as one
 * buffer once the tick's microtasks run. (Corking the socket instead cost
 * a writev of several chunks per burst, and two chunks per frame: 9% of a
 * client's CPU opening and closing sessions, against 3% for tcp://'s one
 * buffer per write.)
 *
 * The caller's first frame (the ConnectRequest, TransportOptions.earlyFrame)
 * goes in the same write as the upgrade request instead of a round trip
 * later: a session then opens in the round trips of tcp://. RFC 6455
 * section 4.1 has a client wait for the 101 first; we do not, because the
 * only server this client speaks to reads what follows the request head as
 * frames (Conclave's client port; the `ws` package's server does too), and a
 * server that refuses the upgrade answers with an HTTP error and closes, so
 * the early frame is never taken for anything else.
 *
 * Invariants: see transport.ts. Every frame sent is masked with a fresh key
 * from crypto.randomFillSync; a frame from the server that breaks the
 * framing rules, a text message or a message over frameBytesMax closes the
 * connection. The answer to the handshake must be a 101 with the right
 * Sec-WebSocket-Accept and no extension or subprotocol we did not ask for.
 * Imports node:* only dynamically (this file is itself loaded dynamically,
 * and only in Node), so browser bundles build without it.
 */
import {
  CloseCode,
  closePayload,
  encodeFrame,
  HANDSHAKE_GUID,
  headerTokens,
  Opcode,
  parseHeaderLines,
  type WsEvent,
  WsFrameDecoder,
  WsProtocolError,
} from '../shared/websocket.js'
import { boundedMemo } from './bounded-memo.js'
import type { Endpoint } from './connect-string.js'
import {
  afterTick,
  type TlsOptions,
  type Transport,
  type TransportHandlers,
  type TransportOptions,
} from './transport.js'

type Socket = import('node:net').Socket
type Crypto = typeof import('node:crypto')
type Net = typeof import('node:net')
type Tls = typeof import('node:tls')

// Non-literal specifiers, so a browser bundler leaves them alone (this file never runs in a browser).
const NODE_NET = 'node:net'
const NODE_TLS = 'node:tls'
const NODE_CRYPTO = 'node:crypto'

// Loaded on first use and kept (an import() per connection costs the ES module loader's work).
let nodeCrypto: Crypto | undefined
let nodeNet: Net | undefined
let nodeTls: Tls | undefined

/** The most a server's answer to the handshake may take before its blank line. */
const RESPONSE_HEAD_BYTES_MAX = 16 * 1024

/**
 * Masking keys and handshake keys are cut from one pool, refilled from the
 * CSPRNG once per 4 KiB (filling it for every connection was 4% of the
 * client's CPU when opening sessions back to back).
 */
class RandomPool {
  private pool = new Uint8Array(0)
  private at = 0

  constructor(private readonly crypto: Crypto) {}

  /** n (≤ 4096) fresh random bytes; never handed out twice. */
  take(n: number): Uint8Array {
    if (this.at + n > this.pool.length) {
      this.pool = new Uint8Array(4096)
      this.crypto.randomFillSync(this.pool)
      this.at = 0
    }
    const out = this.pool.subarray(this.at, this.at + n)
    this.at += n
    return out
  }
}

let randomPool: RandomPool | undefined

class NodeWsTransport implements Transport {
  closed = false
  /** The early frame once sent: the caller's sendFrame of it is not sent again (see TransportOptions). */
  sentEarly: Uint8Array | undefined
  /** Bytes sent this tick, written as one buffer when its microtasks run (see the header). */
  private out: Uint8Array[] = []
  private outBytes = 0
  private readonly decoder: WsFrameDecoder

  constructor(
    private readonly socket: Socket,
    private readonly random: RandomPool,
    private readonly handlers: TransportHandlers,
    frameBytesMax: number,
  ) {
    this.decoder = new WsFrameDecoder({ expectMasked: false, messageBytesMax: frameBytesMax })
  }

  /** Queues bytes for this tick's write (see the header). */
  output(bytes: Uint8Array): void {
    this.out.push(bytes)
    this.outBytes += bytes.length
    if (this.out.length === 1) afterTick(this.flush)
  }

  /** Writes what this tick sent, as one buffer. */
  private readonly flush = (): void => {
    const out = this.out
    if (out.length === 0) return
    const bytes = out.length === 1 ? out[0]! : Buffer.concat(out, this.outBytes)
    this.out = []
    this.outBytes = 0
    if (!this.socket.destroyed) this.socket.write(bytes)
  }

  sendFrame(frame: Uint8Array): void {
    if (this.closed) return
    if (frame === this.sentEarly) {
      this.sentEarly = undefined
      return
    }
    this.output(encodeFrame(Opcode.binary, frame.subarray(4), this.random.take(4)))
  }

  private control(opcode: number, payload: Uint8Array): void {
    this.output(encodeFrame(opcode, payload, this.random.take(4)))
  }

  close(): void {
    this.shutdown(CloseCode.normal, 'client closed')
  }

  /**
   * Sends a close frame, half-closes, and drops the socket if the server has
   * not closed it within a second. `answering`: the server closed first (its
   * close frame is in, and it sends nothing after it), so this frame completes
   * the closing handshake and the socket is dropped as soon as the frame is in
   * the kernel (written through at once, as it nearly always is): no half-close,
   * no wait for the server's end of the stream (9% of a client's CPU opening
   * and closing sessions went to that half-close, its end-of-stream read and
   * the timer). Dropped then, not from the write's callback: a stream destroyed
   * inside its write callback builds an ERR_STREAM_DESTROYED, stack and all.
   * Plain TCP only: over TLS a written frame may still wait in the TLS layer.
   */
  private shutdown(code: number, reason: string, answering = false): void {
    if (this.closed) return
    this.closed = true
    this.control(Opcode.close, closePayload(code, reason))
    this.flush()
    const plain = (this.socket as { encrypted?: boolean }).encrypted !== true
    if (answering && plain && this.socket.writableLength === 0) {
      this.socket.destroy()
      return
    }
    this.socket.end()
    setTimeout(() => this.socket.destroy(), 1000).unref()
  }

  feed(chunk: Uint8Array): void {
    if (this.closed) return
    let events: ReturnType<WsFrameDecoder['push']>
    let breach: WsProtocolError | undefined
    try {
      events = this.decoder.push(chunk)
    } catch (err) {
      // What came before the breach is delivered first (as ws does), then the connection closes.
      breach =
        err instanceof WsProtocolError ? err : new WsProtocolError(CloseCode.protocolError, String(err))
      events = breach.events
    }
    this.handle(events)
    if (breach !== undefined && !this.closed) {
      const reason = `bad frame from server: ${breach.message}`
      this.shutdown(breach.closeCode, reason)
      this.handlers.onClose(reason)
    }
  }

  private handle(events: WsEvent[]): void {
    for (const ev of events) {
      if (this.closed) return
      if (ev.kind === 'message') this.handlers.onPacket(ev.data)
      else if (ev.kind === 'ping') this.control(Opcode.pong, ev.data)
      else if (ev.kind === 'close') {
        // Echo the code, as RFC 6455 section 5.5.1 asks, then report the close.
        this.shutdown(ev.code === CloseCode.noStatus ? CloseCode.normal : ev.code, '', true)
        this.handlers.onClose(`websocket closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`)
        return
      }
    }
  }
}

type PemInput = string | Uint8Array

function pem(x: PemInput): string | Buffer {
  return typeof x === 'string' ? x : Buffer.from(x.buffer, x.byteOffset, x.byteLength)
}

/**
 * A socket to the endpoint's host and port: TLS (`secure`, wss://) or plain
 * TCP. SNI takes a host name, never an address. The read-only probe
 * (probe-rw.ts) opens its sockets here too.
 */
export async function connectSocket(
  endpoint: Endpoint,
  tls: TlsOptions | undefined,
  secure: boolean,
): Promise<Socket> {
  const { host, port } = endpoint
  if (!secure) {
    nodeNet ??= (await import(/* @vite-ignore */ NODE_NET)) as Net
    return nodeNet.connect({ host, port })
  }
  const t = tls ?? {}
  const servername = t.servername ?? (/^[\d.]+$|:/.test(host) ? undefined : host)
  nodeTls ??= (await import(/* @vite-ignore */ NODE_TLS)) as Tls
  return nodeTls.connect({
    host,
    port,
    ...(servername === undefined ? {} : { servername }),
    ...(t.ca === undefined ? {} : { ca: Array.isArray(t.ca) ? t.ca.map(pem) : pem(t.ca as PemInput) }),
    ...(t.cert === undefined ? {} : { cert: pem(t.cert) }),
    ...(t.key === undefined ? {} : { key: pem(t.key) }),
  })
}

/** A 101 as Conclave's server words it (server/net/ws-connection.ts), up to the accept value. */
const CANONICAL_101 =
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: '

/** Checks the server's answer to the opening handshake; returns why it is refused, or undefined. */
export function checkHandshakeResponse(head: string, expectedAccept: string): string | undefined {
  // Conclave's own answer, byte for byte, needs no parse.
  if (head === `${CANONICAL_101}${expectedAccept}`) return undefined
  const lines = head.split('\r\n')
  const status = /^HTTP\/1\.\d (\d{3})(?: (.*))?$/.exec(lines[0] ?? '')
  if (status === null) return 'malformed answer to the WebSocket handshake'
  if (status[1] !== '101')
    return `unexpected server response: ${status[1]}${status[2] ? ` ${status[2]}` : ''}`
  const headers = parseHeaderLines(lines.slice(1))
  if (headers === undefined) return 'malformed header in the answer to the WebSocket handshake'
  if (!headerTokens(headers, 'upgrade').includes('websocket'))
    return 'handshake answer lacks Upgrade: websocket'
  if (!headerTokens(headers, 'connection').includes('upgrade'))
    return 'handshake answer lacks Connection: Upgrade'
  if (headers.get('sec-websocket-accept') !== expectedAccept)
    return 'handshake answer has a wrong Sec-WebSocket-Accept'
  if (headers.has('sec-websocket-extensions')) return 'server chose an extension that was not offered'
  if (headers.has('sec-websocket-protocol')) return 'server chose a subprotocol that was not offered'
  return undefined
}

/** What an endpoint's URL says of its handshake: wss:// or not, and the request's first lines. */
const handshakeOf = boundedMemo(64, (endpointUrl: string) => {
  const url = new URL(endpointUrl)
  return {
    secure: url.protocol === 'wss:',
    requestHead: `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n`,
  }
})

export async function openNodeWebSocket(
  endpoint: Endpoint,
  handlers: TransportHandlers,
  options: TransportOptions,
): Promise<Transport> {
  const { secure, requestHead } = handshakeOf(endpoint.url)
  nodeCrypto ??= (await import(/* @vite-ignore */ NODE_CRYPTO)) as Crypto
  const crypto = nodeCrypto
  const socket = await connectSocket(endpoint, options.tls, secure)
  if (options.signal.aborted) {
    socket.destroy()
    options.signal.throwIfAborted()
  }
  socket.setNoDelay(true)
  randomPool ??= new RandomPool(crypto)
  const key = Buffer.from(randomPool.take(16)).toString('base64')
  const accept = crypto.hash('sha1', key + HANDSHAKE_GUID, 'base64')
  const transport = new NodeWsTransport(socket, randomPool, handlers, options.frameBytesMax)
  return new Promise<Transport>((resolve, reject) => {
    let phase: 'handshake' | 'open' | 'refused' = 'handshake'
    let lastError = ''
    let head: Buffer = Buffer.alloc(0)
    const refuse = (why: string): void => {
      phase = 'refused'
      socket.destroy()
      reject(new Error(why))
    }
    const onAbort = (): void => refuse('aborted')
    options.signal.addEventListener('abort', onAbort, { once: true })
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      // One write: the request, then the caller's first frame (see the header).
      transport.output(
        Buffer.from(
          `${requestHead}Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
          'latin1',
        ),
      )
      if (options.earlyFrame !== undefined) {
        transport.sendFrame(options.earlyFrame)
        transport.sentEarly = options.earlyFrame
      }
    })
    // What arrives with or right after the 101 waits until the caller has the transport (the
    // ConnectResponse to an early ConnectRequest can share a read with the 101), in order.
    let held: Uint8Array[] | undefined
    const deliver = (bytes: Uint8Array): void => {
      if (held !== undefined) held.push(bytes)
      else transport.feed(bytes)
    }
    const release = (): void => {
      const chunks = held ?? []
      held = undefined
      for (const c of chunks) transport.feed(c)
    }
    socket.on('data', (chunk: Buffer) => {
      if (phase === 'open') {
        // Plain Uint8Array views, not Buffers, so results look the same on every transport.
        deliver(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
        return
      }
      if (phase === 'refused') return
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) {
        if (head.length > RESPONSE_HEAD_BYTES_MAX) refuse('answer to the WebSocket handshake is too long')
        return
      }
      const why = checkHandshakeResponse(head.toString('latin1', 0, end), accept)
      if (why !== undefined) return refuse(why)
      const rest = head.subarray(end + 4)
      phase = 'open'
      options.signal.removeEventListener('abort', onAbort)
      held = rest.length > 0 ? [new Uint8Array(rest.buffer, rest.byteOffset, rest.byteLength)] : []
      resolve(transport)
      // After the promise's continuations (microtasks), before the next read (a check-phase callback).
      setImmediate(release)
    })
    socket.on('error', (err) => {
      lastError = err.message
    })
    const onSocketClose = (): void => {
      options.signal.removeEventListener('abort', onAbort)
      const reason = `websocket connection closed${lastError ? `: ${lastError}` : ''}`
      if (phase !== 'open') reject(new Error(reason))
      else if (!transport.closed) {
        transport.closed = true
        handlers.onClose(reason)
      }
    }
    // A close right after the 101 is reported after the packets held with it (immediates run in order).
    socket.once('close', () => (held === undefined ? onSocketClose() : setImmediate(onSocketClose)))
  })
}
