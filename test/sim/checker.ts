/**
 * Checker: the invariants of a simulated ensemble, checked as events happen
 * (every commit, every message sent, every role change, every durable write)
 * and after every scheduler event (cheap per-node checks).
 *
 *  - Leadership: at most one established leader per epoch (across restarts).
 *  - Prefix agreement: every server commits the same entries in the same
 *    order (one global committed sequence; no gaps, no divergence).
 *  - Equal digests at equal zxid (state machines agree, snapshots included).
 *  - No acknowledged write lost: a leader established in epoch e has every
 *    write acknowledged in earlier epochs in its history (and prefix
 *    agreement keeps every acknowledged write in every later commit).
 *  - Durability before vouching: ACK, ACK(NEWLEADER), ACKEPOCH, LEADERINFO
 *    leave a server only after what they vouch for is durable there.
 *  - Durable epochs never decrease (SimDisk), in-memory epochs are ordered.
 *  - sync + read sees every write acknowledged before the sync began.
 *  - No protocol errors between correct servers.
 *  - Config agreement: serving servers that applied through the same zxid
 *    show the same membership config (/zookeeper/config: the last config
 *    entry applied, else the static config ZAB holds — a joiner's own
 *    --servers gives way to its leader's with the sync).
 *
 * Invariants of this file: a violation throws SimViolation at once, so the
 * trace ends at the failing event.
 */
import type { ConfigAt, Envelope, RoleEvent } from '../../server/zab/index.js'
import { zxidEpoch } from '../../shared/zxid.js'
import { KvStateMachine } from './kv-state-machine.js'
import type { SimNode } from './sim-node.js'

export class SimViolation extends Error {
  override name = 'SimViolation'
  constructor(
    readonly invariant: string,
    readonly detail: string,
  ) {
    super(`${invariant}: ${detail}`)
  }
}

export interface AckedWrite {
  readonly writeId: number
  readonly key: string
  readonly zxid: number
  readonly data: Uint8Array
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const hex = (z: number) => `0x${z.toString(16)}`

export class Checker {
  private readonly epochLeaders = new Map<number, string>()
  private readonly order: number[] = []
  private readonly index = new Map<number, number>()
  private readonly dataAt = new Map<number, Uint8Array>()
  private readonly digestAt = new Map<number, string>()
  /** The config serving servers showed at each applied zxid (config-agreement). */
  private readonly configAt = new Map<number, string>()
  /** Each config's text as checkConfig compares it, built once per config (it checks after every event). */
  private readonly shownOf = new WeakMap<ConfigAt, string>()
  readonly acked: AckedWrite[] = []
  establishedLeaders = 0

  /** Counts of sync-phase messages sent (coverage of DIFF/TRUNC/SNAP paths). */
  readonly syncKinds = { DIFF: 0, TRUNC: 0, SNAP: 0 }
  /** SNAP streams that ended past their start (the learner got a fuzzy snapshot). */
  fuzzySnaps = 0
  private readonly snapStart = new Map<string, number>()

  constructor(
    private readonly nodes: readonly SimNode[],
    /** Off only for the lying-disk mutation, whose lie the end-to-end checks must catch. */
    private readonly checkDurability = true,
  ) {}

  fail(invariant: string, detail: string): never {
    throw new SimViolation(invariant, detail)
  }

  get committedCount(): number {
    return this.order.length
  }

  onRole(node: SimNode, ev: RoleEvent): void {
    if (ev.role !== 'LEADING' || !ev.serving) return
    this.establishedLeaders++
    const who = `n${node.id}#${node.incarnation}`
    const prev = this.epochLeaders.get(ev.epoch)
    if (prev !== undefined && prev !== who) {
      this.fail('one-leader-per-epoch', `epoch ${ev.epoch} established by ${prev} and ${who}`)
    }
    this.epochLeaders.set(ev.epoch, who)
    this.checkHasAckedWrites(node, ev.epoch)
  }

