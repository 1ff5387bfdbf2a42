/**
 * Election: Fast Leader Election (ZooKeeper's FastLeaderElection), as the
 * state of one peer while it is LOOKING.
 *
 * A vote is ordered by (epoch, zxid, leader id). A server that does not
 * vote in its own view (an observer, a joiner, a removed server) votes for
 * nobody (ZooKeeper's observers vote Long.MIN_VALUE), which every vote
 * beats, and adopts better votes like a voter: so a removed server still
 * helps peers whose view still counts it (an uncommitted reconfig) elect
 * someone. Only servers that vote in their own view propose themselves, so
 * a vote for a server names one that some view counts; a server with an
 * older view takes it as it comes (the candidate may be a voter of a config
 * it has not heard of yet, and only its sync brings that config). Votes
 * count by the receiver's view only, quorums are those of the membership
 * view (a majority of every config in it), and notifications carry the
 * sender's committed config, which a LOOKING server with an older one
 * adopts (zab-peer.ts). Notifications carry the sender's election round (ZooKeeper's
 * logicalclock). A voter decides when a quorum of voters of its round
 * (itself included) votes like it and no better vote arrives for
 * `finalizeWaitTicks` — or at once when every voter it can reach already
 * votes like it (after a crash the dead voter's silence is certain, so
 * waiting for it only delays failover); it joins an existing leader when a quorum of voters
 * reports FOLLOWING/LEADING the same leader and that leader itself says
 * LEADING. Resends back off
 * exponentially with jitter from the injected Prng.
 *
 * Invariants: `round` never decreases within a process; a decision never
 * names nobody, and names us only if we vote in our view.
 *
 * Must not import anything but shared/, server/core and server/zab (pure).
 */
import { assert } from '../../shared/assert.js'
import type { Prng } from '../core/prng.js'
import type { Membership } from './membership.js'
import type { PeerMessage } from './messages.js'
import type { PeerState, ServerId, Vote } from './types.js'

