/**
 * ClientHandler: one client connection, from ConnectRequest to close. It
 * decodes and validates packets, keeps the connection's requests in strict
 * FIFO order, and encodes replies.
 *
 * Ordering (ZooKeeper's CommitProcessor rule): a write is submitted as soon
 * as every request before it has been submitted or answered, so a session
 * can have many writes in flight; a read (or sync, ping, setWatches) waits
 * until every request before it has been answered, so it sees its own
 * writes and no later ones. Replies leave in request order.
 *
 * Limits: outstanding requests per connection (reading pauses above the
 * limit and resumes below half of it); writes in flight over the whole
 * server (the host counts them, see write-throttle.ts, and pauses every
 * connection through refreshReading); bytes queued to a client that does
 * not read (the connection is closed); requests over the rate limits
 * (request-rate.ts; off by default) are answered THROTTLED_OP in their turn.
 */
import type { Logger } from 'pino'
import { assert } from '../../shared/assert.js'
import { type ErrorCode, errorNumber } from '../../shared/errors.js'
import { JuteWriter, ProtocolError } from '../../shared/jute.js'
import { OpCode, Xid } from '../../shared/opcodes.js'
import {
  ConclaveFeature,
  type ConnectRequest,
  decodeConnectRequest,
  decodeRequest,
  encodeConnectResponse,
  type OnceHeader,
  peekRequestHeader,
  type Request,
  type Response,
  UnknownOpError,
  writeReplyHeader,
  writeResponseBody,
  writeWatcherEvent,
} from '../../shared/records.js'
import { formatSessionId } from '../../shared/session-id.js'
import type { ClientConnection } from '../net/client-listener.js'
import { ConnectionStats, type RequestProbe } from './request-probe.js'

/** What a handler asks of the server it belongs to. */
export interface ClientHandlerHost {
  readonly logger: Logger
  readonly outstandingRequestsMax: number
  readonly sendBufferBytesMax: number
  /** The largest reply packet: a read's larger reply becomes MARSHALLING_ERROR (the server's frameBytesMax). */
  readonly replyBytesMax: number
  /** Exactly-once write results kept per session (sessionWriteResultsMax), told to the client in the handshake. */
  readonly writeResultsMax: number
  /** Reading from every connection is paused (too many writes in flight on this server). */
  readonly readingPaused: boolean
  /** A write was submitted / a submitted write was answered or abandoned (one call each per write). */
  writeStarted(): void
  writeFinished(): void
  /** Handles a ConnectRequest; calls `accept` or `reject` (possibly later). */
  connect(h: ClientHandler, req: ConnectRequest): void
  /** Is this request a write (goes through the log)? */
  isWrite(req: Request): boolean
  /** Submits a write; the host later calls `h.complete(entry, …)`. */
  submitWrite(h: ClientHandler, entry: PendingRequest): void
  /** Serves a read (or ping, auth, setWatches, sync) now; returns the reply. */
  serveRead(h: ClientHandler, entry: PendingRequest): Reply | 'wait'
  /** Whether a request is within the rate limits (request-rate.ts); if not it is answered THROTTLED_OP. */
  admit(h: ClientHandler, req: Request): boolean
  /** The connection ended. */
  closed(h: ClientHandler, reason: string): void
  /** Instruments (request latency, connection statistics); none: nothing is measured. */
  readonly probe?: RequestProbe
}

export interface Reply {
  err: ErrorCode
  zxid: number
  body?: Response
}

export interface PendingRequest {
  xid: number
  req: Request
  /** An exactly-once write (ConclaveOpCode.exactlyOnce): answered once, however often it is sent. */
  once?: OnceHeader
  /** The packet as received (forwarded to the leader as is). */
  packet: Uint8Array
  submitted: boolean
  reply: Reply | undefined
  /** A submitted write the host counts as in flight (until answered or abandoned). */
  inFlight?: boolean
  /** When it arrived, as the host's probe marks it. */
  mark?: number
}

