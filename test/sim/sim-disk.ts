/**
 * SimDisk: one server's storage as the simulator sees it, behind the same
 * port the real driver writes SQLite through (DriverStorage): a durable
 * image (epochs, snapshot, log) plus operations that were issued but not
 * yet made durable by an fsync.
 *
 * What is modelled: operations are written in the order issued (one write
 * stream, as with SQLite's WAL); one fsync is in flight at a time and covers
 * every operation issued before it started (group commit); it completes
 * after a delay that is sometimes long (a slow disk). A crash keeps an
 * arbitrary prefix of the not-yet-durable operations (snapshot, truncate,
 * each entry, epochs, a static config taken from a leader), in order, and loses the rest: the strongest
 * torn-write model a single ordered write stream allows. A SNAP's snapshot
 * is staged chunk by chunk (sometimes past the high water mark, so the
 * driver must wait for a drain) and becomes one operation when finished.
 * Application snapshots are written atomically and are durable at once (a
 * simplification: their write is not what this simulator tests).
 *
 * Invariants checked here (reported through `violation`): durable
 * acceptedEpoch and currentEpoch never decrease and currentEpoch never
 * exceeds acceptedEpoch; the durable log stays strictly increasing
 * ('disk'); and currentEpoch never becomes durable ahead of the history it
 * vouches for ('epoch-after-history', ZOOKEEPER-4646): when the peer
 * decided to persist currentEpoch e, its log ended at some zxid (told here
 * through `vouch`), and by the time e is durable, that entry is too.
 */
import type { Prng } from '../../server/core/prng.js'
import {
  type DoneCallback,
  type DriverStorage,
  STATIC_CONFIG_META_KEY,
} from '../../server/replicate/zab-driver.js'
import type { LogEntry, PersistedState, Snapshot } from '../../server/zab/index.js'
import type { Scheduler } from './scheduler.js'

export interface DiskParams {
  fsyncMsMin: number
  fsyncMsMax: number
  slowProbability: number
  slowMsMax: number
  /**
   * Mutation for checker tests: the log lies, reporting its writes durable at
   * once and really syncing them only much later; the epochs are kept apart,
   * honestly (so the lie loses log entries, never an epoch promise).
   */
  lying: boolean
  /**
   * Mutation for checker tests: epochs go to a separate file made durable at
   * once, ahead of queued log writes (the shape of ZOOKEEPER-4646).
   */
  metaFirst: boolean
  /**
   * Mutation for checker tests: a write cache that makes the last two log
   * entries of a group commit durable in the wrong order.
   */
  reorder: boolean
}

/** Where the disk reports to: the driver of the incarnation that issued the writes. */
export interface DiskListener {
  entriesDurable(upToZxid: number): void
  drained(): void
}

type Op =
  | { kind: 'snapshot'; s: Snapshot; cb: DoneCallback }
  | { kind: 'truncate'; zxid: number; cb: DoneCallback }
  | { kind: 'entry'; e: LogEntry }
  | { kind: 'meta'; acceptedEpoch?: number; currentEpoch?: number; cb: DoneCallback }
  | { kind: 'staticConfig'; text: string; cb: DoneCallback }

/** Chance that a SNAP chunk finds the write buffer above its high water mark. */
const CHUNK_FULL_PROBABILITY = 0.05

