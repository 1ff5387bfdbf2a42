/**
 * Learnership: the FOLLOWING / OBSERVING side of discovery, synchronisation
 * and broadcast (ZooKeeper's Learner/Follower/Observer) for one session with
 * one leader.
 *
 * Phases: discovery (FOLLOWERINFO resent each tick until LEADERINFO) ->
 * syncing (ACKEPOCH sent; DIFF/TRUNC/SNAP…SNAPEND, entries, NEWLEADER with
 * the leader's committed config, which we take: adoptLeaderConfig) ->
 * newLeaderAcked (currentEpoch persisted after the synced history, then ACK)
 * -> active (UPTODATE: serve clients; PROPOSAL -> log -> ACK; COMMIT).
 *
 * Invariants:
 *  - never accept a LEADERINFO epoch below our acceptedEpoch;
 *  - ACKEPOCH leaves only after acceptedEpoch is durable, ACK(NEWLEADER) only
 *    after the synced history and then currentEpoch are durable
 *    (ZOOKEEPER-3911, ZOOKEEPER-4646): both go through sendAfterDurable;
 *  - a broadcast ACK(zxid) vouches for every entry up to zxid and leaves only
 *    when a durability report covers them (one ACK per report, not one per
 *    PROPOSAL: the leader keeps the highest), and never before the ACK of
 *    NEWLEADER;
 *  - never truncate below the commit point; a duplicate PROPOSAL is ignored
 *    (Zab model-checking pitfall 2);
 *  - observers never ACK proposals.
 *
 * Must not import anything but shared/, server/core and server/zab (pure).
 */
import { fail } from '../../shared/assert.js'
import { type ConfigAt, ConfigError, parseConfigText } from './membership.js'
import type { PeerMessage } from './messages.js'
import type { PeerCore } from './peer-core.js'
import type { ServerId } from './types.js'

type Phase = 'discovery' | 'syncing' | 'newLeaderAcked' | 'active'

type Msg<T extends PeerMessage['type']> = Extract<PeerMessage, { type: T }>

export class Learnership {
  phase: Phase = 'discovery'
  newEpoch: number | undefined
  private readonly startedAt: number
  private lastHeard: number
  /** True once DIFF/TRUNC/SNAP arrived in this session. */
  private syncHeader = false
  /**
   * A SNAP being received: its chunks go to the driver as they arrive
   * (out.snapshotIn), only their count stays here, so a large snapshot is
   * never held whole (issue 21: 191 MB at 1M znodes).
   */
  private snap: { zxid: number; chunks: number; config: ConfigAt } | undefined
  /** Snapshot bytes received in this sync (a SNAP too large to finish within initLimit is a hint to give). */
  private snapBytes = 0
  /** requestId -> zxid to reach (undefined while the leader has not replied). */
  private readonly pendingSyncs = new Map<number, number | undefined>()
  /** The highest zxid a broadcast ACK (or the ACK of NEWLEADER) has vouched for. */
  private ackedZxid = 0
  /** The persist batch carrying currentEpoch: broadcast ACKs wait until it is durable. */
  private newLeaderSeq = Number.POSITIVE_INFINITY

  constructor(
    private readonly core: PeerCore,
    readonly leaderId: ServerId,
    /** As our view says until LEADERINFO, then as the leader's says (it decides). */
    public observer: boolean,
  ) {
    this.startedAt = core.now
    this.lastHeard = core.now
    this.sendInfo()
  }

  get serving(): boolean {
    return this.phase === 'active'
  }

  private sendInfo(): void {
    const acceptedEpoch = this.core.acceptedEpoch
    const msg: PeerMessage = this.observer
      ? { type: 'OBSERVERINFO', acceptedEpoch }
      : { type: 'FOLLOWERINFO', acceptedEpoch }
    this.core.out.send(this.leaderId, msg)
  }

  onTick(): void {
    const { core } = this
    // The leader may still be finalizing its election: ask again (as a learner reconnects).
    if (this.phase === 'discovery' && this.newEpoch === undefined) this.sendInfo()
    if (this.phase !== 'active' && core.now - this.startedAt > core.limits.initLimitTicks) {
      const snap =
        this.snapBytes > 0 || this.snap !== undefined
          ? ` (with a snapshot, ${this.snapBytes} bytes received: a tree this large needs a larger initLimit)`
          : ''
      return core.goLooking(`not synchronised with ${this.leaderId} within initLimit${snap}`)
    }
    if (this.phase !== 'discovery' && core.now - this.lastHeard > core.limits.syncLimitTicks) {
      return core.goLooking(`leader ${this.leaderId} silent for syncLimit`)
    }
  }

