/**
 * What both kinds of client connection (ZooKeeper TCP framing in
 * client-listener.ts, WebSocket in ws-connection.ts) do the same way with
 * their socket: read chunks into `feed`, remember why the connection ended,
 * report that once, end the socket with a second's grace for the peer to
 * read what was sent, and pause or resume reading for backpressure.
 *
 * Invariants: onClose is called exactly once, with the first reason set;
 * nothing is fed after the connection is closed.
 */
import type { Socket } from 'node:net'
import type { ClientConnection } from './client-listener.js'

/** How long a peer has to read what was sent before an ended socket is destroyed. */
const END_GRACE_MS = 1000

let nextConnectionId = 1

export abstract class SocketConnection implements Omit<ClientConnection, 'transport' | 'send' | 'close'> {
  readonly id = nextConnectionId++
  readonly remotePort: number | undefined
  onPacket: (packet: Uint8Array) => void = () => {}
  onClose: (reason: string) => void = () => {}
  /** Called once, when the session handshake is done (the listener's handshake deadline stops). */
  onEstablished: () => void = () => {}
  protected closed = false
  protected reason = 'peer closed the connection'

  constructor(
    protected readonly socket: Socket,
    readonly remoteAddress: string,
    /** Bytes read before this connection took the socket over (the sniffed first chunk, or what followed a handshake). */
    first: Uint8Array,
  ) {
    this.remotePort = socket.remotePort
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      if (!this.closed) this.feed(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    })
    socket.on('error', (err) => {
      this.reason = `socket error: ${err.message}`
    })
    socket.on('close', () => this.finish())
    if (first.length > 0)
      queueMicrotask(() => {
        if (!this.closed) this.feed(first)
      })
  }

  /** Bytes from the client, in order. */
  protected abstract feed(chunk: Uint8Array): void

  established(): void {
    const f = this.onEstablished
    this.onEstablished = () => {}
    f()
  }

  bufferedBytes(): number {
    return this.socket.writableLength
  }

  pauseReading(): void {
    this.socket.pause()
  }

  resumeReading(): void {
    this.socket.resume()
  }

  /** Ends the socket (after whatever was written) and reports `reason`; destroys it after the grace period. */
  protected end(reason: string): void {
    if (this.closed) return
    this.reason = reason
    this.socket.end()
    setTimeout(() => this.socket.destroy(), END_GRACE_MS).unref()
    this.finish()
  }

  private finish(): void {
    if (this.closed) return
    this.closed = true
    this.onClose(this.reason)
  }
}
