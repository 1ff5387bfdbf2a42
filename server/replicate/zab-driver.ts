/**
 * ZabDriver: the one driver of the pure ZabPeer (server/zab). It feeds the
 * peer ticks, peer messages and durability reports, and carries out its
 * effects through ports: persist batches to storage in order, messages to
 * peers (those that vouch for data only after the batch they depend on is
 * durable), SNAP streams in slices, commits and role changes to the host.
 * The server (zab-replicator.ts), the deterministic simulation
 * (test/sim/sim-node.ts) and the unit harness (test/unit/zab/harness.ts)
 * all run this class; only the ports differ (SQLite or a simulated disk,
 * TCP links or a simulated network, the event loop or a seeded scheduler).
 *
 * Durability order inside one batch (storage applies operations in the
 * order issued): snapshot (after the truncation it implies), truncation,
 * entries, then epochs — history before currentEpoch (ZOOKEEPER-4646).
 *
 * Invariants (asserted): `durableSeq` only grows and never passes the last
 * batch issued; a message from `sendAfterDurable` leaves only once its
 * batch is durable; persist batches are issued in `seq` order.
 *
 * A SNAP to a learner is streamed in slices (a time budget, and a chunk
 * budget for the simulation, where time stands still inside an event), with
 * at most SNAP_BUFFERED_BYTES_MAX waiting in the link: the snapshot is the
 * live tree written out while it keeps changing (fuzzy), so the leader goes
 * on serving meanwhile, and SNAPEND tells the learner which entries it may
 * already reflect. Everything else for that learner waits behind the stream
 * (bounded by SNAP_HELD_BYTES_MAX; past it the link is dropped and the
 * learner syncs again).
 *
 * A SNAP received is never held whole (issue 21: 191 MB at 1M znodes): each
 * chunk goes, as it arrives, to an open snapshot in storage, and to the
 * application's RestoreJob, which reads it into the new state it builds
 * aside, in slices of the same budget (reading every chunk the network
 * delivered in one turn — up to 2 MB — held the loop for 100-250 ms on a
 * busy machine). Chunks wait here only while the job or storage lags, and
 * past SNAP_WAITING_BYTES_MAX of them the link from the leader is not read
 * (TCP then stops the leader's stream) until they are under half of it. A
 * SNAP cut off before its SNAPEND changes nothing: the open snapshot is
 * aborted (never complete, recovery never reads it; the log is truncated
 * only at SNAPEND) and the half-built state dropped.
 *
 * At SNAPEND the install finishes the state in slices too (the same
 * budgets): a 1M-znode tree took ~7 s in one synchronous step, with no
 * heartbeat, peer link or admin request served meanwhile. While it runs the
 * peer is not stepped at all — its inputs wait in order (ticks are dropped:
 * to the peer no time passes), and the effects of the step that began it
 * are delivered only once the state has switched — so nothing (an ACK, a
 * commit, a read, a leadership) ever acts on a half-built state; the old
 * one stays in place until the new one is complete. Persisting the snapshot
 * goes on meanwhile.
 *
 * Pure: imports only shared/, server/core and server/zab; time, timers,
 * storage and links are ports.
 */
import { assert, fail } from '../../shared/assert.js'
import { formatZxid } from '../../shared/zxid.js'
import type { Timers } from '../core/clock.js'
import {
  decodePeerMessage,
  type Envelope,
  encodePeerMessage,
  type Input,
  LEADER_CONFIG_TRACE,
  LEADER_STATIC_CONFIG_TRACE,
  LOOKING_TRACE,
  type LogEntry,
  type Output,
  type PeerMessage,
  type PersistBatch,
  type ProposeResult,
  payloadBytes,
  type ReceivedSnapshot,
  type RoleEvent,
  type ServerId,
  type Snapshot,
  type SnapshotIn,
  type SnapshotStream,
  type ZabPeer,
} from '../zab/index.js'

/** A SNAP stream pauses while this much is waiting in the learner's link. */
const SNAP_BUFFERED_BYTES_MAX = 4 * 1024 * 1024
/** How often a paused SNAP stream looks at the link again. */
const SNAP_BACKOFF_MS = 2
/** Messages held for a learner behind its SNAP stream, at most (then the link is dropped). */
const SNAP_HELD_BYTES_MAX = 256 * 1024 * 1024
/** How long a SNAP install waits before trying again while the server's own snapshot is abandoned. */
const INSTALL_RETRY_MS = 5
/**
 * Received SNAP chunks waiting to be read by the RestoreJob or written to
 * storage (busy with the server's own snapshot, or above its high water
 * mark), at most: past it the link from the leader is not read until they
 * are under half of it.
 */
export const SNAP_WAITING_BYTES_MAX = 4 * 1024 * 1024

export type DoneCallback = (err: Error | undefined) => void

/**
 * Storage, as the driver needs it. Operations reach the disk in the order
 * issued; callbacks fire once the operation is durable. Appended entries
 * are reported durable through `ZabDriver.entriesDurable(upToZxid)`, and a
 * drained write buffer through `ZabDriver.drained()`.
 */
