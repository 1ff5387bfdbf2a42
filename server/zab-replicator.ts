/**
 * ZabReplicator: runs the pure ZabPeer (server/zab) for one ensemble
 * member. It is the only place where ZAB meets I/O: it feeds the peer
 * ticks, peer messages and durability reports, and carries out its effects —
 * persist batches to storage in order, messages to peers (those that vouch
 * for data only after the batch they depend on is durable), commits to the
 * server, role changes, syncs and application payloads.
 *
 * Durability order inside one batch (storage applies operations in the
 * order issued): snapshot (after the truncation it implies), truncation,
 * entries, then epochs — history before currentEpoch (ZOOKEEPER-4646).
 *
 * A SNAP to a learner is streamed in slices of at most SNAP_SLICE_MS, with
 * at most SNAP_BUFFERED_BYTES_MAX waiting in the link: the snapshot is the
 * live tree written out while it keeps changing (fuzzy), so the leader goes
 * on serving meanwhile, and SNAPEND tells the learner which entries it may
 * already reflect. Everything else for that learner waits behind the stream
 * (bounded by SNAP_HELD_BYTES_MAX; past it the link is dropped and the
 * learner syncs again).
 */
import type { Logger } from 'pino'
import { assert } from '../shared/assert.js'
import { formatZxid, makeZxid, zxidEpoch } from '../shared/zxid.js'
import type { ServerConfig } from './config.js'
import { Prng } from './core/prng.js'
import { PeerTransport } from './net/peer-transport.js'
import type { Replicator, ReplicatorEvents, Role } from './replicator.js'
import { StallMonitor } from './stall-monitor.js'
import type { Storage } from './storage/index.js'
import {
  decodePeerMessage,
  type Envelope,
  encodePeerMessage,
  type Input,
  LOOKING_TRACE,
  type LogEntry,
  type Output,
  type PeerMessage,
  type PersistBatch,
  payloadBytes,
  type Snapshot,
  type SnapshotStream,
  ZabPeer,
} from './zab/index.js'

/** ZAB's clock: a tick every 50 ms, whatever tickTime is, so elections take milliseconds, not seconds. */
export const ZAB_TICK_MS = 50
/** The longest a SNAP stream holds the event loop at a time. */
const SNAP_SLICE_MS = 5
/** A SNAP stream pauses while this much is waiting in the learner's link. */
const SNAP_BUFFERED_BYTES_MAX = 4 * 1024 * 1024
/** How often a paused SNAP stream looks at the link again. */
const SNAP_BACKOFF_MS = 2
/**
 * Most bytes a DIFF reads from the txn log at once, on the event loop
 * (reading 10,000 entries of 1 KiB took 60-260 ms here; 2 MiB, 12-50 ms).
 * A learner further behind gets a SNAP, which is streamed.
 */
const HISTORY_DIFF_BYTES_MAX = 2 * 1024 * 1024
/** Messages held for a learner behind its SNAP stream, at most (then the link is dropped). */
const SNAP_HELD_BYTES_MAX = 256 * 1024 * 1024

/** A SNAP being streamed to one learner, and the messages waiting behind it. */
interface SnapshotSend {
  readonly to: number
  readonly conn: number
  readonly stream: SnapshotStream
  readonly held: Envelope[]
  heldBytes: number
  bytes: number
  readonly started: number
  readonly stalls: StallMonitor
  /** Finished or abandoned: its stall monitor is stopped. */
  over: boolean
}

export interface ZabHost {
  storage: Storage
  /** Durable log entries after the snapshot the tree was rebuilt from. */
  log: LogEntry[]
  snapshotZxid: number
  /** The application's snapshot at its last applied entry; chunks may be produced lazily (fuzzy). */
  takeSnapshot(): { zxid: number; chunks: Iterable<Uint8Array> }
  /**
   * The highest zxid whose effects the application's state may hold: the
   * last applied, or the end of a fuzzy snapshot it was rebuilt from and has
   * not replayed past yet. Ends a SNAP stream (its chunks hold no more).
   */
  reflectsThrough(): number
  /** Abandons the application's own snapshot being written (a SNAP is about to be installed). */
  cancelSnapshot(): void
  restoreSnapshot(s: Snapshot): void
}

interface BatchState {
  seq: number
  waiting: number
  lastEntryZxid: number
}

