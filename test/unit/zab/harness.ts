/**
 * A small synchronous harness for ZabPeer scenario tests. Each peer runs
 * under the driver the server ships (server/replicate/zab-driver.ts), with
 * synchronous ports: an in-memory durable image per peer whose writes are
 * durable at once unless the test holds them, one global FIFO message queue
 * (so each link is FIFO), and deferred work run at once. Controls hold a
 * peer's durability, cut links (or mute them: messages lost, link up),
 * crash and restart. Every message goes through the binary codec; an
 * optional onEvent hook hears each send, write and role change in order
 * (the datadriven scenarios print them).
 *
 * Invariants: sendAfterDurable messages leave only after their batch is
 * durable (the driver's rule); a cut link drops messages (and both ends
 * see peerDisconnected).
 */

import { Prng } from '../../../server/core/prng.js'
import {
  type DoneCallback,
  type DriverStorage,
  restoreAtOnce,
  STATIC_CONFIG_META_KEY,
  ZabDriver,
} from '../../../server/replicate/zab-driver.js'
import {
  configOfIds,
  decodePeerMessage,
  type Input,
  type LogEntry,
  type MemberConfig,
  type Output,
  type PeerMessage,
  type PersistedState,
  parseConfigText,
  type RoleEvent,
  type Snapshot,
  ZabPeer,
} from '../../../server/zab/index.js'
import { assert } from '../../../shared/assert.js'
import { KvStateMachine } from '../../sim/kv-state-machine.js'

export interface Disk {
  acceptedEpoch: number
  currentEpoch: number
  snapshot: Snapshot | undefined
  log: LogEntry[]
  /** A static config taken from a leader (STATIC_CONFIG_META_KEY); undefined: the initial one. */
  staticConfig?: string
}

export interface HarnessOptions {
  voters: number[]
  observers?: number[]
  /** Servers outside the initial config (joiners: they learn as non-voting followers until a reconfig names them). */
  spares?: number[]
  /** A peer's own static config, where it differs from the voters' and observers' (a joiner naming itself). */
  configs?: Record<number, MemberConfig>
  persisted?: Record<number, PersistedState>
  commitLogCount?: number
  snapChunkBytesMax?: number
  /** Offer each peer's durable log (after its snapshot) as history for DIFFs. */
  history?: boolean
  historyDiffEntriesMax?: number
  initLimitTicks?: number
  syncLimitTicks?: number
  /**
   * A SNAP install takes this many RestoreJob steps, one per slice, and
   * deferred work (each slice) waits for the next tick instead of running at
   * once. Absent: installs at once.
   */
  restoreSteps?: number
  /** Hears every send, write, durability, commit, restore and role change as it happens (datadriven.ts). */
  onEvent?: (ev: HarnessEvent) => void
}

/** A durable write, as the harness's disk sees it. */
export type DiskWrite =
  | { kind: 'truncate'; zxid: number }
  | { kind: 'snapshot'; zxid: number; endZxid: number | undefined; chunks: number }
  | { kind: 'entries'; zxids: number[] }
  | { kind: 'meta'; acceptedEpoch?: number; currentEpoch?: number }
  | { kind: 'staticConfig'; text: string }

/**
 * What happened, in order. `write` is a write issued (`held`: it waits for
 * flush; otherwise it is durable at once); `durable` is a held write made
 * durable by flush.
 */
export type HarnessEvent =
  | { kind: 'sent'; sent: Sent; lost: boolean }
  | { kind: 'trace'; id: number; event: string }
  | { kind: 'write'; id: number; write: DiskWrite; held: boolean }
  | { kind: 'durable'; id: number; write: DiskWrite }
  | { kind: 'commit'; id: number; entry: LogEntry }
  | { kind: 'restore'; id: number; snapshot: Snapshot }
  | { kind: 'role'; id: number; role: RoleEvent }

export interface Sent {
  from: number
  to: number
  msg: PeerMessage
}

export function entry(epoch: number, counter: number, text = `e${epoch}.${counter}`): LogEntry {
  return { zxid: epoch * 2 ** 32 + counter, data: new TextEncoder().encode(text) }
}

