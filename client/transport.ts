/**
 * The one small interface between the session machine and the network:
 * a Transport carries whole ZooKeeper packets. `openTransport` picks the
 * implementation for an endpoint: WebSocket (one packet per binary message,
 * no length prefix) or ZooKeeper's TCP framing (Node only).
 *
 * Invariants: `open` resolves once the transport can send, or rejects; after
 * that, `onClose` is called at most once, and never for a close the caller
 * asked for with `close()`; no packet is delivered after either.
 * Must not import node:* or `ws` statically: implementations are loaded with
 * a dynamic import, so a browser bundle never touches them.
 */
import type { Endpoint } from './connect-string.js'

export interface TransportHandlers {
  /** One whole packet (a view, valid until the handler returns). */
  onPacket(packet: Uint8Array): void
  /** The connection ended without `close()` being called. */
  onClose(reason: string): void
}

export interface Transport {
  /**
   * Sends one packet, given as a frame: a 4-byte big-endian length, then the
   * packet. TCP sends the frame as is; WebSocket sends `frame.subarray(4)`.
   * The transport owns `frame` from then on (it may keep it, and the Node
   * WebSocket transport masks the packet in place): the caller must not reuse it.
   */
  sendFrame(frame: Uint8Array): void
  close(): void
}

/** The subset of the WHATWG WebSocket that the SDK uses (the browser's, or `ws`). */
export interface WebSocketLike {
  binaryType: string
  readyState: number
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code?: number; reason?: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string, options?: unknown) => WebSocketLike

export interface TransportOptions {
  /** Largest packet accepted from the server. */
  frameBytesMax: number
  /** Aborting it gives up opening (the promise rejects, the socket is closed). */
  signal: AbortSignal
  /** A WebSocket implementation to use instead of the SDK's own (Node) or the global one. */
  WebSocket?: WebSocketConstructor | undefined
  /** For wss:// in Node: whom to trust and what certificate to present. */
  tls?: TlsOptions | undefined
  /**
   * The first frame the caller will send (the ConnectRequest). A transport may
   * send it while opening, before `open` resolves (it then owns the frame, as
   * with sendFrame), and then ignores the caller's sendFrame of that same
   * frame object — so a factory that wraps another and passes the options
   * on still sends it once. Packets that come with the opening are
   * delivered only after `open` has resolved and the caller's continuations
   * have run.
   */
  earlyFrame?: Uint8Array | undefined
}

/** TLS settings for wss:// in Node (passed to node:tls; a browser uses its own trust store). */
export interface TlsOptions {
  /** Certificate authorities to trust instead of Node's default list (PEM). */
  ca?: string | Uint8Array | readonly (string | Uint8Array)[] | undefined
  /** A client certificate and its key (PEM), for servers that ask for one. */
  cert?: string | Uint8Array | undefined
  key?: string | Uint8Array | undefined
  /** The name to check the server's certificate against, when it differs from the host in the URL. */
  servername?: string | undefined
}

export type TransportFactory = (
  endpoint: Endpoint,
  handlers: TransportHandlers,
  options: TransportOptions,
) => Promise<Transport>

// Loaded on first use and kept: an import() per connection went through the ES module
// loader every time (resolve, module map, jobs), 2-3% of a client's CPU opening sessions.
let tcpModule: typeof import('./transport-tcp.js') | undefined
let wsModule: typeof import('./transport-ws.js') | undefined

const RESOLVED = Promise.resolve()

/**
 * Runs `fn` in a microtask, once the current tick's synchronous work is
 * done (transports gather a tick's frames into one write so). Not
 * queueMicrotask: Node wraps each of those in an AsyncResource, three times
 * the cost of a resolved promise's then.
 */
export function afterTick(fn: () => void): void {
  void RESOLVED.then(fn)
}

/** The default factory: WebSocket for ws:// and wss://, node:net for tcp://. */
export const openTransport: TransportFactory = async (endpoint, handlers, options) => {
  if (endpoint.kind === 'tcp') {
    tcpModule ??= await import('./transport-tcp.js')
    return tcpModule.openTcp(endpoint, handlers, options)
  }
  wsModule ??= await import('./transport-ws.js')
  return wsModule.openWebSocket(endpoint, handlers, options)
}
