/**
 * WebSocket transport: one ZooKeeper packet per binary message, no length
 * prefix. Uses `options.WebSocket`, else the platform's global WebSocket
 * (browsers, newer Node), else the `ws` package, loaded with a dynamic import
 * only when needed.
 *
 * Invariants: see transport.ts. A text message is a protocol violation and
 * closes the connection.
 * Must not import node:* or `ws` statically.
 */
import type { Endpoint } from './connect-string.js'
import type {
  Transport,
  TransportHandlers,
  TransportOptions,
  WebSocketConstructor,
  WebSocketLike,
} from './transport.js'

const OPEN = 1

interface Impl {
  ctor: WebSocketConstructor
  /** True for the `ws` package, which takes Node options and can hand us Buffers. */
  isNodeWs: boolean
}

let wsPackage: Promise<WebSocketConstructor> | undefined

// A non-literal specifier, so a browser bundler does not try to bundle `ws` (never loaded there).
const WS_PACKAGE = 'ws'

async function implementation(options: TransportOptions): Promise<Impl> {
  if (options.WebSocket !== undefined) return { ctor: options.WebSocket, isNodeWs: false }
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (global !== undefined) return { ctor: global, isNodeWs: false }
  wsPackage ??= import(/* @vite-ignore */ WS_PACKAGE).then(
    (m: { default?: unknown; WebSocket?: unknown }) => (m.default ?? m.WebSocket) as WebSocketConstructor,
  )
  return { ctor: await wsPackage, isNodeWs: true }
}

function toBytes(data: unknown): Uint8Array | undefined {
  // A Node Buffer is a Uint8Array subclass: hand out plain Uint8Array views, as a browser would.
  if (data instanceof Uint8Array)
    return data.constructor === Uint8Array
      ? data
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  return undefined
}

class WsTransport implements Transport {
  closed = false

  constructor(private readonly ws: WebSocketLike) {}

  sendFrame(frame: Uint8Array): void {
    if (this.closed || this.ws.readyState !== OPEN) return
    this.ws.send(frame.subarray(4))
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    try {
      this.ws.close(1000, 'client closed')
    } catch {
      // Closing a socket that is still connecting may throw; it is gone either way.
    }
  }
}

export async function openWebSocket(
  endpoint: Endpoint,
  handlers: TransportHandlers,
  options: TransportOptions,
): Promise<Transport> {
  const impl = await implementation(options)
  options.signal.throwIfAborted()
  const ws = impl.isNodeWs
    ? new impl.ctor(endpoint.url, { perMessageDeflate: false, maxPayload: options.frameBytesMax })
    : new impl.ctor(endpoint.url)
  ws.binaryType = impl.isNodeWs ? 'nodebuffer' : 'arraybuffer'
  const transport = new WsTransport(ws)
  return new Promise<Transport>((resolve, reject) => {
    let opened = false
    const onAbort = (): void => {
      transport.close()
      reject(new Error('aborted'))
    }
    options.signal.addEventListener('abort', onAbort, { once: true })
    ws.onopen = () => {
      opened = true
      options.signal.removeEventListener('abort', onAbort)
      resolve(transport)
    }
    ws.onerror = () => {
      // A close event always follows; it reports the failure.
    }
    ws.onclose = (ev) => {
      options.signal.removeEventListener('abort', onAbort)
      const reason = `websocket closed (${ev.code ?? '?'}${ev.reason ? ` ${ev.reason}` : ''})`
      if (!opened) reject(new Error(reason))
      else if (!transport.closed) {
        transport.closed = true
        handlers.onClose(reason)
      }
    }
    ws.onmessage = (ev) => {
      if (transport.closed) return
      const bytes = toBytes(ev.data)
      if (bytes === undefined) {
        transport.close()
        handlers.onClose('server sent a text message')
        return
      }
      handlers.onPacket(bytes)
    }
  })
}