/** The Conclave features a client may ask for in its ConnectRequest (records.ts, ConclaveFeature). */
const FEATURES_SERVED =
  ConclaveFeature.exactlyOnce | ConclaveFeature.childrenPage | ConclaveFeature.resumableWatches

/** After the first, one in this many replies over replyBytesMax is logged per connection. */
const REPLY_TOO_LARGE_LOG_EVERY = 100

type Phase = 'handshake' | 'connecting' | 'connected' | 'closed'

export class ClientHandler {
  sessionId = 0n
  /** The session was granted read-only (its ConnectResponse said so): every write is NOT_READ_ONLY. */
  readOnly = false
  /** Authenticated ids of this connection (ip first; x509 from a verified client certificate; digest ids added by addAuth). */
  readonly authIds: { scheme: string; id: string }[]
  private phase: Phase = 'handshake'
  private readonly queue: PendingRequest[] = []
  /** Packets that arrived before the session was established (clients pipeline auth and setWatches). */
  private early: Uint8Array[] = []
  /** Conclave features the client asked for (undefined: it sent no Conclave trailer, as ZooKeeper clients do). */
  private featuresAsked: number | undefined
  /** Too many requests outstanding on this connection. */
  private paused = false
  /** Over a request rate limit: not read until the host lets go (request-rate.ts). */
  private rateHeld = false
  /** What the connection was last told: paused here or by the host. */
  private readingStopped = false
  private pumping = false
  /** The highest zxid a reply on this connection has carried. */
  private lastReplyZxid = 0
  private repump = false
  /** Queue entries before this index have been submitted or answered (pumpOnce resumes here). */
  private next = 0
  // Grows when a reply needs it: most connections send small replies (a session's open and close).
  private readonly writer = new JuteWriter(256)
  private repliesTooLarge = 0
  /** Packets and latencies of this connection (`cons`), kept through the host's probe. */
  readonly stats = new ConnectionStats()
  /** Watch resumes this connection asked for (read-ops.ts, watchResumesPerConnectionMax). */
  watchResumes = 0

  constructor(
    readonly conn: ClientConnection,
    private readonly host: ClientHandlerHost,
  ) {
    this.authIds = [{ scheme: 'ip', id: conn.remoteAddress.replace(/^::ffff:/, '') }]
    // A verified client certificate authenticates the connection (ZooKeeper's X509AuthenticationProvider).
    const x509 = conn.tls?.x509Subject
    if (x509 !== undefined) this.authIds.push({ scheme: 'x509', id: x509 })
    conn.onPacket = (p) => this.onPacket(p)
    conn.onClose = (reason) => this.onClosed(reason)
    host.probe?.connected(this.stats)
  }

  get isConnected(): boolean {
    return this.phase === 'connected'
  }

  get outstanding(): number {
    return this.queue.length
  }

  /** Whether the connection is being read (not paused by its own limit or the host's). */
  get reading(): boolean {
    return !this.readingStopped
  }

  private onPacket(packet: Uint8Array): void {
    if (this.phase === 'closed') return
    this.stats.received++
    if (this.phase === 'handshake') {
      let req: ConnectRequest
      try {
        req = decodeConnectRequest(packet)
      } catch (err) {
        this.close(`bad ConnectRequest: ${(err as Error).message}`)
        return
      }
      this.phase = 'connecting'
      this.featuresAsked = req.features
      this.host.connect(this, req)
      return
    }
    if (this.phase === 'connecting') {
      this.early.push(packet)
      if (this.early.length > this.host.outstandingRequestsMax)
        this.close('too many requests before the session was established')
      return
    }
    this.onRequestPacket(packet)
  }