  onMessage(m: PeerMessage): void {
    this.lastHeard = this.core.now
    switch (m.type) {
      case 'LEADERINFO':
        return this.onLeaderInfo(m.newEpoch, m.observer)
      case 'DIFF':
        this.onSyncHeader('DIFF')
        return
      case 'TRUNC':
        return this.onTrunc(m.zxid)
      case 'SNAP':
        return this.onSnap(m)
      case 'SNAPCHUNK':
        return this.onSnapChunk(m)
      case 'SNAPEND':
        return this.onSnapEnd(m)
      case 'PROPOSAL':
        return this.onProposal(m)
      case 'NEWLEADER':
        return this.onNewLeader(m)
      case 'UPTODATE':
        return this.onUpToDate(m.commitZxid)
      case 'COMMIT':
        return this.onCommit(m.zxid)
      case 'INFORM':
        return this.onInform(m)
      case 'PING':
        return this.core.out.send(this.leaderId, { type: 'PING', round: m.round })
      case 'SYNCREPLY':
        return this.onSyncReply(m.requestId, m.zxid)
      default:
        return
    }
  }

  private onLeaderInfo(newEpoch: number, observer: boolean): void {
    if (this.phase !== 'discovery' || this.newEpoch !== undefined) return
    const { core } = this
    if (observer !== this.observer)
      core.trace(`leader ${this.leaderId} says: ${observer ? 'observe' : 'follow'}`)
    this.observer = observer
    if (newEpoch < core.acceptedEpoch) {
      return core.goLooking(`leader epoch ${newEpoch} is below our accepted epoch ${core.acceptedEpoch}`)
    }
    const reAck = newEpoch === core.acceptedEpoch
    if (!reAck) core.setAcceptedEpoch(newEpoch)
    this.newEpoch = newEpoch
    this.phase = 'syncing'
    // Vouches for acceptedEpoch: only after it is durable.
    core.out.sendDurable(this.leaderId, {
      type: 'ACKEPOCH',
      epoch: newEpoch,
      currentEpoch: core.currentEpoch,
      lastZxid: core.log.lastZxid,
      reAck,
    })
  }

  private inSyncStream(): boolean {
    return this.phase === 'syncing' && this.syncHeader && this.snap === undefined
  }

  private onSyncHeader(kind: string): boolean {
    if (this.phase !== 'syncing' || this.syncHeader) {
      this.core.protocolError(`${kind} outside the sync phase`)
      return false
    }
    this.syncHeader = true
    return true
  }

  private onTrunc(zxid: number): void {
    if (!this.onSyncHeader('TRUNC')) return
    // Committed entries are in every later leader's history: a TRUNC below them is a safety bug.
    if (!(zxid >= this.core.commitZxid)) fail(`TRUNC to 0x${zxid.toString(16)} below our commit point`)
    this.core.truncateAfter(zxid)
  }

  private onSnap(m: Msg<'SNAP'>): void {
    if (!this.onSyncHeader('SNAP')) return
    let config: ConfigAt
    try {
      config = { zxid: m.configZxid, config: parseConfigText(m.config) }
    } catch (e) {
      if (e instanceof ConfigError) return this.core.protocolError(`SNAP with a bad config: ${e.message}`)
      throw e
    }
    this.snap = { zxid: m.zxid, chunks: 0, config }
    this.core.out.snapshotIn.push({ kind: 'begin', zxid: m.zxid, from: this.leaderId })
  }

  private onSnapChunk(m: Msg<'SNAPCHUNK'>): void {
    const s = this.snap
    if (!s || m.index !== s.chunks) return this.core.protocolError('unexpected SNAPCHUNK')
    s.chunks++
    this.snapBytes += m.data.length
    this.core.out.snapshotIn.push({ kind: 'chunk', data: m.data })
  }

  private onSnapEnd(m: Msg<'SNAPEND'>): void {
    const s = this.snap
    if (!s || m.chunkCount !== s.chunks || m.endZxid < s.zxid)
      return this.core.protocolError('unexpected SNAPEND')
    this.snap = undefined
    this.core.installSnapshot({ zxid: s.zxid, chunkCount: s.chunks, endZxid: m.endZxid, config: s.config })
  }

  private onProposal(m: Msg<'PROPOSAL'>): void {
    const { core } = this
    const inBroadcast = this.phase === 'newLeaderAcked' || this.phase === 'active'
    if (!this.inSyncStream() && !inBroadcast) return core.protocolError('PROPOSAL outside sync/broadcast')
    if (m.zxid <= core.log.lastZxid) return // a duplicate: already logged (pitfall 2)
    core.append({ zxid: m.zxid, data: m.data })
  }