export interface DriverStorage {
  /** The server's own snapshot is being written (a SNAP install must wait for it to be abandoned). */
  readonly snapshotInProgress: boolean
  truncateAfter(zxid: number, cb: DoneCallback): void
  beginSnapshot(zxid: number): void
  /** False: above the high water mark; wait for `drained()` before the next chunk. */
  writeSnapshotChunk(chunk: Uint8Array): boolean
  finishSnapshot(meta: { zxidEnd: number; digest: string }, cb: DoneCallback): void
  /** Abandons the open snapshot (a SNAP cut off before its SNAPEND): it never becomes one recovery reads. */
  abortSnapshot(cb: DoneCallback): void
  append(entries: readonly LogEntry[]): void
  setEpochs(meta: { acceptedEpoch?: number; currentEpoch?: number }, cb: DoneCallback): void
  /** Durably records a key/value (STATIC_CONFIG_META_KEY: a static config taken from the leader). */
  setMeta(key: string, value: string, cb: DoneCallback): void
}

/**
 * The storage meta key of the static config taken from a leader
 * (PersistBatch.staticConfig): at startup it replaces the config file's
 * servers as the config in force until a reconfig (zab-replicator.ts).
 */
export const STATIC_CONFIG_META_KEY = 'zab.staticConfig'

/** The FIFO links to the other members; `conn` names one connection of a peer. */
export interface DriverTransport {
  /** False when that connection is gone (nothing was sent). */
  send(to: ServerId, bytes: Uint8Array, conn: number): boolean
  /** Closes the link to `peer` (its connection `conn`, when known). */
  drop(peer: ServerId, conn: number | undefined): void
  /** Bytes written to `peer` and not yet taken by the network. */
  bufferedBytes(peer: ServerId): number
  /**
   * Stops (true) or resumes (false) reading what `peer` sends: backpressure
   * on a SNAP arriving faster than storage takes it. Absent: never paused.
   */
  pauseReceiving?(peer: ServerId, paused: boolean): void
}

/** Time for the driver: a monotonic clock (slice budgets, durations), work deferred, and timers (server/core/clock.ts). */
export interface DriverTimers extends Timers {
  /** Milliseconds, monotonic; only differences are used. */
  now(): number
  /** Runs `fn` soon, after other pending work (setImmediate). */
  defer(fn: () => void): void
}

export interface DriverLogger {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
  debug(obj: object, msg: string): void
  isLevelEnabled(level: string): boolean
}

/**
 * Rebuilding the application's state from a SNAP (DriverHost.beginRestore):
 * fed its chunks as they arrive, then, after SNAPEND, run by the driver a
 * slice at a time. Until `step` returns true the old state is in place,
 * unchanged; then the new one has replaced it, at once. A job whose SNAP is
 * cut off is simply dropped.
 */
export interface RestoreJob {
  /** The snapshot's next chunk, in order (read now, so the job need not keep it). May throw on a malformed one. */
  push(chunk: Uint8Array): void
  /**
   * Every chunk is in: does about `budget` units of the remaining work
   * (znodes); true once the new state is in place. `endZxid`: SNAPEND's,
   * the highest zxid the snapshot may reflect.
   */
  step(budget: number, endZxid: number): boolean
}

/** `job`, with `done` run once, by the step that puts the new state in place. */
export function whenRestored(job: RestoreJob, done: () => void): RestoreJob {
  return {
    push: (chunk) => job.push(chunk),
    step: (budget, endZxid) => {
      if (!job.step(budget, endZxid)) return false
      done()
      return true
    },
  }
}

/** A RestoreJob that keeps the chunks and restores in its first step (a small state, tests). */
export function restoreAtOnce(zxid: number, restore: (s: Snapshot) => void): RestoreJob {
  const chunks: Uint8Array[] = []
  return {
    push: (chunk) => {
      chunks.push(chunk)
    },
    step: (_budget, endZxid) => {
      restore({ zxid, chunks, endZxid })
      return true
    },
  }
}

/** The application above ZAB: its state machine and what it must hear of. */
export interface DriverHost {
  /**
   * The highest zxid whose effects the application's state may hold: the
   * last applied, or the end of a fuzzy snapshot it was rebuilt from and has
   * not replayed past yet. Ends a SNAP stream (its chunks hold no more).
   */
  reflectsThrough(): number
  /** Abandons the application's own snapshot being written (a SNAP is about to be installed). */
  cancelSnapshot(): void
  /** A SNAP of the state after `zxid` begins to arrive: starts building its state aside (see RestoreJob). */
  beginRestore(zxid: number): RestoreJob
  commit(e: LogEntry): void
  /** An application payload from another member (forwarded request, or the leader's answer). */
  app(from: ServerId, payload: Uint8Array): void
  syncDone(requestId: number, zxid: number): void
  syncFailed(requestId: number): void
  role(ev: RoleEvent): void
  /** The peer's membership view changed (peer.membership): who the other members are, and where. */
  viewChanged?(): void
  /** A durability failure this server must not continue from. */
  fatal(err: Error): void
}

/** Optional instruments: the simulation's checkers and the server's stall monitor. */
export interface DriverProbes {
  /** Every output, before its effects run. */
  output?(out: Output): void
  /** Every message, just before it leaves (SNAP chunks and SNAPEND included). */
  sending?(to: ServerId, msg: PeerMessage): void
  /** Every internal event of the peer (election, sync phase…). */
  trace?(event: string): void
  /** Starts measuring event-loop stalls for a SNAP stream; `stop` reports them. */
  measureStalls?(): { stop(): object }
}

