/**
 * CommitLock: who may write to the database next, the storage worker or the
 * main thread's inline writer (inline-writer.ts). One Int32 in a
 * SharedArrayBuffer, shared through the worker's workerData.
 *
 * The main thread never waits: it takes the lock only if it is free, and
 * otherwise hands its ops to the worker (a blocked event loop is worse than
 * a thread hop). The worker may wait: it blocks (Atomics.wait) while the
 * main thread holds the lock, which is for one short commit at most.
 *
 * Invariants: at most one holder at a time; a lock starts held by the
 * worker (it writes while opening) and the worker frees it once open; only
 * the holder frees it. SQLite would refuse a second writer anyway (BUSY):
 * the lock keeps the main thread from ever meeting a busy database.
 *
 * Must not import: better-sqlite3, worker_threads.
 */

const FREE = 0
const WORKER = 1
const MAIN = 2

export class CommitLock {
  private readonly cell: Int32Array

  /** `shared` from CommitLock.create(), on either thread. */
  constructor(readonly shared: SharedArrayBuffer) {
    this.cell = new Int32Array(shared)
  }

  /** A new lock, held by the worker until it is open. */
  static create(): CommitLock {
    const lock = new CommitLock(new SharedArrayBuffer(4))
    Atomics.store(lock.cell, 0, WORKER)
    return lock
  }

  /** Main thread: takes the lock if it is free; never waits. */
  tryAcquireMain(): boolean {
    return Atomics.compareExchange(this.cell, 0, FREE, MAIN) === FREE
  }

  /** Main thread: frees the lock and wakes a worker waiting for it. */
  releaseMain(): void {
    Atomics.store(this.cell, 0, FREE)
    Atomics.notify(this.cell, 0)
  }

  /** Worker: takes the lock, waiting while the main thread holds it. */
  acquireWorker(): void {
    while (Atomics.compareExchange(this.cell, 0, FREE, WORKER) !== FREE) {
      // Returns at once unless the main thread holds the lock (the value is MAIN).
      Atomics.wait(this.cell, 0, MAIN, 100)
    }
  }

  /** Worker: frees the lock (the main thread never waits, so nobody needs waking). */
  releaseWorker(): void {
    Atomics.store(this.cell, 0, FREE)
  }
}
