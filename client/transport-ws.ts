/**
 * WebSocket transport: one ZooKeeper packet per binary message, no length
 * prefix. Uses `options.WebSocket` if given; else, in Node, the SDK's own
 * client (transport-ws-node.ts, loaded with a dynamic import); else the
 * platform's WebSocket (browsers), through the WHATWG API.
 *
 * Invariants: see transport.ts. A text message is a protocol violation and
 * closes the connection.
 * Must not import node:* statically.
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

/** The SDK's own Node client, loaded on first use and kept (see transport.ts). */
let nodeModule: typeof import('./transport-ws-node.js') | undefined

/** True in Node (and runtimes that present themselves as Node), where the SDK's own client is used. */
export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: unknown } } }).process
  return typeof p?.versions?.node === 'string'
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
  if (options.WebSocket === undefined && isNode()) {
    nodeModule ??= await import('./transport-ws-node.js')
    return nodeModule.openNodeWebSocket(endpoint, handlers, options)
  }
  const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (ctor === undefined) throw new Error('no WebSocket implementation here: pass options.WebSocket')
  const ws = new ctor(endpoint.url)
  ws.binaryType = 'arraybuffer'
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