export interface ZabDriverOptions {
  readonly peer: ZabPeer
  readonly storage: DriverStorage
  readonly transport: DriverTransport
  readonly timers: DriverTimers
  readonly host: DriverHost
  readonly logger: DriverLogger
  readonly probes?: DriverProbes
  /** The longest a SNAP stream slice may take (ms). */
  readonly snapSliceMs: number
  /** Most chunks in one slice (the simulation's budget; time does not pass inside its events). */
  readonly snapSliceChunks?: () => number
  /** Most RestoreJob steps in one slice of a SNAP install (the simulation's budget, as snapSliceChunks). */
  readonly restoreSliceSteps?: () => number
  /** Units (znodes) of one RestoreJob step (default RESTORE_STEP_UNITS; the simulation takes few, for many steps). */
  readonly restoreStepUnits?: number
}

/** Units (znodes) a RestoreJob step does: ~1-3 ms of work, so a slice keeps to snapSliceMs. */
const RESTORE_STEP_UNITS = 2048

/**
 * A SNAP being received: its chunks go to storage as they come, and to the
 * job in read slices; `pending` holds those storage cannot take yet,
 * `unread` those the job has not read yet (the link from `from` is paused
 * past SNAP_WAITING_BYTES_MAX of them).
 */
interface Incoming {
  readonly zxid: number
  readonly from: ServerId
  readonly job: RestoreJob
  /** The snapshot is open in storage (after the server's own one was abandoned, if it was writing). */
  opened: boolean
  /** Storage is above its high water mark: chunks wait in `pending` until drained(). */
  full: boolean
  readonly pending: Uint8Array[]
  pendingBytes: number
  readonly unread: Uint8Array[]
  unreadBytes: number
  /** A read slice is scheduled. */
  reading: boolean
  /** Abandoned, or the driver closed: nothing more is read or written. */
  dropped: boolean
  paused: boolean
  chunks: number
  bytes: number
  /** When the SNAP header came (driver clock). */
  readonly started: number
  /** Stalls (and memory) from the SNAP header until the state switched. */
  readonly stalls: { stop(): object } | undefined
  /** The most chunk bytes waiting here at once, and how often the link was paused (for the install's log line). */
  waitingBytesPeak: number
  pauses: number
  /** A chunk the job could not read: the link is dropped, and an install of it would fail. */
  failed: boolean
  /** SNAPEND came: completes the snapshot in storage once every chunk is written. */
  end: (() => void) | undefined
}

/** A SNAP install in progress: the effects of the step that began it wait until the state switched. */
interface Restoring {
  /** The SNAP whose job builds the new state (its zxid is the install's). */
  readonly received: Incoming
  readonly endZxid: number
  readonly started: number
  readonly waiting: Output[]
  slices: number
  /** The longest slice, by the driver's clock. */
  sliceMaxMs: number
}

/** A SNAP being streamed to one learner, and the messages waiting behind it. */
interface SnapshotSend {
  readonly to: ServerId
  readonly conn: number
  readonly stream: SnapshotStream
  readonly held: Envelope[]
  heldBytes: number
  bytes: number
  readonly started: number
  readonly stalls: { stop(): object } | undefined
  /** Finished or abandoned: its stall measurement is stopped. */
  over: boolean
}

/** A persist batch in flight: the operations of it not yet durable. */
interface BatchState {
  readonly seq: number
  waiting: number
  lastEntryZxid: number
}

export class ZabDriver {
  readonly peer: ZabPeer
  private readonly storage: DriverStorage
  private readonly transport: DriverTransport
  private readonly timers: DriverTimers
  private readonly host: DriverHost
  private readonly logger: DriverLogger
  private readonly probes: DriverProbes
  private readonly snapSliceMs: number
  private readonly snapSliceChunks: (() => number) | undefined
  private readonly restoreSliceSteps: (() => number) | undefined
  private readonly restoreStepUnits: number
  /** A SNAP install rebuilding the state: the peer is not stepped meanwhile. */
  private restoring: Restoring | undefined
  private readonly batches: BatchState[] = []
  private readonly deferred: { afterSeq: number; envelopes: Envelope[] }[] = []
  private durableSeq = 0
  private lastIssuedSeq = 0
  private closed = false
  private stepping = false
  private readonly queue: { input: Input; conn: number | undefined }[] = []
  /** The link each peer's FIFO session runs on, as the state machine knows it. */
  private readonly conns = new Map<ServerId, number>()
  /** A SNAP install is issuing its chunks: later persist batches wait here, in order. */
  private installing = false
  private readonly persistQueue: { b: PersistBatch; state: BatchState }[] = []
  /** A SNAP being received (SNAP to SNAPEND, and until its chunks are all in storage). */
  private incoming: Incoming | undefined
  /** SNAP streams in progress, by learner. */
  private readonly snapSends = new Map<ServerId, SnapshotSend>()
  /** The membership view's version the host last heard of (viewChanged). */
  private viewVersion: number
  private lastEncoded: { msg: PeerMessage | undefined; bytes: Uint8Array } = {
    msg: undefined,
    bytes: new Uint8Array(0),
  }

  constructor(opts: ZabDriverOptions) {
    this.peer = opts.peer
    this.storage = opts.storage
    this.transport = opts.transport
    this.timers = opts.timers
    this.host = opts.host
    this.logger = opts.logger
    this.probes = opts.probes ?? {}
    this.snapSliceMs = opts.snapSliceMs
    this.snapSliceChunks = opts.snapSliceChunks
    this.viewVersion = opts.peer.membership.version
    this.restoreSliceSteps = opts.restoreSliceSteps
    this.restoreStepUnits = opts.restoreStepUnits ?? RESTORE_STEP_UNITS
  }

