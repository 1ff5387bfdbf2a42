/**
 * Leadership: the LEADING side of discovery, synchronisation and broadcast
 * (ZooKeeper's Leader + LearnerHandler), for one leadership period.
 *
 * Phases: discovery (FOLLOWERINFO until a quorum, LEADERINFO with newEpoch =
 * max(acceptedEpochs) + 1, ACKEPOCH until a quorum) -> sync (DIFF/TRUNC/SNAP
 * + PROPOSALs + NEWLEADER per learner) -> established (a quorum acked
 * NEWLEADER: the initial history is committed, UPTODATE opens learners) ->
 * broadcast (PROPOSAL, cumulative ACK, COMMIT in zxid order).
 *
 * Invariants:
 *  - nothing new is proposed or committed before a quorum acked NEWLEADER;
 *  - PROPOSAL/COMMIT go only to learners that acked our epoch and were sent
 *    the sync stream (Zab model-checking pitfall 1), INFORM to observers;
 *  - the leader counts itself in a quorum only for what is durable: its
 *    acceptedEpoch before LEADERINFO leaves, its currentEpoch and log before
 *    counting its own NEWLEADER/proposal acks;
 *  - a sync is answered with the commit index at its arrival, after a quorum
 *    answered a PING round started after it (a read index; ZOOKEEPER-1675).
 *
 * Must not import anything but shared/, server/core and server/zab (pure).
 */
import { assert } from '../../shared/assert.js'
import { makeZxid, ZXID_COUNTER_MAX, ZXID_EPOCH_MAX, zxidCounter, zxidEpoch } from '../../shared/zxid.js'
import type { PeerMessage } from './messages.js'
import type { ProposeResult } from './output.js'
import type { PeerCore } from './peer-core.js'
import { SnapshotStream } from './snapshot-stream.js'
import { planSync } from './sync-plan.js'
import type { LogEntry, ServerId } from './types.js'

type LearnerPhase = 'info' | 'epochAcked' | 'syncing' | 'newLeaderAcked' | 'active'

interface Learner {
  readonly id: ServerId
  readonly observer: boolean
  phase: LearnerPhase
  acceptedEpoch: number
  leaderInfoSent: boolean
  reAck: boolean
  lastZxid: number
  /** Durable at the learner (cumulative ACK); meaningful from newLeaderAcked on. */
  ackedZxid: number
  pingRound: number
  lastHeard: number
  /** Observers: the last entry sent to it. */
  informedZxid: number
}

interface PendingSync {
  readonly requestId: number
  readonly origin: ServerId
  readonly zxid: number
  readonly round: number
}

type Msg<T extends PeerMessage['type']> = Extract<PeerMessage, { type: T }>

function synced(l: Learner): boolean {
  return l.phase === 'newLeaderAcked' || l.phase === 'active'
}

function forwarded(l: Learner): boolean {
  return l.phase === 'syncing' || synced(l)
}

/** Inserts z into the first n entries of arr (sorted descending); returns n + 1. */
function insertDescending(arr: number[], n: number, z: number): number {
  let i = n
  while (i > 0 && arr[i - 1]! < z) {
    arr[i] = arr[i - 1]!
    i--
  }
  arr[i] = z
  return n + 1
}

export class Leadership {
  newEpoch: number | undefined
  established = false
  private readonly startedAt: number
  private acceptedEpochSeq = Number.POSITIVE_INFINITY
  private currentEpochSeq = Number.POSITIVE_INFINITY
  private epochQuorum = false
  private readonly learners = new Map<ServerId, Learner>()
  private round = 0
  private pendingSyncs: PendingSync[] = []
  private readonly ackScratch: number[] = []

  constructor(private readonly core: PeerCore) {
    this.startedAt = core.now
    // In an ensemble of one we are already a quorum.
    this.maybeChooseEpoch()
  }

  get epoch(): number {
    return this.newEpoch ?? this.core.currentEpoch
  }

  onMessage(from: ServerId, m: PeerMessage): void {
    const l = this.learners.get(from)
    if (l) l.lastHeard = this.core.now
    switch (m.type) {
      case 'FOLLOWERINFO':
      case 'OBSERVERINFO':
        return this.onLearnerInfo(from, m.acceptedEpoch, m.type === 'OBSERVERINFO')
      case 'ACKEPOCH':
        return this.onAckEpoch(from, m)
      case 'ACK':
        return this.onAck(from, m)
      case 'PING':
        if (l) l.pingRound = Math.max(l.pingRound, m.round)
        return this.checkPendingSyncs()
      case 'SYNC':
        if (l && synced(l) && this.established) this.registerSync(from, m.requestId)
        return
      default:
        // Anything else is leader-to-learner traffic from a stale leader; ignore it.
        return
    }
  }

