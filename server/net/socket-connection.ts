/**
 * What both kinds of client connection (ZooKeeper TCP framing in
 * client-listener.ts, WebSocket in ws-connection.ts) do the same way with
 * their socket: read chunks into `feed`, remember why the connection ended,
 * report that once, end the socket with a second's grace for the peer to
 * read what was sent, and pause or resume reading for backpressure.
 *
 * Output: what a connection sends during one turn of the event loop is
 * gathered and written once at the end of the turn, as one buffer of
 * exactly its bytes (a packet of GATHER_BYTES_MAX or more is written as it
 * is, after what was gathered). Written packet by packet, replies to a client that does not
 * read piled up as two Buffers and a write request each: 17 MiB of `exists`
 * requests held 264 MiB of heap and 79 MiB of buffers and stalled the
 * server for 20 s in garbage collection (issue 15); gathered, what is
 * queued costs its bytes. Until the turn's write, the packets wait in the
 * shared OutputArena (output-arena.ts), copied in when they are output: a
 * caller may reuse its buffer as soon as output()/send() returns.
 *
 * Invariants: onClose is called exactly once, with the first reason set;
 * nothing is fed after the connection is closed; bytes leave in the order
 * they were output.
 */
import type { Socket } from 'node:net'
import type { ClientConnection } from './client-listener.js'
import { outputArena, type Piece } from './output-arena.js'

/** How long a peer has to read what was sent before an ended socket is destroyed. */
const END_GRACE_MS = 1000
/** Output smaller than this is gathered for the turn's one write; larger output is written at once. */
const GATHER_BYTES_MAX = 16 * 1024

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
  /** Output gathered this turn (see the header), and its bytes. */
  private pieces: Piece[] = []
  private gathered = 0
  private flushScheduled = false
  /** Bytes read before this connection took the socket over, until start() feeds them. */
  private first: Uint8Array | undefined

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
    if (first.length > 0) this.first = first
  }

  /**
   * Feeds the bytes read before the hand-over, once the owner has set its
   * handlers (the listener calls it right after onConnection). A call, not a
   * queueMicrotask from the constructor: Node wraps each of those in an
   * AsyncResource, ~1.5% of a server's CPU opening sessions.
   */
  start(): void {
    const first = this.first
    this.first = undefined
    if (first !== undefined && !this.closed) this.feed(first)
  }

  /** Bytes from the client, in order. */
  protected abstract feed(chunk: Uint8Array): void

  established(): void {
    const f = this.onEstablished
    this.onEstablished = () => {}
    f()
  }

  /** Bytes queued for the peer and not yet written: in the socket, and gathered this turn. */
  bufferedBytes(): number {
    return this.socket.writableLength + this.gathered
  }

  /**
   * Sends `head`, then `body` if given, after everything output before them
   * (see the header); both are copied before this returns, into one arena
   * piece (two parameters, not a rest array: this runs once per reply).
   */
  protected output(head: Uint8Array, body?: Uint8Array): void {
    const total = head.length + (body === undefined ? 0 : body.length)
    if (total >= GATHER_BYTES_MAX) {
      // Copies: the caller may reuse its buffer once this returns (new Uint8Array copies; a Buffer's slice would not).
      const copies =
        body === undefined ? [new Uint8Array(head)] : [new Uint8Array(head), new Uint8Array(body)]
      this.flushOutput()
      this.socket.cork()
      for (const p of copies) this.socket.write(p)
      this.socket.uncork()
      return
    }
    this.pieces.push(outputArena.put(head, body))
    this.gathered += total
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      this.flushOutput()
    })
  }

  /**
   * Writes what was gathered this turn as one buffer of exactly its bytes
   * (from Node's shared pool when small), so what waits for a client that
   * does not read is its bytes and one write request per turn; the arena's
   * pieces are released.
   */
  protected flushOutput(): void {
    if (this.gathered === 0) return
    const bytes = Buffer.allocUnsafe(this.gathered)
    let at = 0
    for (const piece of this.pieces) {
      bytes.set(piece.view, at)
      at += piece.view.length
      outputArena.release(piece)
    }
    this.pieces = []
    this.gathered = 0
    if (!this.socket.destroyed) this.socket.write(bytes)
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
    this.flushOutput()
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