  // ------------------------------------------------------------ inputs

  tick(): void {
    this.step({ kind: 'tick' })
  }

  /** A message from `from`; a malformed one drops the link (the peer resyncs). */
  receive(from: ServerId, bytes: Uint8Array): void {
    if (this.closed) return
    let msg: PeerMessage
    try {
      msg = decodePeerMessage(bytes)
    } catch (err) {
      this.logger.warn(
        { component: 'peer', from, err: (err as Error).message },
        'malformed peer message; dropping link',
      )
      this.transport.drop(from, this.conns.get(from))
      return
    }
    this.step({ kind: 'message', from, msg })
  }

  /** A connection to `peer` came up: sends to it go on `conn` once the peer has heard of it. */
  peerConnected(peer: ServerId, conn: number): void {
    this.step({ kind: 'peerConnected', peer }, conn)
  }

  peerDisconnected(peer: ServerId): void {
    this.step({ kind: 'peerDisconnected', peer })
  }

  /** Leader: proposes `data`. Runs at once (nested), after the step that led here has finished. */
  propose(data: Uint8Array): ProposeResult | undefined {
    return this.stepNow({ kind: 'propose', data })?.proposed
  }

  appSend(to: ServerId, payload: Uint8Array): void {
    this.stepNow({ kind: 'appSend', to, payload })
  }

  sync(requestId: number): void {
    this.stepNow({ kind: 'sync', requestId })
  }

  /** Stops: nothing is stepped, sent or issued from here on. */
  close(): void {
    this.closed = true
    for (const s of this.snapSends.values()) this.abandonSnapshot(s, 'closed')
    if (this.incoming !== undefined) this.dropIncoming(this.incoming)
    this.incoming = undefined
    // An install cut short: its stall measurement (started at the SNAP header) ends here.
    this.restoring?.received.stalls?.stop()
  }

  get isClosed(): boolean {
    return this.closed
  }

  /**
   * A SNAP install is rebuilding the state: the application still holds its
   * old state (behind the peer's commit point) and the peer is not stepped.
   */
  get restoringSnapshot(): boolean {
    return this.restoring !== undefined
  }

  /** The highest persist batch known durable. */
  get durable(): number {
    return this.durableSeq
  }

  // ------------------------------------------------------------ stepping

  /**
   * Steps the peer for a network, timer or storage input. Such inputs raised
   * while an output is being handled are queued and run in order after it.
   */
  step(input: Input, conn?: number): Output | undefined {
    if (this.closed) return undefined
    // No time passes for the peer either while this server is behind reading a SNAP it received:
    // its own work, as the install after SNAPEND is, not the leader's (initLimit, syncLimit).
    if (input.kind === 'tick' && this.readingSnapshot()) return undefined
    if (this.stepping || this.restoring !== undefined) {
      // While a SNAP install runs no time passes for the peer (as while the install held the loop).
      if (input.kind !== 'tick' || this.restoring === undefined) this.queue.push({ input, conn })
      return undefined
    }
    this.stepping = true
    let first: Output | undefined
    try {
      let next: { input: Input; conn: number | undefined } | undefined = { input, conn }
      while (next !== undefined && !this.closed) {
        this.track(next.input, next.conn)
        const out = this.peer.step(next.input)
        first ??= out
        this.handle(out)
        // The rest waits for the install to finish (finishRestore steps it).
        if (this.restoring !== undefined) break
        next = this.queue.shift()
      }
    } finally {
      this.stepping = false
    }
    return first
  }

  /**
   * Inputs from the application (propose, appSend, sync) run at once, nested
   * if need be: the outer step has finished, and its effects that matter for
   * ordering (persist, sends) were carried out before commits and app
   * payloads, which is where the application acts.
   */
  private stepNow(input: Input): Output | undefined {
    if (this.closed) return undefined
    if (!this.stepping || this.restoring !== undefined) return this.step(input)
    const out = this.peer.step(input)
    this.handle(out)
    return out
  }

  private handle(out: Output): void {
    this.probes.output?.(out)
    if (this.peer.events.length > 0) this.drainEvents()
    for (const e of out.snapshotIn) this.receiveSnapshot(e)
    // The job that received the chunks finishes the install (persist may be done with `incoming`).
    const received = out.restore === undefined ? undefined : this.incoming
    // Sends first: a leader's PROPOSAL then leaves (at the end of this turn) before its own log
    // write, which storage may commit inline, blocking this thread for the fsync; issued the other
    // way round, the followers' fsyncs waited for the leader's instead of overlapping it (strace of
    // 3-node C=1 writes: PROPOSAL written 0.5-4.7 ms after the forwarded request, behind the fsync).
    // A sendNow message vouches for nothing durable, so it may leave before the batch is issued.
    for (const e of out.sendNow) this.send(e)
    if (out.persist !== undefined) this.persist(out.persist)
    if (out.sendAfterDurable.length > 0) {
      if (out.afterSeq <= this.durableSeq) for (const e of out.sendAfterDurable) this.send(e)
      else this.deferred.push({ afterSeq: out.afterSeq, envelopes: [...out.sendAfterDurable] })
    }
    for (const peer of out.disconnect) this.disconnect(peer)
    if (out.restore !== undefined) this.startRestore(out.restore, received)
    if (this.restoring !== undefined) this.restoring.waiting.push(out)
    else this.deliver(out)
    // After this step's sends: the COMMIT of a change that removes a server leaves before its link ends.
    // The links follow the view at once, a SNAP install or not (they are not the application's state).
    const view = this.peer.membership.version
    if (view !== this.viewVersion) {
      this.viewVersion = view
      this.host.viewChanged?.()
    }
  }

