/**
 * A small synchronous harness for ZabPeer scenario tests: peers, one global
 * FIFO message queue (so each link is FIFO), an in-memory durable image per
 * peer, and controls to hold a peer's durability, cut links, crash and
 * restart. Every message goes through the binary codec.
 *
 * Invariants: sendAfterDurable messages leave only after their batch is
 * durable; a cut link drops messages (and both ends see peerDisconnected).
 */

import { Prng } from '../../../server/core/prng.js'
import {
  decodePeerMessage,
  type Envelope,
  encodePeerMessage,
  type Input,
  type LogEntry,
  type Output,
  type PeerMessage,
  type PersistBatch,
  type PersistedState,
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
}

export interface HarnessOptions {
  voters: number[]
  observers?: number[]
  persisted?: Record<number, PersistedState>
  commitLogCount?: number
  snapChunkBytesMax?: number
  /** Offer each peer's durable log (after its snapshot) as history for DIFFs. */
  history?: boolean
  historyDiffEntriesMax?: number
  initLimitTicks?: number
  syncLimitTicks?: number
}

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

export class Harness {
  readonly peers = new Map<number, ZabPeer>()
  readonly disks = new Map<number, Disk>()
  readonly sms = new Map<number, KvStateMachine>()
  readonly roles = new Map<number, RoleEvent>()
  readonly committed = new Map<number, LogEntry[]>()
  readonly syncDone = new Map<number, number[]>()
  readonly apps = new Map<number, { from: number; payload: Uint8Array }[]>()
  /** Every message that left a peer, in order. */
  readonly sent: Sent[] = []
  private queue: Sent[] = []
  private readonly held = new Set<number>()
  private readonly pending = new Map<
    number,
    { batches: PersistBatch[]; msgs: { afterSeq: number; envs: Envelope[] }[] }
  >()
  private readonly durableSeq = new Map<number, number>()
  private readonly cuts = new Set<string>()
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
    return [...this.opts.voters, ...(this.opts.observers ?? [])]
  }

  private boot(id: number): void {
    const d = this.disks.get(id)!
    const sm = new KvStateMachine(16)
    if (d.snapshot) sm.restore(d.snapshot)
    this.sms.set(id, sm)
    this.committed.set(id, [])
    this.durableSeq.set(id, 0)
    this.pending.set(id, { batches: [], msgs: [] })
    const snapshotZxid = d.snapshot?.zxid ?? 0
    this.peers.set(
      id,
      new ZabPeer({
        id,
        voters: this.opts.voters,
        observers: this.opts.observers ?? [],
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
        },
        snapshots: { takeSnapshot: () => sm.snapshot() },
      }),
    )
  }

  private linkKey(a: number, b: number): string {
    return a < b ? `${a}-${b}` : `${b}-${a}`
  }

  linked(a: number, b: number): boolean {
    return !this.cuts.has(this.linkKey(a, b)) && !this.down.has(a) && !this.down.has(b)
  }

  private connect(a: number, b: number): void {
    if (!this.linked(a, b)) return
    this.step(a, { kind: 'peerConnected', peer: b })
    this.step(b, { kind: 'peerConnected', peer: a })
  }

  private disconnect(a: number, b: number): void {
    this.queue = this.queue.filter((m) => this.linkKey(m.from, m.to) !== this.linkKey(a, b))
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      if (this.down.has(x)) continue
      const p = this.pending.get(x)!
      for (const q of p.msgs) q.envs = q.envs.filter((e) => e.to !== y)
      this.step(x, { kind: 'peerDisconnected', peer: y })
    }
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

  isolate(id: number): void {
    for (const o of this.members) if (o !== id) this.cut(id, o)
  }

  /** Withhold durability of `id`'s writes until flush(id). */
  hold(id: number): void {
    this.held.add(id)
  }

  flush(id: number): void {
    this.held.delete(id)
    const p = this.pending.get(id)!
    const batches = p.batches.splice(0)
    for (const b of batches) this.makeDurable(id, b)
    const last = batches[batches.length - 1]
    if (last) this.onDurable(id, last.seq)
  }

  crash(id: number): void {
    for (const o of this.members) if (o !== id && this.linked(id, o)) this.disconnect(id, o)
    this.down.add(id)
    this.pending.get(id)!.batches = []
    this.held.delete(id)
  }

  restart(id: number): void {
    this.down.delete(id)
    this.boot(id)
    for (const o of this.members) if (o !== id) this.connect(id, o)
  }

  step(id: number, input: Input): Output | undefined {
    if (this.down.has(id)) return undefined
    const out = this.peers.get(id)!.step(input)
    this.apply(id, out)
    return out
  }

  private apply(id: number, out: Output): void {
    if (out.role) this.roles.set(id, out.role)
    for (const env of out.sendNow) this.send(id, env)
    const p = this.pending.get(id)!
    if (out.sendAfterDurable.length > 0)
      p.msgs.push({ afterSeq: out.afterSeq, envs: [...out.sendAfterDurable] })
    // A closed session: both ends see the break, then the link reconnects if it is not cut.
    for (const peer of out.disconnect) {
      if (!this.linked(id, peer)) continue
      this.disconnect(id, peer)
      this.connect(id, peer)
    }
    const sm = this.sms.get(id)!
    if (out.restore) sm.restore(out.restore)
    for (const e of out.commit) {
      sm.apply(e)
      this.committed.get(id)!.push(e)
    }
    for (const a of out.app) this.apps.set(id, [...(this.apps.get(id) ?? []), a])
    for (const s of out.syncDone) this.syncDone.set(id, [...(this.syncDone.get(id) ?? []), s.requestId])
    if (out.persist) {
      p.batches.push(out.persist)
      if (!this.held.has(id)) this.flush(id)
    } else {
      this.releaseMessages(id)
    }
  }

  private makeDurable(id: number, b: PersistBatch): void {
    const d = this.disks.get(id)!
    if (b.snapshot) {
      d.snapshot = b.snapshot
      d.log = []
    }
    if (b.truncateAfterZxid !== undefined) d.log = d.log.filter((e) => e.zxid <= b.truncateAfterZxid!)
    for (const e of b.entries) d.log.push(e)
    if (b.meta?.acceptedEpoch !== undefined) d.acceptedEpoch = b.meta.acceptedEpoch
    if (b.meta?.currentEpoch !== undefined) d.currentEpoch = b.meta.currentEpoch
  }

  private onDurable(id: number, seq: number): void {
    this.durableSeq.set(id, seq)
    this.releaseMessages(id)
    this.step(id, { kind: 'durable', seq })
  }

  private releaseMessages(id: number): void {
    const p = this.pending.get(id)!
    const durable = this.durableSeq.get(id)!
    while (p.msgs.length > 0 && p.msgs[0]!.afterSeq <= durable) {
      for (const env of p.msgs.shift()!.envs) this.send(id, env)
    }
  }

  private send(from: number, env: Envelope): void {
    if (!this.linked(from, env.to)) return
    // A SNAP's stream is sent whole (the state machine does not change meanwhile).
    const msgs = env.stream ? env.stream.drain(this.sms.get(from)!.appliedZxid) : [env.msg]
    for (const one of msgs) {
      // Through the wire codec, as the transport does.
      const msg = decodePeerMessage(encodePeerMessage(one))
      const m = { from, to: env.to, msg }
      this.sent.push(m)
      this.queue.push(m)
    }
  }

  /** Delivers queued messages (and what they cause) until the queue is empty. */
  deliver(maxMessages = 100_000): void {
    for (let i = 0; this.queue.length > 0; i++) {
      assert(i < maxMessages, 'message storm')
      const m = this.queue.shift()!
      if (this.linked(m.from, m.to)) this.step(m.to, { kind: 'message', from: m.from, msg: m.msg })
    }
  }

  /** One tick at every live peer, then delivery. */
  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
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
      return l !== undefined && this.members.every((id) => this.down.has(id) || this.roles.get(id)?.serving)
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
