/**
 * An in-memory network for unit tests of the client's session machine: a
 * TransportFactory (the `transport` connect option) whose connections record
 * every packet the client sends and let the test play the server, packet by
 * packet, synchronously. Nothing here touches a socket or a timer.
 *
 * Invariants: packets are decoded with shared/'s decoders, so a test sees
 * exactly what would go on the wire; `autoAccept` answers ConnectRequests in
 * a microtask (never re-entrantly).
 */
import {
  Client,
  type ConnectOptions,
  type Endpoint,
  type Transport,
  type TransportFactory,
  type TransportHandlers,
} from '../../../client/index.js'
import { JuteWriter } from '../../../shared/jute.js'
import { OpCode, Xid } from '../../../shared/opcodes.js'
import {
  type ConnectRequest,
  decodeConnectRequest,
  decodeRequest,
  encodeConnectResponse,
  peekRequestHeader,
  type Request,
  type Response,
  writeReplyHeader,
  writeResponseBody,
  writeWatcherEvent,
} from '../../../shared/records.js'

/** The clients connectFake opened and closeFakeClients has not closed yet. */
const opened: Client[] = []

/**
 * A client on the fake network (two servers unless told), giving up on the
 * first connection after 2 s and reconnecting at once; `opts` override.
 */
export async function connectFake(
  net: FakeNet,
  opts: ConnectOptions = {},
  connectString = 'ws://fake:1,ws://fake:2',
): Promise<Client> {
  const c = await Client.connect(connectString, {
    transport: net.factory,
    connectTimeoutMs: 2_000,
    reconnectDelayMs: 0,
    ...opts,
  })
  opened.push(c)
  return c
}

/** Closes every client connectFake opened (an afterEach), without waiting on a server that may never answer. */
export function closeFakeClients(): void {
  for (const c of opened.splice(0)) void c.close()
}

export interface Accept {
  sessionId: bigint
  /** Negotiated timeout; 0 means "session expired". */
  timeOut: number
  passwd?: Uint8Array
  /** Conclave's trailer: the features granted (ConclaveFeature bits) and the largest request taken. */
  features?: number
  requestBytesMax?: number
  /** …and how many exactly-once write results it keeps per session (sessionWriteResultsMax). */
  writeResultsMax?: number
  /** A read-only server's answer (ConnectResponse readOnly). */
  readOnly?: boolean
}

export class FakeConn implements Transport {
  /** Every packet sent, without the length prefix; [0] is the ConnectRequest. */
  readonly sent: Uint8Array[] = []
  closed = false

  constructor(
    readonly endpoint: Endpoint,
    private readonly handlers: TransportHandlers,
    private readonly net: FakeNet,
  ) {}

  sendFrame(frame: Uint8Array): void {
    if (this.closed) return
    this.sent.push(frame.slice(4))
    if (this.sent.length === 1 && this.net.autoAccept !== undefined) {
      const accept = this.net.autoAccept
      queueMicrotask(() => this.accept(accept))
    } else if (
      this.sent.length > 1 &&
      this.net.autoAuth &&
      peekRequestHeader(this.sent.at(-1)!)?.xid === Xid.auth
    ) {
      queueMicrotask(() => this.reply(Xid.auth, 0, 0))
    }
  }

  close(): void {
    this.closed = true
  }

  connectRequest(): ConnectRequest {
    return decodeConnectRequest(this.sent[0]!)
  }

  /** Requests sent after the ConnectRequest. */
  requests(): { xid: number; req: Request }[] {
    return this.sent.slice(1).map((p) => decodeRequest(p))
  }

  accept(a: Accept): void {
    const w = new JuteWriter()
    encodeConnectResponse(w, {
      protocolVersion: 0,
      timeOut: a.timeOut,
      sessionId: a.sessionId,
      passwd: a.passwd ?? new Uint8Array(16).fill(7),
      readOnly: a.readOnly ?? false,
      features: a.features,
      requestBytesMax: a.requestBytesMax,
      writeResultsMax: a.writeResultsMax,
    })
    this.deliver(w.finish())
  }

  /** A reply: header, then (when err is 0 and given) the body. */
  reply(xid: number, zxid: number, err = 0, body?: Response): void {
    const w = new JuteWriter()
    writeReplyHeader(w, { xid, zxid, err })
    if (body !== undefined) writeResponseBody(w, body)
    this.deliver(w.finish())
  }

  /** A watch notification; `zxid` is its change's (-1: none, as ZooKeeper before 3.9 sends). */
  notify(type: number, path: string, zxid = -1): void {
    const w = new JuteWriter()
    writeReplyHeader(w, { xid: -1, zxid, err: 0 })
    writeWatcherEvent(w, { type, state: 3, path })
    this.deliver(w.finish())
  }

  deliver(packet: Uint8Array): void {
    if (!this.closed) this.handlers.onPacket(packet)
  }

  /** The server side goes away. */
  drop(reason = 'dropped by test'): void {
    if (this.closed) return
    this.closed = true
    this.handlers.onClose(reason)
  }
}

export class FakeNet {
  readonly conns: FakeConn[] = []
  /** When set, every ConnectRequest is answered with it. */
  autoAccept: Accept | undefined = { sessionId: 0x1234abcdn, timeOut: 9_000 }
  /** When true, auth packets are answered OK at once. */
  autoAuth = true
  /** When true, opening a connection fails. */
  refuse = false

  readonly factory: TransportFactory = async (endpoint, handlers) => {
    if (this.refuse) throw new Error('connection refused (fake)')
    const conn = new FakeConn(endpoint, handlers, this)
    this.conns.push(conn)
    return conn
  }

  get last(): FakeConn {
    const c = this.conns.at(-1)
    if (c === undefined) throw new Error('no connection yet')
    return c
  }
}

/**
 * A round trip on `conn` with nothing else in flight: an exists('/') that
 * the fake server answers NO_NODE at once. Events are delivered in order with
 * replies (session.ts), so once it resolves every event notified before it
 * has been delivered: a barrier for "and nothing else arrived", not a sleep.
 */
export async function roundTrip(client: Client, conn: FakeConn): Promise<void> {
  const p = client.exists('/')
  const sent = conn.requests().at(-1)
  if (sent === undefined || sent.req.op !== OpCode.exists)
    throw new Error('roundTrip: the exists was not sent')
  conn.reply(sent.xid, 0, -101)
  await p
}