  private onLearnerInfo(from: ServerId, acceptedEpoch: number, observer: boolean): void {
    if (observer !== this.core.observers.has(from)) return
    let l = this.learners.get(from)
    if (l && l.phase !== 'info') {
      // A new session from a learner we still track: forget the old one.
      this.learners.delete(from)
      l = undefined
    }
    if (!l) {
      l = {
        id: from,
        observer,
        phase: 'info',
        acceptedEpoch,
        leaderInfoSent: false,
        reAck: false,
        lastZxid: 0,
        ackedZxid: 0,
        pingRound: 0,
        lastHeard: this.core.now,
        informedZxid: 0,
      }
      this.learners.set(from, l)
    }
    l.acceptedEpoch = Math.max(l.acceptedEpoch, acceptedEpoch)
    if (this.newEpoch === undefined) this.maybeChooseEpoch()
    else this.sendLeaderInfo(l)
  }

  private maybeChooseEpoch(): void {
    let voters = 1
    let maxEpoch = this.core.acceptedEpoch
    for (const l of this.learners.values()) {
      if (!l.observer) voters++
      maxEpoch = Math.max(maxEpoch, l.acceptedEpoch)
    }
    if (voters < this.core.quorum) return
    assert(maxEpoch < ZXID_EPOCH_MAX, 'epoch space exhausted')
    this.newEpoch = maxEpoch + 1
    // LEADERINFO goes out only after our own acceptedEpoch is durable (sendAfterDurable).
    this.core.setAcceptedEpoch(this.newEpoch)
    this.acceptedEpochSeq = this.core.stepSeq()
    this.core.trace(`leader: proposing epoch ${this.newEpoch}`)
    for (const l of this.learners.values()) this.sendLeaderInfo(l)
  }

  private sendLeaderInfo(l: Learner): void {
    if (l.phase !== 'info' || this.newEpoch === undefined) return
    l.leaderInfoSent = true
    this.core.out.sendDurable(l.id, { type: 'LEADERINFO', newEpoch: this.newEpoch })
  }

  private isAhead(currentEpoch: number, lastZxid: number): boolean {
    if (currentEpoch !== this.core.currentEpoch) return currentEpoch > this.core.currentEpoch
    return lastZxid > this.core.log.lastZxid
  }

  private onAckEpoch(from: ServerId, m: Msg<'ACKEPOCH'>): void {
    const l = this.learners.get(from)
    if (l?.phase !== 'info' || !l.leaderInfoSent || m.epoch !== this.newEpoch) return
    // An observer only ever holds committed entries, which we have: truncate it
    // instead of abandoning leadership (ZooKeeper would abort here too).
    if (!m.reAck && !l.observer && this.isAhead(m.currentEpoch, m.lastZxid)) {
      return this.core.goLooking(`learner ${from} is ahead of the leader`)
    }
    l.phase = 'epochAcked'
    l.reAck = m.reAck
    l.lastZxid = m.lastZxid
    if (!this.epochQuorum) return this.checkEpochQuorum()
    if (!l.observer || this.established) this.syncLearner(l)
  }

  private checkEpochQuorum(): void {
    if (this.epochQuorum || this.core.durableSeq < this.acceptedEpochSeq) return
    let acks = 1
    for (const l of this.learners.values()) {
      if (!l.observer && l.phase === 'epochAcked' && !l.reAck) acks++
    }
    if (acks < this.core.quorum) return
    this.epochQuorum = true
    assert(this.newEpoch !== undefined, 'epoch quorum without an epoch')
    // Our history is our log; our own NEWLEADER ack counts once currentEpoch is durable.
    this.core.setCurrentEpoch(this.newEpoch)
    this.currentEpochSeq = this.core.stepSeq()
    this.core.trace(`leader: epoch ${this.newEpoch} acked by a quorum`)
    for (const l of this.learners.values()) {
      if (!l.observer && l.phase === 'epochAcked') this.syncLearner(l)
    }
  }

