/**
 * A raw ZooKeeper-protocol client over TCP for tests that must send what no
 * well-behaved client would: garbage, truncated packets, huge length
 * prefixes, unknown opcodes. It speaks the handshake with the shared codec
 * and collects every packet the server sends back.
 */
import { Socket } from 'node:net'
import { FrameDecoder, frame } from '../../shared/framing.js'
import { JuteReader, JuteWriter } from '../../shared/jute.js'
import {
  decodeConnectResponse,
  encodeConnectRequest,
  encodeRequest,
  type Request,
  readReplyHeader,
} from '../../shared/records.js'
import { waitFor } from './wait.js'

export class RawClient {
  readonly packets: Uint8Array[] = []
  closed = false
  private readonly socket = new Socket()
  private readonly decoder = new FrameDecoder(16 * 1024 * 1024)

  private constructor() {
    this.socket.on('data', (c: Buffer) => {
      try {
        this.packets.push(...this.decoder.push(c))
      } catch {
        this.socket.destroy()
      }
    })
    this.socket.on('error', () => {})
    this.socket.on('close', () => {
      this.closed = true
    })
  }

  static async connect(port: number): Promise<RawClient> {
    const c = new RawClient()
    await new Promise<void>((resolve, reject) => {
      c.socket.once('error', reject)
      c.socket.connect(port, '127.0.0.1', () => resolve())
    })
    return c
  }

  /** Connects and sends a ConnectRequest for a new session, without waiting for the answer. */
  static async askSession(port: number, timeoutMs = 10_000): Promise<RawClient> {
    const c = await RawClient.connect(port)
    const w = new JuteWriter()
    encodeConnectRequest(w, {
      protocolVersion: 0,
      lastZxidSeen: 0n,
      timeOut: timeoutMs,
      sessionId: 0n,
      passwd: new Uint8Array(16),
      readOnly: false,
    })
    c.sendPacket(w.finish())
    return c
  }

  /** Connects and completes the session handshake. */
  static async session(port: number, timeoutMs = 10_000): Promise<RawClient> {
    const c = await RawClient.askSession(port, timeoutMs)
    await waitFor(() => c.packets.length > 0 || c.closed, { what: 'ConnectResponse' })
    const res = decodeConnectResponse(c.packets.shift()!)
    if (res.timeOut <= 0) throw new Error('session refused')
    return c
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  sendPacket(packet: Uint8Array): void {
    this.socket.write(frame(packet))
  }

  sendRequest(xid: number, req: Request): void {
    const w = new JuteWriter()
    encodeRequest(w, xid, req)
    this.sendPacket(w.finish())
  }

  /** Waits for the next reply with this xid; returns its error number and the body reader. */
  async reply(xid: number, timeoutMs = 10_000): Promise<{ err: number; zxid: number; body: JuteReader }> {
    let found: { err: number; zxid: number; body: JuteReader } | undefined
    await waitFor(
      () => {
        for (const [i, p] of this.packets.entries()) {
          const r = new JuteReader(p)
          const h = readReplyHeader(r)
          if (h.xid === xid) {
            this.packets.splice(i, 1)
            found = { err: h.err, zxid: h.zxid, body: r }
            return true
          }
        }
        if (this.closed) throw new Error('connection closed')
        return false
      },
      { timeoutMs, what: `reply to xid ${xid}` },
    )
    return found!
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.closed, { timeoutMs, what: 'server to close the connection' })
  }

  close(): void {
    this.socket.destroy()
  }
}
