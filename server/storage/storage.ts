/**
 * Storage: the main-thread face of one server's durable state — the txn log,
 * the ZAB epochs and misc meta, and snapshots — over one SQLite database
 * `<dataDir>/conclave.db`. `Storage.open` recovers synchronously (recovery.ts)
 * and starts the storage worker, which owns the write connection and
 * group-commits (log-writer.ts). Every write is issued here and completes
 * through a callback or the `onDurable` event, never before the next turn of
 * the event loop. The one fsync this thread may wait for is an inline
 * commit (inline-writer.ts): ops issued in one turn while the worker has
 * nothing in flight, only appends and meta writes, at most
 * inlineCommitBytesMax of them, committed here instead of paying two thread
 * wake-ups; after any commit slower than inlineCommitMsMax (inline or the
 * worker's: the disk is slow now, and an inline commit would block the
 * event loop for as long), commits go to the worker for a second.
 *
 * Invariants:
 * - Operations reach the disk in the order they were issued, except that
 *   appends and meta writes may overtake snapshot chunks issued before them
 *   (log-writer.ts); a callback or a durable event fires only after the
 *   transaction holding the op committed.
 * - Appended zxids strictly increase (after truncateAfter(z), from z on);
 *   epochs never decrease. Breaking either is a programmer error (assert).
 * - At most one snapshot is open; chunks belong to the open snapshot.
 * - Environment failures (I/O, full disk, corruption) are fatal StorageErrors,
 *   delivered once to every onFatal listener and to every pending callback;
 *   with no onFatal listener the error is thrown (the process crashes:
 *   fail-stop rather than ACK from an unknown state).
 * - Issued-but-not-durable bytes never exceed pendingBytesMax; above
 *   pendingBytesHighWater writes return false and onDrain fires once below
 *   it again (flow control like stream.write).
 *
 * Must not import: anything of the pure core (tree, txn, zab, session, watch);
 * the ZAB driver reaches it through replicate/zab-replicator.ts.
 */

import { mkdirSync } from 'node:fs'
import type { Worker } from 'node:worker_threads'
import type Database from 'better-sqlite3'
import { assert, fail } from '../../shared/assert.js'
import { CommitLock } from './commit-lock.js'
import { type InlineCommit, type InlineOp, InlineWriter } from './inline-writer.js'
import { LogReader } from './log-reader.js'
import { type Epochs, type Recovery, recover } from './recovery.js'
import { ensureSchema, KV_PREFIX, MetaKey, openConnection, readMeta } from './schema.js'
import { StallHook } from './stall-hook.js'
import { StorageError, StorageErrorCode, toStorageError } from './storage-error.js'
import {
  type ResolvedStorageOptions,
  resolveStorageOptions,
  type StorageLogger,
  type StorageOptions,
  stderrLogger,
} from './storage-options.js'
import { launchStorageWorker } from './worker-launcher.js'
import { type LogEntry, packEntries, type WorkerOp, type WorkerReport } from './worker-protocol.js'

export type DoneCallback = (err: StorageError | undefined) => void
export type DurableListener = (upToZxid: number) => void
export type FatalListener = (err: StorageError) => void
export type DrainListener = () => void

interface Pending {
  cb: DoneCallback
  /** Runs when the op is durable, before cb (updates the durable caches). */
  onDurable?: () => void
}

type State = 'open' | 'closing' | 'closed' | 'failed'

/** After a commit slower than inlineCommitMsMax (inline or the worker's), commits go to the worker for this long. */
const INLINE_PAUSE_MS = 1000
/** Bytes committed inline before the worker is told (they count towards its next WAL checkpoint). */
const INLINE_BYTES_REPORTED_EVERY = 1024 * 1024

function allInline(ops: readonly WorkerOp[]): ops is InlineOp[] {
  return ops.every(InlineWriter.accepts)
}

export class Storage {
  readonly file: string
  /** What startup recovered: iterate its snapshot chunks and log entries once, before serving. */
  readonly recovery: Recovery

