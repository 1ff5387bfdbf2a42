/**
 * SimNode: one simulated server: a ZabPeer driven exactly as the production
 * driver must drive it (persist, then durable, then sendAfterDurable; apply
 * restore, commits, app messages, syncs in that order), plus its SimDisk and
 * its state machine. Crash and restart rebuild the peer from the disk's
 * durable image only.
 *
 * Invariants: sendAfterDurable messages leave only after their batch is
 * durable (unless the `sendBeforeDurable` mutation is on, to prove the
 * checker catches it); a disconnect drops messages queued for that peer;
 * a SNAP stream leaves over several scheduler events (the tree's snapshot
 * is then fuzzy, as on a real leader), with every other message to that
 * learner behind it, and ends with a crash or a new or lost link.
 */
import type { Prng } from '../../server/core/prng.js'
import {
  decodePeerMessage,
  describePeerMessage,
  type Envelope,
  encodePeerMessage,
  type Input,
  type Output,
  type PeerMessage,
  type ServerId,
  type SnapshotStream,
  ZabPeer,
} from '../../server/zab/index.js'
import type { SimStateMachine } from './kv-state-machine.js'
import type { Scheduler } from './scheduler.js'
import type { DiskParams } from './sim-disk.js'
import { SimDisk } from './sim-disk.js'
import type { SimNetwork } from './sim-network.js'

export interface NodeConfig {
  readonly id: ServerId
  readonly voters: readonly ServerId[]
  readonly observers: readonly ServerId[]
  readonly tickMs: number
  readonly initLimitTicks: number
  readonly syncLimitTicks: number
  readonly commitLogCount: number
  /** Offer the durable log as history for DIFFs older than the in-memory log. */
  readonly historyDiff: boolean
  readonly snapChunkBytesMax: number
  readonly snapshotChunkBytes: number
  readonly disk: DiskParams
  /** Mutation: send sendAfterDurable at once. */
  readonly sendBeforeDurable: boolean
  /** A fresh, empty state machine (called at every boot). */
  readonly makeStateMachine: () => SimStateMachine
}

export interface NodeObserver {
  /** Called with every output before its effects run. */
  output(node: SimNode, out: Output): void
  /** Called when a message is about to leave `node`. */
  sending(node: SimNode, env: Envelope): void
  committed(node: SimNode, zxid: number, data: Uint8Array, prevApplied: number): void
  restored(node: SimNode, zxid: number): void
  app(node: SimNode, from: ServerId, payload: Uint8Array): void
  syncDone(node: SimNode, requestId: number, zxid: number): void
  violation(what: string): void
  trace(line: string): void
}

export class SimNode {
  peer!: ZabPeer
  sm!: SimStateMachine
  readonly disk: SimDisk
  up = true
  incarnation = 0
  crashes = 0
  /** Crash right after the next persist batch is submitted (to hit unsynced writes). */
  private crashArmed: (() => void) | undefined
  private durableSeq = 0
  /** While paused (a GC or VM stall), inputs wait here and run in order on resume. */
  private pausedUntil = -1
  /** Cleared only by the resume event, so nothing overtakes the backlog. */
  private isPaused = false
  private deferred: (() => void)[] = []
  /** The connection this process last saw come up, per peer: where its sends go. */
  private readonly conns = new Map<ServerId, number>()
  private queued: { afterSeq: number; envs: Envelope[] }[] = []
  /**
   * SNAP streams in progress, by learner: as in the real driver, chunks leave
   * over several scheduler events while this node keeps applying commits (a
   * lazily written tree snapshot is then fuzzy), and every other message to
   * that learner waits behind the stream.
   */
  private readonly streams = new Map<ServerId, { stream: SnapshotStream; held: Envelope[] }>()
  private readonly prng: Prng
  private readonly streamPrng: Prng

  constructor(
    readonly cfg: NodeConfig,
    private readonly sched: Scheduler,
    private readonly net: SimNetwork,
    private readonly obs: NodeObserver,
    prng: Prng,
  ) {
    this.prng = prng
    this.streamPrng = prng.fork('snap-stream')
    this.disk = new SimDisk(sched, prng.fork('disk'), cfg.disk, (w) => obs.violation(`n${cfg.id} disk: ${w}`))
    this.boot()
  }

  get id(): ServerId {
    return this.cfg.id
  }