  /**
   * A durability report: ACK everything now durable, once. Cumulative ACKs
   * cut the leader's work per write (one ACK and one COMMIT per disk batch
   * instead of per PROPOSAL) and are what ZAB's ACK means (the log is a prefix).
   */
  onDurable(): void {
    const { core } = this
    // newLeaderSeq is set with phase newLeaderAcked: reaching it means we are in broadcast.
    if (this.observer || core.durableSeq < this.newLeaderSeq) return
    const zxid = core.durableZxid
    if (zxid <= this.ackedZxid) return
    // An ACK vouches for the log up to zxid: durable, and in the log we hold.
    if (!(zxid <= core.log.lastZxid)) fail(`ACK for ${zxid} beyond the log (last ${core.log.lastZxid})`)
    this.ackedZxid = zxid
    core.out.send(this.leaderId, { type: 'ACK', zxid, newLeaderEpoch: 0 })
  }

  private onNewLeader(m: Msg<'NEWLEADER'>): void {
    const { core } = this
    const { epoch } = m
    if (!this.inSyncStream() || epoch !== this.newEpoch) return core.protocolError('unexpected NEWLEADER')
    let config: ConfigAt
    try {
      config = { zxid: m.configZxid, config: parseConfigText(m.config) }
    } catch (e) {
      if (e instanceof ConfigError) return core.protocolError(`NEWLEADER with a bad config: ${e.message}`)
      throw e
    }
    // The leader's committed config is the ensemble's: ours (a static one from our config file,
    // naming us when we are joining) gives way, in the batch ACK(NEWLEADER) waits for.
    if (!core.adoptLeaderConfig(config)) return
    // Persist the synced history, then currentEpoch, then ACK: the batch order and
    // sendAfterDurable give exactly that (ZOOKEEPER-3911, ZOOKEEPER-4646).
    core.setCurrentEpoch(epoch)
    this.phase = 'newLeaderAcked'
    this.newLeaderSeq = core.stepSeq()
    this.ackedZxid = core.log.lastZxid
    core.out.sendDurable(this.leaderId, { type: 'ACK', zxid: core.log.lastZxid, newLeaderEpoch: epoch })
  }

  private onUpToDate(commitZxid: number): void {
    if (this.phase !== 'newLeaderAcked') return this.core.protocolError('unexpected UPTODATE')
    this.phase = 'active'
    this.commitUpTo(commitZxid)
  }

  private onCommit(zxid: number): void {
    if (this.observer || this.phase === 'discovery') return this.core.protocolError('unexpected COMMIT')
    this.commitUpTo(zxid)
  }

  private commitUpTo(zxid: number): void {
    const { core } = this
    if (zxid > core.log.lastZxid) return core.protocolError('COMMIT beyond our log')
    if (zxid > core.commitZxid) core.commitThrough(zxid)
  }

  private onInform(m: Msg<'INFORM'>): void {
    const { core } = this
    if (!this.observer || this.phase === 'discovery') return core.protocolError('unexpected INFORM')
    if (m.zxid > core.log.lastZxid) core.append({ zxid: m.zxid, data: m.data })
    this.commitUpTo(m.zxid)
  }

  /** A client sync here: forward it to the leader; false if we do not serve. */
  localSync(requestId: number): boolean {
    if (this.phase !== 'active') return false
    this.pendingSyncs.set(requestId, undefined)
    this.core.out.send(this.leaderId, { type: 'SYNC', requestId })
    return true
  }

  private onSyncReply(requestId: number, zxid: number): void {
    if (!this.pendingSyncs.has(requestId)) return
    this.pendingSyncs.set(requestId, zxid)
    this.onCommitted()
  }

  /** Finishes syncs whose target zxid is now committed here. */
  onCommitted(): void {
    for (const [requestId, zxid] of this.pendingSyncs) {
      if (zxid === undefined || zxid > this.core.commitZxid) continue
      this.pendingSyncs.delete(requestId)
      this.core.out.syncDone.push({ requestId, zxid })
    }
  }

  /** Leaving the session: close the connection (drops unsent ACKs), fail pending syncs. */
  stop(): void {
    // A SNAP cut off before its SNAPEND: the driver drops what it received of it.
    if (this.snap !== undefined) this.core.out.snapshotIn.push({ kind: 'abandon' })
    this.snap = undefined
    this.core.out.disconnect.push(this.leaderId)
    for (const requestId of this.pendingSyncs.keys()) this.core.out.syncFailed.push(requestId)
    this.pendingSyncs.clear()
  }
}
