/**
 * ZabPeer: one server's ZAB state machine. Inputs in (`step`), effects out
 * (`Output`); no I/O, no clock, no randomness but the injected Prng. The
 * dispatcher routes inputs to the role in charge: Election while LOOKING,
 * Leadership while LEADING, Learnership while FOLLOWING/OBSERVING.
 *
 * Driving it (the contract every driver, real or simulated, must keep):
 *  - call step({kind:'tick'}) every tickMs; time inside is counted in ticks;
 *  - write `persist` in order and report {kind:'durable', seq} when it and
 *    every earlier batch are durable; only then send `sendAfterDurable`;
 *  - send `sendNow` at once over the FIFO connection to each peer;
 *  - apply `restore`, then `commit`, then deliver `app`, then `syncDone`;
 *  - honour `disconnect` (close the connection, drop its queued messages)
 *    and report peerConnected/peerDisconnected for every connection;
 *  - bind sends to the connection the peer last saw connected: after a
 *    break, a message emitted before the peer processed peerDisconnected
 *    must not go out on the next connection to the same server (it is a
 *    write to a dead socket). Sessions are connections.
 *
 * Invariants: acceptedEpoch >= currentEpoch, both only grow; commits are
 * emitted once each, in zxid order, and only for quorum-decided entries; the
 * peer trusts nothing durable that it was not told is durable.
 *
 * Must not import anything but shared/, server/core and server/zab (pure).
 */
import { assert, fail } from '../../shared/assert.js'
import type { Prng } from '../core/prng.js'
import { type Decision, Election, NOBODY, type NotificationMsg, notificationOf } from './election.js'
import { Leadership } from './leadership.js'
import { Learnership } from './learnership.js'
import {
  type ConfigAt,
  ConfigError,
  decodeConfigEntry,
  type MemberConfig,
  Membership,
  parseConfigText,
} from './membership.js'
import type { PeerMessage } from './messages.js'
import { type Output, OutputBuilder, type RoleEvent } from './output.js'
import type { PeerCore, PeerLimits } from './peer-core.js'
import type {
  HistorySource,
  LogEntry,
  PersistedState,
  ReceivedSnapshot,
  Role,
  ServerId,
  SnapshotSource,
  Vote,
} from './types.js'
import { ZabLog } from './zab-log.js'

export interface ZabPeerOptions {
  readonly id: ServerId
  /** The static configuration (the config file's; configOfIds for ids alone), used until a config entry is committed. */
  readonly initialConfig: MemberConfig
  /** Ticks a leader may take to reach a quorum of synced followers, and a learner to sync. */
  readonly initLimitTicks: number
  /** Ticks without hearing from a quorum (leader) or from the leader (learner) before LOOKING. */
  readonly syncLimitTicks: number
  /** Ticks a decided election waits for a better vote (ZooKeeper's finalizeWait). */
  readonly finalizeWaitTicks?: number
  readonly notifyIntervalTicksMin?: number
  readonly notifyIntervalTicksMax?: number
  /** Committed entries kept in memory for DIFF synchronisation. */
  readonly commitLogCount?: number
  readonly snapChunkBytesMax?: number
  /** Durable history older than the in-memory log: a learner behind it is DIFFed from there. */
  readonly history?: HistorySource
  /** Most entries such a DIFF reads (default 10,000); further behind, the learner gets a SNAP. */
  readonly historyDiffEntriesMax?: number
  readonly prng: Prng
  readonly persisted: PersistedState
  readonly snapshots: SnapshotSource
}

export type Input =
  | { kind: 'tick' }
  | { kind: 'message'; from: ServerId; msg: PeerMessage }
  /** Every persist batch with seq <= `seq` is durable. */
  | { kind: 'durable'; seq: number }
  | { kind: 'propose'; data: Uint8Array }
  | { kind: 'sync'; requestId: number }
  | { kind: 'appSend'; to: ServerId; payload: Uint8Array }
  | { kind: 'peerConnected'; peer: ServerId }
  | { kind: 'peerDisconnected'; peer: ServerId }

export interface PeerStatus {
  readonly id: ServerId
  readonly role: Role
  readonly epoch: number
  readonly leaderId: ServerId | undefined
  readonly serving: boolean
  readonly acceptedEpoch: number
  readonly currentEpoch: number
  readonly lastZxid: number
  readonly commitZxid: number
  readonly durableZxid: number
  readonly round: number
  readonly protocolErrors: number
}