export class SimDisk implements DriverStorage {
  acceptedEpoch = 0
  currentEpoch = 0
  snapshot: Snapshot | undefined
  log: LogEntry[] = []
  /** A static config taken from a leader (STATIC_CONFIG_META_KEY): the server starts with it. */
  staticConfig: string | undefined
  readonly snapshotInProgress = false
  listener: DiskListener | undefined
  private pending: Op[] = []
  private inFlight: Op[] = []
  private fsyncing = false
  private staged: { zxid: number; chunks: Uint8Array[] } | undefined
  private draining = false
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
    private readonly violation: (what: string, invariant?: string) => void,
  ) {}

  /** History that currentEpoch `epoch` vouches for: the peer's log ended at `throughZxid` when it decided to persist it. */
  private readonly vouched = new Map<number, number>()

  vouch(epoch: number, throughZxid: number): void {
    this.vouched.set(epoch, throughZxid)
  }

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

  // ------------------------------------------------------------ DriverStorage

  truncateAfter(zxid: number, cb: DoneCallback): void {
    this.issue({ kind: 'truncate', zxid, cb })
  }

  beginSnapshot(zxid: number): void {
    this.staged = { zxid, chunks: [] }
  }

  writeSnapshotChunk(chunk: Uint8Array): boolean {
    if (this.staged === undefined) {
      this.violation('snapshot chunk with no snapshot begun')
      return true
    }
    this.staged.chunks.push(chunk)
    if (this.draining || !this.prng.chance(CHUNK_FULL_PROBABILITY)) return true
    // Above the high water mark: the writer must wait for a drain, which comes a little later.
    this.draining = true
    const life = this.epochOfLife
    this.sched.after(this.prng.int(0, 3), () => {
      if (life !== this.epochOfLife) return
      this.draining = false
      this.listener?.drained()
    })
    return false
  }

  /** A SNAP cut off: what was staged of it is dropped (it was never durable as a snapshot). */
  abortSnapshot(cb: DoneCallback): void {
    this.staged = undefined
    const life = this.epochOfLife
    this.sched.after(0, () => {
      if (life === this.epochOfLife) cb(undefined)
    })
  }

  finishSnapshot(meta: { zxidEnd: number; digest: string }, cb: DoneCallback): void {
    const staged = this.staged
    this.staged = undefined
    if (staged === undefined) return this.violation('snapshot finished with none begun')
    this.issue({
      kind: 'snapshot',
      s: { zxid: staged.zxid, chunks: staged.chunks, endZxid: meta.zxidEnd },
      cb,
    })
  }

  append(entries: readonly LogEntry[]): void {
    for (const e of entries) this.issue({ kind: 'entry', e })
  }

  setEpochs(meta: { acceptedEpoch?: number; currentEpoch?: number }, cb: DoneCallback): void {
    const op: Op = { kind: 'meta', ...meta, cb }
    if (!this.params.metaFirst && !this.params.lying) return this.issue(op)
    // metaFirst, the bug under test: the epochs are durable at once, ahead of the log writes
    // queued before them. lying: the epochs' own honest file, apart from the lying log.
    this.applyOp(op)
    const life = this.epochOfLife
    this.sched.after(0, () => {
      if (life === this.epochOfLife) cb(undefined)
    })
  }

  setMeta(key: string, value: string, cb: DoneCallback): void {
    if (key !== STATIC_CONFIG_META_KEY) this.violation(`unexpected meta key ${key}`)
    this.issue({ kind: 'staticConfig', text: value, cb })
  }

  // ------------------------------------------------------------ the write stream

  private issue(op: Op): void {
    this.pending.push(op)
    if (this.params.lying) {
      // The bug under test: durability is reported at once; the fsync really happens 500 ms later.
      const life = this.epochOfLife
      this.sched.after(0, () => life === this.epochOfLife && this.report([op]))
    }
    if (!this.fsyncing) this.startFsync()
  }

  private startFsync(): void {
    this.fsyncing = true
    this.inFlight = this.pending
    this.pending = []
    const p = this.params
    let delay = this.prng.int(p.fsyncMsMin, p.fsyncMsMax)
    if (this.prng.chance(p.slowProbability)) {
      this.slowFsyncs++
      delay += this.prng.int(1, p.slowMsMax)
    }
    const life = this.epochOfLife
    const ops = this.inFlight
    this.sched.after(delay + (p.lying ? 500 : 0), () => {
      if (life !== this.epochOfLife) return
      this.fsyncs++
      this.inFlight = []
      for (const op of p.reorder ? swapLastEntries(ops) : ops) this.applyOp(op)
      this.fsyncing = false
      if (this.pending.length > 0) this.startFsync()
      if (!p.lying) this.report(ops)
    })
  }

  /** Completions in issue order: each operation's callback, then the entries' durability. */
  private report(ops: readonly Op[]): void {
    let lastEntry = 0
    for (const op of ops) {
      if (op.kind === 'entry') lastEntry = op.e.zxid
      else op.cb(undefined)
    }
    if (lastEntry !== 0) this.listener?.entriesDurable(lastEntry)
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
      case 'staticConfig':
        this.staticConfig = op.text
        return
      case 'meta':
        if (op.acceptedEpoch !== undefined) {
          if (op.acceptedEpoch < this.acceptedEpoch) this.violation('durable acceptedEpoch decreased')
          this.acceptedEpoch = op.acceptedEpoch
        }
        if (op.currentEpoch !== undefined) {
          if (op.currentEpoch < this.currentEpoch) this.violation('durable currentEpoch decreased')
          this.currentEpoch = op.currentEpoch
          const through = this.vouched.get(op.currentEpoch) ?? 0
          // A lying disk loses what it claimed durable: the end-to-end checks must catch that, not this one.
          if (through > 0 && !this.params.lying && !this.hasDurable(through))
            this.violation(
              `currentEpoch ${op.currentEpoch} durable before its history: 0x${through.toString(16)} is not (durable last 0x${this.durableLastZxid.toString(16)})`,
              'epoch-after-history',
            )
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
    const ops = [...this.inFlight, ...this.pending]
    this.inFlight = []
    this.pending = []
    this.fsyncing = false
    this.staged = undefined
    this.draining = false
    this.listener = undefined
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

/** reorder: the operations with their last two log entries swapped (the bug under test). */
function swapLastEntries(ops: readonly Op[]): readonly Op[] {
  const at: number[] = []
  for (let i = 0; i < ops.length; i++) if (ops[i]!.kind === 'entry') at.push(i)
  if (at.length < 2) return ops
  const out = [...ops]
  const a = at[at.length - 2]!
  const b = at[at.length - 1]!
  out[a] = ops[b]!
  out[b] = ops[a]!
  return out
}