  private state: State = 'open'
  private fatalError: StorageError | undefined
  private readonly worker: Worker
  private readonly logReader: LogReader
  private readonly durableListeners: DurableListener[] = []
  private readonly fatalListeners: FatalListener[] = []
  private readonly drainListeners: DrainListener[] = []
  private readonly commitListeners: ((commitMs: number, bytes: number) => void)[] = []
  private needDrain = false
  private readonly pending = new Map<number, Pending>()
  private nextOpId = 1
  private outgoing: WorkerOp[] = []
  private appendBuffer: LogEntry[] = []
  private appendBufferBytes = 0
  private flushScheduled = false
  private lastIssuedZxid: number
  private durableUpTo: number
  private issuedBytes = 0
  private snapshotOpen = false
  private durableEpochs: Epochs
  private issuedEpochs: Epochs
  private readonly durableMeta = new Map<string, string>()
  private closeCallbacks: DoneCallback[] = []
  private workerStopped: Promise<number> | undefined
  private readonly commitLock = CommitLock.create()
  /** Commits on this thread while the worker is idle (inline-writer.ts); undefined: never. */
  private readonly inline: InlineWriter | undefined
  /** The stall test hook (stall-hook.ts); undefined: not set. */
  private readonly stall: StallHook | undefined
  /** Ops posted to the worker and not yet reported done: while any are, nothing is committed inline. */
  private workerOps = 0
  private inlinePausedUntil = 0
  private inlineBytesUnreported = 0
  private readonly commits = { inline: 0, worker: 0 }

  private constructor(
    private readonly options: ResolvedStorageOptions,
    private readonly db: Database.Database,
    private readonly logger: StorageLogger,
  ) {
    this.file = options.file
    this.logReader = new LogReader(db, options.file, options.readLogBytesMax)
    this.recovery = recover({
      db,
      file: options.file,
      serverId: options.serverId,
      logger,
      logReader: this.logReader,
    })
    this.durableEpochs = { ...this.recovery.epochs }
    this.issuedEpochs = { ...this.recovery.epochs }
    this.lastIssuedZxid = this.recovery.lastLogZxid
    this.durableUpTo = this.recovery.lastLogZxid
    this.loadMiscMeta()
    // From here on this connection only reads; the worker owns every write.
    db.pragma('query_only = ON')
    // The stall test hook (stall-hook.ts): while it asks, commits go to the worker, which stalls.
    this.stall = StallHook.forDatabase(options.file)
    this.inline =
      options.inlineCommitBytesMax > 0
        ? InlineWriter.open(options.file, options.dbBytesMax, this.commitLock)
        : undefined
    this.worker = launchStorageWorker({
      file: options.file,
      dbBytesMax: options.dbBytesMax,
      batchBytesMax: options.batchBytesMax,
      snapshotBytesPerCommitMax: options.snapshotBytesPerCommitMax,
      snapshotsRetained: options.snapshotsRetained,
      purgeLogRowsPerBatch: options.purgeLogRowsPerBatch,
      purgeChunksPerBatch: options.purgeChunksPerBatch,
      commitLock: this.commitLock.shared,
    })
    this.worker.on('message', (report: WorkerReport) => this.onReport(report))
    this.worker.on('error', (err) => this.fail(toStorageError(err, this.file, 'running the storage worker')))
    this.worker.on('exit', (code) => this.onWorkerExit(code))
  }

  /**
   * Opens (creating if needed) `<dataDir>/conclave.db`, recovers synchronously
   * and starts the worker. Throws a StorageError when the data cannot be used.
   */
  static open(options: StorageOptions): Storage {
    const resolved = resolveStorageOptions(options)
    try {
      mkdirSync(resolved.dataDir, { recursive: true })
    } catch (err) {
      throw toStorageError(err, resolved.file, 'creating the data directory')
    }
    const db = openConnection(resolved.file, { dbBytesMax: resolved.dbBytesMax })
    try {
      ensureSchema(db, resolved.file)
      return new Storage(resolved, db, options.logger ?? stderrLogger)
    } catch (err) {
      db.close()
      throw toStorageError(err, resolved.file, 'opening storage')
    }
  }