export function zx(epoch: number, counter: number): number {
  return epoch * 2 ** 32 + counter
}

/** One issued write, completed (made durable) at once or when the test flushes its peer. */
type DiskOp =
  | { kind: 'truncate'; zxid: number; cb: DoneCallback }
  | { kind: 'snapshot'; s: Snapshot; cb: DoneCallback }
  | { kind: 'entries'; entries: readonly LogEntry[] }
  | { kind: 'meta'; acceptedEpoch?: number; currentEpoch?: number; cb: DoneCallback }
  | { kind: 'staticConfig'; text: string; cb: DoneCallback }

function diskWrite(op: DiskOp): DiskWrite {
  switch (op.kind) {
    case 'truncate':
      return { kind: 'truncate', zxid: op.zxid }
    case 'snapshot':
      return { kind: 'snapshot', zxid: op.s.zxid, endZxid: op.s.endZxid, chunks: op.s.chunks.length }
    case 'entries':
      return { kind: 'entries', zxids: op.entries.map((e) => e.zxid) }
    case 'staticConfig':
      return { kind: 'staticConfig', text: op.text }
    case 'meta': {
      const { kind, acceptedEpoch, currentEpoch } = op
      return {
        kind,
        ...(acceptedEpoch === undefined ? {} : { acceptedEpoch }),
        ...(currentEpoch === undefined ? {} : { currentEpoch }),
      }
    }
  }
}

const silent = { warn: () => {}, info: () => {}, debug: () => {}, isLevelEnabled: () => false }

export class Harness {
  readonly peers = new Map<number, ZabPeer>()
  readonly drivers = new Map<number, ZabDriver>()
  readonly disks = new Map<number, Disk>()
  readonly sms = new Map<number, KvStateMachine>()
  readonly roles = new Map<number, RoleEvent>()
  readonly committed = new Map<number, LogEntry[]>()
  readonly syncDone = new Map<number, number[]>()
  readonly apps = new Map<number, { from: number; payload: Uint8Array }[]>()
  /** Stall measurements the drivers started (one per SNAP sent or received) and stopped. */
  readonly stallMeasures = { started: 0, stopped: 0 }
  /** Every message that left a peer, in order. */
  readonly sent: Sent[] = []
  private queue: Sent[] = []
  private readonly held = new Set<number>()
  private readonly pending = new Map<number, DiskOp[]>()
  private readonly cuts = new Set<string>()
  private readonly mutes = new Set<string>()
  private readonly conns = new Map<string, number>()
  private nextConn = 1
  private readonly timers: (() => void)[] = []
  readonly down = new Set<number>()

  constructor(readonly opts: HarnessOptions) {
    for (const id of this.members) {
      const p = opts.persisted?.[id]
      this.disks.set(id, {
        acceptedEpoch: p?.acceptedEpoch ?? 0,
        currentEpoch: p?.currentEpoch ?? 0,
        snapshot: undefined,
        log: [...(p?.log ?? [])],
      })
      this.boot(id)
    }
    for (const a of this.members) for (const b of this.members) if (a < b) this.connect(a, b)
  }

  get members(): number[] {
    return [...this.opts.voters, ...(this.opts.observers ?? []), ...(this.opts.spares ?? [])]
  }

