/**
 * SimLink: one simulated client connection to a simulated server — the
 * server side is a ClientConnection (what the server's ClientHandler reads
 * and writes), the client side a pair of callbacks. Packets are real jute
 * packets; each direction is FIFO with a random latency (a later packet
 * never overtakes an earlier one, as in TCP).
 *
 * A link belongs to one incarnation of its server: packets to the server
 * run only while that incarnation is up and not paused (a paused server
 * reads them on resume); a crash ends the link and the client hears of it.
 */
import type { Prng } from '../../server/core/prng.js'
import type { ClientConnection } from '../../server/net/client-listener.js'
import type { Scheduler } from './scheduler.js'

export interface LinkClient {
  packet(p: Uint8Array): void
  closed(reason: string): void
}

export interface LinkServer {
  /** Runs `fn` in the server's incarnation `incarnation`, once it is not paused; never after a crash. */
  run(incarnation: number, fn: () => void): void
}

let nextLinkId = 1

export class SimLink implements ClientConnection {
  readonly id = nextLinkId++
  readonly remoteAddress = '127.0.0.1'
  readonly transport = 'tcp' as const
  onPacket: (packet: Uint8Array) => void = () => {}
  onClose: (reason: string) => void = () => {}
  /** The server closed the link (or crashed): it sends and hears nothing more. */
  private serverClosed = false
  /** The client hung up: it sends and hears nothing more (packets already on the way still arrive). */
  private clientClosed = false
  private serverHeardClose = false
  private readingPaused = false
  private readonly inbox: Uint8Array[] = []
  private toClientAt = 0
  private toServerAt = 0

  constructor(
    private readonly sched: Scheduler,
    private readonly prng: Prng,
    private readonly server: LinkServer,
    readonly incarnation: number,
    private readonly client: LinkClient,
    private readonly latencyMsMax: number,
  ) {}

  get isOpen(): boolean {
    return !this.serverClosed && !this.clientClosed
  }

  private latency(): number {
    return this.prng.int(0, this.latencyMsMax)
  }

  // ------------------------------------------------------------ server side

  send(packet: Uint8Array): void {
    if (this.serverClosed) return
    // A copy, as a socket connection makes: the server reuses its reply buffer once send returns.
    packet = new Uint8Array(packet)
    this.toClientAt = Math.max(this.sched.now + this.latency(), this.toClientAt)
    this.sched.at(this.toClientAt, () => {
      if (!this.clientClosed) this.client.packet(packet)
    })
  }

  bufferedBytes(): number {
    return 0
  }

  /** The session handshake is done: a simulated link has no handshake deadline. */
  established(): void {}

  close(reason: string): void {
    if (this.serverClosed) return
    this.serverClosed = true
    this.toClientAt = Math.max(this.sched.now + this.latency(), this.toClientAt)
    this.sched.at(this.toClientAt, () => {
      if (!this.clientClosed) this.client.closed(reason)
    })
    this.tellServer(reason)
  }

  pauseReading(): void {
    this.readingPaused = true
  }

  resumeReading(): void {
    this.readingPaused = false
    while (!this.readingPaused && !this.serverClosed && this.inbox.length > 0)
      this.onPacket(this.inbox.shift()!)
  }

  private tellServer(reason: string): void {
    if (this.serverHeardClose) return
    this.serverHeardClose = true
    this.onClose(reason)
  }

  // ------------------------------------------------------------ client side

  /** The client sends a packet. */
  write(packet: Uint8Array): void {
    if (this.clientClosed) return
    this.toServerAt = Math.max(this.sched.now + this.latency(), this.toServerAt)
    this.sched.at(this.toServerAt, () =>
      this.server.run(this.incarnation, () => {
        if (this.serverClosed) return
        if (this.readingPaused) this.inbox.push(packet)
        else this.onPacket(packet)
      }),
    )
  }

  /** The client closes its end (or walks away): the server notices after the packets before it. */
  hangUp(): void {
    if (this.clientClosed) return
    this.clientClosed = true
    this.toServerAt = Math.max(this.sched.now + this.latency(), this.toServerAt)
    this.sched.at(this.toServerAt, () =>
      this.server.run(this.incarnation, () => {
        if (this.serverClosed) return
        this.serverClosed = true
        this.tellServer('client closed')
      }),
    )
  }

  /** The server process died: the client hears of it; the server's state is gone with it. */
  serverCrashed(): void {
    if (this.serverClosed) return
    this.serverClosed = true
    this.serverHeardClose = true
    this.sched.after(this.latency(), () => {
      if (!this.clientClosed) this.client.closed('server crashed')
    })
  }
}