  /**
   * A leader established in epoch e has every write acknowledged in an
   * earlier epoch. (Not later ones: a leader paused mid-sync may establish
   * epoch e from ACKs a quorum really sent, after epoch e+1 has moved on;
   * it cannot commit anything new, as that quorum has left it.)
   */
  private checkHasAckedWrites(node: SimNode, epoch: number): void {
    const st = node.peer.status()
    const base = node.peer.log.baseZxid
    for (const w of this.acked) {
      if (zxidEpoch(w.zxid) >= epoch) continue
      if (w.zxid > st.lastZxid) {
        this.fail(
          'acked-write-lost',
          `leader n${node.id} (last ${hex(st.lastZxid)}) lacks acked ${hex(w.zxid)}`,
        )
      }
      if (w.zxid <= base) continue
      const e = node.peer.entry(w.zxid)
      if (!e || !sameBytes(e.data, w.data)) {
        this.fail('acked-write-lost', `leader n${node.id} has other data at acked ${hex(w.zxid)}`)
      }
    }
  }

  onCommit(node: SimNode, zxid: number, data: Uint8Array, prev: number): void {
    const known = this.dataAt.get(zxid)
    if (known) {
      if (!sameBytes(known, data))
        this.fail('prefix-agreement', `n${node.id} committed other data at ${hex(zxid)}`)
      const at = this.index.get(zxid)!
      const prevAt = prev === 0 ? -1 : this.index.get(prev)
      if (prevAt === undefined || at !== prevAt + 1) {
        this.fail('prefix-agreement', `n${node.id} committed ${hex(zxid)} right after ${hex(prev)}`)
      }
    } else {
      const last = this.order[this.order.length - 1] ?? 0
      if (prev !== last) {
        this.fail(
          'prefix-agreement',
          `n${node.id} committed new ${hex(zxid)} after ${hex(prev)}, not ${hex(last)}`,
        )
      }
      this.index.set(zxid, this.order.length)
      this.order.push(zxid)
      this.dataAt.set(zxid, data)
    }
    this.checkDigest(node, zxid)
  }

  onRestore(node: SimNode, zxid: number): void {
    if (zxid !== 0 && !this.index.has(zxid))
      this.fail('prefix-agreement', `n${node.id} restored unknown ${hex(zxid)}`)
    this.checkDigest(node, zxid)
  }

  private checkDigest(node: SimNode, zxid: number): void {
    // Rebuilt from a fuzzy snapshot and not yet past its end: between states, no digest to match.
    if (zxid < (node.sm.fuzzyEndZxid ?? 0)) return
    const d = node.sm.digest()
    const known = this.digestAt.get(zxid)
    if (known === undefined) this.digestAt.set(zxid, d)
    else if (known !== d) this.fail('equal-digests', `n${node.id} digest ${d} != ${known} at ${hex(zxid)}`)
  }

  /** A client was told its write succeeded at `zxid`: whatever was committed there is acknowledged. */
  onAckedZxid(zxid: number): void {
    const data = this.dataAt.get(zxid)
    if (data === undefined) this.fail('acked-write-lost', `acked ${hex(zxid)} is not committed`)
    this.acked.push({ writeId: zxid, key: '', zxid, data })
  }

  onAcked(w: AckedWrite): void {
    if (!this.index.has(w.zxid)) this.fail('acked-write-lost', `acked ${hex(w.zxid)} is not committed`)
    this.acked.push(w)
  }

