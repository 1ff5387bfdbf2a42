/**
 * SessionGuard: what a recipe knows about its client's session, from the
 * client's 'state' events. It reports
 *   - end: the session is over for certain (state expired, closed or
 *     authFailed): every waiter rejects with SESSION_EXPIRED (AUTH_FAILED);
 *   - suspect: the client has been disconnected for `suspectAfterMs`, so the
 *     server may already have expired the session (Curator's LOST-after-
 *     timeout, TN12): holders should stop trusting their grant;
 *   - reconnected: the client is connected again with the same session.
 *
 * Invariants: `end` fires at most once, and never after dispose(); dispose()
 * removes every client listener and timer this guard set.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, ClientState } from '../client/index.js'
import { Emitter, ErrorCode, ZkError } from '../client/index.js'
import type { EndSource } from './wait.js'

type GuardEvents = {
  end: [err: ZkError]
  suspect: [err: ZkError]
  reconnected: []
  disconnected: []
}

const FINAL: ReadonlySet<ClientState> = new Set(['expired', 'closed', 'authFailed'])

function endErrorOf(state: ClientState): ZkError {
  if (state === 'authFailed')
    return new ZkError(ErrorCode.AUTH_FAILED, undefined, 'AUTH_FAILED: session ended')
  return new ZkError(ErrorCode.SESSION_EXPIRED, undefined, `SESSION_EXPIRED: the session is ${state}`)
}

export class SessionGuard implements EndSource {
  private readonly events = new Emitter<GuardEvents>()
  private readonly offState: () => void
  private suspectTimer: ReturnType<typeof setTimeout> | undefined
  private ended: ZkError | undefined
  private disposed = false

  /**
   * @param suspectAfterMs how long a disconnection may last before `suspect`
   *   fires; default: one third of the negotiated session timeout (the client
   *   notices silence after 2/3 of it, so about 1/3 remains before the server
   *   may expire the session).
   */
  constructor(
    private readonly zk: Client,
    private readonly suspectAfterMs?: number,
  ) {
    this.offState = zk.on('state', (s) => this.onState(s))
    if (FINAL.has(zk.state)) this.ended = endErrorOf(zk.state)
    else if (zk.state === 'disconnected') this.armSuspect()
  }

  get endError(): ZkError | undefined {
    return this.ended
  }

  get connected(): boolean {
    return this.zk.state === 'connected'
  }

  onEnd(fn: (err: ZkError) => void): () => void {
    return this.events.on('end', fn)
  }

  on<K extends keyof GuardEvents>(event: K, fn: (...args: GuardEvents[K]) => void): () => void {
    return this.events.on(event, fn)
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.offState()
    this.clearSuspect()
    this.events.removeAllListeners()
  }

  private onState(s: ClientState): void {
    if (this.disposed || this.ended !== undefined) return
    if (FINAL.has(s)) {
      this.clearSuspect()
      this.ended = endErrorOf(s)
      this.events.emit('end', this.ended)
    } else if (s === 'disconnected') {
      this.armSuspect()
      this.events.emit('disconnected')
    } else if (s === 'connected') {
      this.clearSuspect()
      this.events.emit('reconnected')
    }
  }

  private armSuspect(): void {
    if (this.suspectTimer !== undefined) return
    const t = this.zk.sessionTimeoutMs
    const ms = this.suspectAfterMs ?? (t > 0 ? Math.floor(t / 3) : 0)
    this.suspectTimer = setTimeout(() => {
      this.suspectTimer = undefined
      if (this.disposed || this.ended !== undefined || this.zk.state !== 'disconnected') return
      const err = new ZkError(
        ErrorCode.SESSION_EXPIRED,
        undefined,
        `SESSION_EXPIRED: disconnected for ${ms} ms, the session may have expired`,
      )
      this.events.emit('suspect', err)
    }, ms)
  }

  private clearSuspect(): void {
    if (this.suspectTimer !== undefined) clearTimeout(this.suspectTimer)
    this.suspectTimer = undefined
  }
}
