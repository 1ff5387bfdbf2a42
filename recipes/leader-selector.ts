/**
 * LeaderSelector (Curator's LeaderSelector): candidates take turns to lead.
 * Each turn: take the lock at `path` (a Lock whose node holds the
 * candidate's id), run the leadership callback with an AbortSignal, and give
 * the lock up when the callback returns; then queue again (autoRequeue,
 * default) until close().
 *
 *   const selector = new LeaderSelector(zk, '/election/svc', 'node-a', async (signal, term) => {
 *     while (!signal.aborted) await doLeaderWork(term.fencingToken)   // lead until returning or aborted
 *   })
 *   selector.start() ; ... ; await selector.close()
 *
 * The signal aborts when leadership can no longer be trusted: the client has
 * been disconnected for `lostAfterMs` (default 0: at once, as Curator's
 * LeaderSelectorListenerAdapter cancels on SUSPENDED), the session expired,
 * the lock node was deleted, or close() was called. The callback must then
 * return promptly; the lock is held until it does, so two callbacks never
 * run together on live sessions (a partitioned one is fenced by its token:
 * the lock node's czxid, strictly increasing across terms).
 *
 * Events: 'leader' (fencingToken) when a term starts, 'follower' when it
 * ends, 'error' for a callback that threw (not after an abort) or a failed
 * attempt to lead; SESSION_EXPIRED ends the selector ('error', then it stops:
 * an expired client cannot lead again).
 *
 * Invariants: at most one term at a time per selector; a term's lock is
 * released (or, on CONNECTION_LOSS, deleted in the background) before the
 * next attempt; close() resolves after the running callback has returned and
 * the lock is released; every loop is bounded.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client } from '../client/index.js'
import { Emitter, ErrorCode, ZkError } from '../client/index.js'
import { LOCK_PREFIX, Lock, type LockGrant } from './lock.js'
import { TURNS_MAX } from './lock-core.js'
import { Latch, timerLatch } from './wait.js'
import {
  candidatesData,
  checkRecipePath,
  firstCandidateData,
  isCode,
  stripProtected,
  utf8,
} from './znodes.js'

/** Pause before trying to lead again after an unexpected error. */
const RETRY_DELAY_MS = 1_000

export interface LeaderSelectorOptions {
  /** Queue again after each term (default true); otherwise call requeue(). */
  autoRequeue?: boolean | undefined
  /** How long a disconnection may last before the term is interrupted. Default 0 (at once). */
  lostAfterMs?: number | undefined
}

/** What the leadership callback gets besides its signal. */
export interface LeadershipTerm {
  /** The lock node's czxid: strictly increasing across terms, for fencing the leader's writes. */
  fencingToken: number
  /** The lock node (a write guarded by `check` on it fails once the term is over). */
  path: string
  signal: AbortSignal
}

export type LeadershipCallback = (signal: AbortSignal, term: LeadershipTerm) => Promise<void> | void

type SelectorEvents = { leader: [fencingToken: number]; follower: []; error: [err: unknown] }

const isLockNode = (n: string): boolean => stripProtected(n).startsWith(LOCK_PREFIX)

function sessionOver(err: unknown): boolean {
  return isCode(err, ErrorCode.SESSION_EXPIRED) || isCode(err, ErrorCode.AUTH_FAILED)
}

export class LeaderSelector extends Emitter<SelectorEvents> {
  readonly path: string
  private readonly lock: Lock
  private readonly autoRequeue: boolean
  private state: 'new' | 'running' | 'closed' = 'new'
  private loop: Promise<void> | undefined
  /** Aborts the current attempt to take the lock, or the pause between attempts. */
  private waiting: AbortController | undefined
  private term: (LeadershipTerm & { abort: AbortController }) | undefined
  /** Opened by requeue() (or close()) when autoRequeue is off. */
  private requeued = new Latch()

  constructor(
    private readonly zk: Client,
    path: string,
    readonly id: string,
    private readonly leadership: LeadershipCallback,
    opts: LeaderSelectorOptions = {},
  ) {
    super()
    this.path = checkRecipePath(path)
    if (typeof leadership !== 'function')
      throw new ZkError(
        ErrorCode.BAD_ARGUMENTS,
        path,
        'BAD_ARGUMENTS: the leadership callback must be a function',
      )
    this.autoRequeue = opts.autoRequeue ?? true
    this.lock = new Lock(zk, this.path, { data: utf8(id), lostAfterMs: opts.lostAfterMs ?? 0 })
  }