  /** Messages that vouch for durable state may only leave once it is durable. */
  onSend(node: SimNode, env: Envelope): void {
    const m = env.msg
    if (m.type === 'DIFF' || m.type === 'TRUNC' || m.type === 'SNAP') this.syncKinds[m.type]++
    if (m.type === 'SNAP') this.snapStart.set(`${node.id}>${env.to}`, m.zxid)
    if (m.type === 'SNAPEND' && m.endZxid > (this.snapStart.get(`${node.id}>${env.to}`) ?? m.endZxid))
      this.fuzzySnaps++
    if (!this.checkDurability) return
    const disk = node.disk
    if (m.type === 'ACK') {
      if (m.zxid > 0 && !disk.hasDurable(m.zxid)) {
        this.fail(
          'durable-before-ack',
          `n${node.id} ACKs ${hex(m.zxid)}, durable up to ${hex(disk.durableLastZxid)}`,
        )
      }
      if (m.newLeaderEpoch > 0 && disk.currentEpoch < m.newLeaderEpoch) {
        this.fail(
          'durable-before-ack',
          `n${node.id} ACKs NEWLEADER ${m.newLeaderEpoch}, durable currentEpoch ${disk.currentEpoch}`,
        )
      }
    } else if (m.type === 'ACKEPOCH' && disk.acceptedEpoch < m.epoch) {
      this.fail(
        'durable-before-ack',
        `n${node.id} ACKEPOCH ${m.epoch}, durable acceptedEpoch ${disk.acceptedEpoch}`,
      )
    } else if (m.type === 'LEADERINFO' && disk.acceptedEpoch < m.newEpoch) {
      this.fail(
        'durable-before-ack',
        `n${node.id} LEADERINFO ${m.newEpoch}, durable acceptedEpoch ${disk.acceptedEpoch}`,
      )
    }
  }

  /** sync + read: every write acknowledged before the sync began is visible. */
  checkSyncRead(node: SimNode, expected: ReadonlyMap<string, number>): void {
    const sm = node.sm
    if (!(sm instanceof KvStateMachine)) return this.fail('sync-read', 'sync-read needs the KV state machine')
    for (const [key, zxid] of expected) {
      const r = sm.read(key)
      if (!r || r.zxid < zxid) {
        this.fail(
          'sync-read',
          `n${node.id} read ${key}@${hex(r?.zxid ?? 0)} after sync; acked ${hex(zxid)} before it`,
        )
      }
    }
  }

  /** What a serving server shows as /zookeeper/config (request-pipeline's staticConfigData) agrees at its zxid. */
  private checkConfig(n: SimNode): void {
    const c = n.sm.config ?? n.peer.membership.committed
    let shown = this.shownOf.get(c)
    if (shown === undefined) {
      shown = `${hex(c.zxid)} v[${c.config.voters}]o[${c.config.observers}] ${c.config.text}`
      this.shownOf.set(c, shown)
    }
    const zxid = n.sm.appliedZxid
    const known = this.configAt.get(zxid)
    if (known === undefined) this.configAt.set(zxid, shown)
    else if (known !== shown)
      this.fail(
        'config-agreement',
        `n${n.id} shows config ${shown.split(' ', 2).join(' ')} at ${hex(zxid)}; another showed ${known.split(' ', 2).join(' ')}`,
      )
  }

  /** Cheap checks after every scheduler event. */
  afterEvent(): void {
    for (const n of this.nodes) {
      if (!n.up) continue
      const st = n.peer.status()
      if (st.acceptedEpoch < st.currentEpoch) this.fail('epochs', `n${n.id} acceptedEpoch < currentEpoch`)
      if (st.commitZxid > st.lastZxid) this.fail('commit-in-log', `n${n.id} commit beyond its log`)
      if (st.protocolErrors > 0)
        this.fail('protocol', `n${n.id} saw a protocol error: ${n.peer.events.join(' | ')}`)
      // A SNAP install in slices: the old state stays in place (behind the commit point) until it switches.
      const installing = n.driver.restoringSnapshot && n.sm.appliedZxid <= st.commitZxid
      if (n.sm.appliedZxid !== st.commitZxid && !installing)
        this.fail('apply', `n${n.id} applied ${hex(n.sm.appliedZxid)} != commit`)
      if (st.serving) this.checkConfig(n)
    }
  }
}