  private boot(id: number): void {
    const d = this.disks.get(id)!
    const sm = new KvStateMachine(16)
    if (d.snapshot) sm.restore(d.snapshot)
    this.sms.set(id, sm)
    this.committed.set(id, [])
    this.pending.set(id, [])
    const snapshotZxid = d.snapshot?.zxid ?? 0
    const peer = new ZabPeer({
      id,
      initialConfig:
        d.staticConfig !== undefined
          ? parseConfigText(d.staticConfig)
          : (this.opts.configs?.[id] ?? configOfIds(this.opts.voters, this.opts.observers)),
      initLimitTicks: this.opts.initLimitTicks ?? 10,
      syncLimitTicks: this.opts.syncLimitTicks ?? 5,
      commitLogCount: this.opts.commitLogCount,
      snapChunkBytesMax: this.opts.snapChunkBytesMax,
      ...(this.opts.historyDiffEntriesMax === undefined
        ? {}
        : { historyDiffEntriesMax: this.opts.historyDiffEntriesMax }),
      ...(this.opts.history
        ? {
            history: {
              read: (from: number, max: number) => {
                const i = d.log.findIndex((e) => e.zxid === from)
                return i < 0 ? [] : d.log.slice(i, i + max)
              },
            },
          }
        : {}),
      prng: new Prng(id),
      persisted: {
        acceptedEpoch: d.acceptedEpoch,
        currentEpoch: d.currentEpoch,
        snapshotZxid,
        log: d.log.filter((e) => e.zxid > snapshotZxid),
        // The config the restored state holds (the server reads /zookeeper/config).
        config: sm.config,
      },
      snapshots: { takeSnapshot: () => sm.snapshot() },
    })
    this.peers.set(id, peer)
    const driver = new ZabDriver({
      peer,
      storage: this.storage(id),
      transport: {
        send: (to, bytes) => this.send(id, to, bytes),
        drop: (to) => this.dropped(id, to),
        bufferedBytes: () => 0,
      },
      // Deferred work runs at once; timers wait for the next tick.
      timers: {
        now: () => 0,
        defer: (fn) => (this.opts.restoreSteps === undefined ? fn() : this.timers.push(fn)),
        after: (_ms, fn) => {
          this.timers.push(fn)
          return {
            cancel: () => {
              const i = this.timers.indexOf(fn)
              if (i >= 0) this.timers.splice(i, 1)
            },
          }
        },
      },
      host: {
        reflectsThrough: () => sm.appliedZxid,
        cancelSnapshot: () => {},
        beginRestore: (zxid) => {
          const job = restoreAtOnce(zxid, (s) => {
            this.opts.onEvent?.({ kind: 'restore', id, snapshot: s })
            sm.restore(s)
          })
          const steps = this.opts.restoreSteps ?? 1
          let taken = 0
          return {
            push: (chunk) => job.push(chunk),
            step: (budget, endZxid) => ++taken >= steps && job.step(budget, endZxid),
          }
        },
        commit: (e) => {
          sm.apply(e)
          this.committed.get(id)!.push(e)
          this.opts.onEvent?.({ kind: 'commit', id, entry: e })
        },
        app: (from, payload) => this.apps.set(id, [...(this.apps.get(id) ?? []), { from, payload }]),
        syncDone: (requestId) => this.syncDone.set(id, [...(this.syncDone.get(id) ?? []), requestId]),
        syncFailed: () => {},
        role: (ev) => {
          this.roles.set(id, ev)
          this.opts.onEvent?.({ kind: 'role', id, role: ev })
        },
        fatal: (err) => {
          throw err
        },
      },
      logger: silent,
      probes: {
        trace: (event) => this.opts.onEvent?.({ kind: 'trace', id, event }),
        measureStalls: () => {
          this.stallMeasures.started++
          return {
            stop: () => {
              this.stallMeasures.stopped++
              return {}
            },
          }
        },
      },
      snapSliceMs: 0,
      restoreSliceSteps: () => 1,
    })
    this.drivers.set(id, driver)
  }

  /** Peer `id`'s storage: a write is durable at once, unless the test holds the peer. */
  private storage(id: number): DriverStorage {
    const issue = (op: DiskOp) => {
      this.pending.get(id)!.push(op)
      this.opts.onEvent?.({ kind: 'write', id, write: diskWrite(op), held: this.held.has(id) })
      if (!this.held.has(id)) this.flush(id)
    }
    let staged: { zxid: number; chunks: Uint8Array[] } | undefined
    return {
      snapshotInProgress: false,
      truncateAfter: (zxid, cb) => issue({ kind: 'truncate', zxid, cb }),
      beginSnapshot: (zxid) => {
        staged = { zxid, chunks: [] }
      },
      writeSnapshotChunk: (chunk) => {
        staged!.chunks.push(chunk)
        return true
      },
      abortSnapshot: (cb) => {
        staged = undefined
        cb(undefined)
      },
      finishSnapshot: (meta, cb) => {
        const s = { zxid: staged!.zxid, chunks: staged!.chunks, endZxid: meta.zxidEnd }
        staged = undefined
        issue({ kind: 'snapshot', s, cb })
      },
      append: (entries) => issue({ kind: 'entries', entries: [...entries] }),
      setEpochs: (meta, cb) => issue({ kind: 'meta', ...meta, cb }),
      setMeta: (key, text, cb) => {
        assert(key === STATIC_CONFIG_META_KEY, `unexpected meta key ${key}`)
        issue({ kind: 'staticConfig', text, cb })
      },
    }
  }

