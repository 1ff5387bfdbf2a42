/**
 * Lock: a distributed, re-entrant mutex with fencing tokens (ZooKeeper's
 * Locks recipe; Curator's InterProcessMutex). Each contender creates a
 * protected EPHEMERAL_SEQUENTIAL `lock-` node under the lock's path; the
 * lowest sequence holds the lock; every waiter watches only its predecessor.
 *
 *   const lock = new Lock(zk, '/locks/orders')
 *   const { fencingToken, signal } = await lock.acquire({ timeoutMs: 5_000 })
 *   try { await storage.write(data, fencingToken) } finally { await lock.release() }
 *   lock.on('lost', (err) => ...)  // session expired or suspect, or node removed
 *
 * Invariants: see lock-core.ts (the token is the node's czxid, strictly
 * increasing across every holder; a lost lock is reported once).
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client } from '../client/index.js'
import { type LockOptions, SequentialLockBase } from './lock-core.js'
import { stripProtected } from './znodes.js'

export type { LockGrant, LockOptions } from './lock-core.js'

export const LOCK_PREFIX = 'lock-'

export class Lock extends SequentialLockBase {
  constructor(zk: Client, path: string, opts: LockOptions = {}) {
    super(zk, path, LOCK_PREFIX, opts, (n) => stripProtected(n).startsWith(LOCK_PREFIX))
  }

  /** The lock's directory. */
  get lockPath(): string {
    return this.path
  }
}