  /** Whether this candidate leads now (its callback is running and the signal is not aborted). */
  get hasLeadership(): boolean {
    return this.term !== undefined && !this.term.signal.aborted
  }

  /** The current term's fencing token, while leading. */
  get fencingToken(): number | undefined {
    return this.hasLeadership ? this.term?.fencingToken : undefined
  }

  /** Enters the queue for leadership (once; the selector then runs until close()). */
  start(): void {
    if (this.state !== 'new')
      throw new ZkError(ErrorCode.API_ERROR, this.path, `API_ERROR: the selector was already started`)
    this.state = 'running'
    this.loop = this.run().catch((err: unknown) => this.emit('error', err))
  }

  /** With autoRequeue off: queue for one more term after the current one. */
  requeue(): void {
    this.requeued.open()
  }

  /**
   * Leaves for good: stops waiting for the lock, aborts the running term's
   * signal, and resolves once the callback has returned and the lock is
   * released. A callback that ignores its signal delays close().
   */
  async close(): Promise<void> {
    const closing = new ZkError(ErrorCode.API_ERROR, this.path, 'API_ERROR: the leader selector was closed')
    this.state = 'closed'
    this.waiting?.abort(closing)
    this.term?.abort.abort(closing)
    this.requeued.open()
    await this.loop
  }

  private async run(): Promise<void> {
    for (let turn = 0; this.state === 'running' && turn < TURNS_MAX; turn++) {
      const grant = await this.takeLock()
      if (grant === 'stop') return
      if (grant === 'retry') continue
      await this.lead(grant)
      if (!this.autoRequeue && this.state === 'running') {
        await this.requeued.promise
        this.requeued = new Latch()
      }
    }
  }

  /** Waits for the lock: the grant, 'retry' after a pause, or 'stop' (closed, or the session is over). */
  private async takeLock(): Promise<LockGrant | 'retry' | 'stop'> {
    const waiting = new AbortController()
    this.waiting = waiting
    try {
      const grant = await this.lock.acquire({ signal: waiting.signal })
      if (this.state !== 'running') {
        await this.lock.release().catch(() => {})
        return 'stop'
      }
      return grant
    } catch (err) {
      if (this.state !== 'running') return 'stop'
      this.emit('error', err)
      if (sessionOver(err)) {
        this.state = 'closed'
        return 'stop'
      }
      const pause = timerLatch(RETRY_DELAY_MS)
      const onAbort = (): void => pause.latch.open()
      waiting.signal.addEventListener('abort', onAbort, { once: true })
      await pause.latch.promise
      pause.cancel()
      waiting.signal.removeEventListener('abort', onAbort)
      return 'retry'
    } finally {
      this.waiting = undefined
    }
  }

  /** One term: run the callback while the lock is held, then give the lock up. */
  private async lead(grant: LockGrant): Promise<void> {
    const abort = new AbortController()
    const term = { fencingToken: grant.fencingToken, path: grant.path, signal: abort.signal, abort }
    this.term = term
    // The lock is lost (disconnected for lostAfterMs, expired, node deleted): interrupt the term.
    const onLost = (): void => abort.abort(grant.signal.reason)
    if (grant.signal.aborted) onLost()
    else grant.signal.addEventListener('abort', onLost, { once: true })
    if (this.state !== 'running')
      abort.abort(new ZkError(ErrorCode.API_ERROR, this.path, 'API_ERROR: closed'))
    try {
      this.emit('leader', grant.fencingToken)
      await this.leadership(abort.signal, {
        fencingToken: term.fencingToken,
        path: term.path,
        signal: term.signal,
      })
    } catch (err) {
      // A callback that stops by throwing after its signal aborted did what it was asked.
      if (!abort.signal.aborted) this.emit('error', err)
    } finally {
      grant.signal.removeEventListener('abort', onLost)
      if (!abort.signal.aborted) abort.abort(new Error('the leadership callback returned'))
      this.term = undefined
      // Held: release (a lost connection defers the delete, it does not fail it). Lost: release()
      // rejects with why, which the callback already saw through its signal.
      const held = this.lock.isHeld
      await this.lock.release().catch((err: unknown) => {
        if (held) this.emit('error', err)
      })
      this.emit('follower')
    }
  }

  /** The current leader's id (the first lock node's data), or null if there is no candidate. */
  async leader(): Promise<string | null> {
    return firstCandidateData(this.zk, this.path, isLockNode)
  }

  /** Every candidate's id, the leader first. */
  async participants(): Promise<string[]> {
    return candidatesData(this.zk, this.path, isLockNode)
  }
}