/** The trace event of a step into LOOKING starts with this; the reason follows. */
export const LOOKING_TRACE = 'LOOKING: '
/** The trace event of a newer committed config taken from the leader starts with this (a driver logs it). */
export const LEADER_CONFIG_TRACE = 'config from the leader: '
/** The trace event of a static config taken from the leader in place of ours starts with this (a driver warns). */
export const LEADER_STATIC_CONFIG_TRACE = 'static config from the leader: '

export class ZabPeer implements PeerCore {
  readonly id: ServerId
  readonly membership: Membership
  readonly limits: PeerLimits
  readonly log: ZabLog
  readonly snapshots: SnapshotSource
  readonly history: HistorySource | undefined
  out = new OutputBuilder()
  now = 0
  acceptedEpoch: number
  currentEpoch: number
  commitZxid: number
  durableSeq = 0
  durableZxid: number
  protocolErrors = 0
  /** Recent internal events, for traces; the driver may drain it. */
  readonly events: string[] = []

  private role: Role = 'LOOKING'
  private started = false
  private readonly election: Election
  private leadership: Leadership | undefined
  private learnership: Learnership | undefined
  /** The vote we settled on while not LOOKING (sent to LOOKING peers). */
  private settledVote: Vote | undefined
  private lastSeq = 0
  /** Peers with a live link (the election decides early when all reachable voters agree). */
  private readonly connected = new Set<ServerId>()
  private readonly pendingBatches: { seq: number; lastZxid: number }[] = []
  private lastRole: RoleEvent
  private readonly commitLogCount: number
  /** The membership view changed in this step: the role may have to follow (afterMembershipChange). */
  private membershipChanged = false

  constructor(opts: ZabPeerOptions) {
    const p = opts.persisted
    assert(p.acceptedEpoch >= p.currentEpoch, 'persisted acceptedEpoch below currentEpoch')
    assert(opts.initLimitTicks > 0 && opts.syncLimitTicks > 0, 'limits must be positive')
    this.id = opts.id
    this.membership = this.makeMembership(p.config ?? { zxid: 0, config: opts.initialConfig })
    this.limits = {
      initLimitTicks: opts.initLimitTicks,
      syncLimitTicks: opts.syncLimitTicks,
      snapChunkBytesMax: opts.snapChunkBytesMax ?? 64 * 1024,
      historyDiffEntriesMax: Math.max(0, opts.historyDiffEntriesMax ?? 10_000),
    }
    this.commitLogCount = Math.max(1, opts.commitLogCount ?? 500)
    this.snapshots = opts.snapshots
    this.history = opts.history
    this.log = new ZabLog(p.snapshotZxid, p.log)
    this.acceptedEpoch = p.acceptedEpoch
    this.currentEpoch = p.currentEpoch
    // Only the snapshot is known committed; the log tail is committed again by a leader.
    this.commitZxid = p.snapshotZxid
    this.durableZxid = this.log.lastZxid
    // Config entries accepted after the committed config: not known committed (after a restart
    // only the snapshot is), so the view is joint until a leader commits them again.
    for (const e of p.log) this.noteConfigEntry(e)
    this.membershipChanged = false
    this.election = new Election({
      id: this.id,
      membership: this.membership,
      finalizeWaitTicks: opts.finalizeWaitTicks ?? 2,
      connected: this.connected,
      notifyIntervalTicksMin: opts.notifyIntervalTicksMin ?? 1,
      notifyIntervalTicksMax: opts.notifyIntervalTicksMax ?? 20,
      prng: opts.prng,
    })
    this.lastRole = this.roleEvent()
  }

  // ---- the step function ----

  step(input: Input): Output {
    this.out = new OutputBuilder()
    if (!this.started) {
      this.started = true
      this.startLooking()
    }
    this.dispatch(input)
    if (this.membershipChanged) this.afterMembershipChange()
    return this.finish()
  }

  /** The membership view; a mutant peer (the simulator's mutations) may plant a bug in it. */
  protected makeMembership(committed: ConfigAt): Membership {
    return new Membership(committed)
  }

  /** Follows a membership change with the role: a removed leader steps down, a learner whose kind changed rejoins. */
  private afterMembershipChange(): void {
    this.membershipChanged = false
    const m = this.membership
    this.trace(`membership: ${m.describe()}`)
    if (this.leadership && !m.isVoter(this.id)) {
      // It has committed its own removal: it steps down at its next tick (Leadership.onTick),
      // once the COMMITs are out and the application has seen this step's commits as a leader's.
      this.leadership.stepDown = `no longer a voter (config 0x${m.committed.zxid.toString(16)})`
    }
    if (this.role === 'LOOKING') return this.goLooking('the config changed: a new round under it')
    // A learner takes part as its leader says; the leader re-decides (membershipChanged).
    this.leadership?.membershipChanged()
  }

