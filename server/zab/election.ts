/**
 * Election: Fast Leader Election (ZooKeeper's FastLeaderElection), as the
 * state of one peer while it is LOOKING.
 *
 * A vote is ordered by (epoch, zxid, leader id); a vote for a non-voter
 * (an observer) is never better than any other, so observers are never
 * elected. Notifications carry the sender's election round (ZooKeeper's
 * logicalclock). A voter decides when a quorum of voters of its round
 * (itself included) votes like it and no better vote arrives for
 * `finalizeWaitTicks` — or at once when every voter it can reach already
 * votes like it (after a crash the dead voter's silence is certain, so
 * waiting for it only delays failover); it joins an existing leader when a quorum of voters
 * reports FOLLOWING/LEADING the same leader and that leader itself says
 * LEADING. Observers decide only the second way. Resends back off
 * exponentially with jitter from the injected Prng.
 *
 * Invariants: `round` never decreases within a process; a decision always
 * names a voter as leader.
 *
 * Must not import anything but shared/, server/core and server/zab (pure).
 */
import { assert } from '../../shared/assert.js'
import type { Prng } from '../core/prng.js'
import type { PeerMessage } from './messages.js'
import type { PeerState, ServerId, Vote } from './types.js'

export interface ElectionConfig {
  readonly id: ServerId
  readonly voters: ReadonlySet<ServerId>
  readonly quorum: number
  readonly finalizeWaitTicks: number
  /** Voters with a live link to us (kept current by the peer); empty means unknown. */
  readonly connected?: ReadonlySet<ServerId>
  readonly notifyIntervalTicksMin: number
  readonly notifyIntervalTicksMax: number
  readonly prng: Prng
}

export type Decision =
  | { kind: 'lead'; vote: Vote }
  /** Follow (or, for an observer, observe) `vote.leader`. */
  | { kind: 'follow'; vote: Vote }

type Send = (to: ServerId, msg: PeerMessage) => void

export type NotificationMsg = Extract<PeerMessage, { type: 'NOTIFICATION' }>

function voteOf(n: NotificationMsg): Vote {
  return { leader: n.leader, zxid: n.zxid, epoch: n.peerEpoch }
}

function sameVote(a: Vote, b: Vote): boolean {
  return a.leader === b.leader && a.zxid === b.zxid && a.epoch === b.epoch
}

export class Election {
  /** The election round (logical clock). */
  round = 0
  proposal: Vote
  private readonly recv = new Map<ServerId, Vote>()
  private readonly outOfElection = new Map<ServerId, { vote: Vote; state: PeerState }>()
  private finalizeAt: number | undefined
  private notifyInterval: number
  private nextNotifyAt = 0
  private readonly isVoter: boolean
  /** Our own vote as a candidate in the current LOOKING period. */
  private self: Vote

  constructor(private readonly cfg: ElectionConfig) {
    this.isVoter = cfg.voters.has(cfg.id)
    this.proposal = { leader: cfg.id, zxid: 0, epoch: 0 }
    this.self = this.proposal
    this.notifyInterval = cfg.notifyIntervalTicksMin
  }

  /** ZooKeeper's totalOrderPredicate: is `a` a better vote than `b`? */
  better(a: Vote, b: Vote): boolean {
    if (!this.cfg.voters.has(a.leader)) return false
    if (a.epoch !== b.epoch) return a.epoch > b.epoch
    if (a.zxid !== b.zxid) return a.zxid > b.zxid
    return a.leader > b.leader
  }

  notification(state: PeerState): NotificationMsg {
    const v = this.proposal
    return {
      type: 'NOTIFICATION',
      leader: v.leader,
      zxid: v.zxid,
      peerEpoch: v.epoch,
      round: this.round,
      state,
    }
  }

  /**
   * Enters a new LOOKING period: a new round, a vote for ourselves,
   * notifications to all voters. Decides at once in an ensemble of one.
   */
  start(selfVote: Vote, now: number, send: Send): Decision | undefined {
    this.round++
    this.recv.clear()
    this.outOfElection.clear()
    this.finalizeAt = undefined
    this.self = selfVote
    this.proposal = selfVote
    this.notifyInterval = this.cfg.notifyIntervalTicksMin
    this.broadcast(now, send)
    return this.isVoter ? this.checkRoundQuorum(now, false) : undefined
  }

  private broadcast(now: number, send: Send): void {
    const msg = this.notification('LOOKING')
    for (const v of this.cfg.voters) if (v !== this.cfg.id) send(v, msg)
    const jitter = this.cfg.prng.int(0, Math.floor(this.notifyInterval / 2))
    this.nextNotifyAt = now + this.notifyInterval + jitter
  }