const ROLE: Record<string, Role> = {
  LOOKING: 'looking',
  FOLLOWING: 'following',
  LEADING: 'leading',
  OBSERVING: 'observing',
}

export class ZabReplicator implements Replicator {
  role: Role = 'looking'
  epoch = 0
  historyEnd = 0
  private readonly peer: ZabPeer
  private readonly transport: PeerTransport
  private readonly batches: BatchState[] = []
  private readonly deferred: { afterSeq: number; envelopes: readonly Envelope[] }[] = []
  private durableSeq = 0
  private timer: NodeJS.Timeout | undefined
  private leaderId: number | undefined
  private closed = false
  private stepping = false
  private readonly queue: { input: Input; conn: number | undefined }[] = []
  /** The link each peer's FIFO session runs on, as the state machine knows it. */
  private readonly conns = new Map<number, number>()
  /** A SNAP install is issuing its chunks: later persist batches wait here, in order. */
  private installing = false
  private readonly persistQueue: { b: PersistBatch; state: BatchState }[] = []
  /** Continues a SNAP install's chunks once the storage has drained. */
  private resumeInstall: (() => void) | undefined
  /** SNAP streams in progress, by learner. */
  private readonly snapSends = new Map<number, SnapshotSend>()
  private lastEncoded: { msg: PeerMessage | undefined; bytes: Uint8Array } = {
    msg: undefined,
    bytes: new Uint8Array(0),
  }

  constructor(
    readonly config: ServerConfig,
    private readonly host: ZabHost,
    private readonly events: ReplicatorEvents,
    private readonly logger: Logger,
    secret: string,
  ) {
    const voters = config.servers.filter((s) => !s.observer).map((s) => s.id)
    const observers = config.servers.filter((s) => s.observer).map((s) => s.id)
    const epochs = host.storage.epochs
    const ticks = (n: number) => Math.max(2, Math.ceil((n * config.tickTime) / ZAB_TICK_MS))
    this.peer = new ZabPeer({
      id: config.serverId,
      voters,
      observers,
      initLimitTicks: ticks(config.initLimit),
      syncLimitTicks: ticks(config.syncLimit),
      finalizeWaitTicks: 2,
      prng: new Prng((config.serverId * 2654435761 + Date.now()) >>> 0),
      persisted: {
        acceptedEpoch: epochs.acceptedEpoch,
        currentEpoch: epochs.currentEpoch,
        snapshotZxid: host.snapshotZxid,
        log: host.log,
      },
      snapshots: { takeSnapshot: () => host.takeSnapshot() },
      history: { read: (from, max) => this.readHistory(from, max) },
    })
    const self = config.servers.find((s) => s.id === config.serverId)
    assert(self !== undefined, 'this server is not in the servers list')
    this.transport = new PeerTransport({
      selfId: config.serverId,
      listenHost: self.host,
      listenPort: self.peerPort,
      peers: config.servers
        .filter((s) => s.id !== config.serverId)
        .map((s) => ({ id: s.id, host: s.host, port: s.peerPort })),
      secret,
      messageBytesMax: config.frameBytesMax * 2,
      onMessage: (from, payload) => this.onPeerMessage(from, payload),
      onUp: (peer, conn) => {
        this.logger.debug({ peer, conn }, 'peer link up')
        this.step({ kind: 'peerConnected', peer }, false, conn)
      },
      onDown: (peer) => {
        this.logger.debug({ peer }, 'peer link down')
        this.step({ kind: 'peerDisconnected', peer })
      },
      onWarn: (msg, detail) => this.logger.warn({ component: 'peer', ...detail }, msg),
    })
    host.storage.onDurable((upTo) => this.entriesDurable(upTo))
    host.storage.onDrain(() => {
      const resume = this.resumeInstall
      this.resumeInstall = undefined
      resume?.()
    })
  }

  async start(): Promise<void> {
    await this.transport.start()
    this.timer = setInterval(() => this.step({ kind: 'tick' }), ZAB_TICK_MS)
    this.step({ kind: 'tick' })
  }

  /** Test hook (CONCLAVE_FAULTS): partition this server from some peers. */
  setBlockedPeers(ids: number[]): void {
    this.transport.setBlocked(ids)
  }

