/**
 * ZooKeeper's TCP transport (Node only): each packet is preceded by a 4-byte
 * big-endian length (shared/framing.ts). Writes made in one tick are corked
 * into one syscall, so a pipelined burst costs one write.
 *
 * Invariants: see transport.ts; a bad frame length closes the connection
 * before anything of the frame is buffered.
 * Imports node:net only dynamically, through a non-literal specifier (and this
 * file is itself loaded dynamically), so browser bundles build without it.
 */
import { FrameDecoder } from '../shared/framing.js'
import type { Endpoint } from './connect-string.js'
import { afterTick, type Transport, type TransportHandlers, type TransportOptions } from './transport.js'

type Socket = import('node:net').Socket

// A non-literal specifier, so a browser bundler leaves it alone (this file never runs in a browser).
const NODE_NET = 'node:net'
/** node:net, loaded on first use and kept (see transport.ts). */
let net: typeof import('node:net') | undefined

class TcpTransport implements Transport {
  closed = false
  private corked = false

  constructor(private readonly socket: Socket) {}

  private readonly uncork = (): void => {
    this.corked = false
    this.socket.uncork()
  }

  sendFrame(frame: Uint8Array): void {
    if (this.closed) return
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      afterTick(this.uncork)
    }
    this.socket.write(frame)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.socket.destroy()
  }
}

function deliver(t: TcpTransport, decoder: FrameDecoder, chunk: Uint8Array, h: TransportHandlers): void {
  let packets: Uint8Array[]
  try {
    packets = decoder.push(chunk)
  } catch (err) {
    t.close()
    h.onClose(`bad frame from server: ${(err as Error).message}`)
    return
  }
  for (const p of packets) {
    if (t.closed) return
    h.onPacket(p)
  }
}

export async function openTcp(
  endpoint: Endpoint,
  handlers: TransportHandlers,
  options: TransportOptions,
): Promise<Transport> {
  net ??= (await import(/* @vite-ignore */ NODE_NET)) as typeof import('node:net')
  options.signal.throwIfAborted()
  const socket = net.connect({ host: endpoint.host, port: endpoint.port })
  socket.setNoDelay(true)
  const transport = new TcpTransport(socket)
  const decoder = new FrameDecoder(options.frameBytesMax)
  return new Promise<Transport>((resolve, reject) => {
    let opened = false
    let lastError = ''
    const onAbort = (): void => {
      transport.close()
      reject(new Error('aborted'))
    }
    options.signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => {
      opened = true
      options.signal.removeEventListener('abort', onAbort)
      resolve(transport)
    })
    socket.on('data', (chunk: Uint8Array) => {
      // Plain Uint8Array views, not Buffers, so results look the same on every transport.
      const view = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      if (!transport.closed) deliver(transport, decoder, view, handlers)
    })
    socket.on('error', (err) => {
      lastError = err.message
    })
    socket.once('close', () => {
      options.signal.removeEventListener('abort', onAbort)
      const reason = `tcp connection closed${lastError ? `: ${lastError}` : ''}`
      if (!opened) reject(new Error(reason))
      else if (!transport.closed) {
        transport.closed = true
        handlers.onClose(reason)
      }
    })
  })
}