  /** Notes a config entry just appended (or recovered) to the log. */
  private noteConfigEntry(e: LogEntry): void {
    if (e.zxid <= this.membership.latest.zxid) return
    const config = decodeConfigEntry(e.data)
    if (config === undefined) return
    this.membership.appended({ zxid: e.zxid, config })
    this.membershipChanged = true
  }

  private dispatch(input: Input): void {
    switch (input.kind) {
      case 'tick':
        return this.onTick()
      case 'message':
        return this.onMessage(input.from, input.msg)
      case 'durable':
        return this.onDurable(input.seq)
      case 'propose':
        this.out.proposed = this.leadership
          ? this.leadership.propose(input.data)
          : { ok: false, reason: 'not-leader' }
        return
      case 'sync':
        return this.onLocalSync(input.requestId)
      case 'appSend':
        return this.out.send(input.to, { type: 'APP', payload: input.payload })
      case 'peerConnected':
        this.connected.add(input.peer)
        if (this.role === 'LOOKING') this.election.onPeerConnected(input.peer, this.sendFn)
        return
      case 'peerDisconnected':
        this.connected.delete(input.peer)
        return this.onPeerDisconnected(input.peer)
    }
  }

  private finish(): Output {
    this.trimLog()
    let seq: number | undefined
    if (this.out.hasPersist) {
      seq = ++this.lastSeq
      this.pendingBatches.push({ seq, lastZxid: this.log.lastZxid })
    }
    const now = this.roleEvent()
    const changed =
      now.role !== this.lastRole.role ||
      now.epoch !== this.lastRole.epoch ||
      now.leaderId !== this.lastRole.leaderId ||
      now.serving !== this.lastRole.serving
    this.lastRole = now
    return this.out.build(seq, this.lastSeq, changed ? now : undefined)
  }

  /** Keeps at most commitLogCount committed entries in memory. */
  private trimLog(): void {
    this.log.trimCommitted(this.commitZxid, this.commitLogCount)
  }

  private readonly sendFn = (to: ServerId, msg: PeerMessage): void => this.out.send(to, msg)

  // ---- inputs ----

  private onTick(): void {
    this.now++
    if (this.role === 'LOOKING') return this.decide(this.election.onTick(this.now, this.sendFn))
    if (this.leadership) return this.leadership.onTick()
    this.learnership?.onTick()
  }

  private onMessage(from: ServerId, msg: PeerMessage): void {
    // Servers outside our view are heard too: a joiner syncs as a non-voting learner, and a
    // server our view does not know yet may be a member of a newer config. Which links exist
    // at all is the transport's business (it connects only servers it has an address for).
    if (from === this.id) return
    if (msg.type === 'NOTIFICATION') return this.onNotification(from, msg)
    if (msg.type === 'APP') {
      this.out.app.push({ from, payload: msg.payload })
      return
    }
    if (this.leadership) return this.leadership.onMessage(from, msg)
    if (this.learnership && from === this.learnership.leaderId) return this.learnership.onMessage(msg)
    if ((msg.type === 'FOLLOWERINFO' || msg.type === 'OBSERVERINFO') && this.learnership) {
      // We follow someone else, so the sender waits for a leader that will never
      // be us: closing the link tells it at once (ZooKeeper's learner meets a
      // refused connection), instead of after initLimit. While LOOKING we may
      // still become its leader, so it keeps asking.
      this.out.disconnect.push(from)
    }
  }

  private onNotification(from: ServerId, n: NotificationMsg): void {
    if (this.role === 'LOOKING' && n.configZxid > this.membership.committed.zxid) {
      // A newer committed config than ours: commits are facts, so adopt it and start a new
      // round under it (afterMembershipChange). Only while LOOKING: a leader or learner learns
      // configs from its log, and quorums do not change under a running sync.
      let config: MemberConfig
      try {
        config = parseConfigText(n.config)
      } catch (e) {
        if (e instanceof ConfigError)
          return this.protocolError(`notification with a bad config: ${e.message}`)
        throw e
      }
      this.membership.adoptCommitted({ zxid: n.configZxid, config })
      this.membershipChanged = true
      this.trace(`adopted config 0x${n.configZxid.toString(16)} from ${from}`)
      return
    }
    if (this.role === 'LOOKING') {
      return this.decide(this.election.onNotification(from, n, this.now, this.sendFn))
    }
    // Settled: tell a LOOKING peer whom we follow, so it can join (FastLeaderElection does so).
    if (n.state !== 'LOOKING' || this.settledVote === undefined) return
    this.out.send(from, notificationOf(this.settledVote, this.election.round, this.role, this.membership))
  }