  private onPeerMessage(from: number, payload: Uint8Array): void {
    let msg: ReturnType<typeof decodePeerMessage>
    try {
      msg = decodePeerMessage(payload)
    } catch (err) {
      this.logger.warn(
        { component: 'peer', from, err: (err as Error).message },
        'malformed peer message; dropping link',
      )
      this.transport.drop(from)
      return
    }
    this.step({ kind: 'message', from, msg })
  }

  /**
   * Steps the peer. Network and timer inputs raised while an output is being
   * handled are queued; inputs from the application (propose, appSend, sync)
   * run at once, nested: the outer step has finished, and its effects that
   * matter for ordering (persist, sends) were carried out before commits and
   * app payloads, which is where the application acts.
   */
  private step(input: Input, nested = false, conn?: number): Output | undefined {
    if (this.closed) return undefined
    if (this.stepping && !nested) {
      this.queue.push({ input, conn })
      return undefined
    }
    if (this.stepping) {
      const out = this.peer.step(input)
      this.handle(out)
      return out
    }
    this.stepping = true
    let first: Output | undefined
    try {
      let next: { input: Input; conn: number | undefined } | undefined = { input, conn }
      while (next !== undefined) {
        this.track(next.input, next.conn)
        const out = this.peer.step(next.input)
        first ??= out
        this.handle(out)
        next = this.queue.shift()
      }
    } finally {
      this.stepping = false
    }
    return first
  }

  private handle(out: Output): void {
    if (this.peer.events.length > 0) {
      for (const ev of this.peer.events) {
        // Why this server stopped following or leading is for the operator, not just traces.
        if (ev.startsWith(LOOKING_TRACE))
          this.logger.warn({ reason: ev.slice(LOOKING_TRACE.length) }, 'LOOKING')
        else if (this.logger.isLevelEnabled('debug')) this.logger.debug({ zab: ev }, 'zab event')
      }
      this.peer.events.length = 0
    }
    if (out.persist !== undefined) this.persist(out.persist)
    for (const e of out.sendNow) this.send(e)
    if (out.sendAfterDurable.length > 0) {
      if (out.afterSeq <= this.durableSeq) for (const e of out.sendAfterDurable) this.send(e)
      else this.deferred.push({ afterSeq: out.afterSeq, envelopes: out.sendAfterDurable })
    }
    for (const peer of out.disconnect) {
      this.snapSends.delete(peer)
      this.transport.drop(peer)
      for (const d of this.deferred) d.envelopes = d.envelopes.filter((e) => e.to !== peer) as Envelope[]
    }
    if (out.restore !== undefined) this.host.restoreSnapshot(out.restore)
    for (const e of out.commit) this.events.commit(e.zxid, e.data)
    for (const a of out.app) {
      if (this.role === 'leading') this.events.forwarded(a.from, a.payload)
      else this.events.leaderMessage(a.payload)
    }
    for (const s of out.syncDone) this.events.syncDone(s.requestId)
    for (const id of out.syncFailed) this.events.syncFailed?.(id)
    if (out.role !== undefined) {
      this.role = ROLE[out.role.role] ?? 'looking'
      if (!out.role.serving && this.role !== 'looking') this.role = 'looking'
      this.epoch = out.role.epoch
      this.leaderId = out.role.leaderId
      // No proposal of the new epoch exists yet: the log's end is the history taken over.
      if (this.role === 'leading') this.historyEnd = this.peer.status().lastZxid
      this.events.role(this.role, this.epoch)
    }
  }

  /** Keeps `conns` in step with what the state machine has been told. */
  private track(input: Input, conn: number | undefined): void {
    if (input.kind === 'peerConnected' && conn !== undefined) this.conns.set(input.peer, conn)
    else if (input.kind === 'peerDisconnected') this.conns.delete(input.peer)
    else return
    // A stream belongs to its link: a new or lost link ends it (and what waited behind it).
    this.snapSends.delete(input.peer)
  }

  private send(e: Envelope): void {
    const streaming = this.snapSends.size === 0 ? undefined : this.snapSends.get(e.to)
    if (streaming !== undefined) return this.holdBehindSnapshot(streaming, e)
    const conn = this.conns.get(e.to)
    if (conn === undefined) return
    if (e.stream !== undefined) return this.startSnapshot(e.to, conn, e.stream)
    // A broadcast (PROPOSAL, COMMIT) is one message object for every follower: encode it once.
    if (e.msg !== this.lastEncoded.msg) this.lastEncoded = { msg: e.msg, bytes: encodePeerMessage(e.msg) }
    this.transport.send(e.to, this.lastEncoded.bytes, conn)
  }

