/**
 * The session machine (ZooKeeper's ClientCnxn, our way): connects to the
 * servers of the connect string in random order, establishes or resumes the
 * session, pipelines requests with increasing xids, matches replies in order,
 * routes watch events, pings when idle, and moves to another server with the
 * same session when the connection is lost.
 *
 * Invariants:
 * - state 'connected' or 'connectedReadOnly' <=> `link` is open and the
 *   session is established ('connectedReadOnly': a read-only server's
 *   session, with canBeReadOnly; see "Read-only" below).
 * - Replies come in request order: a reply whose xid is not the oldest
 *   pending one is a protocol error and drops the connection.
 * - A watch is registered while its reply is processed, before the next
 *   packet; events are delivered in a microtask, after the promises of the
 *   replies before them and before those of the replies after them.
 * - On reconnect, auth packets go first, then SetWatches, then the
 *   exactly-once writes the lost connection left unanswered (same xids),
 *   then queued requests (ClientCnxn.primeConnection, plus the re-sends).
 * - Watches resume (against a server that offers it): instead of SetWatches
 *   one resumeWatches carries every watch and the position of the events
 *   delivered so far (WatchPosition); the server replays what they missed,
 *   in order, and the events it sends again are dropped here, so each
 *   reaches its listeners once. When the server's history does not reach
 *   back (a watchesCompacted event), or the server cannot resume (Apache
 *   ZooKeeper), every persistent listener gets one { type: 'resync' }: it
 *   missed events and must read the state again.
 * - Every event a listener gets carries its change's zxid (-1 if the server
 *   sent none), as a property that is not enumerable ('resync': enumerable).
 * - Exactly-once (against a server that offers it in its ConnectResponse):
 *   every write goes with ConclaveOpCode.exactlyOnce, carrying the oldest
 *   xid still unanswered (the server forgets results below it); a write
 *   whose connection is lost, or that a server answers CONNECTION_LOSS, is
 *   re-sent on the next connection of the session and answered once; one
 *   issued while disconnected waits for the next connection through failed
 *   attempts (they fail only the other requests issued meanwhile), for up
 *   to the session timeout from the loss. xids only grow over the session's
 *   life, across connections.
 * - 'expired', 'authFailed' and 'closed' are final (except -> 'closed').
 * - The server list follows the ensemble (followMembership; see
 *   membership-tracker.ts): it may be replaced while the session lives.
 *   When the server connected to is no longer in it, the session leaves it
 *   once nothing awaits a reply (at most LEAVE_WAIT_MS_MAX; requests issued
 *   meanwhile wait for the next connection) and reconnects to one that is,
 *   with the same session. Servers added join the rotation: a later
 *   reconnect may go to them (no move is made only to spread load: a move
 *   is a disconnect, which recipes treat as a suspected loss).
 * - Read-only (ZooKeeper's canBeReadOnly): the ConnectRequest says the
 *   client accepts a read-only server (one without a quorum, readOnlyMode
 *   on); such a server answers readOnly and the state is
 *   'connectedReadOnly': reads work, writes fail NOT_READ_ONLY. Meanwhile
 *   the other servers are asked with `isro` (backing off from
 *   READ_ONLY_PROBE_MS_MIN to _MAX) and the first that answers 'rw' is
 *   connected to (the read-only connection dropped). Until the session has
 *   been on a read-write server (its id is then the ensemble's), a connect
 *   asks for a new session: a read-only server's new session is its own
 *   (ZooKeeper's seenRwServerBefore). Exactly-once re-sends wait for a
 *   read-write connection.
 * The packet path is synchronous; promises live only at the API edge and in
 * the connect loop.
 * Imports only shared/ and client/ (no node:*, no ws: transports load them).
 */
import { ErrorCode, errorCodeOf, ZkError } from '../shared/errors.js'
import { JuteReader, JuteWriter, ProtocolError } from '../shared/jute.js'
import {
  AddWatchMode,
  ConclaveEventType,
  ConclaveOpCode,
  EventType,
  OpCode,
  WatcherType,
  Xid,
} from '../shared/opcodes.js'
import { applyChroot, stripChroot } from '../shared/paths.js'
import {
  ConclaveFeature,
  type ConnectResponse,
  decodeConnectResponse,
  encodeConnectRequest,
  encodeRequest,
  isOnceWriteOp,
  type OnceHeader,
  type Request,
  readReplyHeader,
  readResponseBody,
  readWatcherEvent,
  type SetWatchesRequest,
} from '../shared/records.js'
import { type Endpoint, indexOfAddress } from './connect-string.js'
import { Emitter } from './emitter.js'
import { Fifo } from './fifo.js'
import { CONFIG_NODE, MembershipTracker } from './membership-tracker.js'
import { Pending, replyValue } from './pending.js'
import { eventTypeName } from './results.js'
import type {
  TlsOptions,
  Transport,
  TransportFactory,
  TransportHandlers,
  WebSocketConstructor,
} from './transport.js'
import type {
  ClientEvents,
  ClientState,
  DataResult,
  PersistentWatchMode,
  WatchEvent,
  Watcher,
} from './types.js'
import { type OneShotKind, WatchManager } from './watch-manager.js'
import { WatchPosition } from './watch-position.js'

/** Ping at least this often when idle (ClientCnxn.MAX_SEND_PING_INTERVAL). */
export const PING_INTERVAL_MS_MAX = 10_000
/** Lower bound of the per-attempt connect timeout (sessionTimeout / number of servers). */
export const ATTEMPT_TIMEOUT_MS_MIN = 1_000
/**
 * Reconnect pacing, as ZooKeeper's client: before every attempt after the
 * first session, a random delay below this (ClientCnxn.startConnect); and
 * this much more when the next server is the one last connected to, i.e.
 * after a full round (StaticHostProvider.next's spinDelay). It spreads a herd
 * of reconnecting clients, and lets a twin that resumed a session close it.
 */
export const RECONNECT_DELAY_MS_DEFAULT = 1_000
/** SetWatches batches stay near this many bytes of paths (ZOOKEEPER-706). */
export const SET_WATCHES_BYTES_MAX = 128 * 1024
/** Room in a resumeWatches packet for everything but its paths (headers, fromZxid, list lengths). */
const RESUME_OVERHEAD_BYTES = 64
/** close() waits at most this long for the server to confirm closeSession. */
export const CLOSE_TIMEOUT_MS_MAX = 5_000
/**
 * An exactly-once write is sent at most this many times: a write whose every
 * connection is lost before its answer (something about the write itself
 * breaks them) then fails with CONNECTION_LOSS, its outcome unknown, rather
 * than going round forever. A leader failover costs a write one or two sends.
 */
