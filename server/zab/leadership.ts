/**
 * Leadership: the LEADING side of discovery, synchronisation and broadcast
 * (ZooKeeper's Leader + LearnerHandler), for one leadership period.
 *
 * Phases: discovery (FOLLOWERINFO until a quorum, LEADERINFO with newEpoch =
 * max(acceptedEpochs) + 1, ACKEPOCH until a quorum) -> sync (DIFF/TRUNC/SNAP
 * + PROPOSALs + NEWLEADER, which carries our committed config, per learner) -> established (a quorum acked
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
import { assert, fail } from '../../shared/assert.js'
import { makeZxid, ZXID_COUNTER_MAX, ZXID_EPOCH_MAX, zxidCounter, zxidEpoch } from '../../shared/zxid.js'
import { ConfigError, decodeConfigEntry, isConfigEntry, type MemberConfig, majority } from './membership.js'
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

/** Learners outside every config of our view (joiners) a leader keeps at most. */
const NON_MEMBER_LEARNERS_MAX = 8

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
  /**
   * Set when this leader committed a config it does not vote in: it leaves at
   * its next tick. Until then it may still propose: its view is the new
   * config alone, in which it does not count, so what it commits a quorum of
   * the new voters has.
   */
  stepDown: string | undefined
  private readonly ackOf = (id: ServerId): number | undefined => {
    if (id === this.core.id) return this.selfDurable() ? this.core.durableZxid : undefined
    const l = this.learners.get(id)
    return l !== undefined && !l.observer && synced(l) ? l.ackedZxid : undefined
  }

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
        return this.onLearnerInfo(from, m.acceptedEpoch)
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

  private onLearnerInfo(from: ServerId, acceptedEpoch: number): void {
    // How it takes part is ours to say (LEADERINFO tells it): an observer of our view observes,
    // anyone else follows — a learner whose own view is older (it asked as an observer, but a
    // config it has not seen yet makes it a voter) must ACK, or that config could never commit.
    const observer = this.core.membership.isObserver(from)
    // Anyone may learn: voters and observers of our view, a joiner outside it (a non-voting
    // follower until a config names it), a server our view does not know of yet. Only voters of
    // our view count in its quorums; outsiders are few (NON_MEMBER_LEARNERS_MAX).
    let l = this.learners.get(from)
    if (l === undefined && !this.core.membership.isMember(from)) {
      let outsiders = 0
      for (const x of this.learners.values()) if (!this.core.membership.isMember(x.id)) outsiders++
      if (outsiders >= NON_MEMBER_LEARNERS_MAX) return
    }
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

  /** A learner that counts in our quorums (a voter of our view, connected as a follower) and `pred` holds for. */
  private counts(id: ServerId, pred: (l: Learner) => boolean): boolean {
    if (id === this.core.id) return false
    const l = this.learners.get(id)
    return l !== undefined && !l.observer && pred(l)
  }

  private maybeChooseEpoch(): void {
    let maxEpoch = this.core.acceptedEpoch
    for (const l of this.learners.values()) maxEpoch = Math.max(maxEpoch, l.acceptedEpoch)
    const { membership, id } = this.core
    if (!membership.hasQuorum((v) => v === id || this.counts(v, () => true))) return
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
    this.core.out.sendDurable(l.id, { type: 'LEADERINFO', newEpoch: this.newEpoch, observer: l.observer })
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
    // So may a follower outside every config of our view (a joiner, a removed server): it holds
    // nothing our quorums vouched for. A voter of our view must not be ahead of us.
    if (
      !m.reAck &&
      !l.observer &&
      this.core.membership.isVoter(from) &&
      this.isAhead(m.currentEpoch, m.lastZxid)
    ) {
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
    const { membership, id } = this.core
    const acked = (l: Learner) => l.phase === 'epochAcked' && !l.reAck
    if (!membership.hasQuorum((v) => v === id || this.counts(v, acked))) return
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
    // Our committed config: the learner takes it (a joiner's own static config names itself).
    const { committed } = core.membership
    core.out.send(l.id, {
      type: 'NEWLEADER',
      epoch: this.newEpoch,
      configZxid: committed.zxid,
      config: committed.config.text,
    })
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
    if (!(snap.zxid >= core.log.baseZxid))
      fail(`snapshot 0x${snap.zxid.toString(16)} older than the log base`)
    assert(snap.zxid <= core.commitZxid, 'snapshot includes uncommitted entries')
    // Our committed config: the one as of the snapshot (commits are applied before the next
    // step, so the snapshot is at our commit point), or a newer one we adopted while LOOKING
    // (committed: true either way; its entry, if we have it, follows the snapshot).
    core.out.sendSnapshot(
      to,
      new SnapshotStream(snap.zxid, snap.chunks, core.limits.snapChunkBytesMax, core.membership.committed),
    )
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
    const { membership, id } = this.core
    if (!membership.hasQuorum((v) => (v === id ? this.selfDurable() : this.counts(v, synced)))) return
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
    // For each config of the view the quorum-th highest acknowledged zxid, the least of those:
    // a reconfig commits only once a quorum of the old voters AND one of the new have it.
    const acked = this.core.membership.quorumZxid(this.ackOf, this.ackScratch)
    const target = Math.min(acked, this.core.log.lastZxid)
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
    if (isConfigEntry(data)) {
      const refused = this.refuseReconfig(data)
      if (refused !== undefined) return refused
    }
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

  /**
   * Why a reconfig (a config entry) cannot be proposed now, or undefined:
   * one is in flight already (our view holds an uncommitted config: one at a
   * time keeps views to two configs and the rule simple), the entry is
   * malformed, or a quorum of the new config's voters is not synced with us
   * (it could not commit: ZooKeeper's NEW_CONFIG_NO_QUORUM; a new voter must
   * first catch up as a learner).
   */
  private refuseReconfig(data: Uint8Array): ProposeResult | undefined {
    const { core } = this
    if (core.membership.pending.length > 0) return { ok: false, reason: 'reconfig-in-progress' }
    let config: MemberConfig | undefined
    try {
      config = decodeConfigEntry(data)
    } catch (e) {
      if (e instanceof ConfigError) return { ok: false, reason: 'bad-config' }
      throw e
    }
    if (config === undefined) return { ok: false, reason: 'bad-config' }
    let ready = 0
    for (const v of config.voters) if (v === core.id || this.counts(v, synced)) ready++
    if (ready < majority(config.voters.length)) return { ok: false, reason: 'new-config-no-quorum' }
    return undefined
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
    const { membership, id } = this.core
    for (const p of this.pendingSyncs) {
      const answered = (l: Learner) => synced(l) && l.pingRound >= p.round
      if (!membership.hasQuorum((v) => v === id || this.counts(v, answered))) break
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
    if (this.stepDown !== undefined) return core.goLooking(this.stepDown)
    this.round++
    this.sendPings()
    if (!this.established) {
      if (core.now - this.startedAt > core.limits.initLimitTicks)
        core.goLooking('not established within initLimit')
      return
    }
    for (const l of [...this.learners.values()]) {
      const limit = synced(l) ? core.limits.syncLimitTicks : core.limits.initLimitTicks
      if (core.now - l.lastHeard > limit) {
        this.dropLearner(l.id)
        core.out.disconnect.push(l.id)
      }
    }
    if (!core.membership.hasQuorum((v) => v === core.id || this.counts(v, synced)))
      core.goLooking('no quorum within syncLimit')
  }

  /**
   * Our membership view changed: a learner that takes part as our view no
   * longer says (an observer now a voter, a voter now an observer) starts
   * its session over, and is told its new part in the next LEADERINFO.
   */
  membershipChanged(): void {
    for (const l of [...this.learners.values()]) {
      if (l.observer === this.core.membership.isObserver(l.id)) continue
      this.dropLearner(l.id)
      this.core.out.disconnect.push(l.id)
    }
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