  private onDurable(seq: number): void {
    if (!(seq <= this.lastSeq)) fail(`durable seq ${seq} was never emitted (last ${this.lastSeq})`)
    if (seq <= this.durableSeq) return
    this.durableSeq = seq
    while (this.pendingBatches.length > 0 && this.pendingBatches[0]!.seq <= seq) {
      this.durableZxid = this.pendingBatches.shift()!.lastZxid
    }
    this.leadership?.onDurable()
    this.learnership?.onDurable()
  }

  private onLocalSync(requestId: number): void {
    const ok = this.leadership?.localSync(requestId) ?? this.learnership?.localSync(requestId) ?? false
    if (!ok) this.out.syncFailed.push(requestId)
  }

  private onPeerDisconnected(peer: ServerId): void {
    if (this.leadership) return this.leadership.dropLearner(peer)
    // Our FIFO stream with the leader is broken: messages may be lost, so start over.
    if (this.learnership && peer === this.learnership.leaderId)
      this.goLooking(`lost connection to leader ${peer}`)
  }

  // ---- roles ----

  /** Our vote as a candidate: for ourselves if we vote in our view, else for nobody (server id 0). */
  private selfVote(): Vote {
    if (!this.membership.isVoter(this.id)) return { leader: NOBODY, zxid: 0, epoch: 0 }
    return { leader: this.id, zxid: this.log.lastZxid, epoch: this.currentEpoch }
  }

  private startLooking(): void {
    this.role = 'LOOKING'
    this.settledVote = undefined
    this.decide(this.election.start(this.selfVote(), this.now, this.sendFn))
  }

  private decide(d: Decision | undefined): void {
    if (!d) return
    assert(d.vote.leader !== NOBODY, 'elected nobody')
    this.settledVote = d.vote
    if (d.kind === 'lead') {
      assert(this.membership.isVoter(this.id), 'an observer cannot lead')
      this.role = 'LEADING'
      this.trace(`elected leader (round ${this.election.round})`)
      this.leadership = new Leadership(this)
      return
    }
    // A server outside the view follows as a non-voting follower (a joiner catching up).
    const observer = this.membership.isObserver(this.id)
    this.role = observer ? 'OBSERVING' : 'FOLLOWING'
    this.trace(`${this.role} ${d.vote.leader} (round ${this.election.round})`)
    this.learnership = new Learnership(this, d.vote.leader, observer)
  }

  goLooking(reason: string): void {
    this.trace(`${LOOKING_TRACE}${reason}`)
    this.leadership?.stop()
    this.learnership?.stop()
    this.leadership = undefined
    this.learnership = undefined
    this.startLooking()
  }

  protocolError(reason: string): void {
    this.protocolErrors++
    this.goLooking(`protocol error: ${reason}`)
  }

  trace(event: string): void {
    this.events.push(event)
    if (this.events.length > 64) this.events.splice(0, this.events.length - 64)
  }

  private roleEvent(): RoleEvent {
    if (this.leadership) {
      return {
        role: 'LEADING',
        epoch: this.leadership.epoch,
        leaderId: this.id,
        serving: this.leadership.established,
      }
    }
    if (this.learnership) {
      const l = this.learnership
      return {
        role: l.observer ? 'OBSERVING' : 'FOLLOWING',
        epoch: l.newEpoch ?? this.acceptedEpoch,
        leaderId: l.leaderId,
        // A follower outside every config of the view (a joiner before a reconfig names it, a
        // removed server) serves clients too, as ZooKeeper's non-voting follower does: its view
        // is the leader's (adoptLeaderConfig), so /zookeeper/config there does not name it.
        serving: l.serving,
      }
    }
    return { role: 'LOOKING', epoch: this.currentEpoch, leaderId: undefined, serving: false }
  }

  // ---- PeerCore: state changes that also queue their persist writes ----

  stepSeq(): number {
    return this.lastSeq + 1
  }

