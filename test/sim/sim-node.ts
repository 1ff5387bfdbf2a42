/**
 * SimNode: one simulated server. It runs the driver the server ships
 * (server/replicate/zab-driver.ts) around a ZabPeer, with simulated ports:
 * its SimDisk for storage, the SimNetwork for links, the scheduler for
 * timers, and a state machine (the real TreeDb, or the KV model) as the
 * host. Crash and restart rebuild the peer and driver from the disk's
 * durable image only.
 *
 * What is the simulator's own: the tick timer, pauses (a frozen process:
 * every input — messages, link events, disk completions, timers — waits
 * and runs in order on resume), crashes, and the `sendBeforeDurable`
 * mutation (a peer whose outputs send everything at once, to prove the
 * durability checker catches it). Everything between the peer and its ports
 * is the production driver: persist ordering, durable sequence numbers,
 * deferred sends, SNAP streaming and installs.
 */
import type { Timer } from '../../server/core/clock.js'
import type { Prng } from '../../server/core/prng.js'
import {
  type DoneCallback,
  type DriverLogger,
  type DriverStorage,
  restoreAtOnce,
  whenRestored,
  ZabDriver,
} from '../../server/replicate/zab-driver.js'
import {
  configOfIds,
  decodePeerMessage,
  describePeerMessage,
  type Envelope,
  encodeConfigEntry,
  type Input,
  type MemberConfig,
  type Output,
  type ProposeResult,
  parseConfigText,
  type ServerId,
  ZabPeer,
  type ZabPeerOptions,
} from '../../server/zab/index.js'
import { SimViolation } from './checker.js'
import type { SimStateMachine } from './kv-state-machine.js'
import type { Scheduler } from './scheduler.js'
import type { DiskParams } from './sim-disk.js'
import { SimDisk } from './sim-disk.js'
import { type LinkClient, SimLink } from './sim-link.js'
import type { SimNetwork } from './sim-network.js'
import { type ServerMutation, SimServer } from './sim-server.js'
import { TreeStateMachine } from './tree-state-machine.js'

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
  /** Mutation: a mutant peer (mutations.ts) instead of the server's ZabPeer. */
  readonly makePeer?: (opts: ZabPeerOptions) => ZabPeer
  /** Mutation: a bug in the simulated server's replicator (sim-server.ts). */
  readonly serverMutation?: ServerMutation
  /** A fresh, empty state machine (called at every boot). */
  readonly makeStateMachine: () => SimStateMachine
  /** Run the server's request path (SimServer) over the tree state machine, for simulated clients. */
  readonly serve: boolean
  /** The servers make local sessions (localSessions). */
  readonly localSessions: boolean
  /** Client links: the longest one-way latency (ms). */
  readonly clientLatencyMsMax: number
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
  violation(what: string, invariant?: string): void
  trace(line: string): void
}

/** Mutation: a peer whose every output sends its sendAfterDurable messages at once. */
class HastyPeer extends ZabPeer {
  override step(input: Input): Output {
    const out = super.step(input)
    if (out.sendAfterDurable.length === 0) return out
    return { ...out, sendNow: [...out.sendNow, ...out.sendAfterDurable], sendAfterDurable: [] }
  }
}