  /** The effects of `out` on the application, after its restore (if any) is complete. */
  private deliver(out: Output): void {
    for (const e of out.commit) this.host.commit(e)
    for (const a of out.app) this.host.app(a.from, a.payload)
    for (const s of out.syncDone) this.host.syncDone(s.requestId, s.zxid)
    for (const id of out.syncFailed) this.host.syncFailed(id)
    if (out.role !== undefined) this.host.role(out.role)
  }

  private drainEvents(): void {
    for (const ev of this.peer.events) {
      this.probes.trace?.(ev)
      // Why this server stopped following or leading is for the operator, not just traces.
      if (ev.startsWith(LOOKING_TRACE))
        this.logger.warn({ reason: ev.slice(LOOKING_TRACE.length) }, 'LOOKING')
      else if (ev.startsWith(LEADER_CONFIG_TRACE))
        this.logger.info(
          { config: ev.slice(LEADER_CONFIG_TRACE.length), view: this.peer.membership.describe() },
          "took the leader's membership config",
        )
      else if (ev.startsWith(LEADER_STATIC_CONFIG_TRACE))
        // The operator's --servers for this server is not the ensemble's: say so (a joiner's names itself).
        this.logger.warn(
          { config: ev.slice(LEADER_STATIC_CONFIG_TRACE.length), view: this.peer.membership.describe() },
          "took the leader's static config in place of --servers' (kept on disk; a reconfig may name this server)",
        )
      else if (this.logger.isLevelEnabled('debug')) this.logger.debug({ zab: ev }, 'zab event')
    }
    this.peer.events.length = 0
  }

  /** The FIFO session with `peer` is over: close its link, drop what waited for it. */
  private disconnect(peer: ServerId): void {
    const s = this.snapSends.get(peer)
    if (s !== undefined) this.abandonSnapshot(s, 'session closed')
    this.transport.drop(peer, this.conns.get(peer))
    for (const d of this.deferred) d.envelopes = d.envelopes.filter((e) => e.to !== peer)
  }

  /** Keeps `conns` in step with what the state machine has been told. */
  private track(input: Input, conn: number | undefined): void {
    if (input.kind === 'peerConnected' && conn !== undefined) this.conns.set(input.peer, conn)
    else if (input.kind === 'peerDisconnected') this.conns.delete(input.peer)
    else return
    // A stream belongs to its link: a new or lost link ends it (and what waited behind it).
    const s = this.snapSends.get(input.peer)
    if (s !== undefined) this.abandonSnapshot(s, 'link changed')
  }

  // ------------------------------------------------------------ SNAP install

  /** Finishes the state `job` built from `s`'s chunks; the first slice runs now (a small one is done at once). */
  private startRestore(s: ReceivedSnapshot, received: Incoming | undefined): void {
    assert(this.restoring === undefined, 'a SNAP install while another runs')
    assert(received !== undefined && received.zxid === s.zxid, 'a SNAP installed that was not received')
    this.restoring = {
      received,
      endZxid: s.endZxid,
      started: this.timers.now(),
      waiting: [],
      slices: 0,
      sliceMaxMs: 0,
    }
    this.restoreSlice(this.restoring)
  }

  /**
   * A slice of SNAP work starting now: true while one more step fits in it
   * (snapSliceMs by the clock, and at most `steps()` steps when the
   * simulation sets a budget). Sending, receiving and installing share it.
   */
  private slice(steps: (() => number) | undefined): () => boolean {
    const sliceEnd = this.timers.now() + this.snapSliceMs
    let budget = steps?.() ?? Number.POSITIVE_INFINITY
    return () => budget-- > 0 && this.timers.now() <= sliceEnd
  }

  /** One slice of the install: steps until the budget is spent; then yields, or finishes. */
  private restoreSlice(r: Restoring): void {
    if (this.closed || this.restoring !== r) return
    r.slices++
    const sliceStart = this.timers.now()
    const more = this.slice(this.restoreSliceSteps)
    let done = false
    try {
      while (!done && more()) done = this.restoreStep(r)
      r.sliceMaxMs = Math.max(r.sliceMaxMs, this.timers.now() - sliceStart)
    } catch (err) {
      // The peer has installed the snapshot already (its log restarts there): no way back.
      this.logger.warn({ err: (err as Error).message }, 'the snapshot from the leader cannot be installed')
      this.close()
      return this.host.fatal(err as Error)
    }
    if (done) return this.finishRestore(r)
    this.timers.defer(() => this.restoreSlice(r))
  }

  /** One step of an install: the next chunk not read yet, else `restoreStepUnits` of the job's finishing work. */
  private restoreStep(r: Restoring): boolean {
    const inc = r.received
    // A chunk it could not read: the peer has installed this snapshot, it cannot be.
    if (inc.failed) throw new Error('the snapshot from the leader had a malformed chunk')
    if (inc.unread.length > 0) {
      this.readChunk(inc)
      return false
    }
    return inc.job.step(this.restoreStepUnits, r.endZxid)
  }