  private onRequestPacket(packet: Uint8Array): void {
    let xid: number
    let req: Request
    let once: OnceHeader | undefined
    try {
      ;({ xid, req, once } = decodeRequest(packet))
    } catch (err) {
      const head = peekRequestHeader(packet)
      if (err instanceof UnknownOpError && head !== undefined) {
        // A well-formed header with an opcode we do not serve: an error reply, not a dropped connection.
        this.enqueue({
          xid: head.xid,
          req: { op: OpCode.ping },
          packet,
          submitted: true,
          reply: { err: 'UNIMPLEMENTED', zxid: 0 },
        })
        return
      }
      const reason = err instanceof ProtocolError ? err.message : String(err)
      this.host.logger.warn(
        { conn: this.conn.id, session: formatSessionId(this.sessionId), reason },
        'malformed request; closing',
      )
      this.close(`malformed request: ${reason}`)
      return
    }
    if (req.op === OpCode.closeSession && xid === Xid.ping) return this.close('bad xid')
    if (!this.host.admit(this, req)) {
      // Over the rate limit: answered in its turn, without being served (issue 15).
      this.enqueue({
        xid,
        req: { op: OpCode.ping },
        packet,
        submitted: true,
        reply: { err: 'THROTTLED_OP', zxid: 0 },
      })
      return
    }
    const entry: PendingRequest = { xid, req, packet, submitted: false, reply: undefined }
    if (once !== undefined) entry.once = once
    this.enqueue(entry)
  }

  private enqueue(entry: PendingRequest): void {
    if (this.host.probe !== undefined) entry.mark = this.host.probe.received()
    this.queue.push(entry)
    if (!this.paused && this.queue.length >= this.host.outstandingRequestsMax) {
      this.paused = true
      this.refreshReading()
    }
    this.pump()
  }

  /**
   * Session established: send the ConnectResponse and process what the
   * client pipelined. `readOnly`: a read-only session (no exactly-once
   * writes either: none can be made). `exactlyOnce` off: a session the
   * replicated state does not hold (a local one), so no write result can be
   * remembered for it.
   */
  accept(
    sessionId: bigint,
    timeoutMs: number,
    passwd: Uint8Array,
    readOnly = false,
    exactlyOnce = !readOnly,
  ): void {
    if (this.phase !== 'connecting') return
    this.sessionId = sessionId
    this.readOnly = readOnly
    this.phase = 'connected'
    const w = this.writer.reset()
    // The Conclave trailer only for a client that sent one: ZooKeeper clients get ZooKeeper's response.
    const served = exactlyOnce ? FEATURES_SERVED : FEATURES_SERVED & ~ConclaveFeature.exactlyOnce
    const features = this.featuresAsked === undefined ? undefined : this.featuresAsked & served
    const requestBytesMax = this.host.replyBytesMax
    encodeConnectResponse(w, {
      protocolVersion: 0,
      timeOut: timeoutMs,
      sessionId,
      passwd,
      readOnly,
      features,
      requestBytesMax,
      writeResultsMax: this.host.writeResultsMax,
    })
    this.conn.send(w.finish())
    this.conn.established()
    const early = this.early
    this.early = []
    this.refreshReading()
    for (const p of early) this.onRequestPacket(p)
  }

  /** Pauses or resumes reading to match this connection's own limit and the host's. */
  refreshReading(): void {
    const stop = this.paused || this.rateHeld || this.host.readingPaused
    if (stop === this.readingStopped || this.phase === 'closed') return
    this.readingStopped = stop
    if (stop) this.conn.pauseReading()
    else this.conn.resumeReading()
  }

  /** Holds reading (a request was over the rate limit) or lets it go. */
  holdForRate(held: boolean): void {
    this.rateHeld = held
    this.refreshReading()
  }

  /** Session refused (expired, wrong password): ZooKeeper answers timeOut 0, then closes. */
  reject(reason: string): void {
    if (this.phase !== 'connecting') return
    const w = this.writer.reset()
    encodeConnectResponse(w, {
      protocolVersion: 0,
      timeOut: 0,
      sessionId: 0n,
      passwd: new Uint8Array(16),
      readOnly: false,
    })
    this.conn.send(w.finish())
    this.close(reason)
  }