export interface ElectionConfig {
  readonly id: ServerId
  /** The peer's membership view; it does not change while LOOKING (only logs and commits change it). */
  readonly membership: Membership
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

/** The vote of a server that is not a voter in its own view (ZooKeeper's observers vote Long.MIN_VALUE). */
export const NOBODY = 0

/** A NOTIFICATION of `vote`, carrying our committed config. */
export function notificationOf(v: Vote, round: number, state: PeerState, m: Membership): NotificationMsg {
  const c = m.committed
  return {
    type: 'NOTIFICATION',
    leader: v.leader,
    zxid: v.zxid,
    peerEpoch: v.epoch,
    round,
    state,
    configZxid: c.zxid,
    config: c.config.text,
    viewZxid: m.latest.zxid,
  }
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
  /** A notification of this round came from a peer whose view's newest config is not ours. */
  private viewsDiffer = false
  /** When we last answered each non-voter's notification (ticks). */
  private readonly repliedAt = new Map<ServerId, number>()
  /** Our own vote as a candidate in the current LOOKING period. */
  private self: Vote

  constructor(private readonly cfg: ElectionConfig) {
    this.proposal = { leader: cfg.id, zxid: 0, epoch: 0 }
    this.self = this.proposal
    this.notifyInterval = cfg.notifyIntervalTicksMin
  }

  private get isVoter(): boolean {
    return this.cfg.membership.isVoter(this.cfg.id)
  }

  /** ZooKeeper's totalOrderPredicate: is `a` a better vote than `b`? */
  better(a: Vote, b: Vote): boolean {
    if (a.leader === NOBODY) return false
    if (b.leader === NOBODY) return true
    if (a.epoch !== b.epoch) return a.epoch > b.epoch
    if (a.zxid !== b.zxid) return a.zxid > b.zxid
    return a.leader > b.leader
  }

  notification(state: PeerState): NotificationMsg {
    return notificationOf(this.proposal, this.round, state, this.cfg.membership)
  }

  /**
   * Enters a new LOOKING period: a new round, a vote for ourselves,
   * notifications to all voters. Decides at once in an ensemble of one.
   */
  start(selfVote: Vote, now: number, send: Send): Decision | undefined {
    this.round++
    this.recv.clear()
    this.viewsDiffer = false
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
    for (const v of this.cfg.membership.voters) if (v !== this.cfg.id) send(v, msg)
    // The candidate we vote for hears it even when our view does not count it (it is a voter of
    // a config we have not seen yet): it needs our vote to decide that it leads.
    const c = this.proposal.leader
    if (c !== NOBODY && c !== this.cfg.id && !this.cfg.membership.voters.has(c)) send(c, msg)
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
    if (this.cfg.membership.voters.has(peer)) send(peer, this.notification('LOOKING'))
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
    if (!this.cfg.membership.isVoter(from)) {
      // Non-voters (in our view) never count; tell them what we think — at most once a tick
      // each: two servers that count each other as non-voters (views that differ while a
      // reconfig is in flight) would otherwise answer each other's answers forever.
      if ((this.repliedAt.get(from) ?? -1) < now) {
        this.repliedAt.set(from, now)
        send(from, this.notification('LOOKING'))
      }
      return undefined
    }
    if (n.state === 'LOOKING') return this.onLookingVote(from, n, now, send)
    // A settled voter of our round that votes like us counts in the round too (ZooKeeper's
    // FLE does so): a candidate whose view needs a voter that already settled on it (an early
    // decision under another view) can still gather its quorum.
    if (n.round === this.round && sameVote(voteOf(n), this.proposal)) {
      this.recv.set(from, voteOf(n))
      if (n.viewZxid !== this.cfg.membership.latest.zxid) this.viewsDiffer = true
      const d = this.checkRoundQuorum(now, false)
      if (d) return d
    }
    return this.onSettledVote(from, n)
  }

  private onLookingVote(from: ServerId, n: NotificationMsg, now: number, send: Send): Decision | undefined {
    const vote = voteOf(n)
    if (n.round > this.round) {
      this.round = n.round
      this.recv.clear()
      this.viewsDiffer = false
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
    if (n.viewZxid !== this.cfg.membership.latest.zxid) this.viewsDiffer = true
    return this.checkRoundQuorum(now, false)
  }

  private agrees(sid: ServerId): boolean {
    if (sid === this.cfg.id) return true // we vote for our own proposal (counted only if we vote)
    const v = this.recv.get(sid)
    return v !== undefined && sameVote(v, this.proposal)
  }

  private checkRoundQuorum(now: number, finalizing: boolean): Decision | undefined {
    const m = this.cfg.membership
    // A server that votes for nobody (a non-voter that has heard of no candidate) decides nothing.
    if (this.proposal.leader === NOBODY || !m.hasQuorum((sid) => this.agrees(sid))) {
      this.finalizeAt = undefined
      return undefined
    }
    // Deciding at once is for peers that see the ensemble alike: if a peer's view holds another
    // config than ours, the candidate may need votes our view does not count: wait finalizeWait,
    // so a better vote that its quorum brings can still reach us.
    let all = !this.viewsDiffer
    for (const v of m.voters) if (!this.agrees(v)) all = false
    all ||= !this.viewsDiffer && this.everyReachableAgrees()
    if (all || finalizing || this.cfg.finalizeWaitTicks === 0) return this.decide(this.proposal)
    this.finalizeAt ??= now + this.cfg.finalizeWaitTicks
    return undefined
  }

  /** Every voter with a live link has voted for our proposal in this round. */
  private everyReachableAgrees(): boolean {
    const connected = this.cfg.connected
    if (connected === undefined || connected.size === 0) return false
    for (const v of connected) {
      if (v === this.cfg.id || !this.cfg.membership.isVoter(v)) continue
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
    const m = this.cfg.membership
    if (vote.leader === this.cfg.id || vote.leader === NOBODY) return undefined
    const agree = m.hasQuorum((sid) => {
      const s = this.outOfElection.get(sid)
      return s !== undefined && s.vote.leader === vote.leader && s.vote.epoch === vote.epoch
    })
    const leaderSays = this.outOfElection.get(vote.leader)
    if (!agree || leaderSays?.state !== 'LEADING') return undefined
    this.round = Math.max(this.round, n.round)
    // Joining an established leader, whatever our own vote was.
    this.setProposal(vote, true)
    return { kind: 'follow', vote }
  }
}
