/**
 * Snapshotter: when and how a server writes snapshots of its tree. After a
 * random count of applied Txns in [snapCount/2, snapCount] (ZooKeeper's
 * randRoll, so members of an ensemble do not all snapshot at once) it
 * writes one: fuzzy, a slice per event-loop turn while Txns keep being
 * applied (recovery replays the log from the snapshot's start; Txns are
 * idempotent), so there is no long pause. A SNAP from the leader being
 * installed counts as one; one of ours in progress is abandoned for it.
 *
 * Invariants: at most one snapshot is written at a time; a closed or
 * cancelled snapshot is aborted in storage, never finished.
 */
import type { Logger } from 'pino'
import { formatZxid } from '../../shared/zxid.js'
import { StallMonitor } from '../admin/stall-monitor.js'
import { type Storage, StorageError } from '../storage/index.js'
import type { TxnResult } from '../txn/apply.js'
import type { TreeDb } from './tree-db.js'

/** Time one snapshot slice may take before yielding to the event loop. */
const SNAPSHOT_SLICE_MS = 4

/**
 * Txns until the next snapshot: a random count in [snapCount/2, snapCount], as
 * ZooKeeper does (SyncRequestProcessor's randRoll), so the members of an
 * ensemble, which apply the same txns, do not all snapshot at once: a snapshot
 * slows its server's log writes, and the quorum is served by the others.
 */
export function nextSnapshotAfter(snapCount: number): number {
  const half = Math.floor(snapCount / 2)
  return snapCount - half + Math.floor(Math.random() * (half + 1))
}

/**
 * The operations one applied Txn carried: a multi of 100 creates costs
 * recovery 100 creates to replay, and a session's close deletes its
 * ephemerals. snapCount counts Txns, as ZooKeeper's does, so a tree loaded by
 * multis (`conclave migrate`, the bench) was never snapshotted — 1M znodes in
 * multis of 100 are 10,000 Txns — and a restart replayed it whole from the log
 * (16 s for 1M znodes, against 3.8 s from a snapshot). Snapshotter.applied also
 * snapshots once the operations since the last snapshot reach the larger of
 * the drawn count and half the tree's size: a restart then replays at most as
 * many operations as the snapshot holds znodes, and a tree that grows is
 * snapshotted at sizes that double, so the snapshots of a bulk load serialize
 * about twice its final size in all (counting operations alone would snapshot
 * it every 50k–100k, a cost quadratic in its size).
 */
export function opsIn(result: TxnResult): number {
  if (result.type === 'multi') return Math.max(1, result.results.length)
  if (result.type === 'closeSession') return 1 + result.deleted.length
  return 1
}

export class Snapshotter {
  private sinceSnapshot = 0
  /** Operations in the Txns since the last snapshot (opsIn): multis count each of theirs. */
  private opsSinceSnapshot = 0
  private snapshotAfter: number
  private running: Promise<void> | undefined
  private closed = false
  private cancelled = false
  private drainWaiters: (() => void)[] = []

  constructor(
    private readonly storage: Storage,
    private readonly tree: TreeDb,
    private readonly snapCount: number,
    private readonly logger: Logger,
  ) {
    this.snapshotAfter = nextSnapshotAfter(snapCount)
    storage.onDrain(() => {
      const waiters = this.drainWaiters
      this.drainWaiters = []
      for (const w of waiters) w()
    })
  }

  /** Called after every applied Txn, with the operations it carried (opsIn). */
  applied(ops: number): void {
    this.sinceSnapshot++
    this.opsSinceSnapshot += ops
    if (this.running !== undefined) return
    if (
      this.sinceSnapshot >= this.snapshotAfter ||
      (this.opsSinceSnapshot >= this.snapshotAfter && this.opsSinceSnapshot * 2 >= this.tree.nodeCount())
    )
      void this.snapshot()
  }

  /** Starts a snapshot now unless one is running; resolves when it is durable. */
  snapshot(): Promise<void> {
    if (this.running !== undefined) return this.running
    // A snapshot from the leader (SNAP) is being installed: it is one; ours waits for the next applied Txn.
    if (this.storage.snapshotInProgress) return Promise.resolve()
    this.sinceSnapshot = 0
    this.opsSinceSnapshot = 0
    this.snapshotAfter = nextSnapshotAfter(this.snapCount)
    this.cancelled = false
    this.running = this.take().finally(() => {
      this.running = undefined
    })
    return this.running
  }

  private async take(): Promise<void> {
    const started = performance.now()
    const monitor = new StallMonitor()
    let written: Record<string, unknown> | undefined
    try {
      written = await this.write()
    } finally {
      const stalls = monitor.stop()
      if (written !== undefined)
        this.logger.info(
          { ...written, ms: Math.round(performance.now() - started), ...stalls },
          'snapshot taken',
        )
    }
  }

  /** Writes one snapshot; what it wrote, or undefined if the server closed meanwhile (aborted). */
  private async write(): Promise<Record<string, unknown> | undefined> {
    const { zxid: zxidStart, chunks } = this.tree.snapshot()
    this.storage.beginSnapshot(zxidStart)
    let bytes = 0
    let count = 0
    for (;;) {
      const sliceStart = performance.now()
      let done = false
      while (performance.now() - sliceStart < SNAPSHOT_SLICE_MS) {
        const next = chunks.next()
        if (next.done) {
          done = true
          break
        }
        bytes += next.value.byteLength
        count++
        if (!this.storage.writeSnapshotChunk(next.value, { transfer: true })) await this.drained()
      }
      if (done || this.closed || this.cancelled) break
      await new Promise<void>((r) => setImmediate(r))
    }
    if (this.closed || this.cancelled)
      return new Promise((r) => this.storage.abortSnapshot(() => r(undefined)))
    // Not just the last applied: a tree rebuilt from a fuzzy SNAP may hold more until replayed past it.
    const zxidEnd = this.tree.reflectsThrough
    await new Promise<void>((resolve, reject) =>
      this.storage.finishSnapshot(
        { zxidEnd, digest: zxidEnd === zxidStart ? this.tree.digest() : '' },
        (err) => (err ? reject(err) : resolve()),
      ),
    )
    return { zxidStart: formatZxid(zxidStart), zxidEnd: formatZxid(zxidEnd), bytes, chunks: count }
  }

  /** Abandons the snapshot being written, if any (a SNAP from the leader replaces it). */
  cancel(): void {
    if (this.running !== undefined) this.cancelled = true
    // A writer waiting for the storage to drain goes on to its check (and aborts).
    for (const w of this.drainWaiters.splice(0)) w()
  }

  private drained(): Promise<void> {
    return new Promise((r) => this.drainWaiters.push(r))
  }

  /** Stops: a snapshot being written is aborted; then the storage closes. */
  async close(): Promise<void> {
    this.closed = true
    this.cancel()
    await this.running?.catch(() => {})
    await new Promise<void>((resolve, reject) =>
      this.storage.close((err) =>
        err && !(err instanceof StorageError && this.closed) ? reject(err) : resolve(),
      ),
    )
  }
}