  /** The new state is in place: deliver what waited for it, then step the inputs that queued. */
  private finishRestore(r: Restoring): void {
    this.restoring = undefined
    this.logger.info(
      {
        zxid: formatZxid(r.received.zxid),
        slices: r.slices,
        sliceMaxMs: Math.round(r.sliceMaxMs * 10) / 10,
        ms: Math.round(this.timers.now() - r.started),
        // Since the SNAP header: receiving (read as it came) and then finishing the state.
        totalMs: Math.round(this.timers.now() - r.received.started),
        chunks: r.received.chunks,
        bytes: r.received.bytes,
        waitingBytesPeak: r.received.waitingBytesPeak,
        pauses: r.received.pauses,
        ...r.received.stalls?.stop(),
      },
      'snapshot installed (SNAP)',
    )
    // Finished in the first slice, inside the step that began it: that step delivers and goes on.
    if (this.stepping) return
    // As inside a step: what the application does meanwhile (propose, appSend) runs nested,
    // and inputs that arrive wait, so these effects stay in order.
    this.stepping = true
    try {
      for (const out of r.waiting) {
        if (this.closed) return
        this.deliver(out)
      }
    } finally {
      this.stepping = false
    }
    const next = this.queue.shift()
    if (next !== undefined) this.step(next.input, next.conn)
  }

  // ------------------------------------------------------------ sending

  private send(e: Envelope): void {
    const streaming = this.snapSends.size === 0 ? undefined : this.snapSends.get(e.to)
    if (streaming !== undefined) return this.holdBehindSnapshot(streaming, e)
    const conn = this.conns.get(e.to)
    if (conn === undefined) return
    if (e.stream !== undefined) return this.startSnapshot(e.to, conn, e.stream)
    this.probes.sending?.(e.to, e.msg)
    // A broadcast (PROPOSAL, COMMIT) is one message object for every follower: encode it once.
    if (e.msg !== this.lastEncoded.msg) this.lastEncoded = { msg: e.msg, bytes: encodePeerMessage(e.msg) }
    this.transport.send(e.to, this.lastEncoded.bytes, conn)
  }

  private sendRaw(s: SnapshotSend, msg: PeerMessage): boolean {
    this.probes.sending?.(s.to, msg)
    const bytes = encodePeerMessage(msg)
    s.bytes += bytes.length
    return this.transport.send(s.to, bytes, s.conn)
  }

  private startSnapshot(to: ServerId, conn: number, stream: SnapshotStream): void {
    const s: SnapshotSend = {
      to,
      conn,
      stream,
      held: [],
      heldBytes: 0,
      bytes: 0,
      started: this.timers.now(),
      stalls: this.probes.measureStalls?.(),
      over: false,
    }
    if (!this.sendRaw(s, stream.header())) {
      s.stalls?.stop()
      return
    }
    this.snapSends.set(to, s)
    this.logger.info({ peer: to, zxid: formatZxid(stream.zxid) }, 'sending a snapshot (SNAP)')
    this.timers.defer(() => this.pumpSnapshot(s))
  }

  /** Sends chunks for one slice, then yields; pauses while the link is full. */
  private pumpSnapshot(s: SnapshotSend): void {
    if (this.closed || this.snapSends.get(s.to) !== s)
      return this.abandonSnapshot(s, 'link or leadership gone')
    const more = this.slice(this.snapSliceChunks)
    while (more()) {
      if (this.transport.bufferedBytes(s.to) > SNAP_BUFFERED_BYTES_MAX) {
        this.timers.after(SNAP_BACKOFF_MS, () => this.pumpSnapshot(s))
        return
      }
      const chunk = s.stream.next()
      if (chunk === undefined) return this.finishSnapshot(s)
      if (!this.sendRaw(s, chunk)) return this.abandonSnapshot(s, 'link gone')
    }
    this.timers.defer(() => this.pumpSnapshot(s))
  }

  private finishSnapshot(s: SnapshotSend): void {
    // Every chunk was written by now: nothing in them is newer than what the tree may hold now.
    const end = s.stream.end(this.host.reflectsThrough())
    this.sendRaw(s, end)
    this.snapSends.delete(s.to)
    s.over = true
    this.logger.info(
      {
        peer: s.to,
        zxid: formatZxid(s.stream.zxid),
        endZxid: formatZxid(end.endZxid),
        chunks: end.chunkCount,
        bytes: s.bytes,
        held: s.held.length,
        ms: Math.round(this.timers.now() - s.started),
        ...s.stalls?.stop(),
      },
      'snapshot sent',
    )
    // In order; a message may start another stream, and those after it wait for that one.
    for (const e of s.held) this.send(e)
  }

  /** A stream that will not finish (its link or this leadership ended): stop measuring, say so. */
  private abandonSnapshot(s: SnapshotSend, why: string): void {
    if (this.snapSends.get(s.to) === s) this.snapSends.delete(s.to)
    if (s.over) return
    s.over = true
    const stalls = s.stalls?.stop()
    if (!this.closed)
      this.logger.info({ peer: s.to, why, bytes: s.bytes, ...stalls }, 'snapshot stream abandoned')
  }

  private holdBehindSnapshot(s: SnapshotSend, e: Envelope): void {
    s.held.push(e)
    // Its payload plus a little for the fixed fields and framing.
    s.heldBytes += payloadBytes(e.msg) + 32
    if (s.heldBytes <= SNAP_HELD_BYTES_MAX) return
    this.logger.warn(
      { peer: s.to, heldBytes: s.heldBytes },
      'too much waiting behind a snapshot stream; dropping the link (the learner will sync again)',
    )
    this.abandonSnapshot(s, 'too much held behind it')
    this.transport.drop(s.to, s.conn)
  }

  // ------------------------------------------------------------ persisting