  /** Sends the sync stream: DIFF/TRUNC/SNAP, the missing entries, NEWLEADER. */
  private syncLearner(l: Learner): void {
    assert(this.newEpoch !== undefined, 'sync without an epoch')
    const { core } = this
    const upTo = l.observer ? core.commitZxid : core.log.lastZxid
    const plan = planSync(core.log, l.lastZxid, upTo)
    const older = plan.kind === 'SNAP' ? this.olderHistory(l.lastZxid) : undefined
    let from: number
    if (plan.kind === 'DIFF' || older !== undefined) {
      core.out.send(l.id, { type: 'DIFF', lastZxid: upTo })
      from = plan.kind === 'DIFF' ? plan.from : core.log.baseZxid
    } else if (plan.kind === 'TRUNC') {
      core.out.send(l.id, { type: 'TRUNC', zxid: plan.to })
      from = plan.to
    } else {
      from = this.sendSnapshot(l.id)
    }
    const how = older === undefined ? plan.kind : `DIFF (${older.length} from durable history)`
    core.trace(`leader: sync ${l.id} by ${how} from 0x${(older ? l.lastZxid : from).toString(16)}`)
    for (const e of older ?? []) core.out.send(l.id, { type: 'PROPOSAL', zxid: e.zxid, data: e.data })
    for (const e of core.log.slice(from, upTo)) {
      core.out.send(l.id, { type: 'PROPOSAL', zxid: e.zxid, data: e.data })
    }
    core.out.send(l.id, { type: 'NEWLEADER', epoch: this.newEpoch })
    l.phase = 'syncing'
    l.informedZxid = upTo
  }

  /**
   * A learner older than the in-memory log can still be DIFFed from durable
   * history (as ZooKeeper replays its txn log): when that history holds the
   * learner's last entry and, contiguously, everything from there to the
   * in-memory log's base, within historyDiffEntriesMax. The entries after the
   * learner's last, up to the base; undefined when a SNAP is needed.
   */
  private olderHistory(learnerLastZxid: number): readonly LogEntry[] | undefined {
    const { core } = this
    const base = core.log.baseZxid
    const max = core.limits.historyDiffEntriesMax
    if (core.history === undefined || max === 0 || learnerLastZxid === 0 || learnerLastZxid >= base)
      return undefined
    const read = core.history.read(learnerLastZxid, max + 1)
    if (read[0]?.zxid !== learnerLastZxid) return undefined
    const out: LogEntry[] = []
    for (let i = 1; i < read.length && read[i]!.zxid <= base; i++) out.push(read[i]!)
    // It must reach the in-memory log exactly: its last entry is the base.
    return out.length > 0 && out[out.length - 1]!.zxid === base ? out : undefined
  }

  /** SNAP: the application's snapshot, streamed by the driver in chunks of at most snapChunkBytesMax. */
  private sendSnapshot(to: ServerId): number {
    const { core } = this
    const snap = core.snapshots.takeSnapshot()
    assert(snap.zxid >= core.log.baseZxid, `snapshot 0x${snap.zxid.toString(16)} older than the log base`)
    assert(snap.zxid <= core.commitZxid, 'snapshot includes uncommitted entries')
    core.out.sendSnapshot(to, new SnapshotStream(snap.zxid, snap.chunks, core.limits.snapChunkBytesMax))
    return snap.zxid
  }

  private onAck(from: ServerId, m: Msg<'ACK'>): void {
    const l = this.learners.get(from)
    if (!l) return
    if (m.newLeaderEpoch > 0) {
      if (m.newLeaderEpoch !== this.newEpoch || l.phase !== 'syncing') return
      l.phase = 'newLeaderAcked'
      l.ackedZxid = m.zxid
      if (this.established) this.sendUpToDate(l)
      else this.checkEstablished()
    } else if (synced(l) && !l.observer) {
      l.ackedZxid = Math.max(l.ackedZxid, m.zxid)
    }
    this.tryCommit()
  }

  private sendUpToDate(l: Learner): void {
    this.core.out.send(l.id, { type: 'UPTODATE', commitZxid: this.core.commitZxid })
    l.phase = 'active'
  }

  private selfDurable(): boolean {
    return this.core.durableSeq >= this.currentEpochSeq
  }

  private checkEstablished(): void {
    if (this.established || !this.epochQuorum) return
    let acks = this.selfDurable() ? 1 : 0
    for (const l of this.learners.values()) if (!l.observer && synced(l)) acks++
    if (acks < this.core.quorum) return
    this.established = true
    this.core.trace(`leader: established epoch ${this.newEpoch}`)
    // Commit the initial history first, so UPTODATE carries it.
    this.tryCommit()
    for (const l of this.learners.values()) {
      if (l.phase === 'newLeaderAcked') this.sendUpToDate(l)
      else if (l.observer && l.phase === 'epochAcked') this.syncLearner(l)
    }
  }