  // ---- events ----

  /** Called after each group commit that appended entries, with the highest zxid now durable. */
  onDurable(listener: DurableListener): void {
    this.durableListeners.push(listener)
  }

  /** Called after every group commit, with how long it took (BEGIN to COMMIT, the fsync included) and its bytes. */
  onGroupCommit(listener: (commitMs: number, bytes: number) => void): void {
    this.commitListeners.push(listener)
  }

  /** Called when pending bytes fall below the high water mark after a write returned false. */
  onDrain(listener: DrainListener): void {
    this.drainListeners.push(listener)
  }

  /** Called once with the fatal error; the server should exit. */
  onFatal(listener: FatalListener): void {
    this.fatalListeners.push(listener)
  }

  // ---- state ----

  /** Epochs as last made durable. */
  get epochs(): Epochs {
    return { ...this.durableEpochs }
  }

  /** The highest zxid issued to the log (what the next append must exceed). */
  get lastZxid(): number {
    return this.lastIssuedZxid
  }

  /** The highest zxid reported durable. */
  get durableZxid(): number {
    return this.durableUpTo
  }

  /** Bytes of entries and chunks issued and not yet durable (for flow control). */
  get pendingBytes(): number {
    return this.issuedBytes
  }

  /** Pending bytes above which the server should admit no more writes (see StorageLimits). */
  get writeThrottleBytes(): number {
    return this.options.writeThrottleBytes
  }

  /** Group commits so far: made on this thread (inline-writer.ts) and by the worker. */
  get commitCounts(): { inline: number; worker: number } {
    return { ...this.commits }
  }

  /** A misc meta value as last made durable. */
  getMeta(key: string): string | undefined {
    return this.durableMeta.get(key)
  }

  // ---- writes ----

