/**
 * MultiLock: several locks taken all-or-nothing (Curator's
 * InterProcessMultiLock). acquire() takes them in the given order under one
 * deadline; if any fails, those already taken are released in reverse order
 * and the error is rethrown. release() releases in reverse order. Give every
 * MultiLock over the same locks the same order, or two of them may deadlock
 * until a deadline.
 *
 *   const both = new MultiLock(zk, ['/locks/a', '/locks/b'])
 *   const { fencingTokens } = await both.acquire({ timeoutMs: 2_000 })
 *
 * Invariants: after acquire() rejects, this object holds none of its locks;
 * release() attempts every lock even if one fails, then rethrows the first error.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client } from '../client/index.js'
import { ErrorCode, ZkError } from '../client/index.js'
import { Lock } from './lock.js'
import { now, type WaitOptions } from './wait.js'

/** Anything that can be acquired and released like a Lock. */
export interface Lockable {
  acquire(opts?: WaitOptions): Promise<{ fencingToken: number }>
  release(): Promise<void>
}

export interface MultiLockGrant {
  /** One token per lock, in the order given. */
  fencingTokens: number[]
}

export class MultiLock {
  private readonly locks: readonly Lockable[]
  private held = 0

  /** Over existing lock objects, or over new Locks at the given paths. */
  constructor(locks: readonly Lockable[])
  constructor(zk: Client, paths: readonly string[])
  constructor(a: Client | readonly Lockable[], paths?: readonly string[]) {
    this.locks = Array.isArray(a)
      ? [...(a as readonly Lockable[])]
      : (paths ?? []).map((p) => new Lock(a as Client, p))
    if (this.locks.length === 0)
      throw new ZkError(
        ErrorCode.BAD_ARGUMENTS,
        undefined,
        'BAD_ARGUMENTS: MultiLock needs at least one lock',
      )
  }

  get isHeld(): boolean {
    return this.held > 0
  }

  async acquire(opts: WaitOptions = {}): Promise<MultiLockGrant> {
    const deadline = opts.timeoutMs === undefined ? undefined : now() + opts.timeoutMs
    const taken: Lockable[] = []
    const fencingTokens: number[] = []
    try {
      for (const lock of this.locks) {
        const timeoutMs = deadline === undefined ? undefined : Math.max(0, deadline - now())
        const grant = await lock.acquire({ timeoutMs, signal: opts.signal })
        taken.push(lock)
        fencingTokens.push(grant.fencingToken)
      }
    } catch (err) {
      await releaseAll(taken).catch(() => {})
      throw err
    }
    this.held++
    return { fencingTokens }
  }

  async release(): Promise<void> {
    if (this.held === 0)
      throw new ZkError(ErrorCode.API_ERROR, undefined, 'API_ERROR: the MultiLock is not held')
    this.held--
    await releaseAll(this.locks)
  }
}

/** Releases in reverse order; tries every lock, then throws the first error. */
async function releaseAll(locks: readonly Lockable[]): Promise<void> {
  let first: unknown
  for (let i = locks.length - 1; i >= 0; i--) {
    try {
      await locks[i]!.release()
    } catch (err) {
      first ??= err
    }
  }
  if (first !== undefined) throw first
}