  /** Commits the largest zxid durable on a quorum (the leader only once its currentEpoch is durable). */
  private tryCommit(): void {
    if (!this.established) return
    // The quorum-th highest acknowledged zxid, kept in a reused array sorted
    // descending (insertion: at most 7 voters; this runs on every ACK).
    const acks = this.ackScratch
    let n = 0
    if (this.selfDurable()) n = insertDescending(acks, n, this.core.durableZxid)
    for (const l of this.learners.values())
      if (!l.observer && synced(l)) n = insertDescending(acks, n, l.ackedZxid)
    if (n < this.core.quorum) return
    const target = Math.min(acks[this.core.quorum - 1]!, this.core.log.lastZxid)
    if (target <= this.core.commitZxid) return
    this.core.commitThrough(target)
    let commit: PeerMessage | undefined
    for (const l of this.learners.values()) {
      if (!forwarded(l)) continue
      if (!l.observer) {
        this.core.out.send(l.id, (commit ??= { type: 'COMMIT', zxid: target }))
        continue
      }
      for (const e of this.core.log.slice(l.informedZxid, target)) {
        this.core.out.send(l.id, { type: 'INFORM', zxid: e.zxid, data: e.data })
      }
      l.informedZxid = target
    }
  }

  propose(data: Uint8Array): ProposeResult {
    if (!this.established || this.newEpoch === undefined) return { ok: false, reason: 'not-ready' }
    const last = this.core.log.lastZxid
    if (zxidEpoch(last) === this.newEpoch && zxidCounter(last) === ZXID_COUNTER_MAX) {
      // The counter is exhausted: a new election gives a new epoch (as ZooKeeper does).
      this.core.goLooking('zxid counter exhausted')
      return { ok: false, reason: 'not-ready' }
    }
    const zxid = zxidEpoch(last) === this.newEpoch ? last + 1 : makeZxid(this.newEpoch, 1)
    this.core.append({ zxid, data })
    // One message object for every follower (the driver encodes it once).
    const msg: PeerMessage = { type: 'PROPOSAL', zxid, data }
    for (const l of this.learners.values()) {
      if (!l.observer && forwarded(l)) this.core.out.send(l.id, msg)
    }
    return { ok: true, zxid }
  }

  /** A sync at the leader itself; false if we cannot serve it. */
  localSync(requestId: number): boolean {
    if (!this.established) return false
    this.registerSync(this.core.id, requestId)
    return true
  }

  private registerSync(origin: ServerId, requestId: number): void {
    this.round++
    this.pendingSyncs.push({ requestId, origin, zxid: this.core.commitZxid, round: this.round })
    this.sendPings()
    this.checkPendingSyncs()
  }

  private sendPings(): void {
    for (const l of this.learners.values()) this.core.out.send(l.id, { type: 'PING', round: this.round })
  }

  private checkPendingSyncs(): void {
    let done = 0
    for (const p of this.pendingSyncs) {
      let acks = 1
      for (const l of this.learners.values()) if (!l.observer && synced(l) && l.pingRound >= p.round) acks++
      if (acks < this.core.quorum) break
      done++
      if (p.origin === this.core.id) this.core.out.syncDone.push({ requestId: p.requestId, zxid: p.zxid })
      else this.core.out.send(p.origin, { type: 'SYNCREPLY', requestId: p.requestId, zxid: p.zxid })
    }
    if (done > 0) this.pendingSyncs = this.pendingSyncs.slice(done)
  }

  onDurable(): void {
    this.checkEpochQuorum()
    this.checkEstablished()
    this.tryCommit()
  }

  onTick(): void {
    const { core } = this
    this.round++
    this.sendPings()
    if (!this.established) {
      if (core.now - this.startedAt > core.limits.initLimitTicks)
        core.goLooking('not established within initLimit')
      return
    }
    let alive = 1
    for (const l of [...this.learners.values()]) {
      const limit = synced(l) ? core.limits.syncLimitTicks : core.limits.initLimitTicks
      if (core.now - l.lastHeard > limit) {
        this.dropLearner(l.id)
        core.out.disconnect.push(l.id)
      } else if (!l.observer && synced(l)) {
        alive++
      }
    }
    if (alive < core.quorum) core.goLooking('no quorum within syncLimit')
  }

  dropLearner(id: ServerId): void {
    this.learners.delete(id)
    this.pendingSyncs = this.pendingSyncs.filter((p) => p.origin !== id)
  }

  /** Leaving LEADING: close every learner session, fail our own pending syncs. */
  stop(): void {
    for (const id of this.learners.keys()) this.core.out.disconnect.push(id)
    for (const p of this.pendingSyncs)
      if (p.origin === this.core.id) this.core.out.syncFailed.push(p.requestId)
    this.learners.clear()
    this.pendingSyncs = []
  }
}