  setAcceptedEpoch(epoch: number): void {
    if (!(epoch >= this.acceptedEpoch)) fail(`acceptedEpoch would go back: ${epoch} < ${this.acceptedEpoch}`)
    this.acceptedEpoch = epoch
    this.out.persistMeta({ acceptedEpoch: epoch })
  }

  setCurrentEpoch(epoch: number): void {
    if (!(epoch >= this.currentEpoch)) fail(`currentEpoch would go back: ${epoch} < ${this.currentEpoch}`)
    assert(epoch <= this.acceptedEpoch, 'currentEpoch above acceptedEpoch')
    this.currentEpoch = epoch
    this.out.persistMeta({ currentEpoch: epoch })
  }

  append(entry: LogEntry): void {
    this.log.append(entry)
    this.out.persistEntry(entry)
    this.noteConfigEntry(entry)
  }

  truncateAfter(zxid: number): void {
    assert(zxid >= this.commitZxid, 'truncating committed entries')
    this.log.truncateAfter(zxid)
    this.out.persistTruncate(zxid)
    if (this.membership.latest.zxid > zxid) {
      this.membership.truncatedAfter(zxid)
      this.membershipChanged = true
    }
  }

  installSnapshot(s: ReceivedSnapshot): void {
    assert(s.zxid >= this.commitZxid, 'snapshot older than our commit point')
    this.log.resetTo(s.zxid)
    this.commitZxid = s.zxid
    this.out.persistSnapshot(s)
    this.out.restore = s
    if (s.config !== undefined) {
      // A static config (no reconfig yet) is in no tree: kept apart, or a restart would forget it.
      if (s.config.zxid === 0 && s.config.config.text !== this.membership.committed.config.text)
        this.takeStatic(s.config)
      this.membership.reset(s.config)
      this.membershipChanged = true
    }
  }

  adoptLeaderConfig(at: ConfigAt): boolean {
    const ours = this.membership.committed
    if (at.zxid < ours.zxid) return true // we know a newer commit (a notification told us): a fact too
    if (at.zxid > ours.zxid) {
      // Its entry is in the log the sync stream just gave us: committing it is only a matter of time.
      this.trace(
        `${LEADER_CONFIG_TRACE}committed 0x${at.zxid.toString(16)} (ours was 0x${ours.zxid.toString(16)})`,
      )
      this.membership.adoptCommitted(at)
      this.membershipChanged = true
      return true
    }
    if (at.config.text === ours.config.text) return true
    if (at.zxid !== 0) {
      // One entry, one text: two texts at one zxid mean two histories.
      this.protocolError(`NEWLEADER config 0x${at.zxid.toString(16)} differs from ours at that version`)
      return false
    }
    this.takeStatic(at)
    this.membership.replaceStatic(at)
    this.membershipChanged = true
    return true
  }

  /** A static config from the leader replaces ours: said, and persisted (PersistBatch.staticConfig). */
  private takeStatic(at: ConfigAt): void {
    const ours = this.membership.committed.config
    this.trace(
      `${LEADER_STATIC_CONFIG_TRACE}v[${at.config.voters}]o[${at.config.observers}] replaces ours v[${ours.voters}]o[${ours.observers}]`,
    )
    this.out.persistStaticConfig(at.config.text)
  }

  commitThrough(zxid: number): void {
    assert(zxid > this.commitZxid, 'commit does not advance')
    assert(zxid <= this.log.lastZxid, 'commit beyond the log')
    const entries = this.log.slice(this.commitZxid, zxid)
    assert(entries.length > 0 && entries[entries.length - 1]!.zxid === zxid, 'commit target is not an entry')
    this.commitZxid = zxid
    for (const e of entries) this.out.commit.push(e)
    if (this.membership.committedThrough(zxid)) this.membershipChanged = true
    this.learnership?.onCommitted()
  }

  // ---- read-only views ----

  status(): PeerStatus {
    const r = this.roleEvent()
    return {
      id: this.id,
      role: r.role,
      epoch: r.epoch,
      leaderId: r.leaderId,
      serving: r.serving,
      acceptedEpoch: this.acceptedEpoch,
      currentEpoch: this.currentEpoch,
      lastZxid: this.log.lastZxid,
      commitZxid: this.commitZxid,
      durableZxid: this.durableZxid,
      round: this.election.round,
      protocolErrors: this.protocolErrors,
    }
  }

  /** An in-memory log entry (undefined if unknown or trimmed). */
  entry(zxid: number): LogEntry | undefined {
    return this.log.get(zxid)
  }
}