export class SimNode {
  peer!: ZabPeer
  driver!: ZabDriver
  sm!: SimStateMachine
  /** The server's request path, when this node serves simulated clients (tree seeds). */
  server: SimServer | undefined
  /** Client connections to this incarnation. */
  private readonly links = new Set<SimLink>()
  readonly disk: SimDisk
  up = true
  incarnation = 0
  crashes = 0
  /** Crash right after the next persist batch is submitted (to hit unsynced writes). */
  private crashArmed: (() => void) | undefined
  /** While paused (a GC or VM stall), inputs wait here and run in order on resume. */
  private pausedUntil = -1
  /** Cleared only by the resume event, so nothing overtakes the backlog. */
  private isPaused = false
  private deferred: (() => void)[] = []
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
    this.disk = new SimDisk(sched, prng.fork('disk'), cfg.disk, (w, invariant) =>
      obs.violation(`n${cfg.id} disk: ${w}`, invariant),
    )
    this.boot()
  }

  get id(): ServerId {
    return this.cfg.id
  }

  /** Builds the peer, driver and state machine from durable state, and starts ticking. */
  private boot(): void {
    const c = this.cfg
    this.incarnation++
    this.sm = c.makeStateMachine()
    if (this.disk.snapshot) this.sm.restore(this.disk.snapshot)
    const opts: ZabPeerOptions = {
      id: c.id,
      // A static config taken from a leader, kept on disk, replaces the one this server started with.
      initialConfig:
        this.disk.staticConfig !== undefined
          ? parseConfigText(this.disk.staticConfig)
          : configOfIds(c.voters, c.observers),
      initLimitTicks: c.initLimitTicks,
      syncLimitTicks: c.syncLimitTicks,
      commitLogCount: c.commitLogCount,
      snapChunkBytesMax: c.snapChunkBytesMax,
      prng: this.prng.fork(`peer-${this.incarnation}`),
      // The config the restored state holds (ZooKeeper's /zookeeper/config), as the server reads its tree.
      persisted: { ...this.disk.recover(), config: this.sm.config },
      snapshots: { takeSnapshot: () => this.sm.lazySnapshot?.() ?? this.sm.snapshot() },
      ...(c.historyDiff ? { history: { read: (from, max) => this.disk.historyFrom(from, max) } } : {}),
    }
    this.peer = c.makePeer ? c.makePeer(opts) : c.sendBeforeDurable ? new HastyPeer(opts) : new ZabPeer(opts)
    this.driver = this.makeDriver()
    this.server =
      c.serve && this.sm instanceof TreeStateMachine
        ? new SimServer({
            serverId: c.id,
            tickMs: c.tickMs,
            sm: this.sm,
            driver: this.driver,
            mutation: c.serverMutation,
            localSessions: c.localSessions,
            now: () => this.sched.now,
            after: (ms, fn) => this.after(ms, fn),
          })
        : undefined
    const inc = this.incarnation
    const tick = () => {
      if (!this.up || this.incarnation !== inc) return
      // A paused process's timer fires late, once.
      if (this.paused) return this.sched.at(this.pausedUntil, tick)
      this.driver.tick()
      this.sched.after(c.tickMs, tick)
    }
    this.sched.after(this.prng.int(1, c.tickMs), tick)
  }

  /** A timer of this incarnation: fires once it is not paused, never after a crash or a cancel. */
  private after(ms: number, fn: () => void): Timer {
    let live = true
    this.sched.after(
      ms,
      this.gate(() => live && fn()),
    )
    return { cancel: () => (live = false) }
  }

  /** Runs `fn` in this incarnation of the process, once it is not paused; never after a crash. */
  private gate(fn: () => void): () => void {
    const inc = this.incarnation
    return () => {
      if (this.up && this.incarnation === inc) this.whenRunning(fn)
    }
  }

  private makeDriver(): ZabDriver {
    const disk = this.disk
    const done =
      (cb: DoneCallback): DoneCallback =>
      (err) =>
        this.gate(() => cb(err))()
    const storage: DriverStorage = {
      snapshotInProgress: false,
      truncateAfter: (zxid, cb) => disk.truncateAfter(zxid, done(cb)),
      beginSnapshot: (zxid) => disk.beginSnapshot(zxid),
      writeSnapshotChunk: (chunk) => disk.writeSnapshotChunk(chunk),
      finishSnapshot: (meta, cb) => disk.finishSnapshot(meta, done(cb)),
      abortSnapshot: (cb) => disk.abortSnapshot(done(cb)),
      append: (entries) => {
        disk.append(entries)
        this.fireArmedCrash()
      },
      setEpochs: (meta, cb) => {
        disk.setEpochs(meta, done(cb))
        this.fireArmedCrash()
      },
      setMeta: (key, value, cb) => {
        disk.setMeta(key, value, done(cb))
        this.fireArmedCrash()
      },
    }
    const driver = new ZabDriver({
      peer: this.peer,
      storage,
      transport: {
        send: (to, bytes, conn) => {
          // A dead connection loses the bytes, as a socket would; the link event ends the stream.
          this.net.send(this.id, to, conn, bytes)
          return true
        },
        drop: (peer, conn) => {
          // Close the socket we know; a newer one we have not seen yet is not ours to close.
          if (conn !== undefined)
            this.net.breakConn(this.id, peer, `n${this.id} closed the session`, this.id, conn)
        },
        bufferedBytes: () => 0,
      },
      timers: {
        now: () => this.sched.now,
        defer: (fn) => this.sched.after(0, this.gate(fn)),
        after: (ms, fn) => this.after(ms, fn),
      },
      host: {
        reflectsThrough: () => Math.max(this.sm.appliedZxid, this.sm.fuzzyEndZxid ?? 0),
        cancelSnapshot: () => {},
        beginRestore: (zxid) => {
          const sm = this.sm
          const job = sm.beginRestore?.(zxid) ?? restoreAtOnce(zxid, (s) => sm.restore(s))
          return whenRestored(job, () => {
            this.server?.events.restored?.()
            this.obs.restored(this, zxid)
          })
        },
        commit: (e) => {
          const prev = this.sm.appliedZxid
          this.sm.apply(e)
          this.obs.committed(this, e.zxid, e.data, prev)
        },
        app: (from, payload) =>
          this.server ? this.server.replicator.app(from, payload) : this.obs.app(this, from, payload),
        syncDone: (id, zxid) =>
          this.server ? this.server.events.syncDone(id) : this.obs.syncDone(this, id, zxid),
        syncFailed: (id) => this.server?.events.syncFailed?.(id),
        role: (r) => {
          this.obs.trace(`n${this.id} role ${r.role} e${r.epoch} leader=${r.leaderId} serving=${r.serving}`)
          // The server's request path reacts to roles itself (prepped Txns of an old leadership are void).
          if (this.server) this.server.replicator.roleChanged(r)
          else this.sm.roleChanged?.()
        },
        fatal: (err) => {
          // A checker's verdict reached from inside the host's work (a restore's checks) is the violation itself.
          if (err instanceof SimViolation) throw err
          this.obs.violation(`n${this.id} fatal: ${err.message}`)
        },
      },
      logger: this.logger(),
      probes: {
        output: (out) => {
          // What a currentEpoch about to be persisted vouches for: the history the peer holds now.
          const epoch = out.persist?.meta?.currentEpoch
          if (epoch !== undefined) this.disk.vouch(epoch, this.peer.status().lastZxid)
          this.obs.output(this, out)
        },
        sending: (to, msg) => {
          this.obs.sending(this, { to, msg })
          this.obs.trace(`n${this.id} -> n${to} ${describePeerMessage(msg)}`)
        },
        trace: (ev) => this.obs.trace(`n${this.id} ${ev}`),
      },
      snapSliceMs: 0,
      snapSliceChunks: () => this.streamPrng.int(1, 3),
      // A SNAP install over several events: messages, crashes and timers land in the middle of it.
      restoreSliceSteps: () => this.streamPrng.int(1, 3),
      restoreStepUnits: 8,
    })
    disk.listener = {
      entriesDurable: (upTo) => this.gate(() => driver.entriesDurable(upTo))(),
      drained: () => this.gate(() => driver.drained())(),
    }
    return driver
  }

  /** The driver's log lines go to the trace (its peer events come through the trace probe). */
  private logger(): DriverLogger {
    const line = (obj: object, msg: string) => this.obs.trace(`n${this.id} ${msg} ${JSON.stringify(obj)}`)
    return { warn: line, info: line, debug: () => {}, isLevelEnabled: () => false }
  }

  /** A crash armed by the fault schedule hits right after a write is issued, before its fsync. */
  private fireArmedCrash(): void {
    const armed = this.crashArmed
    this.crashArmed = undefined
    if (armed) this.sched.after(0, armed)
  }

  get paused(): boolean {
    return this.isPaused
  }

  /** Runs `fn` in incarnation `incarnation` of this server, once it is not paused; never after a crash. */
  run(incarnation: number, fn: () => void): void {
    if (this.up && this.incarnation === incarnation) this.whenRunning(fn)
  }

  /** A simulated client connects to this server's request path (undefined: it does not serve). */
  openLink(client: LinkClient, prng: Prng): SimLink | undefined {
    if (!this.up || this.server === undefined) return undefined
    const link = new SimLink(this.sched, prng, this, this.incarnation, client, this.cfg.clientLatencyMsMax)
    for (const l of this.links) if (!l.isOpen) this.links.delete(l)
    this.links.add(link)
    this.server.accept(link)
    return link
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

  /** A membership change proposed here (the reconfig nemesis); undefined while down. */
  reconfig(config: MemberConfig): ProposeResult | undefined {
    return this.up && !this.paused ? this.driver.propose(encodeConfigEntry(config)) : undefined
  }

  /** The application (the workload) proposes, at the leader. */
  propose(data: Uint8Array): ProposeResult | undefined {
    return this.up ? this.driver.propose(data) : undefined
  }

  sync(requestId: number): void {
    if (this.up) this.driver.sync(requestId)
  }

  appSend(to: ServerId, payload: Uint8Array): void {
    if (this.up) this.driver.appSend(to, payload)
  }

  deliver(from: ServerId, bytes: Uint8Array): void {
    this.whenRunning(() => {
      const msg = decodePeerMessage(bytes)
      this.obs.trace(`n${this.id} <- n${from} ${describePeerMessage(msg)}`)
      this.driver.receive(from, bytes)
    })
  }

  connected(peer: ServerId, conn: number): void {
    this.whenRunning(() => this.driver.peerConnected(peer, conn))
  }

  disconnected(peer: ServerId): void {
    this.whenRunning(() => this.driver.peerDisconnected(peer))
  }

  crash(): void {
    if (!this.up) return
    this.crashes++
    this.up = false
    this.driver.close()
    for (const link of this.links) link.serverCrashed()
    this.links.clear()
    this.server = undefined
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