export const EXACTLY_ONCE_SENDS_MAX = 16

/**
 * Exactly-once writes kept unanswered at most, when the server does not say
 * its sessionWriteResultsMax (the server's default). The server remembers
 * that many results per session, oldest dropped first: with more unanswered,
 * a lost connection could leave a write whose result its own later writes
 * pushed out, answered OUTCOME_UNKNOWN when re-sent.
 */
export const WRITE_RESULTS_MAX_DEFAULT = 1000

/** Read-only: the first probe for a read-write server after this long; each next one twice as late, up to _MAX. */
export const READ_ONLY_PROBE_MS_MIN = 250
export const READ_ONLY_PROBE_MS_MAX = 10_000

/**
 * Leaving a server that is no longer in the list waits at most this long for
 * the replies already due on it (so a planned move costs no CONNECTION_LOSS
 * when they come); then it goes anyway.
 */
export const LEAVE_WAIT_MS_MAX = 2_000

/** What `isro` says of a server: read-write, read-only, neither (or unreachable); undefined: cannot ask here. */
export type IsroAnswer = 'rw' | 'ro' | 'none' | undefined

const ERR_NO_NODE = -101
const ERR_CONNECTION_LOSS = -4

export interface SessionConfig {
  /** The servers to start with (in the order to try them). */
  endpoints: Endpoint[]
  /** Follow the ensemble's membership (/zookeeper/config): see membership-tracker.ts. */
  followMembership: boolean
  sessionTimeoutMs: number
  chroot: string | undefined
  sessionId: bigint
  password: Uint8Array
  frameBytesMax: number
  transport: TransportFactory
  WebSocket: WebSocketConstructor | undefined
  tls: TlsOptions | undefined
  random: () => number
  reconnectDelayMs: number
  /** Ask servers for exactly-once writes (used where the ConnectResponse grants it). */
  exactlyOnce: boolean
  /** Accept a read-only server's session when no read-write server can be reached. */
  canBeReadOnly: boolean
  /** Asks a server whether it is read-write (ZooKeeper's `isro`); undefined: no probing (the state moves back only when the read-only connection ends). */
  probeReadWrite: ((endpoint: Endpoint, timeoutMs: number) => Promise<IsroAnswer>) | undefined
}

type Outcome = 'connected' | 'failed'

interface Link {
  endpoint: Endpoint
  /** The session id the ConnectRequest carried (0: a new session). */
  sentSessionId: bigint
  transport: Transport | undefined
  open: boolean
  settle: (outcome: Outcome) => void
}

interface AuthEntry {
  scheme: string
  auth: Uint8Array
  /** addAuth() calls waiting for this entry's next reply. */
  waiters: Pending[]
}

const now = (): number => performance.now()

export class Session {
  state: ClientState = 'connecting'
  readonly events = new Emitter<ClientEvents>()
  readonly watches = new WatchManager()
  readonly chroot: string | undefined
  sessionId: bigint
  password: Uint8Array
  lastZxid = 0
  negotiatedTimeoutMs = 0
  /** How far the watch events delivered go (for resuming them on the next connection). */
  readonly position = new WatchPosition()

  private link: Link | undefined
  private attemptAbort: AbortController | undefined
  private readonly pending = new Fifo<Pending>(256)
  /** Requests issued while not connected, or behind a full exactly-once window: sent in order, later. */
  private waiting: Pending[] = []
  /** Exactly-once writes in `pending` (sent, unanswered): at most writeResultsMax. */
  private onceUnanswered = 0
  /** The connected server's sessionWriteResultsMax (its ConnectResponse trailer), or the default. */
  private writeResultsMax = WRITE_RESULTS_MAX_DEFAULT
  /** Exactly-once writes a lost connection left unanswered, oldest first: re-sent on the next one. */
  private resend: Pending[] = []
  /** The connected server answers writes exactly once (its ConnectResponse said so). */
  exactlyOnce = false
  /** The ConclaveFeature bits the connected server granted (0: none, e.g. a ZooKeeper server). */
  features = 0
  /** The largest request the connected server accepts, if it said (Conclave's ConnectResponse trailer). */
  private serverRequestBytesMax: number | undefined
  private xid = 0
  // Grows when a request needs it; a 4 KiB start was a zeroed ArrayBuffer per session, for ~50-byte requests.
  private readonly writer = new JuteWriter(256)
  private readonly auth: AuthEntry[] = []
  private readonly authInFlight = new Fifo<Pending[]>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private lastSendMs = 0
  private lastRecvMs = 0
  private readTimeoutMs = 0
  private pingIntervalMs = 0
  private closing = false
  private closePromise: Promise<void> | undefined
  private wake: (() => void) | undefined
  /** The servers, in the order tried: the given list, or the ensemble's (replaceServers). */
  private endpoints: Endpoint[]
  /** Index in `endpoints` of the next server to try. */
  private hostIndex = 0
  /** The server of the last session established (before that, the first one tried). */
  private lastEndpoint: Endpoint | undefined
  /** Follows /zookeeper/config (undefined with followMembership off). */
  private readonly tracker: MembershipTracker | undefined
  /** Leaving the connected server (no longer in the list): waiting for its due replies. */
  private leaving: { link: Link; timer: ReturnType<typeof setTimeout> } | undefined
  private everConnected = false
  /** When the last established connection was lost (now()); 0 before any. */
  private lostAtMs = 0
  /** Exactly-once writes answered CONNECTION_LOSS in a row (reconnectDelay backs off); 0 after any other answer. */
  private lossAnswers = 0
  /** The session is the ensemble's (it was created or resumed on a read-write server, or given to connect). */
  private seenRw: boolean
  private probeTimer: ReturnType<typeof setTimeout> | undefined
  private probeDelayMs = READ_ONLY_PROBE_MS_MIN
  private probeIndex = 0
  /** Why the last transport failed to open, for the error of a first connection that never came. */
  private lastOpenError: string | undefined

  constructor(private readonly config: SessionConfig) {
    this.chroot = config.chroot
    this.sessionId = config.sessionId
    this.password = config.password
    this.seenRw = config.sessionId !== 0n
    this.endpoints = config.endpoints.slice()
    this.tracker = config.followMembership
      ? new MembershipTracker({
          readConfig: (watch) => this.readConfig(watch),
          servers: () => this.endpoints,
          connected: () => (this.link?.open === true && !this.closing ? this.link.endpoint : undefined),
          replace: (endpoints) => this.replaceServers(endpoints),
          warn: (message) => this.events.emit('warning', message),
          random: () => this.config.random(),
        })
      : undefined
    let reporting = false
    this.events.onListenerError = (err) => {
      // An 'error' listener that throws is not reported again (no recursion).
      if (reporting || this.events.listenerCount('error') === 0) return
      reporting = true
      try {
        this.events.emit('error', err)
      } finally {
        reporting = false
      }
    }
  }