  /** A submitted write finished (committed and applied, or failed). */
  complete(entry: PendingRequest, reply: Reply): void {
    // Per-session FIFO rests on each request being answered once, after it was submitted.
    assert(entry.submitted, 'a reply to a request never submitted')
    assert(entry.reply === undefined, 'a request answered twice')
    entry.reply = reply
    if (entry.inFlight) {
      entry.inFlight = false
      this.host.writeFinished()
    }
    this.pump()
  }

  /**
   * Completes the waiting write with this xid (a forwarded write that failed
   * in prep). It need not be the oldest: earlier writes may still be on their
   * way to a quorum. Its reply still leaves in request order.
   */
  completeWrite(cxid: number, reply: Reply): boolean {
    const e = this.queue.find(
      (x) => x.submitted && x.reply === undefined && x.xid === cxid && this.host.isWrite(x.req),
    )
    if (e === undefined) return false
    this.complete(e, reply)
    return true
  }

  /** The oldest submitted write still waiting, for matching commits to requests. */
  firstWaitingWrite(): PendingRequest | undefined {
    for (const e of this.queue) if (e.submitted && e.reply === undefined) return e
    return undefined
  }

  /**
   * The submitted write with this xid still waiting. Usually the oldest; an
   * exactly-once write re-sent on this connection may wait for an answer from
   * the leader while writes after it are applied.
   */
  waitingWrite(cxid: number): PendingRequest | undefined {
    const first = this.firstWaitingWrite()
    if (first === undefined || first.xid === cxid) return first
    return this.queue.find(
      (x) => x.submitted && x.reply === undefined && x.xid === cxid && this.host.isWrite(x.req),
    )
  }

  /** Re-runs the queue (e.g. a write or a waiting sync finished). Re-entrant calls are folded into one loop. */
  pump(): void {
    if (this.pumping) {
      this.repump = true
      return
    }
    this.pumping = true
    try {
      let again: boolean
      do {
        this.repump = false
        again = this.pumpOnce()
      } while (again || this.repump)
    } finally {
      this.pumping = false
    }
    if (this.paused && this.queue.length < this.host.outstandingRequestsMax / 2) {
      this.paused = false
      this.refreshReading()
    }
  }

  /**
   * One pass: answered requests at the head leave, then requests after the
   * cursor are submitted. Returns whether the head may have been answered
   * meanwhile (a read served, a write answered at once), so the pass repeats.
   */
  private pumpOnce(): boolean {
    const q = this.queue
    while (q.length > 0 && this.phase === 'connected') {
      const e = q[0]!
      if (e.reply === undefined) break
      q.shift()
      if (this.next > 0) this.next--
      // Replies leave in request order but are stamped when they complete (a held failed-prep
      // reply may complete after a later write's): a zxid never goes back on a connection,
      // and the server has applied whatever it sent before.
      e.reply.zxid = Math.max(e.reply.zxid, this.lastReplyZxid)
      this.lastReplyZxid = e.reply.zxid
      this.sendReply(e.xid, e.reply, this.host.isWrite(e.req))
      this.host.probe?.replied(this.stats, e.req.op, e.xid, e.reply.zxid, e.mark ?? 0)
    }
    // Everything before the cursor was submitted or answered, nothing after it was submitted
    // (an entry queued as submitted comes answered); a read waiting at the head holds it.
    while (this.next < q.length && this.phase === 'connected') {
      const e = q[this.next]!
      if (e.reply !== undefined) {
        this.next++
        continue
      }
      if (this.host.isWrite(e.req)) {
        this.next++
        e.submitted = true
        e.inFlight = true
        this.host.writeStarted()
        this.host.submitWrite(this, e)
        if (e.reply !== undefined && this.next === 1) return true
        continue
      }
      // A read waits for every request before it, and stops everything after it.
      if (this.next > 0 || e.submitted) return false
      const r = this.host.serveRead(this, e)
      if (r === 'wait') {
        e.submitted = true
        return false
      }
      e.reply = r
      return true
    }
    return false
  }