  /**
   * Appends entries (zxids strictly increasing); durability is reported
   * through onDurable. Returns false when pending bytes are above the high
   * water mark: the caller should wait for onDrain (like stream.write).
   */
  append(entries: readonly LogEntry[]): boolean {
    this.checkWritable()
    let bytes = 0
    let last = this.lastIssuedZxid
    // Indexed loops: the for-of iterators here were ~60 of the ~120 bytes each append allocated.
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      // fail(), not assert(cond, `...`): two zxids (past 2^31, so doubles) formatted were ~0.5 us of every append.
      if (!(Number.isSafeInteger(e.zxid) && e.zxid > last)) {
        fail(`append: zxid ${e.zxid} does not follow ${last}`)
      }
      assert(e.data instanceof Uint8Array, 'append: data must be a Uint8Array')
      if (e.data.byteLength > this.options.entryBytesMax) {
        throw this.limitError(`log entry zxid ${e.zxid} is ${e.data.byteLength} bytes`, 'entryBytesMax')
      }
      last = e.zxid
      bytes += e.data.byteLength
    }
    this.reserve(bytes)
    this.lastIssuedZxid = last
    for (let i = 0; i < entries.length; i++) this.appendBuffer.push(entries[i]!)
    this.appendBufferBytes += bytes
    this.scheduleFlush()
    return this.belowHighWater()
  }

  /** Durably records new epoch values (each may only stay equal or grow). */
  setEpochs(epochs: Partial<Epochs>, cb: DoneCallback): void {
    this.checkWritable()
    const next = { ...this.issuedEpochs, ...epochs }
    assert(Number.isSafeInteger(next.acceptedEpoch) && Number.isSafeInteger(next.currentEpoch), 'bad epoch')
    assert(next.acceptedEpoch >= this.issuedEpochs.acceptedEpoch, 'acceptedEpoch must never decrease')
    assert(next.currentEpoch >= this.issuedEpochs.currentEpoch, 'currentEpoch must never decrease')
    this.issuedEpochs = next
    const entries: [string, string][] = []
    if (epochs.acceptedEpoch !== undefined) entries.push([MetaKey.ACCEPTED_EPOCH, String(next.acceptedEpoch)])
    if (epochs.currentEpoch !== undefined) entries.push([MetaKey.CURRENT_EPOCH, String(next.currentEpoch)])
    this.issue({ kind: 'meta', id: 0, entries }, cb, () => {
      this.durableEpochs = { ...next }
    })
  }

  /** Durably records a misc key/value (e.g. the ensemble secret). */
  setMeta(key: string, value: string, cb: DoneCallback): void {
    this.checkWritable()
    assert(key.length > 0 && key.length <= 256, 'setMeta: key must be 1..256 characters')
    if (value.length > this.options.entryBytesMax) throw this.limitError(`meta value ${key}`, 'entryBytesMax')
    this.issue({ kind: 'meta', id: 0, entries: [[KV_PREFIX + key, value]] }, cb, () => {
      this.durableMeta.set(key, value)
    })
  }

  /** Drops every log record with zxid > `zxid` (ZAB TRUNC), and snapshots that end past it. */
  truncateAfter(zxid: number, cb: DoneCallback): void {
    this.checkWritable()
    if (!(Number.isSafeInteger(zxid) && zxid >= 0)) fail(`truncateAfter: bad zxid ${zxid}`)
    this.lastIssuedZxid = Math.min(this.lastIssuedZxid, zxid)
    this.issue({ kind: 'truncate', id: 0, zxid }, cb, () => {
      this.durableUpTo = Math.min(this.durableUpTo, zxid)
    })
  }

  // ---- snapshots ----

  /** True between beginSnapshot and its finishSnapshot or abortSnapshot (one snapshot at a time). */
  get snapshotInProgress(): boolean {
    return this.snapshotOpen
  }

  /** Starts a fuzzy snapshot: `zxidStart` is the last zxid applied when serialization began. */
  beginSnapshot(zxidStart: number): void {
    this.checkWritable()
    assert(!this.snapshotOpen, 'beginSnapshot: a snapshot is already open')
    if (!(Number.isSafeInteger(zxidStart) && zxidStart >= 0)) fail(`beginSnapshot: bad zxid ${zxidStart}`)
    this.snapshotOpen = true
    this.queueOp({ kind: 'snapshotBegin', zxidStart })
  }

  /**
   * Queues one chunk. It is copied, unless `transfer` is set and the chunk
   * spans its whole ArrayBuffer: then the buffer moves to the worker and the
   * caller's view is detached (no copy on this thread). Returns false above
   * the high water mark: wait for onDrain before the next chunk.
   */
  writeSnapshotChunk(bytes: Uint8Array, options?: { transfer?: boolean }): boolean {
    this.checkWritable()
    assert(this.snapshotOpen, 'writeSnapshotChunk: no open snapshot')
    if (bytes.byteLength > this.options.snapshotChunkBytesMax) {
      throw this.limitError(`snapshot chunk of ${bytes.byteLength} bytes`, 'snapshotChunkBytesMax')
    }
    this.reserve(bytes.byteLength)
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    // A copy of its own unless told to transfer a whole buffer: its buffer is transferred
    // to the worker. (Not bytes.slice(): on a Buffer, such as a chunk read from a socket,
    // that is a view, and transferring its buffer detached whatever else was read with it.)
    const data =
      options?.transfer === true && whole && bytes.buffer instanceof ArrayBuffer
        ? bytes
        : new Uint8Array(bytes)
    this.queueOp({ kind: 'snapshotChunk', data })
    return this.belowHighWater()
  }

  /** Completes the open snapshot; cb fires once it is durable (older ones may then be purged). */
  finishSnapshot(info: { zxidEnd: number; digest: string }, cb: DoneCallback): void {
    this.checkWritable()
    assert(this.snapshotOpen, 'finishSnapshot: no open snapshot')
    if (!(Number.isSafeInteger(info.zxidEnd) && info.zxidEnd >= 0))
      fail(`finishSnapshot: bad zxid ${info.zxidEnd}`)
    this.snapshotOpen = false
    this.issue({ kind: 'snapshotFinish', id: 0, zxidEnd: info.zxidEnd, digest: info.digest }, cb)
  }

  /** Abandons the open snapshot (its chunks are purged). */
  abortSnapshot(cb: DoneCallback): void {
    this.checkWritable()
    assert(this.snapshotOpen, 'abortSnapshot: no open snapshot')
    this.snapshotOpen = false
    this.issue({ kind: 'snapshotAbort', id: 0 }, cb)
  }

  // ---- reads (synchronous, durable data only) ----

  /** Up to maxEntries durable records with zxid >= fromZxid, ascending, within maxBytes (at least one; ZAB DIFF). */
  readLogFrom(fromZxid: number, maxEntries: number, maxBytes = this.options.readLogBytesMax): LogEntry[] {
    this.checkReadable()
    assert(Number.isSafeInteger(maxEntries) && maxEntries > 0, 'readLogFrom: maxEntries must be > 0')
    return this.logReader.readFrom(fromZxid, maxEntries, Math.min(maxBytes, this.options.readLogBytesMax))
  }

  /**
   * Where the log is known to be one contiguous stretch of history: the start
   * of the newest complete snapshot (0 when there is none). Below it the log
   * may have a gap, where a SNAP from a leader replaced what this server had.
   */
  contiguousLogFrom(): number {
    this.checkReadable()
    try {
      const row = this.db
        .prepare(
          "SELECT zxid_start AS zxidStart FROM snapshots WHERE state = 'complete' ORDER BY zxid_end DESC, id DESC LIMIT 1",
        )
        .get() as { zxidStart: number } | undefined
      return row?.zxidStart ?? 0
    } catch (err) {
      throw toStorageError(err, this.file, 'reading the snapshot list')
    }
  }

  /** The oldest zxid still in the log, 0 if empty: a follower behind it needs SNAP. */
  oldestLogZxid(): number {
    this.checkReadable()
    return this.logReader.oldestZxid()
  }

  // ---- close ----

  /** Waits for everything issued to be durable, stops the worker, closes the database. */
  close(cb: DoneCallback): void {
    if (this.state === 'closed') return void queueMicrotask(() => cb(undefined))
    if (this.state === 'failed') {
      this.closeCallbacks.push(cb)
      return void this.workerStopped?.then(() => this.finishClose())
    }
    this.closeCallbacks.push(cb)
    if (this.state === 'closing') return
    this.state = 'closing'
    this.queueOp({ kind: 'close', id: 0 })
  }

  // ---- internals ----

  private issue(op: WorkerOp & { id: number }, cb: DoneCallback, onDurable?: () => void): void {
    op.id = this.nextOpId++
    this.pending.set(op.id, onDurable === undefined ? { cb } : { cb, onDurable })
    this.queueOp(op)
  }

  private queueOp(op: WorkerOp): void {
    this.sealAppends()
    this.outgoing.push(op)
    this.scheduleFlush()
  }

  private sealAppends(): void {
    if (this.appendBuffer.length === 0) return
    const packed = packEntries(this.appendBuffer, this.appendBufferBytes)
    this.outgoing.push({ kind: 'append', packed, count: this.appendBuffer.length })
    this.appendBuffer = []
    this.appendBufferBytes = 0
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    // Everything issued in this turn of the event loop (all I/O callbacks of one
    // poll phase) travels in one message: postMessage was ~7-14% of a busy
    // server's time when each callback flushed on its own. What it still shows in
    // a --cpu-prof profile (9% of a C=64 create run) is mostly wall time, not CPU:
    // timed one by one, 13,000 posts took 250 ms, the median under 9 us and 590
    // over 100 us (the thread preempted when its eventfd write woke the idle
    // worker). Holding ops while a worker commit is in flight (one message per
    // commit) measured no CPU change per create (issue 21).
    setImmediate(() => this.flush())
  }

  private flush(): void {
    this.flushScheduled = false
    if (this.state === 'failed' || this.state === 'closed') return
    this.sealAppends()
    if (this.outgoing.length === 0) return
    const ops = this.outgoing
    this.outgoing = []
    if (this.commitInline(ops)) return
    this.workerOps += ops.length
    const transfer: ArrayBuffer[] = []
    for (const op of ops) {
      if (op.kind === 'append') transfer.push(op.packed.buffer as ArrayBuffer)
      else if (op.kind === 'snapshotChunk') transfer.push(op.data.buffer as ArrayBuffer)
    }
    this.worker.postMessage({ ops }, transfer)
  }

  /**
   * Commits `ops` on this thread (see inline-writer.ts) if nothing is in
   * flight at the worker (so they reach the disk in issue order), they are
   * only appends and meta writes within inlineCommitBytesMax, no recent
   * commit (inline or the worker's) was slow, and the worker is not writing; false: post them.
   */
  private commitInline(ops: WorkerOp[]): boolean {
    if (this.inline === undefined || this.state !== 'open' || this.workerOps > 0) return false
    if (!allInline(ops) || performance.now() < this.inlinePausedUntil) return false
    if (this.stall !== undefined && this.stall.remainingMs() > 0) return false
    let bytes = 0
    for (const op of ops) if (op.kind === 'append') bytes += op.packed.byteLength
    // Never more in one inline commit than the worker puts in one group (batchBytesMax).
    if (bytes > Math.min(this.options.inlineCommitBytesMax, this.options.batchBytesMax)) return false
    let done: InlineCommit | undefined
    try {
      done = this.inline.commit(ops)
    } catch (err) {
      this.fail(toStorageError(err, this.file, 'committing inline'))
      return true
    }
    if (done === undefined) return false
    if (done.commitMs > this.options.inlineCommitMsMax) {
      this.logger.warn(
        { file: this.file, commitMs: Math.round(done.commitMs), pauseMs: INLINE_PAUSE_MS },
        'storage: slow inline commit; committing on the worker for a while',
      )
    }
    this.inlineBytesUnreported += done.bytes
    if (this.inlineBytesUnreported >= INLINE_BYTES_REPORTED_EVERY) {
      this.queueOp({ kind: 'written', bytes: this.inlineBytesUnreported })
      this.inlineBytesUnreported = 0
    }
    this.commits.inline++
    this.committed(done)
    return true
  }

  /** A group commit is durable, made here (inline) or by the worker (whose report has the same fields). */
  private committed(c: InlineCommit): void {
    // A slow commit, the worker's too, predicts the next: under C=64 creates on a shared disk the
    // worker's commits took 2 ms median and 5-12 ms p90, and the one inline commit let through
    // after each pause took 5-49 ms of the event loop, about once a second.
    if (c.commitMs > this.options.inlineCommitMsMax) {
      this.inlinePausedUntil = performance.now() + INLINE_PAUSE_MS
    }
    for (const listener of this.commitListeners) listener(c.commitMs, c.bytes)
    this.onCommitted(c.durableUpTo, c.bytes, c.ids)
  }

  private onReport(report: WorkerReport): void {
    switch (report.kind) {
      case 'committed':
        this.workerOps -= report.ops
        assert(this.workerOps >= 0, 'storage: the worker reported more ops done than were posted')
        this.commits.worker++
        return this.committed(report)
      case 'fatal':
        return this.fail(StorageError.fromData(report.error))
      case 'log':
        return report.level === 'warn'
          ? this.logger.warn({ file: this.file, ...report.obj }, report.msg)
          : this.logger.info({ file: this.file, ...report.obj }, report.msg)
      case 'closed':
        // The worker exits next; finishClose runs on its 'exit' event.
        return
    }
  }

  private onCommitted(durableUpTo: number | undefined, bytes: number, ids: number[]): void {
    this.issuedBytes -= bytes
    assert(this.issuedBytes >= 0, 'storage: more bytes reported durable than issued')
    if (durableUpTo !== undefined) {
      this.durableUpTo = durableUpTo
      for (const listener of this.durableListeners) listener(durableUpTo)
    }
    for (const id of ids) {
      const p = this.pending.get(id)
      if (p === undefined) fail(`storage: unknown op id ${id} reported durable`)
      this.pending.delete(id)
      p.onDurable?.()
      p.cb(undefined)
    }
    if (this.needDrain && this.issuedBytes < this.options.pendingBytesHighWater) {
      this.needDrain = false
      for (const listener of this.drainListeners) listener()
    }
  }

  private onWorkerExit(code: number): void {
    if (this.state === 'closing') return this.finishClose()
    if (this.state === 'open') {
      this.fail(
        new StorageError({
          code: StorageErrorCode.INTERNAL,
          file: this.file,
          message: `the storage worker for ${this.file} exited unexpectedly with code ${code}`,
        }),
      )
    }
  }

  private finishClose(): void {
    if (this.state === 'closed') return
    const failedWith = this.fatalError
    this.state = 'closed'
    try {
      // Not in a transaction: an inline commit finishes (or rolls back) before it returns.
      this.inline?.close()
    } catch (err) {
      this.logger.warn({ file: this.file, err: String(err) }, 'storage: inline writer failed to close')
    }
    try {
      this.db.close()
    } catch (err) {
      // A recovery iterator left half-read keeps the read connection busy; it is only a reader.
      this.logger.warn({ file: this.file, err: String(err) }, 'storage: read connection closed while busy')
    }
    const cbs = this.closeCallbacks
    this.closeCallbacks = []
    for (const cb of cbs) cb(failedWith)
  }

  private fail(err: StorageError): void {
    if (this.state === 'failed' || this.state === 'closed') return
    this.state = 'failed'
    this.fatalError = err
    this.logger.error({ file: this.file, code: err.code, zxid: err.zxid }, err.message)
    this.workerStopped = this.worker.terminate()
    const pending = [...this.pending.values()]
    this.pending.clear()
    for (const p of pending) p.cb(err)
    // A close() that was waiting for the worker completes now, with the error.
    if (this.closeCallbacks.length > 0) void this.workerStopped.then(() => this.finishClose())
    if (this.fatalListeners.length === 0) throw err
    for (const listener of this.fatalListeners) listener(err)
  }

  private reserve(bytes: number): void {
    if (this.issuedBytes + bytes > this.options.pendingBytesMax) {
      throw this.limitError(
        `${bytes} more bytes with ${this.issuedBytes} already waiting to be durable`,
        'pendingBytesMax',
      )
    }
    this.issuedBytes += bytes
  }

  private belowHighWater(): boolean {
    if (this.issuedBytes < this.options.pendingBytesHighWater) return true
    this.needDrain = true
    return false
  }

  private limitError(what: string, limit: keyof ResolvedStorageOptions): StorageError {
    return new StorageError({
      code: StorageErrorCode.LIMIT,
      file: this.file,
      message: `storage limit: ${what} exceeds ${limit} (${this.options[limit]}) for ${this.file}`,
    })
  }

  private checkWritable(): void {
    if (this.state === 'open') return
    throw (
      this.fatalError ??
      new StorageError({
        code: StorageErrorCode.CLOSED,
        file: this.file,
        message: `storage ${this.file} is closed`,
      })
    )
  }

  private checkReadable(): void {
    if (this.state === 'open' || this.state === 'closing') return
    this.checkWritable()
  }

  private loadMiscMeta(): void {
    const keys = this.db
      .prepare('SELECT key FROM meta WHERE key >= ? AND key < ?')
      .pluck()
      .all(KV_PREFIX, `${KV_PREFIX}\uffff`) as string[]
    for (const key of keys) {
      const value = readMeta(this.db, this.file, key)
      if (value !== undefined) this.durableMeta.set(key.slice(KV_PREFIX.length), value)
    }
  }
}