  /**
   * Issues a persist batch to storage, in order. A batch counts as waiting
   * until all of it is issued: the batch of a SNAPEND waits until every
   * chunk received is written (they go out with flow control: past the
   * storage's high water mark they wait for it to drain, so a snapshot
   * larger than its pendingBytesMax installs too), and batches that come
   * meanwhile wait behind it, because storage applies operations in the
   * order issued.
   */
  private persist(b: PersistBatch): void {
    if (b.seq !== this.lastIssuedSeq + 1) fail(`persist batch ${b.seq} after ${this.lastIssuedSeq}`)
    this.lastIssuedSeq = b.seq
    const state: BatchState = { seq: b.seq, waiting: 1, lastEntryZxid: 0 }
    this.batches.push(state)
    if (this.installing) this.persistQueue.push({ b, state })
    else this.issue(b, state)
  }

  private doneFor(state: BatchState): DoneCallback {
    return (err) => {
      if (err) return this.host.fatal(err)
      state.waiting--
      this.advance()
    }
  }

  private issue(b: PersistBatch, state: BatchState): void {
    if (b.snapshot === undefined) return this.issueRest(b, state)
    const s = b.snapshot
    const inc = this.incoming
    assert(inc !== undefined && inc.zxid === s.zxid, 'a SNAP persisted that was not received')
    if (inc.chunks !== s.chunkCount) fail(`SNAPEND after ${s.chunkCount} chunks, ${inc.chunks} received`)
    this.installing = true
    inc.end = () => {
      this.incoming = undefined
      // The log restarts after the snapshot. Truncating only now, at SNAPEND: a SNAP cut off
      // before it leaves the log whole. Truncation marks complete snapshots that end past its
      // point as garbage; this one, still open, is completed right after it.
      state.waiting += 2
      this.storage.truncateAfter(s.zxid, this.doneFor(state))
      // Fuzzy through endZxid: recovery replays the log over it up to there.
      this.storage.finishSnapshot({ zxidEnd: s.endZxid, digest: '' }, this.doneFor(state))
      this.installing = false
      this.issueRest(b, state)
      while (!this.installing && this.persistQueue.length > 0) {
        const next = this.persistQueue.shift()!
        this.issue(next.b, next.state)
      }
    }
    this.writePending(inc)
  }

  // ------------------------------------------------------------ SNAP receipt

  /** Chunks of a SNAP received wait to be read (or the link is paused for them). */
  private readingSnapshot(): boolean {
    const inc = this.incoming
    return inc !== undefined && !inc.dropped && (inc.unread.length > 0 || inc.paused)
  }

  /** One piece of a SNAP arriving (see Incoming). */
  private receiveSnapshot(e: SnapshotIn): void {
    if (e.kind === 'begin') {
      assert(this.incoming === undefined, 'a SNAP begun while another arrives')
      const inc: Incoming = {
        zxid: e.zxid,
        from: e.from,
        job: this.host.beginRestore(e.zxid),
        opened: false,
        full: false,
        pending: [],
        pendingBytes: 0,
        unread: [],
        unreadBytes: 0,
        reading: false,
        dropped: false,
        paused: false,
        chunks: 0,
        bytes: 0,
        started: this.timers.now(),
        stalls: this.probes.measureStalls?.(),
        waitingBytesPeak: 0,
        pauses: 0,
        failed: false,
        end: undefined,
      }
      this.incoming = inc
      return this.openIncoming(inc)
    }
    const inc = this.incoming
    if (inc === undefined) fail(`SNAP ${e.kind} with none arriving`)
    if (e.kind === 'abandon') return this.abandonIncoming(inc)
    inc.chunks++
    inc.bytes += e.data.length
    if (inc.opened && !inc.full && inc.pending.length === 0) {
      if (!this.storage.writeSnapshotChunk(e.data)) inc.full = true
    } else {
      inc.pending.push(e.data)
      inc.pendingBytes += e.data.length
    }
    if (!inc.failed) {
      inc.unread.push(e.data)
      inc.unreadBytes += e.data.length
      this.scheduleRead(inc)
    }
    this.checkWindow(inc)
  }

  /**
   * Pauses the link from the leader past SNAP_WAITING_BYTES_MAX of chunks
   * waiting, resumes it under half. `unread` and `pending` are both suffixes
   * of the chunks received, so together they hold the longer of the two.
   */
  private checkWindow(inc: Incoming): void {
    const waiting = Math.max(inc.unreadBytes, inc.pendingBytes)
    inc.waitingBytesPeak = Math.max(inc.waitingBytesPeak, waiting)
    if (!inc.paused && !inc.dropped && waiting > SNAP_WAITING_BYTES_MAX && this.transport.pauseReceiving) {
      inc.paused = true
      inc.pauses++
      this.transport.pauseReceiving(inc.from, true)
    } else if (inc.paused && (inc.dropped || waiting <= SNAP_WAITING_BYTES_MAX / 2)) {
      inc.paused = false
      this.transport.pauseReceiving?.(inc.from, false)
    }
  }

  private scheduleRead(inc: Incoming): void {
    if (inc.reading) return
    inc.reading = true
    this.timers.defer(() => this.readSlice(inc))
  }

  /** Reads waiting chunks into the job for one slice (once the install runs, its slices read them). */
  private readSlice(inc: Incoming): void {
    inc.reading = false
    if (this.closed || inc.dropped || this.restoring?.received === inc) return
    const more = this.slice(this.restoreSliceSteps)
    while (inc.unread.length > 0 && !inc.failed && more()) this.readChunk(inc)
    if (inc.unread.length > 0 && !inc.failed) this.scheduleRead(inc)
  }

