/**
 * SimDisk: one server's storage as the simulator sees it: a durable image
 * (epochs, snapshot, log) plus writes that were submitted but not yet made
 * durable by an fsync.
 *
 * What is modelled: persist batches are written in order (one write stream,
 * as with SQLite's WAL); one fsync is in flight at a time and covers every
 * batch submitted before it started (group commit); it completes after a
 * delay that is sometimes long (a slow disk). A crash keeps an arbitrary
 * prefix of the not-yet-durable write operations (snapshot, truncate, each
 * entry, meta), in order, and loses the rest: the strongest torn-write model
 * a single ordered write stream allows. Application snapshots are written
 * atomically and are durable at once (a simplification: their write is not
 * what this simulator tests).
 *
 * Invariants checked here (reported through `violation`): durable
 * acceptedEpoch and currentEpoch never decrease and currentEpoch never
 * exceeds acceptedEpoch; the durable log stays strictly increasing.
 */
import type { Prng } from '../../server/core/prng.js'
import type { LogEntry, PersistBatch, PersistedState, Snapshot } from '../../server/zab/index.js'
import type { Scheduler } from './scheduler.js'

export interface DiskParams {
  fsyncMsMin: number
  fsyncMsMax: number
  slowProbability: number
  slowMsMax: number
  /** Mutation for checker tests: report durability at once; really fsync only much later. */
  lying: boolean
  /**
   * Mutation for checker tests: epochs go to a separate file made durable at
   * once, ahead of queued log writes (the shape of ZOOKEEPER-4646).
   */
  metaFirst: boolean
}

type Op =
  | { kind: 'snapshot'; s: Snapshot }
  | { kind: 'truncate'; zxid: number }
  | { kind: 'entry'; e: LogEntry }
  | { kind: 'meta'; acceptedEpoch?: number; currentEpoch?: number }

function opsOf(b: PersistBatch, metaFirst: boolean): Op[] {
  const ops: Op[] = []
  if (b.snapshot) ops.push({ kind: 'snapshot', s: b.snapshot })
  if (b.truncateAfterZxid !== undefined) ops.push({ kind: 'truncate', zxid: b.truncateAfterZxid })
  for (const e of b.entries) ops.push({ kind: 'entry', e })
  if (!metaFirst && b.meta) ops.push({ kind: 'meta', ...b.meta })
  return ops
}

export class SimDisk {
  acceptedEpoch = 0
  currentEpoch = 0
  snapshot: Snapshot | undefined
  log: LogEntry[] = []
  private pending: PersistBatch[] = []
  private inFlight: PersistBatch[] = []
  private fsyncing = false
  /** Bumped on crash so that a completion scheduled before it is ignored. */
  private epochOfLife = 0
  fsyncs = 0
  slowFsyncs = 0
  tornCrashes = 0
  /** Crashes that lost (part of) unsynced writes. */
  lossyCrashes = 0

  constructor(
    private readonly sched: Scheduler,
    private readonly prng: Prng,
    readonly params: DiskParams,
    private readonly violation: (what: string) => void,
  ) {}

  get snapshotZxid(): number {
    return this.snapshot?.zxid ?? 0
  }

  /** The last zxid the durable state covers (log or snapshot). */
  get durableLastZxid(): number {
    const last = this.log[this.log.length - 1]?.zxid ?? 0
    return Math.max(last, this.snapshotZxid)
  }