  /** Builds the peer and state machine from durable state, and starts ticking. */
  private boot(): void {
    const c = this.cfg
    this.incarnation++
    this.durableSeq = 0
    this.queued = []
    this.streams.clear()
    this.conns.clear()
    this.sm = c.makeStateMachine()
    if (this.disk.snapshot) this.sm.restore(this.disk.snapshot)
    this.peer = new ZabPeer({
      id: c.id,
      voters: c.voters,
      observers: c.observers,
      initLimitTicks: c.initLimitTicks,
      syncLimitTicks: c.syncLimitTicks,
      commitLogCount: c.commitLogCount,
      snapChunkBytesMax: c.snapChunkBytesMax,
      prng: this.prng.fork(`peer-${this.incarnation}`),
      persisted: this.disk.recover(),
      snapshots: { takeSnapshot: () => this.sm.lazySnapshot?.() ?? this.sm.snapshot() },
      ...(c.historyDiff ? { history: { read: (from, max) => this.disk.historyFrom(from, max) } } : {}),
    })
    const inc = this.incarnation
    const tick = () => {
      if (!this.up || this.incarnation !== inc) return
      // A paused process's timer fires late, once.
      if (this.paused) return this.sched.at(this.pausedUntil, tick)
      this.step({ kind: 'tick' })
      this.sched.after(c.tickMs, tick)
    }
    this.sched.after(this.prng.int(1, c.tickMs), tick)
  }

  get paused(): boolean {
    return this.isPaused
  }

  /** Freezes the process for `ms`: nothing it receives is processed until then. */
  pause(ms: number): void {
    if (!this.up || this.paused) return
    this.isPaused = true
    this.pausedUntil = this.sched.now + ms
    const inc = this.incarnation
    this.obs.trace(`n${this.id} PAUSE ${ms}ms`)
    this.sched.at(this.pausedUntil, () => {
      if (this.incarnation !== inc) return
      this.obs.trace(`n${this.id} RESUME`)
      this.isPaused = false
      // Queued I/O first, then timers: the order that makes a stale leader most dangerous.
      // Inputs deferred while draining run after, in order.
      while (this.deferred.length > 0 && this.up && this.incarnation === inc) this.deferred.shift()!()
    })
  }

  private whenRunning(fn: () => void): void {
    if (this.paused) this.deferred.push(fn)
    else fn()
  }

  step(input: Input): Output | undefined {
    if (!this.up) return undefined
    const out = this.peer.step(input)
    this.apply(out)
    return out
  }

  private apply(out: Output): void {
    this.obs.output(this, out)
    for (const line of this.peer.events.splice(0)) this.obs.trace(`n${this.id} ${line}`)
    if (out.role) {
      const r = out.role
      this.obs.trace(`n${this.id} role ${r.role} e${r.epoch} leader=${r.leaderId} serving=${r.serving}`)
      // As server/node.ts does on every role change: prepped Txns of an old leadership are void.
      this.sm.roleChanged?.()
    }
    for (const p of out.disconnect) this.dropPeer(p)
    if (out.persist) {
      const inc = this.incarnation
      this.disk.submit(out.persist, (seq) => {
        if (this.up && this.incarnation === inc) this.whenRunning(() => this.onDurable(seq))
      })
      const armed = this.crashArmed
      this.crashArmed = undefined
      if (armed) this.sched.after(0, armed)
    }
    for (const env of out.sendNow) this.send(env)
    if (out.sendAfterDurable.length > 0) {
      if (this.cfg.sendBeforeDurable || out.afterSeq <= this.durableSeq) {
        for (const env of out.sendAfterDurable) this.send(env)
      } else {
        this.queued.push({ afterSeq: out.afterSeq, envs: [...out.sendAfterDurable] })
      }
    }
    for (const p of out.disconnect) {
      // Close the socket we know; a newer one we have not seen yet is not ours to close.
      const conn = this.conns.get(p)
      if (conn !== undefined) this.net.breakConn(this.id, p, `n${this.id} closed the session`, this.id, conn)
    }
    this.applyToStateMachine(out)
  }

  private applyToStateMachine(out: Output): void {
    if (out.restore) {
      this.sm.restore(out.restore)
      this.obs.restored(this, out.restore.zxid)
    }
    for (const e of out.commit) {
      const prev = this.sm.appliedZxid
      this.sm.apply(e)
      this.obs.committed(this, e.zxid, e.data, prev)
    }
    for (const a of out.app) this.obs.app(this, a.from, a.payload)
    for (const s of out.syncDone) this.obs.syncDone(this, s.requestId, s.zxid)
  }