  private sendReply(xid: number, reply: Reply, write = false): void {
    const w = this.writer.reset()
    writeReplyHeader(w, { xid, zxid: reply.zxid, err: errorNumber(reply.err) })
    // A failed multi is err 0 with per-op error results in the body, as ZooKeeper replies.
    if (reply.body !== undefined) writeResponseBody(w, reply.body)
    // ZooKeeper answers addWatch with an ErrorResponse (an int, 0) and Java's client reads it:
    // without it the read fails (EOFException) and the client drops the connection.
    if (reply.body?.op === OpCode.addWatch) w.int(0)
    // A view of the reused writer: send() copies it (ClientConnection.send).
    let packet = w.view_()
    if (packet.length > this.host.replyBytesMax) {
      this.warnReplyTooLarge(reply.body?.op ?? 0, undefined, `${packet.length} bytes`, !write)
      // A write has happened: its reply goes out as it is (the client may see CONNECTION_LOSS,
      // outcome unknown, which is the truth); a read's becomes an error the client can act on.
      if (!write) {
        const e = this.writer.reset()
        writeReplyHeader(e, { xid, zxid: reply.zxid, err: errorNumber('MARSHALLING_ERROR') })
        packet = e.view_()
      }
    }
    this.send(packet)
    if (reply.body?.op === OpCode.closeSession) this.close('session closed by the client', true)
  }

  /**
   * Logs a reply over replyBytesMax: the first for this connection at warn, then one in
   * REPLY_TOO_LARGE_LOG_EVERY (a client retrying in a loop must not flood the log).
   */
  warnReplyTooLarge(op: number, path: string | undefined, size: string, refused = true): void {
    this.repliesTooLarge++
    if (this.repliesTooLarge % REPLY_TOO_LARGE_LOG_EVERY !== 1) return
    const detail = {
      session: formatSessionId(this.sessionId),
      op,
      path,
      size,
      limit: this.host.replyBytesMax,
    }
    this.host.logger.warn(
      { ...detail, count: this.repliesTooLarge },
      refused
        ? 'reply larger than frameBytesMax: answered MARSHALLING_ERROR instead (the client would drop its connection over it)'
        : 'reply to a write larger than frameBytesMax: sent anyway (the write happened); the client may drop its connection',
    )
  }

  /** Sends a watch notification (xid -1). */
  notify(type: number, path: string, zxid: number): void {
    if (this.phase !== 'connected') return
    const w = this.writer.reset()
    writeReplyHeader(w, { xid: Xid.notification, zxid, err: 0 })
    writeWatcherEvent(w, { type, state: 3, path })
    this.send(w.view_())
    this.host.probe?.notified()
  }

  private send(packet: Uint8Array): void {
    this.stats.sent++
    this.conn.send(packet)
    if (this.conn.bufferedBytes() > this.host.sendBufferBytesMax)
      this.close(`client is not reading: more than ${this.host.sendBufferBytesMax} bytes queued`)
  }

  /** Ends the connection; `normal` when the client asked for it (a WebSocket close code 1000, not 1008). */
  close(reason: string, normal = false): void {
    if (this.phase === 'closed') return
    this.conn.close(reason, normal)
    this.onClosed(reason)
  }

  private onClosed(reason: string): void {
    if (this.phase === 'closed') return
    this.phase = 'closed'
    for (const e of this.queue) {
      if (!e.inFlight) continue
      e.inFlight = false
      this.host.writeFinished()
    }
    this.queue.length = 0
    this.next = 0
    this.host.closed(this, reason)
  }
}
