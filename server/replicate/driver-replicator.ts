/**
 * DriverReplicator: the Replicator interface over a ZabDriver — the
 * driver's role events turned into the server's roles, application payloads
 * routed (to the leader they are forwarded requests, to a learner the
 * leader's answers), proposals at the zxid prep used, syncs. ZabReplicator
 * (the server: SQLite, TCP, the event loop) and the simulation's
 * SimReplicator extend it, so both run the same mapping.
 *
 * Invariant: a proposal gets the zxid nextZxid() promised (asserted).
 */
import { fail } from '../../shared/assert.js'
import { makeZxid, zxidEpoch } from '../../shared/zxid.js'
import type { Membership, ProposeResult, RoleEvent, ServerId } from '../zab/index.js'
import type { Replicator, ReplicatorEvents, Role } from './replicator.js'
import type { ZabDriver } from './zab-driver.js'

const ROLE: Record<RoleEvent['role'], Role> = {
  LOOKING: 'looking',
  FOLLOWING: 'following',
  LEADING: 'leading',
  OBSERVING: 'observing',
}

export abstract class DriverReplicator implements Replicator {
  role: Role = 'looking'
  epoch = 0
  historyEnd = 0
  protected leaderId: ServerId | undefined
  /** Set by the subclass once its ports exist (the driver's host calls back into this object). */
  protected driver!: ZabDriver

  constructor(protected readonly events: ReplicatorEvents) {}

  /** The driver's role event: serving or looking, the epoch, the leader. */
  roleChanged(ev: RoleEvent): void {
    this.role = ev.serving ? ROLE[ev.role] : 'looking'
    this.epoch = ev.epoch
    this.leaderId = ev.leaderId
    // No proposal of the new epoch exists yet: the log's end is the history taken over.
    if (this.role === 'leading') this.historyEnd = this.driver.peer.status().lastZxid
    this.events.role(this.role, this.epoch)
  }

  /** An application payload from another member. */
  app(from: ServerId, payload: Uint8Array): void {
    if (this.role === 'leading') this.events.forwarded(from, payload)
    else this.events.leaderMessage(payload)
  }

  get leader(): number | undefined {
    return this.leaderId
  }

  lastLoggedZxid(): number {
    return this.driver.peer.status().lastZxid
  }

  nextZxid(): number {
    const st = this.driver.peer.status()
    return zxidEpoch(st.lastZxid) === st.epoch ? st.lastZxid + 1 : makeZxid(st.epoch, 1)
  }

  propose(zxid: number, txn: Uint8Array): void {
    this.events.proposed?.(zxid)
    const res = this.driver.propose(txn)
    if (!res?.ok || res.zxid !== zxid) fail(`proposal got ${JSON.stringify(res)}, expected zxid ${zxid}`)
  }

  proposeConfig(entry: Uint8Array): ProposeResult {
    const res = this.driver.propose(entry) ?? { ok: false, reason: 'not-ready' }
    if (res.ok) this.events.proposed?.(res.zxid)
    return res
  }

  membership(): Membership {
    return this.driver.peer.membership
  }

  toLeader(payload: Uint8Array): void {
    if (this.leaderId !== undefined) this.driver.appSend(this.leaderId, payload)
  }

  toFollower(serverId: number, payload: Uint8Array): void {
    this.driver.appSend(serverId, payload)
  }

  sync(requestId: number): void {
    this.driver.sync(requestId)
  }

  tick(): void {}

  abstract close(): Promise<void>
  abstract describe(): Record<string, string | number>
}
