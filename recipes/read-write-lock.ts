/**
 * ReadWriteLock (Curator's InterProcessReadWriteLock): readers and writers
 * queue in one directory, as protected EPHEMERAL_SEQUENTIAL `__READ__` and
 * `__WRIT__` nodes. A writer holds the lock when it is first of all
 * contenders (it waits for everything earlier); a reader holds it when no
 * writer is earlier (readers wait only for earlier writers) and watches just
 * the nearest earlier writer. A holder of this object's write lock may also
 * take the read lock (downgrade); the reverse (upgrade) would deadlock.
 *
 *   const rw = new ReadWriteLock(zk, '/locks/catalog')
 *   await rw.readLock().acquire() ; await rw.readLock().release()
 *
 * Invariants: as lock-core.ts; every read and write node sorts by its
 * sequence number, whatever its prefix.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client } from '../client/index.js'
import { type LockOptions, SequentialLockBase, type Turn } from './lock-core.js'
import { stripProtected } from './znodes.js'

export const READ_PREFIX = '__READ__'
export const WRITE_PREFIX = '__WRIT__'

const isReadOrWrite = (n: string): boolean => {
  const s = stripProtected(n)
  return s.startsWith(READ_PREFIX) || s.startsWith(WRITE_PREFIX)
}
const isWriter = (n: string): boolean => stripProtected(n).startsWith(WRITE_PREFIX)

/** The write half: a mutex over readers and writers alike. */
export class WriteLock extends SequentialLockBase {
  constructor(zk: Client, path: string, opts: LockOptions = {}) {
    super(zk, path, WRITE_PREFIX, opts, isReadOrWrite)
  }
}

/** The read half: shared among readers, excluded by any earlier writer. */
export class ReadLock extends SequentialLockBase {
  constructor(
    zk: Client,
    path: string,
    private readonly writer: WriteLock,
    opts: LockOptions = {},
  ) {
    super(zk, path, READ_PREFIX, opts, isReadOrWrite)
  }

  protected override predicate(sorted: readonly string[], index: number): Turn {
    if (this.writer.isHeld) return { acquired: true }
    for (let i = index - 1; i >= 0; i--) {
      const name = sorted[i]!
      if (isWriter(name)) return { acquired: false, watch: name }
    }
    return { acquired: true }
  }
}

export class ReadWriteLock {
  private readonly writer: WriteLock
  private readonly reader: ReadLock

  constructor(zk: Client, path: string, opts: LockOptions = {}) {
    this.writer = new WriteLock(zk, path, opts)
    this.reader = new ReadLock(zk, path, this.writer, opts)
  }

  /** The shared lock; the same object on every call. */
  readLock(): ReadLock {
    return this.reader
  }

  /** The exclusive lock; the same object on every call. */
  writeLock(): WriteLock {
    return this.writer
  }
}