  hasDurable(zxid: number): boolean {
    if (zxid <= this.snapshotZxid) return true
    let lo = 0
    let hi = this.log.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const z = this.log[mid]!.zxid
      if (z === zxid) return true
      if (z < zxid) lo = mid + 1
      else hi = mid - 1
    }
    return false
  }

  submit(b: PersistBatch, onDurable: (seq: number) => void): void {
    if (this.params.metaFirst && b.meta) this.applyOp({ kind: 'meta', ...b.meta })
    this.pending.push(b)
    if (this.params.lying) {
      // The bug under test: claim durability now, fsync later.
      this.sched.after(0, () => onDurable(b.seq))
      if (!this.fsyncing) this.startFsync(() => {})
      return
    }
    if (!this.fsyncing) this.startFsync(onDurable)
  }

  private startFsync(onDurable: (seq: number) => void): void {
    this.fsyncing = true
    this.inFlight = this.pending
    this.pending = []
    const p = this.params
    let delay = this.prng.int(p.fsyncMsMin, p.fsyncMsMax) + (p.lying ? 500 : 0)
    if (this.prng.chance(p.slowProbability)) {
      this.slowFsyncs++
      delay += this.prng.int(1, p.slowMsMax)
    }
    const life = this.epochOfLife
    this.sched.after(delay, () => {
      if (life !== this.epochOfLife) return
      this.fsyncs++
      const batches = this.inFlight
      this.inFlight = []
      for (const b of batches) for (const op of opsOf(b, this.params.metaFirst)) this.applyOp(op)
      this.fsyncing = false
      const last = batches[batches.length - 1]
      if (this.pending.length > 0) this.startFsync(onDurable)
      if (last && !this.params.lying) onDurable(last.seq)
    })
  }

  private applyOp(op: Op): void {
    switch (op.kind) {
      case 'snapshot':
        this.snapshot = op.s
        this.log = []
        return
      case 'truncate':
        this.log = this.log.filter((e) => e.zxid <= op.zxid)
        return
      case 'entry': {
        // An application snapshot may already cover it.
        if (op.e.zxid <= this.snapshotZxid) return
        const last = this.log[this.log.length - 1]?.zxid ?? 0
        if (op.e.zxid <= last) this.violation(`durable log out of order: ${op.e.zxid} after ${last}`)
        this.log.push(op.e)
        return
      }
      case 'meta':
        if (op.acceptedEpoch !== undefined) {
          if (op.acceptedEpoch < this.acceptedEpoch) this.violation('durable acceptedEpoch decreased')
          this.acceptedEpoch = op.acceptedEpoch
        }
        if (op.currentEpoch !== undefined) {
          if (op.currentEpoch < this.currentEpoch) this.violation('durable currentEpoch decreased')
          this.currentEpoch = op.currentEpoch
        }
        if (this.currentEpoch > this.acceptedEpoch) this.violation('durable currentEpoch above acceptedEpoch')
        return
    }
  }

  /**
   * Durable history from `from` on (at most `max` entries), for a DIFF older
   * than the in-memory log: the durable log after the snapshot is one
   * contiguous stretch, so it serves when `from` is one of its entries.
   */
  historyFrom(from: number, max: number): LogEntry[] {
    const i = this.log.findIndex((e) => e.zxid === from)
    return i < 0 ? [] : this.log.slice(i, i + max)
  }

  /** An application snapshot: atomic and durable at once. */
  writeAppSnapshot(s: Snapshot): void {
    if (s.zxid <= this.snapshotZxid) return
    this.snapshot = s
    this.log = this.log.filter((e) => e.zxid > s.zxid)
  }

  /** Power loss: a random prefix of the unsynced operations survives. */
  crash(): void {
    this.epochOfLife++
    const ops = [...this.inFlight, ...this.pending].flatMap((b) => opsOf(b, this.params.metaFirst))
    this.inFlight = []
    this.pending = []
    this.fsyncing = false
    if (ops.length === 0) return
    const r = this.prng.float()
    const keep = r < 0.4 ? 0 : r < 0.6 ? ops.length : this.prng.int(0, ops.length)
    if (keep > 0 && keep < ops.length) this.tornCrashes++
    if (keep < ops.length) this.lossyCrashes++
    for (const op of ops.slice(0, keep)) this.applyOp(op)
  }

  /** What a restarted server recovers: durable state only. */
  recover(): PersistedState {
    const snapshotZxid = this.snapshotZxid
    return {
      acceptedEpoch: this.acceptedEpoch,
      currentEpoch: this.currentEpoch,
      snapshotZxid,
      log: this.log.filter((e) => e.zxid > snapshotZxid),
    }
  }
}