  private linkKey(a: number, b: number): string {
    return a < b ? `${a}-${b}` : `${b}-${a}`
  }

  linked(a: number, b: number): boolean {
    return !this.cuts.has(this.linkKey(a, b)) && !this.down.has(a) && !this.down.has(b)
  }

  private connect(a: number, b: number): void {
    if (!this.linked(a, b)) return
    const conn = this.nextConn++
    this.conns.set(this.linkKey(a, b), conn)
    this.drivers.get(a)!.peerConnected(b, conn)
    this.drivers.get(b)!.peerConnected(a, conn)
  }

  private disconnect(a: number, b: number): void {
    this.conns.delete(this.linkKey(a, b))
    this.queue = this.queue.filter((m) => this.linkKey(m.from, m.to) !== this.linkKey(a, b))
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      if (!this.down.has(x)) this.drivers.get(x)!.peerDisconnected(y)
    }
  }

  /** A peer closed its session with `to`: both ends see the break, then the link reconnects if not cut. */
  private dropped(from: number, to: number): void {
    if (!this.linked(from, to)) return
    this.disconnect(from, to)
    this.connect(from, to)
  }

  cut(a: number, b: number): void {
    if (this.cuts.has(this.linkKey(a, b))) return
    const wasLinked = this.linked(a, b)
    this.cuts.add(this.linkKey(a, b))
    if (wasLinked) this.disconnect(a, b)
  }

  heal(a: number, b: number): void {
    if (!this.cuts.delete(this.linkKey(a, b))) return
    this.connect(a, b)
  }

  /** Loses every message between a and b, silently: the link stays up (a stalled peer, a half-open connection). */
  mute(a: number, b: number): void {
    this.mutes.add(this.linkKey(a, b))
  }

  unmute(a: number, b: number): void {
    this.mutes.delete(this.linkKey(a, b))
  }

  isolate(id: number): void {
    for (const o of this.members) if (o !== id) this.cut(id, o)
  }

  /** Withhold durability of `id`'s writes until flush(id). */
  hold(id: number): void {
    this.held.add(id)
  }

  /** Makes `id`'s issued writes durable, in order (one fsync), and tells its driver. */
  flush(id: number): void {
    const wasHeld = this.held.delete(id)
    const ops = this.pending.get(id)!.splice(0)
    const driver = this.drivers.get(id)!
    let lastEntry = 0
    for (const op of ops) {
      this.makeDurable(id, op)
      if (wasHeld) this.opts.onEvent?.({ kind: 'durable', id, write: diskWrite(op) })
      if (op.kind === 'entries') lastEntry = op.entries[op.entries.length - 1]!.zxid
    }
    for (const op of ops) if (op.kind !== 'entries') op.cb(undefined)
    if (lastEntry !== 0) driver.entriesDurable(lastEntry)
  }

  crash(id: number): void {
    for (const o of this.members) if (o !== id && this.linked(id, o)) this.disconnect(id, o)
    this.down.add(id)
    this.drivers.get(id)!.close()
    this.pending.set(id, [])
    this.held.delete(id)
  }

  restart(id: number): void {
    this.down.delete(id)
    this.boot(id)
    for (const o of this.members) if (o !== id) this.connect(id, o)
  }

  /** Steps `id`'s driver with `input` (propose, sync, tick…); the first output. */
  step(id: number, input: Input): Output | undefined {
    if (this.down.has(id)) return undefined
    return this.drivers.get(id)!.step(input)
  }

  private makeDurable(id: number, op: DiskOp): void {
    const d = this.disks.get(id)!
    switch (op.kind) {
      case 'snapshot':
        d.snapshot = op.s
        d.log = []
        return
      case 'truncate':
        d.log = d.log.filter((e) => e.zxid <= op.zxid)
        return
      case 'entries':
        d.log.push(...op.entries)
        return
      case 'staticConfig':
        d.staticConfig = op.text
        return
      case 'meta':
        if (op.acceptedEpoch !== undefined) d.acceptedEpoch = op.acceptedEpoch
        if (op.currentEpoch !== undefined) d.currentEpoch = op.currentEpoch
        return
    }
  }

  private send(from: number, to: number, bytes: Uint8Array): boolean {
    if (!this.linked(from, to)) return false
    // Through the wire codec, as the transport does.
    const m = { from, to, msg: decodePeerMessage(bytes) }
    this.sent.push(m)
    const lost = this.mutes.has(this.linkKey(from, to))
    if (!lost) this.queue.push(m)
    this.opts.onEvent?.({ kind: 'sent', sent: m, lost })
    return true
  }

  /** Delivers queued messages (and what they cause) until the queue is empty. */
  deliver(maxMessages = 100_000): void {
    for (let i = 0; this.queue.length > 0; i++) {
      assert(i < maxMessages, 'message storm')
      const m = this.queue.shift()!
      if (this.linked(m.from, m.to)) this.step(m.to, { kind: 'message', from: m.from, msg: m.msg })
    }
  }

  /** Delivers the oldest queued message (what it causes stays queued); undefined when none. */
  deliverOne(): Sent | undefined {
    const m = this.queue.shift()
    if (m !== undefined && this.linked(m.from, m.to))
      this.step(m.to, { kind: 'message', from: m.from, msg: m.msg })
    return m
  }

  /** Messages sent and not yet delivered, oldest first. */
  queued(): readonly Sent[] {
    return [...this.queue]
  }

  /** Writes `id` issued that are not durable yet (held). */
  pendingWrites(id: number): DiskWrite[] {
    return (this.pending.get(id) ?? []).map(diskWrite)
  }

  isHeld(id: number): boolean {
    return this.held.has(id)
  }

  /** One tick at every live peer (and the timers due), then delivery. */
  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const fn of this.timers.splice(0)) fn()
      for (const id of this.members) this.step(id, { kind: 'tick' })
      this.deliver()
    }
  }

  /** Ticks until `pred` holds; fails after `maxTicks`. */
  until(pred: () => boolean, maxTicks = 200): void {
    for (let i = 0; i < maxTicks; i++) {
      this.deliver()
      if (pred()) return
      this.tick()
    }
    throw new Error('condition not reached')
  }

  role(id: number): RoleEvent | undefined {
    return this.roles.get(id)
  }

  leader(): number | undefined {
    return this.members.find((id) => {
      const r = this.roles.get(id)
      return !this.down.has(id) && r?.role === 'LEADING' && r.serving
    })
  }

  /** Runs until an established leader and every live member serving. */
  settle(maxTicks = 200): number {
    this.until(() => {
      const l = this.leader()
      // Members of the leader's view serve; others (joiners, removed servers) only follow.
      const view = l === undefined ? undefined : this.peers.get(l)!.membership
      return (
        view !== undefined &&
        this.members.every((id) => this.down.has(id) || this.roles.get(id)?.serving || !view.isMember(id))
      )
    }, maxTicks)
    return this.leader()!
  }

  propose(text: string): number {
    const l = this.leader()
    assert(l !== undefined, 'no leader')
    const out = this.step(l, { kind: 'propose', data: new TextEncoder().encode(text) })
    assert(out?.proposed?.ok, 'proposal refused')
    return out.proposed.zxid
  }

  sentOfType<T extends PeerMessage['type']>(type: T): (Sent & { msg: Extract<PeerMessage, { type: T }> })[] {
    return this.sent.filter((s) => s.msg.type === type) as (Sent & {
      msg: Extract<PeerMessage, { type: T }>
    })[]
  }
}