  // ------------------------------------------------------------ lifecycle

  /** Establishes the session, or rejects (and closes) by the deadline. */
  async start(connectTimeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    const onAbort = (): void => this.teardown('closed', ErrorCode.CONNECTION_LOSS)
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      if (signal?.aborted) onAbort()
      await this.connectLoop(now() + connectTimeoutMs)
      if (this.isConnected()) await this.authSettled()
      if (!this.isConnected())
        throw this.terminalError(
          // Why the last transport failed to open (a refused TLS certificate, a 403, …), so it is not a mystery.
          `could not establish a session${this.lastOpenError === undefined ? '' : ` (last attempt: ${this.lastOpenError})`}`,
        )
    } catch (err) {
      await this.close()
      throw ZkError.is(err) ? err : new ZkError(ErrorCode.CONNECTION_LOSS, undefined, String(err))
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  close(): Promise<void> {
    this.closePromise ??= this.doClose()
    return this.closePromise
  }

  private async doClose(): Promise<void> {
    if (this.isConnected() && !this.closing) {
      this.closing = true
      const p = new Pending(OpCode.closeSession, { op: OpCode.closeSession }, undefined)
      const confirmed = new Promise<void>((resolve) => {
        p.resolve = () => resolve()
        p.reject = () => resolve()
      })
      this.sendPending(p)
      let timer: ReturnType<typeof setTimeout> | undefined
      const waitMs = Math.min(CLOSE_TIMEOUT_MS_MAX, Math.max(this.readTimeoutMs, 1000))
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, waitMs)
      })
      await Promise.race([confirmed, timeout])
      clearTimeout(timer)
    }
    this.teardown('closed', ErrorCode.SESSION_EXPIRED)
  }

  /** Established on an open connection: read-write or read-only. */
  isConnected(): boolean {
    return this.state === 'connected' || this.state === 'connectedReadOnly'
  }

  private isFinal(): boolean {
    return this.state === 'closed' || this.state === 'expired' || this.state === 'authFailed'
  }

  private terminalError(what: string): ZkError {
    if (this.state === 'authFailed')
      return new ZkError(ErrorCode.AUTH_FAILED, undefined, `AUTH_FAILED: ${what}`)
    if (this.state === 'expired')
      return new ZkError(ErrorCode.SESSION_EXPIRED, undefined, `SESSION_EXPIRED: ${what}`)
    return new ZkError(ErrorCode.CONNECTION_LOSS, undefined, `CONNECTION_LOSS: ${what}`)
  }

  /** Enters a final state: stops everything and rejects every request with `code`. */
  private teardown(state: ClientState, code: ErrorCode): void {
    if (this.state === state) return
    this.stopTimer()
    this.stopProbing()
    this.stopLeaving()
    this.attemptAbort?.abort()
    this.wake?.()
    const link = this.link
    this.link = undefined
    link?.transport?.close()
    this.state = state
    this.failPending(code)
    this.failResend(code)
    this.failWaiting(code)
    this.watches.clear()
    this.events.emit('state', state)
  }

  /** Rejects every request awaiting a reply; `why` (how the connection ended) goes into the message. */
  private failPending(code: ErrorCode, why?: string): void {
    for (let p = this.pending.shift(); p !== undefined; p = this.pending.shift()) p.fail(code, why)
    this.onceUnanswered = 0
    for (let ws = this.authInFlight.shift(); ws !== undefined; ws = this.authInFlight.shift())
      for (const p of ws) p.fail(code)
  }

  /** The re-sends fail too (the session ended, or the next server cannot take them): their outcome is unknown. */
  private failResend(code: ErrorCode, why?: string): void {
    const resend = this.resend
    this.resend = []
    for (const p of resend) p.fail(code, why)
  }

  /**
   * Rejects the requests not sent yet (issued while not connected, or behind
   * a full exactly-once window) and the auth waiters; `keep` picks requests
   * that stay queued instead, in their order; `why` adds to a rejection's
   * message.
   */
  private failWaiting(
    code: ErrorCode,
    keep?: (p: Pending) => boolean,
    why?: (p: Pending) => string | undefined,
  ): void {
    const waiting = this.waiting
    this.waiting = []
    for (const p of waiting) {
      if (keep?.(p)) this.waiting.push(p)
      else p.fail(code, why?.(p))
    }
    for (const entry of this.auth) {
      const ws = entry.waiters
      entry.waiters = []
      for (const p of ws) p.fail(code)
    }
  }

  /**
   * A failed attempt (the `failed`th in a row) fails what was issued
   * meanwhile, as ZooKeeper's client does, except exactly-once writes: never
   * sent, they are not in doubt, and wait for the next connection as the
   * re-sends do. Failing them broke the promise that such a write fails
   * CONNECTION_LOSS only after EXACTLY_ONCE_SENDS_MAX sends: a reply and the
   * server's close read together run the caller's next write after the loss
   * (exactly-once.test.ts's history lost a SharedCounter increment so), and a
   * longer server list (followMembership) tries dead members first. They wait
   * for the session timeout from the loss (past it the session is presumably
   * gone, and a caller, a recipe's close() say, must not wait on an ensemble
   * that may never come back), and at least until every server was tried
   * once (a long list's round of attempts can outlast the session timeout).
   */
  private failWaitingAfterAttempt(failed: number): void {
    if (!this.exactlyOnce) {
      this.failWaiting(ErrorCode.CONNECTION_LOSS)
      return
    }
    const timeoutMs = this.negotiatedTimeoutMs
    const waits = now() - this.lostAtMs < timeoutMs || failed < this.endpoints.length
    const why = `never sent: no server was reached within the session timeout (${timeoutMs} ms) of the lost connection`
    this.failWaiting(
      ErrorCode.CONNECTION_LOSS,
      (p) => waits && isOnceWriteOp(p.op),
      (p) => (isOnceWriteOp(p.op) ? why : undefined),
    )
  }

  // ------------------------------------------------------------ connecting

  private attemptTimeoutMs(): number {
    const t = this.negotiatedTimeoutMs > 0 ? this.negotiatedTimeoutMs : this.config.sessionTimeoutMs
    return Math.max(ATTEMPT_TIMEOUT_MS_MIN, Math.floor(t / this.endpoints.length))
  }

  /** Tries servers in turn until connected, final, or past the deadline. Never rejects. */
  private async connectLoop(deadline: number | undefined): Promise<void> {
    let failed = 0
    for (;;) {
      if (this.isFinal() || this.isConnected() || this.closing) return
      // The list may be replaced while this loop waits (updateServerList): read it afresh each round.
      const n = this.endpoints.length
      const index = this.hostIndex % n
      const endpoint = this.endpoints[index]!
      this.hostIndex = (index + 1) % n
      const delay = this.reconnectDelay(endpoint)
      this.lastEndpoint ??= endpoint
      if (delay > 0) {
        const left = deadline === undefined ? delay : deadline - now()
        await this.pause(Math.max(0, Math.min(delay, left)))
        if (this.isFinal() || this.closing) return
      }
      const budget = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - now()
      if (budget <= 0) return
      const outcome = await this.attempt(endpoint, Math.min(this.attemptTimeoutMs(), budget))
      if (outcome === 'connected') {
        this.lastEndpoint = endpoint
        this.everConnected = true
        // The list was replaced while this attempt ran (updateServerList) and no longer holds it.
        const link = this.link
        if (link?.open) this.leaveIfUnlisted(link)
        return
      }
      if (this.isFinal()) return
      failed++
      this.failWaitingAfterAttempt(failed)
    }
  }

  /**
   * ZooKeeper's pacing: jitter once a session has existed, a spin delay on
   * coming back round; plus a backoff while servers keep answering an
   * exactly-once write CONNECTION_LOSS (they are looking for a leader):
   * 25 ms doubling to 1 s, so its EXACTLY_ONCE_SENDS_MAX sends outlast an
   * election (about 11 s) instead of being spent in one when
   * reconnectDelayMs is small (a history test lost writes that way).
   */
  private reconnectDelay(endpoint: Endpoint): number {
    const base = this.config.reconnectDelayMs
    const backoff = this.lossAnswers === 0 ? 0 : Math.min(1000, 25 * 2 ** (this.lossAnswers - 1))
    if (base <= 0) return backoff
    const spin = endpoint === this.lastEndpoint ? base : 0
    const jitter = this.everConnected ? Math.floor(this.config.random() * base) : 0
    return spin + jitter + backoff
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.wake = () => {
        this.wake = undefined
        done()
      }
    })
  }

  /** One connection attempt: open the transport, send ConnectRequest, await ConnectResponse. */
  private attempt(endpoint: Endpoint, timeoutMs: number): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const abort = new AbortController()
      let settled = false
      const link: Link = {
        endpoint,
        sentSessionId: 0n,
        transport: undefined,
        open: false,
        settle: (outcome) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          if (this.attemptAbort === abort) this.attemptAbort = undefined
          if (outcome !== 'connected') {
            link.transport?.close()
            if (this.link === link) this.link = undefined
          }
          resolve(outcome)
        },
      }
      const timer = setTimeout(() => abort.abort(), timeoutMs)
      abort.signal.addEventListener('abort', () => link.settle('failed'), { once: true })
      this.attemptAbort = abort
      this.link = link
      const handlers: TransportHandlers = {
        onPacket: (bytes) => this.onPacket(link, bytes),
        onClose: (reason) => this.onLinkClosed(link, reason),
      }
      // The ConnectRequest is built now (nothing it says changes while no connection is open), so a
      // transport that can sends it with its own opening (the Node WebSocket client: one round trip
      // less); such a transport ignores the sendFrame of it below.
      const hello = this.connectRequestFrame(link)
      const options = {
        frameBytesMax: this.config.frameBytesMax,
        signal: abort.signal,
        WebSocket: this.config.WebSocket,
        tls: this.config.tls,
        earlyFrame: hello,
      }
      Promise.resolve()
        .then(() => this.config.transport(endpoint, handlers, options))
        .then(
          (t) => {
            if (settled || this.link !== link) return t.close()
            link.transport = t
            t.sendFrame(hello)
          },
          (err: unknown) => {
            // An attempt cut short by its own deadline says nothing new; keep the last real reason.
            if (!abort.signal.aborted)
              this.lastOpenError = `${endpoint.url}: ${err instanceof Error ? err.message : String(err)}`
            link.settle('failed')
          },
        )
    })
  }

  /** The ConnectRequest for this attempt, as a frame; records the session id it asks for in `link`. */
  private connectRequestFrame(link: Link): Uint8Array {
    const w = this.writer.reset()
    w.int(0)
    // A read-only server's own session is unknown elsewhere: ask for a new one until on a read-write server.
    const fresh = this.config.canBeReadOnly && !this.seenRw
    link.sentSessionId = fresh ? 0n : this.sessionId
    encodeConnectRequest(w, {
      protocolVersion: 0,
      // A server behind what this session has seen refuses it (so no resume can skip events).
      lastZxidSeen: BigInt(Math.max(this.lastZxid, this.position.zxid)),
      timeOut: this.config.sessionTimeoutMs,
      sessionId: link.sentSessionId,
      passwd: fresh ? new Uint8Array(16) : this.password,
      readOnly: this.config.canBeReadOnly,
      features:
        ConclaveFeature.childrenPage |
        ConclaveFeature.resumableWatches |
        (this.config.exactlyOnce ? ConclaveFeature.exactlyOnce : 0),
    })
    w.setIntAt(0, w.pos - 4)
    return w.finish()
  }

  private onHandshake(link: Link, bytes: Uint8Array): void {
    let resp: ConnectResponse
    try {
      resp = decodeConnectResponse(bytes)
    } catch {
      link.settle('failed')
      return
    }
    const moved = link.sentSessionId !== 0n && resp.sessionId !== link.sentSessionId
    if (resp.timeOut <= 0 || moved) {
      // The server no longer knows the session (ClientCnxn.onConnected: negotiatedSessionTimeout <= 0).
      this.teardown('expired', ErrorCode.SESSION_EXPIRED)
      link.settle('failed')
      return
    }
    this.establish(link, resp)
    link.settle('connected')
  }

  private establish(link: Link, resp: ConnectResponse): void {
    this.sessionId = resp.sessionId
    this.password = resp.passwd.slice()
    this.negotiatedTimeoutMs = resp.timeOut
    // ClientCnxn: readTimeout = 2/3 of the session timeout; ping when idle for half of it.
    this.readTimeoutMs = Math.floor((resp.timeOut * 2) / 3)
    this.pingIntervalMs = Math.min(Math.floor(this.readTimeoutMs / 2), PING_INTERVAL_MS_MAX)
    link.open = true
    this.lastRecvMs = now()
    this.lastSendMs = this.lastRecvMs
    const readOnly = resp.readOnly && this.config.canBeReadOnly
    this.state = readOnly ? 'connectedReadOnly' : 'connected'
    if (!readOnly) this.seenRw = true
    this.features = resp.features ?? 0
    this.exactlyOnce = this.config.exactlyOnce && (this.features & ConclaveFeature.exactlyOnce) !== 0
    this.serverRequestBytesMax = (resp.requestBytesMax ?? 0) > 0 ? resp.requestBytesMax : undefined
    this.writeResultsMax = (resp.writeResultsMax ?? 0) > 0 ? resp.writeResultsMax! : WRITE_RESULTS_MAX_DEFAULT
    // Auth first, then watches, then the re-sends, then whatever was queued (primeConnection's order).
    this.primeAuth()
    this.primeWatches()
    // A read-only server can take no write: the re-sends wait for a read-write one.
    if (!readOnly) this.primeResend()
    this.sendWaiting()
    this.armTimer(this.pingIntervalMs)
    if (readOnly) this.startProbing(link)
    this.tracker?.connected()
    this.events.emit('state', this.state)
  }

  private onLinkClosed(link: Link, reason: string): void {
    if (link !== this.link) return
    if (!link.open) link.settle('failed')
    else this.lose(reason)
  }

  /** Drops the current connection (protocol error, read timeout) and reconnects. */
  private dropConnection(reason: string): void {
    const link = this.link
    if (link === undefined) return
    link.transport?.close()
    if (link.open) this.lose(reason)
    else link.settle('failed')
  }

  /** The connection is gone; the session may live on. */
  private lose(reason: string): void {
    this.link = undefined
    this.lostAtMs = now()
    this.stopTimer()
    this.stopProbing()
    this.stopLeaving()
    if (this.closing) {
      this.failPending(ErrorCode.SESSION_EXPIRED)
      return
    }
    this.state = 'disconnected'
    // Exactly-once writes go again on the next connection; the outcome of anything else in
    // flight is unknown: say why the connection ended (e.g. the server's WebSocket close
    // reason), so a refused request is not a mystery.
    this.keepForResend()
    this.failPending(ErrorCode.CONNECTION_LOSS, reason)
    this.events.emit('state', 'disconnected')
    // A state listener may have closed the client.
    if (!this.isFinal() && !this.closing) this.reconnect()
  }

  private reconnect(): void {
    this.connectLoop(undefined).catch((err: unknown) => {
      // Not expected: the loop handles every failure itself. Fail safe rather than hang.
      this.teardown('closed', ErrorCode.CONNECTION_LOSS)
      this.events.onListenerError?.(err)
    })
  }

  /** Takes the unanswered exactly-once writes out of `pending`, in order, behind any already kept. */
  private keepForResend(): void {
    if (!this.exactlyOnce) return
    const rest: Pending[] = []
    for (let p = this.pending.shift(); p !== undefined; p = this.pending.shift()) {
      if (p.once && p.sends < EXACTLY_ONCE_SENDS_MAX) this.resend.push(p)
      else rest.push(p)
    }
    for (const p of rest) this.pending.push(p)
    this.onceUnanswered = 0
  }

  // ------------------------------------------------------------ priming

  /** Re-sends the writes the last connection left unanswered, with their xids, if this server can take them. */
  private primeResend(): void {
    if (this.resend.length === 0) return
    if (!this.exactlyOnce) {
      this.failResend(
        ErrorCode.CONNECTION_LOSS,
        'the connection was lost, and the server reached next does not offer exactly-once writes: outcome unknown',
      )
      return
    }
    const resend = this.resend
    this.resend = []
    for (const p of resend) this.sendPending(p)
  }

  private primeAuth(): void {
    for (const entry of this.auth) {
      this.writePacket(Xid.auth, { op: OpCode.auth, authType: 0, scheme: entry.scheme, auth: entry.auth })
      this.authInFlight.push(entry.waiters)
      entry.waiters = []
    }
  }

  /** Resolves once every auth packet sent so far is acknowledged. */
  private authSettled(): Promise<void> {
    if (this.authInFlight.length === 0) return Promise.resolve()
    const p = new Pending(OpCode.auth, undefined, undefined)
    const done = new Promise<void>((resolve, reject) => {
      p.resolve = () => resolve()
      p.reject = reject
    })
    // Auth replies come in order, so the last batch resolves after all others succeeded.
    this.authInFlight.peekLast()!.push(p)
    return done
  }

  /**
   * Re-registers every watch: resumed from the events' position with one
   * resumeWatches if the server offers it and they fit in one packet, else
   * with SetWatches(2) relative to the last zxid seen, and then the
   * persistent listeners are told to resync.
   */
  private primeWatches(): void {
    const paths = this.watches.paths()
    const lists = [paths.data, paths.exist, paths.child, paths.persistent, paths.persistentRecursive]
    if (lists.every((l) => l.length === 0)) return
    // The server's paths, once for either request.
    const wire = lists.map((list) => list.map((path) => applyChroot(this.chroot, path)))
    if ((this.features & ConclaveFeature.resumableWatches) !== 0 && this.sendResume(wire)) return
    const op = this.watches.hasPersistent() ? OpCode.setWatches2 : OpCode.setWatches
    this.sendSetWatches(op, wire)
    this.resyncPersistent(-1)
  }

  /** One resumeWatches with every watch (server paths); false if it would not fit in a packet. */
  private sendResume(wire: string[][]): boolean {
    let bytes = RESUME_OVERHEAD_BYTES
    // At most 3 bytes of UTF-8 per UTF-16 unit, and a 4-byte length each.
    for (const list of wire) for (const path of list) bytes += 4 + 3 * path.length
    const own = this.config.frameBytesMax
    if (bytes > Math.min(own, this.serverRequestBytesMax ?? own)) return false
    const req: SetWatchesRequest = {
      op: ConclaveOpCode.resumeWatches,
      relativeZxid: this.position.resumeFrom(),
      dataWatches: wire[0]!,
      existWatches: wire[1]!,
      childWatches: wire[2]!,
      persistentWatches: wire[3]!,
      persistentRecursiveWatches: wire[4]!,
    }
    const p = new Pending(ConclaveOpCode.resumeWatches, req, undefined)
    p.xid = Xid.setWatches
    this.sendPending(p)
    return true
  }

  /** Every persistent listener gets one 'resync': it missed events and must read the state again. */
  private resyncPersistent(zxid: number): void {
    const targets = this.watches.persistentListeners()
    if (targets.length === 0) return
    queueMicrotask(() => {
      for (const { path, listener } of targets) this.call(listener, { type: 'resync', path, zxid })
    })
  }

  private call(listener: Watcher, ev: WatchEvent): void {
    try {
      listener(ev)
    } catch (err) {
      this.events.onListenerError?.(err)
    }
  }

  /** SetWatches(2) batches of the watches (server paths), relative to the last zxid seen. */
  private sendSetWatches(op: typeof OpCode.setWatches | typeof OpCode.setWatches2, wire: string[][]): void {
    const batch: string[][] = [[], [], [], [], []]
    let bytes = 0
    const flush = (): void => {
      const req: Request = {
        op,
        relativeZxid: this.lastZxid,
        dataWatches: batch[0]!,
        existWatches: batch[1]!,
        childWatches: batch[2]!,
        persistentWatches: batch[3]!,
        persistentRecursiveWatches: batch[4]!,
      }
      const p = new Pending(op, req, undefined)
      p.xid = Xid.setWatches
      this.sendPending(p)
      for (let i = 0; i < 5; i++) batch[i] = []
      bytes = 0
    }
    wire.forEach((list, kind) => {
      for (const serverPath of list) {
        batch[kind]!.push(serverPath)
        bytes += serverPath.length
        if (bytes > SET_WATCHES_BYTES_MAX) flush()
      }
    })
    if (batch.some((b) => b.length > 0)) flush()
  }

  // ------------------------------------------------------------ sending

  /** Sends now if connected, queues while (re)connecting, else rejects. */
  submit(p: Pending): void {
    if (this.isConnected() && !this.closing) {
      // Behind a full exactly-once window, everything waits its turn (per-session order); while
      // leaving this server, for the next connection.
      if (this.waiting.length > 0 || this.leaving !== undefined || this.onceWindowFull(p))
        this.waiting.push(p)
      else this.sendPending(p)
    } else if (this.closing || this.state === 'closed' || this.state === 'expired')
      p.fail(ErrorCode.SESSION_EXPIRED)
    else if (this.state === 'authFailed') p.fail(ErrorCode.AUTH_FAILED)
    else this.waiting.push(p)
  }

  request<T>(
    op: number,
    req: Request,
    path: string | undefined,
    watch?: Watcher,
    watchMode?: number,
  ): Promise<T> {
    const p = new Pending(op, req, path, watch, watchMode, req.op === OpCode.multi ? req.ops : undefined)
    const promise = new Promise<T>((resolve, reject) => {
      p.resolve = resolve as (v: unknown) => void
      p.reject = reject
    })
    this.submit(p)
    return promise
  }

  /**
   * Would sending `p` leave more exactly-once writes unanswered than the
   * server remembers results for? Then a lost connection could make the
   * oldest unknowable (OUTCOME_UNKNOWN): it waits for an answer first.
   */
  private onceWindowFull(p: Pending): boolean {
    return this.exactlyOnce && isOnceWriteOp(p.op) && this.onceUnanswered >= this.writeResultsMax
  }

  /** Sends the waiting requests, in order, as far as the exactly-once window lets them. */
  private sendWaiting(): void {
    let i = 0
    while (
      i < this.waiting.length &&
      this.isConnected() &&
      this.leaving === undefined &&
      !this.onceWindowFull(this.waiting[i]!)
    )
      this.sendPending(this.waiting[i++]!)
    if (i > 0) this.waiting.splice(0, i)
  }

  private sendPending(p: Pending): void {
    if (p.op === ConclaveOpCode.getChildrenPage && (this.features & ConclaveFeature.childrenPage) === 0) {
      // A ZooKeeper server drops a packet of an opcode it does not know, unanswered: never send it one.
      p.fail(
        ErrorCode.UNIMPLEMENTED,
        'the server does not offer paginated getChildren (not a Conclave server)',
      )
      return
    }
    if (p.xid === 0) p.xid = this.xid = this.xid >= 0x7fffffff ? 1 : this.xid + 1
    // An exactly-once write keeps its record until answered: it may have to go again.
    p.once = this.exactlyOnce && isOnceWriteOp(p.op)
    const frame = this.encodePacket(
      p.xid,
      p.req!,
      p.once ? { ackXid: this.oldestUnanswered(p.xid) } : undefined,
    )
    if (!p.once) p.req = undefined
    else p.sends++
    const bytes = frame.length - 4
    const own = this.config.frameBytesMax
    const limit = Math.min(own, this.serverRequestBytesMax ?? own)
    if (bytes > limit) {
      // Sent, it would make the server drop the connection (CONNECTION_LOSS, outcome unknown)
      // although nothing happened: refuse it here, and nothing is sent.
      const which = limit < own ? "the server's frameBytesMax" : 'frameBytesMax'
      const why = `the request is ${bytes} bytes, more than ${which} (${limit}); split it (e.g. a smaller multi)`
      p.reject(new ZkError(ErrorCode.BAD_ARGUMENTS, p.path, `BAD_ARGUMENTS: ${why}`))
      return
    }
    this.pending.push(p)
    if (p.once) this.onceUnanswered++
    this.sendFrame(frame)
  }

  private writePacket(xid: number, req: Request): void {
    this.sendFrame(this.encodePacket(xid, req))
  }

  /** The oldest xid still awaiting a reply (every one before it is answered), `xid` if none is. */
  private oldestUnanswered(xid: number): number {
    return this.pending.find((p) => p.xid > 0)?.xid ?? xid
  }

  /** A request as a frame: its length (int32), then the packet. */
  private encodePacket(xid: number, req: Request, once?: OnceHeader): Uint8Array {
    const w = this.writer.reset()
    w.int(0)
    encodeRequest(w, xid, req, once)
    w.setIntAt(0, w.pos - 4)
    return w.finish()
  }

  private sendFrame(frame: Uint8Array): void {
    this.link!.transport!.sendFrame(frame)
    this.lastSendMs = now()
  }

  addAuth(scheme: string, auth: Uint8Array): Promise<void> {
    const p = new Pending(OpCode.auth, undefined, undefined)
    const promise = new Promise<void>((resolve, reject) => {
      p.resolve = resolve as (v: unknown) => void
      p.reject = reject
    })
    if (this.closing || this.isFinal()) {
      this.submit(p)
      return promise
    }
    const entry: AuthEntry = { scheme, auth, waiters: [p] }
    this.auth.push(entry)
    if (this.isConnected()) {
      this.writePacket(Xid.auth, { op: OpCode.auth, authType: 0, scheme, auth })
      this.authInFlight.push(entry.waiters)
      entry.waiters = []
    }
    return promise
  }

  /** Credentials to send once connected (from the connect options); nothing waits on them. */
  addInitialAuth(scheme: string, auth: Uint8Array): void {
    this.auth.push({ scheme, auth, waiters: [] })
  }

  // ------------------------------------------------------------ receiving

  private onPacket(link: Link, bytes: Uint8Array): void {
    if (link !== this.link) return
    if (!link.open) {
      this.onHandshake(link, bytes)
      return
    }
    this.lastRecvMs = now()
    try {
      this.onReply(bytes)
    } catch (err) {
      // A malformed or out-of-order reply: the stream can no longer be trusted.
      this.dropConnection(`protocol error: ${err instanceof Error ? err.message : String(err)}`)
    }
  }

  private onReply(bytes: Uint8Array): void {
    const r = new JuteReader(bytes)
    const hdr = readReplyHeader(r)
    switch (hdr.xid) {
      case Xid.notification:
        this.onNotification(r, hdr.zxid)
        return
      case Xid.ping:
        return
      case Xid.auth:
        this.onAuthReply(hdr.err)
        return
    }
    const p = this.pending.peek()
    if (p === undefined || p.xid !== hdr.xid)
      throw new ProtocolError(`reply xid ${hdr.xid} out of order (expected ${p?.xid ?? 'none'})`)
    this.pending.shift()
    // Leaving this server: go once the last reply due here is in (after it is settled).
    if (this.leaving !== undefined && this.pending.length === 0) queueMicrotask(() => this.leaveNow())
    if (p.once) {
      this.onceUnanswered--
      // Room in the window: what waits behind it goes now (after this reply is settled).
      if (this.waiting.length > 0) queueMicrotask(() => this.sendWaiting())
    }
    if (p.op === ConclaveOpCode.resumeWatches && hdr.err !== 0) {
      // Refused (this server is behind the session, or a limit): the watches are not registered
      // here, and the position stays where it was; another connection resumes them.
      this.dropConnection(`the server refused to resume the watches (error ${hdr.err})`)
      return
    }
    if (hdr.zxid > 0) {
      this.lastZxid = hdr.zxid
      this.position.reply(hdr.zxid)
    }
    if (p.op === ConclaveOpCode.resumeWatches) return
    if (p.once && hdr.err === ERR_CONNECTION_LOSS && p.sends < EXACTLY_ONCE_SENDS_MAX) {
      // The server lost its ensemble (or its leader changed) while the write was on its way:
      // it may have been applied. Ask again elsewhere, with everything after it, after a backoff.
      this.lossAnswers++
      this.resend.push(p)
      this.dropConnection('the server answered CONNECTION_LOSS to an exactly-once write')
      return
    }
    this.lossAnswers = 0
    try {
      this.settle(p, hdr.err, r)
    } catch (err) {
      p.fail(ErrorCode.CONNECTION_LOSS)
      throw err
    }
  }

  private settle(p: Pending, err: number, r: JuteReader): void {
    if (err !== 0) {
      if (err === ERR_NO_NODE && p.op === OpCode.exists) {
        this.registerWatch(p, 'exist')
        p.resolve(null)
        return
      }
      if (p.op === OpCode.multi && r.remaining > 0) {
        const res = readResponseBody(r, p.op)
        const value = replyValue(p, res, this.chroot)
        if (value instanceof ZkError) return p.reject(value)
      }
      p.fail(errorCodeOf(err))
      return
    }
    const res = readResponseBody(r, p.op)
    if (p.watch !== undefined) this.registerWatch(p, undefined)
    const value = replyValue(p, res, this.chroot)
    if (value instanceof ZkError) p.reject(value)
    else p.resolve(value)
  }

  private registerWatch(p: Pending, forced: OneShotKind | undefined): void {
    const w = p.watch
    const path = p.path
    if (w === undefined || path === undefined) return
    let kind: OneShotKind | PersistentWatchMode
    if (forced !== undefined) kind = forced
    else if (p.op === OpCode.getData || p.op === OpCode.exists) kind = 'data'
    else if (
      p.op === OpCode.getChildren ||
      p.op === OpCode.getChildren2 ||
      p.op === ConclaveOpCode.getChildrenPage
    )
      kind = 'child'
    else if (p.op === OpCode.addWatch)
      kind = p.watchMode === AddWatchMode.persistentRecursive ? 'persistentRecursive' : 'persistent'
    else return
    this.watches.add(kind, path, w)
    if (kind !== 'persistent' && kind !== 'persistentRecursive') this.reassertPersistent(path)
  }

  /**
   * ZooKeeper before 3.9 keeps one watch mode per (connection, path), so a
   * one-shot watch turns a persistent one on the same path into a one-shot
   * (ZOOKEEPER-4466). Setting the persistent mode again repairs it; it is
   * harmless on servers without the bug.
   */
  private reassertPersistent(path: string): void {
    for (const mode of ['persistent', 'persistentRecursive'] as const) {
      if (!this.watches.has(mode, path)) continue
      const wire = mode === 'persistent' ? AddWatchMode.persistent : AddWatchMode.persistentRecursive
      const req: Request = { op: OpCode.addWatch, path: applyChroot(this.chroot, path), mode: wire }
      this.sendPending(new Pending(OpCode.addWatch, req, path))
    }
  }

  private onNotification(r: JuteReader, zxid: number): void {
    const ev = readWatcherEvent(r)
    if (ev.type === ConclaveEventType.watchesCompacted) {
      // The server's history does not reach back to the resume: what was missed is lost.
      this.position.compacted(zxid)
      this.resyncPersistent(zxid)
      return
    }
    const type = eventTypeName(ev.type)
    if (type === undefined) return
    // A resume's replay may send again an event delivered before the connection was lost.
    if (!this.position.event(zxid, ev.type, ev.path)) return
    // The membership changed (the tracker's watch; the server's path, whatever the chroot).
    if (ev.path === CONFIG_NODE && ev.type === EventType.nodeDataChanged) this.tracker?.changed()
    const path = this.chroot === undefined ? ev.path : stripChroot(this.chroot, ev.path)
    if (path === undefined) return
    const listeners = this.watches.route(ev.type, path)
    if (listeners.size === 0) return
    // The zxid goes along not enumerable: the event still compares equal to { type, path }, the
    // shape the published contract gives a WatchEvent.
    const event: WatchEvent = { type, path }
    Object.defineProperty(event, 'zxid', { value: zxid > 0 ? zxid : -1, enumerable: false })
    queueMicrotask(() => {
      for (const listener of listeners) this.call(listener, event)
    })
  }

  private onAuthReply(err: number): void {
    const waiters = this.authInFlight.shift() ?? []
    if (err === 0) {
      for (const p of waiters) p.resolve(undefined)
      return
    }
    // The server closes the connection after a failed auth; the handle is dead (ClientCnxn AUTH_FAILED).
    for (const p of waiters) p.fail(ErrorCode.AUTH_FAILED)
    this.teardown('authFailed', ErrorCode.AUTH_FAILED)
  }

  // ------------------------------------------------------------ watches

  /** Removes a persistent listener; the server forgets the watch once no listener is left. */
  async removePersistent(path: string, mode: PersistentWatchMode, listener: Watcher): Promise<void> {
    if (!this.watches.remove(mode, path, listener)) return
    if (!this.isConnected() || this.closing) return
    const serverPath = applyChroot(this.chroot, path)
    const removed = this.request(
      OpCode.removeWatches,
      { op: OpCode.removeWatches, path: serverPath, type: WatcherType.any },
      path,
    )
    // WatcherType.any also removed the path's other watches on the server; put them back.
    this.restoreWatchesAt(path)
    try {
      await removed
    } catch {
      // NO_WATCHER, or the connection (and with it every server-side watch) is gone.
    }
  }

  private restoreWatchesAt(path: string): void {
    const kinds = this.watches.oneShotKindsAt(path)
    if (kinds.length > 0) {
      const serverPath = applyChroot(this.chroot, path)
      const wire = (['data', 'exist', 'child'] as const).map((k) => (kinds.includes(k) ? [serverPath] : []))
      this.sendSetWatches(OpCode.setWatches, wire)
    }
    this.reassertPersistent(path)
  }

  // ------------------------------------------------------------ timers

  private armTimer(ms: number): void {
    this.stopTimer()
    this.timer = setTimeout(this.onTick, Math.max(1, ms))
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  private readonly onTick = (): void => {
    this.timer = undefined
    if (!this.isConnected()) return
    const t = now()
    if (t - this.lastRecvMs >= this.readTimeoutMs) {
      this.dropConnection(`nothing received for ${Math.round(t - this.lastRecvMs)} ms`)
      return
    }
    if (t - this.lastSendMs >= this.pingIntervalMs) this.writePacket(Xid.ping, { op: OpCode.ping })
    const next = Math.min(this.lastRecvMs + this.readTimeoutMs, this.lastSendMs + this.pingIntervalMs)
    this.armTimer(next - t)
  }

  // ------------------------------------------------------------ read-only

  /** Connected read-only: look for a read-write server, backing off. */
  private startProbing(link: Link): void {
    if (this.config.probeReadWrite === undefined || this.endpoints.length < 2) return
    this.probeDelayMs = READ_ONLY_PROBE_MS_MIN
    this.probeIndex = this.endpoints.indexOf(link.endpoint)
    this.scheduleProbe(link)
  }

  private scheduleProbe(link: Link): void {
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined
      this.probeOnce(link)
    }, this.probeDelayMs)
    this.probeDelayMs = Math.min(this.probeDelayMs * 2, READ_ONLY_PROBE_MS_MAX)
  }

  /** Asks the next other server; one that is read-write is connected to at once. */
  private probeOnce(link: Link): void {
    const endpoints = this.endpoints
    this.probeIndex = (this.probeIndex + 1) % endpoints.length
    if (endpoints[this.probeIndex] === link.endpoint)
      this.probeIndex = (this.probeIndex + 1) % endpoints.length
    const endpoint = endpoints[this.probeIndex]!
    const timeoutMs = Math.min(this.attemptTimeoutMs(), 5_000)
    this.config.probeReadWrite!(endpoint, timeoutMs).then(
      (answer) => {
        if (this.link !== link || this.state !== 'connectedReadOnly' || this.closing) return
        if (answer === undefined) return // this runtime cannot ask: no more probes
        if (answer === 'rw') {
          // ZooKeeper's RWServerFoundException: drop the read-only connection, connect there next
          // (where it is now: the list may have been replaced meanwhile).
          this.hostIndex = Math.max(0, this.endpoints.indexOf(endpoint))
          this.dropConnection(`read-write server found: ${endpoint.url}`)
          return
        }
        this.scheduleProbe(link)
      },
      () => {
        if (this.link === link && this.state === 'connectedReadOnly') this.scheduleProbe(link)
      },
    )
  }

  private stopProbing(): void {
    if (this.probeTimer !== undefined) clearTimeout(this.probeTimer)
    this.probeTimer = undefined
  }

  /** The server currently connected to, if any. */
  get server(): string | undefined {
    return this.link?.open ? this.link.endpoint.url : undefined
  }

  // ------------------------------------------------------------ server list

  /** The servers the session connects to (a copy). */
  get servers(): Endpoint[] {
    return this.endpoints.slice()
  }

  /** The application's own list (updateServerList): replaces the list; the membership is judged afresh. */
  updateServers(next: Endpoint[]): void {
    this.tracker?.forget()
    this.replaceServers(next)
  }

  /** getData of /zookeeper/config at the server's path (not the chroot's), for the tracker. */
  private async readConfig(watch: boolean): Promise<Uint8Array> {
    const req: Request = { op: OpCode.getData, path: CONFIG_NODE, watch }
    return (await this.request<DataResult>(OpCode.getData, req, CONFIG_NODE)).data
  }

  /**
   * Replaces the server list (non-empty; the caller bounds it). The next
   * server tried is the one after the connected server in the new order, or
   * the new first one; a connected server no longer in the list is left.
   */
  private replaceServers(next: Endpoint[]): void {
    if (next.length === 0) throw new Error('replaceServers: an empty list')
    const indexOf = (e: Endpoint | undefined): number => (e === undefined ? -1 : indexOfAddress(next, e))
    const link = this.link?.open ? this.link : undefined
    const at = indexOf(link?.endpoint)
    const last = indexOf(this.lastEndpoint)
    this.endpoints = next.slice()
    this.lastEndpoint = last < 0 ? undefined : next[last]
    this.hostIndex = at < 0 ? 0 : (at + 1) % next.length
    // The connected server under its new entry, so the spin delay and the probes know it.
    if (link !== undefined && at >= 0) link.endpoint = next[at]!
    this.events.emit(
      'servers',
      next.map((e) => e.url),
    )
    if (link !== undefined && this.link === link) this.leaveIfUnlisted(link)
  }

  /**
   * Leaves the connected server if the list no longer holds it, once the
   * replies due on it are in (at most LEAVE_WAIT_MS_MAX).
   */
  private leaveIfUnlisted(link: Link): void {
    if (this.leaving !== undefined || indexOfAddress(this.endpoints, link.endpoint) >= 0) return
    const timer = setTimeout(() => this.leaveNow(), LEAVE_WAIT_MS_MAX)
    this.leaving = { link, timer }
    if (this.pending.length === 0) this.leaveNow()
  }

  private leaveNow(): void {
    const leaving = this.leaving
    if (leaving === undefined || leaving.link !== this.link) return
    this.stopLeaving()
    this.dropConnection(`${leaving.link.endpoint.url} is no longer in the server list`)
  }

  private stopLeaving(): void {
    if (this.leaving !== undefined) clearTimeout(this.leaving.timer)
    this.leaving = undefined
  }
}