  /** The job reads the next chunk into the state it builds. Before SNAPEND, one it cannot read ends the SNAP. */
  private readChunk(inc: Incoming): void {
    const chunk = inc.unread.shift()!
    inc.unreadBytes -= chunk.length
    try {
      inc.job.push(chunk)
    } catch (err) {
      // Installing (after SNAPEND): the restore slice makes it fatal.
      if (this.restoring?.received === inc) throw err
      // Nothing is installed yet: drop the link and sync again (the core abandons the SNAP).
      inc.failed = true
      inc.unread.length = 0
      inc.unreadBytes = 0
      this.logger.warn(
        { peer: inc.from, err: (err as Error).message },
        'a malformed SNAP chunk from the leader; dropping the link',
      )
      this.transport.drop(inc.from, this.conns.get(inc.from))
    }
    this.checkWindow(inc)
  }

  /** Opens the snapshot in storage, once the server's own one (one at a time) is abandoned. */
  private openIncoming(inc: Incoming): void {
    if (this.closed || this.incoming !== inc) return
    if (this.storage.snapshotInProgress) {
      this.host.cancelSnapshot()
      this.timers.after(INSTALL_RETRY_MS, () => this.openIncoming(inc))
      return
    }
    this.storage.beginSnapshot(inc.zxid)
    inc.opened = true
    this.writePending(inc)
  }

  /** Writes waiting chunks until storage is full; resumes the link below half the limit; ends once all are in. */
  private writePending(inc: Incoming): void {
    if (this.closed || this.incoming !== inc || !inc.opened) return
    let n = 0
    while (!inc.full && n < inc.pending.length) {
      const c = inc.pending[n++]!
      inc.pendingBytes -= c.length
      if (!this.storage.writeSnapshotChunk(c)) inc.full = true
    }
    inc.pending.splice(0, n)
    this.checkWindow(inc)
    if (inc.pending.length === 0 && inc.end !== undefined) inc.end()
  }

  /** The SNAP ended before its SNAPEND: its open snapshot is aborted, its state dropped. */
  private abandonIncoming(inc: Incoming): void {
    this.incoming = undefined
    const stalls = this.dropIncoming(inc)
    this.logger.info(
      {
        peer: inc.from,
        zxid: formatZxid(inc.zxid),
        chunks: inc.chunks,
        bytes: inc.bytes,
        ...stalls,
      },
      'snapshot from the leader abandoned before its SNAPEND (nothing of it installed)',
    )
    if (!inc.opened || this.closed) return
    this.storage.abortSnapshot((err) => {
      if (err) this.host.fatal(err)
    })
  }

  /** Nothing more of `inc` is read or written; the link is read again. Returns its stall measurement. */
  private dropIncoming(inc: Incoming): object | undefined {
    inc.dropped = true
    inc.unread.length = 0
    inc.unreadBytes = 0
    inc.pending.length = 0
    inc.pendingBytes = 0
    this.checkWindow(inc)
    return inc.stalls?.stop()
  }

  /** Truncation, entries and epochs of a batch (after its snapshot, if any); then it is all issued. */
  private issueRest(b: PersistBatch, state: BatchState): void {
    if (b.truncateAfterZxid !== undefined) {
      state.waiting++
      this.storage.truncateAfter(b.truncateAfterZxid, this.doneFor(state))
    }
    if (b.entries.length > 0) {
      state.lastEntryZxid = b.entries[b.entries.length - 1]!.zxid
      state.waiting++
      this.storage.append(b.entries)
    }
    if (b.staticConfig !== undefined) {
      state.waiting++
      this.storage.setMeta(STATIC_CONFIG_META_KEY, b.staticConfig, this.doneFor(state))
    }
    // History before currentEpoch: the epochs go last, so they never become durable ahead of it.
    if (b.meta !== undefined) {
      state.waiting++
      this.storage.setEpochs(b.meta, this.doneFor(state))
    }
    state.waiting--
    if (state.waiting === 0) this.timers.defer(() => this.advance())
  }

  /** Storage: every appended entry with zxid <= `upTo` is durable. */
  entriesDurable(upTo: number): void {
    for (const b of this.batches) {
      if (b.lastEntryZxid !== 0 && b.lastEntryZxid <= upTo) {
        b.lastEntryZxid = 0
        b.waiting--
      }
    }
    this.advance()
  }

  /** Storage: the write buffer drained below its high water mark. */
  drained(): void {
    const inc = this.incoming
    if (inc === undefined || !inc.full) return
    inc.full = false
    this.writePending(inc)
  }

  /** Reports durability for the completed prefix of batches, then releases messages waiting on it. */
  private advance(): void {
    if (this.closed) return
    let seq = this.durableSeq
    while (this.batches.length > 0 && this.batches[0]!.waiting === 0) seq = this.batches.shift()!.seq
    if (seq === this.durableSeq) return
    assert(seq > this.durableSeq, 'durable sequence went back')
    assert(seq <= this.lastIssuedSeq, 'durable beyond the last batch issued')
    this.durableSeq = seq
    while (this.deferred.length > 0 && this.deferred[0]!.afterSeq <= seq) {
      for (const e of this.deferred.shift()!.envelopes) this.send(e)
    }
    this.step({ kind: 'durable', seq })
  }
}