  /**
   * Durable log entries from `from` on, for a DIFF older than the in-memory
   * log: only where the log is one stretch of history (after the newest
   * snapshot's start). Synchronous SQLite reads, bounded by `max`. A failed
   * read costs a SNAP, not the leadership.
   */
  private readHistory(from: number, max: number): readonly LogEntry[] {
    const storage = this.host.storage
    try {
      if (from < storage.contiguousLogFrom()) return []
      return storage.readLogFrom(from, max, HISTORY_DIFF_BYTES_MAX)
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message },
        'could not read the txn log for a DIFF; sending a snapshot',
      )
      return []
    }
  }

  private startSnapshot(to: number, conn: number, stream: SnapshotStream): void {
    const header = encodePeerMessage(stream.header())
    if (!this.transport.send(to, header, conn)) return
    const s: SnapshotSend = {
      to,
      conn,
      stream,
      held: [],
      heldBytes: 0,
      bytes: header.length,
      started: performance.now(),
      stalls: new StallMonitor(),
      over: false,
    }
    this.snapSends.set(to, s)
    this.logger.info({ peer: to, zxid: formatZxid(stream.zxid) }, 'sending a snapshot (SNAP)')
    setImmediate(() => this.pumpSnapshot(s))
  }

  /** Sends chunks for one slice, then yields; pauses while the link is full. */
  private pumpSnapshot(s: SnapshotSend): void {
    if (this.closed || this.snapSends.get(s.to) !== s)
      return this.abandonSnapshot(s, 'link or leadership gone')
    const sliceEnd = performance.now() + SNAP_SLICE_MS
    while (performance.now() < sliceEnd) {
      if (this.transport.bufferedBytes(s.to) > SNAP_BUFFERED_BYTES_MAX) {
        setTimeout(() => this.pumpSnapshot(s), SNAP_BACKOFF_MS).unref()
        return
      }
      const chunk = s.stream.next()
      if (chunk === undefined) return this.finishSnapshot(s)
      const bytes = encodePeerMessage(chunk)
      s.bytes += bytes.length
      if (!this.transport.send(s.to, bytes, s.conn)) return this.abandonSnapshot(s, 'link gone')
    }
    setImmediate(() => this.pumpSnapshot(s))
  }

  private finishSnapshot(s: SnapshotSend): void {
    // Every chunk was written by now: nothing in them is newer than what the tree may hold now.
    const end = s.stream.end(this.host.reflectsThrough())
    this.transport.send(s.to, encodePeerMessage(end), s.conn)
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
        ms: Math.round(performance.now() - s.started),
        ...s.stalls.stop(),
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
    const stalls = s.stalls.stop()
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
    this.transport.drop(s.to)
  }

  /**
   * Issues a persist batch to storage, in order. A batch counts as waiting
   * until all of it is issued: a SNAP's chunks go out with flow control
   * (past the storage's high water mark they wait for it to drain, so a
   * snapshot larger than its pendingBytesMax installs too), and batches
   * that come meanwhile wait behind it, because storage applies operations
   * in the order issued.
   */
  private persist(b: PersistBatch): void {
    const state: BatchState = { seq: b.seq, waiting: 1, lastEntryZxid: 0 }
    this.batches.push(state)
    if (this.installing) this.persistQueue.push({ b, state })
    else this.issue(b, state)
  }

  private doneFor(state: BatchState): (err: Error | undefined) => void {
    return (err) => {
      if (err) return this.events.fatal(err)
      state.waiting--
      this.advance()
    }
  }

  private issue(b: PersistBatch, state: BatchState): void {
    if (b.snapshot === undefined) return this.issueRest(b, state)
    const storage = this.host.storage
    this.installing = true
    if (storage.snapshotInProgress) {
      // This server's own snapshot is being written (one at a time): it is abandoned, then this one.
      this.host.cancelSnapshot()
      setTimeout(() => {
        if (!this.closed) this.issue(b, state)
      }, 5).unref()
      return
    }
    // The log restarts after the snapshot. Truncating first: truncation marks every
    // snapshot that ends past its point as garbage, and this one (fuzzy) can.
    state.waiting++
    storage.truncateAfter(b.snapshot.zxid, this.doneFor(state))
    storage.beginSnapshot(b.snapshot.zxid)
    this.writeChunks(b, state, 0)
  }

  private writeChunks(b: PersistBatch, state: BatchState, from: number): void {
    if (this.closed) return
    const s = b.snapshot!
    const storage = this.host.storage
    for (let i = from; i < s.chunks.length; i++) {
      if (!storage.writeSnapshotChunk(s.chunks[i]!)) {
        this.resumeInstall = () => this.writeChunks(b, state, i + 1)
        return
      }
    }
    state.waiting++
    // Fuzzy through endZxid: recovery replays the log over it up to there.
    storage.finishSnapshot({ zxidEnd: s.endZxid ?? s.zxid, digest: '' }, this.doneFor(state))
    this.installing = false
    this.issueRest(b, state)
    while (!this.installing && this.persistQueue.length > 0) {
      const next = this.persistQueue.shift()!
      this.issue(next.b, next.state)
    }
  }

  /** Truncation, entries and epochs of a batch (after its snapshot, if any); then it is all issued. */
  private issueRest(b: PersistBatch, state: BatchState): void {
    const storage = this.host.storage
    if (b.truncateAfterZxid !== undefined) {
      state.waiting++
      storage.truncateAfter(b.truncateAfterZxid, this.doneFor(state))
    }
    if (b.entries.length > 0) {
      state.lastEntryZxid = b.entries[b.entries.length - 1]!.zxid
      state.waiting++
      storage.append(b.entries)
    }
    if (b.meta !== undefined) {
      state.waiting++
      storage.setEpochs(b.meta, this.doneFor(state))
    }
    state.waiting--
    if (state.waiting === 0) queueMicrotask(() => this.advance())
  }

  private entriesDurable(upTo: number): void {
    for (const b of this.batches) {
      if (b.lastEntryZxid !== 0 && b.lastEntryZxid <= upTo) {
        b.lastEntryZxid = 0
        b.waiting--
      }
    }
    this.advance()
  }

  /** Reports durability for the completed prefix of batches, then releases messages waiting on it. */
  private advance(): void {
    let seq = this.durableSeq
    while (this.batches.length > 0 && this.batches[0]!.waiting === 0) seq = this.batches.shift()!.seq
    if (seq === this.durableSeq) return
    this.durableSeq = seq
    while (this.deferred.length > 0 && this.deferred[0]!.afterSeq <= seq) {
      for (const e of this.deferred.shift()!.envelopes) this.send(e)
    }
    this.step({ kind: 'durable', seq })
  }

  // ------------------------------------------------------------ Replicator

  lastLoggedZxid(): number {
    return this.peer.status().lastZxid
  }

  nextZxid(): number {
    const st = this.peer.status()
    return zxidEpoch(st.lastZxid) === st.epoch ? st.lastZxid + 1 : makeZxid(st.epoch, 1)
  }

  propose(zxid: number, txn: Uint8Array): void {
    const out = this.step({ kind: 'propose', data: txn }, true)
    const res = out?.proposed
    assert(res?.ok && res.zxid === zxid, `proposal got ${JSON.stringify(res)}, expected zxid ${zxid}`)
  }

  toLeader(payload: Uint8Array): void {
    if (this.leaderId === undefined) return
    this.step({ kind: 'appSend', to: this.leaderId, payload }, true)
  }

  toFollower(serverId: number, payload: Uint8Array): void {
    this.step({ kind: 'appSend', to: serverId, payload }, true)
  }

  sync(requestId: number): void {
    this.step({ kind: 'sync', requestId }, true)
  }

  tick(): void {}

  get leader(): number | undefined {
    return this.leaderId
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.closed = true
    await this.transport.close()
  }

  describe(): Record<string, string | number> {
    const st = this.peer.status()
    return {
      Leader: st.leaderId ?? 'none',
      'Accepted epoch': st.acceptedEpoch,
      'Current epoch': st.currentEpoch,
      'Commit zxid': `0x${st.commitZxid.toString(16)}`,
      'Election round': st.round,
    }
  }
}