  /** Within a round the proposal only ever gets better (ZooKeeper's FLE); a new round starts over. */
  private setProposal(v: Vote, newRound = false): void {
    assert(newRound || !this.better(this.proposal, v), 'the proposal got worse within a round')
    this.proposal = v
    this.finalizeAt = undefined
  }

  onPeerConnected(peer: ServerId, send: Send): void {
    if (this.cfg.voters.has(peer)) send(peer, this.notification('LOOKING'))
  }

  /** Periodic work: resends with back-off, and the end of a finalize wait. */
  onTick(now: number, send: Send): Decision | undefined {
    if (this.finalizeAt !== undefined && now >= this.finalizeAt) {
      const d = this.checkRoundQuorum(now, true)
      if (d) return d
    }
    if (now >= this.nextNotifyAt) {
      this.notifyInterval = Math.min(this.notifyInterval * 2, this.cfg.notifyIntervalTicksMax)
      this.broadcast(now, send)
    }
    return undefined
  }

  /** A notification from another member while we are LOOKING. */
  onNotification(from: ServerId, n: NotificationMsg, now: number, send: Send): Decision | undefined {
    if (!this.cfg.voters.has(from)) {
      // Observers never count; tell them what we think.
      send(from, this.notification('LOOKING'))
      return undefined
    }
    if (n.state === 'LOOKING') return this.onLookingVote(from, n, now, send)
    return this.onSettledVote(from, n)
  }

  private onLookingVote(from: ServerId, n: NotificationMsg, now: number, send: Send): Decision | undefined {
    const vote = voteOf(n)
    if (!this.isVoter) {
      // An observer only learns of leaders from settled voters; ask again later.
      return undefined
    }
    if (n.round > this.round) {
      this.round = n.round
      this.recv.clear()
      this.setProposal(this.better(vote, this.self) ? vote : this.self, true)
      this.broadcast(now, send)
    } else if (n.round < this.round) {
      // Bring the sender to our round (ZooKeeper's WorkerReceiver does the same).
      send(from, this.notification('LOOKING'))
      return undefined
    } else if (this.better(vote, this.proposal)) {
      this.setProposal(vote)
      this.broadcast(now, send)
    }
    this.recv.set(from, vote)
    return this.checkRoundQuorum(now, false)
  }

  private checkRoundQuorum(now: number, finalizing: boolean): Decision | undefined {
    let agree = 1 // we vote for our own proposal
    for (const [sid, v] of this.recv) if (sid !== this.cfg.id && sameVote(v, this.proposal)) agree++
    if (agree < this.cfg.quorum) {
      this.finalizeAt = undefined
      return undefined
    }
    const all = agree === this.cfg.voters.size || this.everyReachableAgrees()
    if (all || finalizing || this.cfg.finalizeWaitTicks === 0) return this.decide(this.proposal)
    this.finalizeAt ??= now + this.cfg.finalizeWaitTicks
    return undefined
  }

  /** Every voter with a live link has voted for our proposal in this round. */
  private everyReachableAgrees(): boolean {
    const connected = this.cfg.connected
    if (connected === undefined || connected.size === 0) return false
    for (const v of connected) {
      if (v === this.cfg.id || !this.cfg.voters.has(v)) continue
      const got = this.recv.get(v)
      if (got === undefined || !sameVote(got, this.proposal)) return false
    }
    return true
  }

  private decide(vote: Vote): Decision {
    this.finalizeAt = undefined
    return vote.leader === this.cfg.id ? { kind: 'lead', vote } : { kind: 'follow', vote }
  }

  /** A voter that is FOLLOWING or LEADING told us its settled vote. */
  private onSettledVote(from: ServerId, n: NotificationMsg): Decision | undefined {
    const vote = voteOf(n)
    this.outOfElection.set(from, { vote, state: n.state })
    // A stale "you lead" from before our restart must not make us lead.
    if (vote.leader === this.cfg.id || !this.cfg.voters.has(vote.leader)) return undefined
    let agree = 0
    for (const [sid, s] of this.outOfElection) {
      if (this.cfg.voters.has(sid) && s.vote.leader === vote.leader && s.vote.epoch === vote.epoch) agree++
    }
    const leaderSays = this.outOfElection.get(vote.leader)
    if (agree < this.cfg.quorum || leaderSays?.state !== 'LEADING') return undefined
    this.round = Math.max(this.round, n.round)
    // Joining an established leader, whatever our own vote was.
    this.setProposal(vote, true)
    return { kind: 'follow', vote }
  }
}
