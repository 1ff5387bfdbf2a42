/**
 * FencedResource: the storage side of fencing (Kleppmann; Jepsen's etcd
 * analysis, §4.2 of our reference notes). A lock only says who *should* be
 * writing; a holder that paused past its session's expiry still believes it
 * holds the lock. The resource closes the gap: it remembers the highest
 * fencing token it has accepted per resource and rejects any lower one with
 * a StaleTokenError. An equal token is accepted (the same grant, writing again).
 *
 *   const guard = new FencedResource()
 *   guard.check('orders', fencingToken)          // throws StaleTokenError if stale
 *   await guard.run('orders', fencingToken, () => db.write(row))
 *
 * Invariants: per resource, the accepted tokens never decrease; a rejected
 * call changes nothing. Synchronous and in memory: it models the check a real
 * store performs atomically with its write (e.g. a conditional update).
 * Imports nothing of ours.
 */

export const STALE_FENCING_TOKEN = 'STALE_FENCING_TOKEN'

export class StaleTokenError extends Error {
  override name = 'StaleTokenError'
  readonly code = STALE_FENCING_TOKEN
  constructor(
    readonly resource: string,
    readonly token: number,
    readonly highest: number,
  ) {
    super(`${STALE_FENCING_TOKEN}: token ${token} for '${resource}' is older than ${highest}`)
  }
}

export class FencedResource {
  private readonly highestSeen = new Map<string, number>()

  /** The highest token accepted for `resource`, if any. */
  highest(resource = 'default'): number | undefined {
    return this.highestSeen.get(resource)
  }

  /** Accepts `token` (recording it) or throws StaleTokenError if a higher one was accepted. */
  check(resource: string, token: number): void {
    if (!Number.isSafeInteger(token))
      throw new TypeError(`fencing token must be a safe integer, got ${token}`)
    const highest = this.highestSeen.get(resource)
    if (highest !== undefined && token < highest) throw new StaleTokenError(resource, token, highest)
    this.highestSeen.set(resource, token)
  }

  /** Checks the token, then runs the guarded action (the check and the action are not interleaved). */
  run<T>(resource: string, token: number, action: () => T): T {
    this.check(resource, token)
    return action()
  }
}