  private send(env: Envelope): void {
    const streaming = this.streams.get(env.to)
    if (streaming !== undefined) {
      streaming.held.push(env)
      return
    }
    this.sendMessage(env.to, env.msg)
    if (env.stream !== undefined && this.conns.has(env.to)) this.startStream(env.to, env.stream)
  }

  private sendMessage(to: ServerId, msg: PeerMessage): void {
    const env = { to, msg }
    this.obs.sending(this, env)
    this.obs.trace(`n${this.id} -> n${to} ${describePeerMessage(msg)}`)
    const conn = this.conns.get(to)
    if (conn !== undefined) this.net.send(this.id, to, conn, encodePeerMessage(msg))
  }

  /** What a snapshot of the state machine may reflect: more than applied while it is still fuzzy. */
  private reflectsThrough(): number {
    return Math.max(this.sm.appliedZxid, this.sm.fuzzyEndZxid ?? 0)
  }

  /** Sends 1-3 chunks per scheduler event; SNAPEND carries what is applied when the source runs out. */
  private startStream(to: ServerId, stream: SnapshotStream): void {
    const s = { stream, held: [] as Envelope[] }
    this.streams.set(to, s)
    const inc = this.incarnation
    const later = () => this.sched.after(this.streamPrng.int(0, 3), () => this.whenRunning(pump))
    const pump = (): void => {
      // A crash, or a new or lost link (connected/disconnected/dropPeer), ended the stream.
      if (!this.up || this.incarnation !== inc || this.streams.get(to) !== s) return
      for (let n = this.streamPrng.int(1, 3); n > 0; n--) {
        const chunk = stream.next()
        if (chunk !== undefined) {
          this.sendMessage(to, chunk)
          continue
        }
        this.streams.delete(to)
        this.sendMessage(to, stream.end(this.reflectsThrough()))
        for (const env of s.held) this.send(env)
        return
      }
      later()
    }
    later()
  }

  private onDurable(seq: number): void {
    this.durableSeq = Math.max(this.durableSeq, seq)
    while (this.queued.length > 0 && this.queued[0]!.afterSeq <= this.durableSeq) {
      for (const env of this.queued.shift()!.envs) this.send(env)
    }
    this.step({ kind: 'durable', seq })
  }

  /** The session with `peer` is over: what we had not sent yet is gone with it. */
  private dropPeer(peer: ServerId): void {
    this.streams.delete(peer)
    for (const q of this.queued) q.envs = q.envs.filter((e) => e.to !== peer)
  }

  deliver(from: ServerId, bytes: Uint8Array): void {
    this.whenRunning(() => this.receive(from, bytes))
  }

  private receive(from: ServerId, bytes: Uint8Array): void {
    const msg = decodePeerMessage(bytes)
    this.obs.trace(`n${this.id} <- n${from} ${describePeerMessage(msg)}`)
    this.step({ kind: 'message', from, msg })
  }

  connected(peer: ServerId, conn: number): void {
    this.whenRunning(() => {
      this.streams.delete(peer)
      this.conns.set(peer, conn)
      this.step({ kind: 'peerConnected', peer })
    })
  }

  disconnected(peer: ServerId): void {
    this.whenRunning(() => {
      this.conns.delete(peer)
      this.dropPeer(peer)
      this.step({ kind: 'peerDisconnected', peer })
    })
  }

  crash(): void {
    if (!this.up) return
    this.crashes++
    this.up = false
    this.deferred = []
    this.pausedUntil = -1
    this.isPaused = false
    this.disk.crash()
    this.obs.trace(`n${this.id} CRASH`)
  }

  armCrash(crash: () => void): void {
    this.crashArmed = crash
  }

  restart(): void {
    if (this.up) return
    this.up = true
    this.crashArmed = undefined
    this.boot()
    this.obs.trace(`n${this.id} RESTART (durable last 0x${this.disk.durableLastZxid.toString(16)})`)
  }

  takeAppSnapshot(): void {
    // Written whole at once: consistent at appliedZxid (a disk snapshot is atomic here).
    if (this.up && this.sm.appliedZxid > this.disk.snapshotZxid)
      this.disk.writeAppSnapshot(this.sm.snapshot())
  }
}
