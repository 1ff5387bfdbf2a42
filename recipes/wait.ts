/**
 * Waiting, for the recipes: a one-shot Latch (opened by a watch), and
 * `waitLatch`, which waits for a latch, a deadline, an AbortSignal or the end
 * of the session, whichever comes first. Every recipe wait goes through it, so
 * no waiter can hang past its deadline, its signal or its session.
 *
 * Invariants: a latch opens at most once; every timer and listener a wait sets
 * is removed when the wait settles; a timeout resolves 'timeout' (the caller
 * decides whether that is an error), an abort rejects with `signal.reason`,
 * the end of the session rejects with the guard's ZkError.
 * Imports only shared/ and recipes/ modules (no node:*, no server/).
 */
import { ErrorCode, ZkError } from '../shared/errors.js'

/** The options every blocking recipe call takes. */
export interface WaitOptions {
  /** Give up after this many milliseconds. Default: wait for ever. */
  timeoutMs?: number | undefined
  /** Abort the wait (and undo what it did): the call rejects with `signal.reason`. */
  signal?: AbortSignal | undefined
}

/** A wait's budget: an absolute deadline (performance.now() time) and a signal. */
export interface WaitContext {
  deadline: number | undefined
  signal: AbortSignal | undefined
}

/** Something that can end a wait early because the session is over (see SessionGuard). */
export interface EndSource {
  /** The error the session ended with, once it has. */
  readonly endError: ZkError | undefined
  /** Adds a listener for the end of the session; returns its remover. */
  onEnd(fn: (err: ZkError) => void): () => void
}

export const now = (): number => performance.now()

export function contextOf(opts: WaitOptions | undefined): WaitContext {
  const t = opts?.timeoutMs
  if (t !== undefined && (typeof t !== 'number' || Number.isNaN(t) || t < 0))
    throw new ZkError(
      ErrorCode.BAD_ARGUMENTS,
      undefined,
      `BAD_ARGUMENTS: timeoutMs must be a number >= 0, got ${String(t)}`,
    )
  return { deadline: t === undefined ? undefined : now() + t, signal: opts?.signal }
}

export function timeoutError(what: string, path?: string): ZkError {
  return new ZkError(
    ErrorCode.OPERATION_TIMEOUT,
    path,
    `OPERATION_TIMEOUT: ${what}${path ? `: ${path}` : ''}`,
  )
}

export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

/** Throws if the context is already aborted or past its deadline, or the session is over. */
export function checkContext(
  ctx: WaitContext,
  end: EndSource | undefined,
  what: string,
  path?: string,
): void {
  if (ctx.signal?.aborted) throw abortReason(ctx.signal)
  if (end?.endError !== undefined) throw end.endError
  if (ctx.deadline !== undefined && now() >= ctx.deadline) throw timeoutError(what, path)
}

export class Latch {
  private opened = false
  private resolveFn: (() => void) | undefined
  readonly promise: Promise<void>

  constructor() {
    this.promise = new Promise<void>((resolve) => {
      this.resolveFn = resolve
    })
  }

  get isOpen(): boolean {
    return this.opened
  }

  /** Opens the latch (idempotent). Bound, so it can be passed as a watcher. */
  readonly open = (): void => {
    if (this.opened) return
    this.opened = true
    this.resolveFn?.()
  }
}

/**
 * Waits for `latch` to open. Resolves 'opened', or 'timeout' at the
 * deadline; rejects with the signal's reason on abort and with the session's
 * error when the session ends.
 */
export function waitLatch(latch: Latch, ctx: WaitContext, end?: EndSource): Promise<'opened' | 'timeout'> {
  if (latch.isOpen) return Promise.resolve('opened')
  if (ctx.signal?.aborted) return Promise.reject(abortReason(ctx.signal))
  if (end?.endError !== undefined) return Promise.reject(end.endError)
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    let offEnd: (() => void) | undefined
    const onAbort = (): void => settle(() => reject(abortReason(ctx.signal!)))
    const settle = (fn: () => void): void => {
      if (timer !== undefined) clearTimeout(timer)
      ctx.signal?.removeEventListener('abort', onAbort)
      offEnd?.()
      fn()
    }
    if (ctx.deadline !== undefined)
      timer = setTimeout(() => settle(() => resolve('timeout')), Math.max(0, ctx.deadline - now()))
    ctx.signal?.addEventListener('abort', onAbort, { once: true })
    offEnd = end?.onEnd((err) => settle(() => reject(err)))
    void latch.promise.then(() => settle(() => resolve('opened')))
  })
}

/** A latch that opens after `ms` (for waits until a due time). Returns it and a canceller. */
export function timerLatch(ms: number): { latch: Latch; cancel: () => void } {
  const latch = new Latch()
  const timer = setTimeout(latch.open, Math.max(0, ms))
  return { latch, cancel: () => clearTimeout(timer) }
}

/** A latch that opens when any of the given latches opens. */
export function anyLatch(...latches: Latch[]): Latch {
  const out = new Latch()
  for (const l of latches) void l.promise.then(out.open)
  return out
}

/**
 * Races `promise` against the context and the session, so a request queued
 * while disconnected cannot outlive its caller's deadline. The request itself
 * is not cancelled: `onAbandon` receives it, to undo its effect when it lands.
 */
export function bounded<T>(
  promise: Promise<T>,
  ctx: WaitContext,
  end: EndSource | undefined,
  what: string,
  onAbandon?: (p: Promise<T>) => void,
): Promise<T> {
  if (ctx.deadline === undefined && ctx.signal === undefined && end === undefined) return promise
  const done = new Latch()
  void promise.then(done.open, done.open)
  return waitLatch(done, ctx, end).then(
    (r) => {
      if (r === 'opened') return promise
      onAbandon?.(promise)
      throw timeoutError(what)
    },
    (err: unknown) => {
      onAbandon?.(promise)
      throw err
    },
  )
}
