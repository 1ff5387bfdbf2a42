/**
 * StandaloneReplicator: a quorum of one. A proposed Txn is appended to the
 * local log and committed once it is durable, in zxid order. Each proposal
 * is appended at once: storage gathers what is appended in one event-loop
 * turn into one batch itself (and groups batches that arrive during an
 * fsync into the next one). Gathering them here first took a
 * queueMicrotask per batch, which Node wraps in an AsyncResource: ~2% of a
 * standalone writer's main thread at C=64.
 */
import { assert, fail } from '../../shared/assert.js'
import { makeZxid, ZXID_COUNTER_MAX, zxidCounter, zxidEpoch } from '../../shared/zxid.js'
import type { ProposeResult } from '../zab/index.js'
import type { LogEntry, Replicator, ReplicatorEvents, Role } from './replicator.js'

export interface LogPort {
  append(entries: LogEntry[]): void
  /** Registers the durability callback (called with the highest durable zxid). */
  onDurable(cb: (upToZxid: number) => void): void
  /** Resolves when everything appended so far is durable. */
  flush(): Promise<void>
}

export class StandaloneReplicator implements Replicator {
  readonly role: Role = 'standalone'
  readonly historyEnd = 0
  epoch: number
  private last: number
  private readonly inflight: LogEntry[] = []
  private head = 0

  constructor(
    lastZxid: number,
    private readonly log: LogPort,
    private readonly events: ReplicatorEvents,
  ) {
    this.epoch = Math.max(1, zxidEpoch(lastZxid))
    this.last = lastZxid
    log.onDurable((upTo) => this.durable(upTo))
    queueMicrotask(() => events.role('standalone', this.epoch))
  }

  lastLoggedZxid(): number {
    return this.last
  }

  nextZxid(): number {
    if (zxidEpoch(this.last) === this.epoch && zxidCounter(this.last) === ZXID_COUNTER_MAX) this.epoch++
    return zxidEpoch(this.last) < this.epoch ? makeZxid(this.epoch, 1) : this.last + 1
  }

  /** A standalone server has no membership to change (ZooKeeper's standalone server refuses reconfig too). */
  proposeConfig(_entry: Uint8Array): ProposeResult {
    return { ok: false, reason: 'not-leader' }
  }

  membership(): undefined {
    return undefined
  }

  propose(zxid: number, txn: Uint8Array): void {
    if (zxid !== this.nextZxid()) fail(`proposal zxid ${zxid} is not the next one after ${this.last}`)
    this.last = zxid
    this.events.proposed?.(zxid)
    const entry = { zxid, data: txn }
    this.inflight.push(entry)
    this.log.append([entry])
  }

  private durable(upTo: number): void {
    while (this.head < this.inflight.length && this.inflight[this.head]!.zxid <= upTo) {
      const e = this.inflight[this.head++]!
      this.events.commit(e.zxid, e.data)
    }
    if (this.head > 1024 && this.head * 2 > this.inflight.length) {
      this.inflight.splice(0, this.head)
      this.head = 0
    }
  }

  toLeader(): void {
    assert(false, 'a standalone server has no leader to forward to')
  }

  toFollower(): void {
    assert(false, 'a standalone server has no followers')
  }

  sync(requestId: number): void {
    queueMicrotask(() => this.events.syncDone(requestId))
  }

  tick(): void {}

  async close(): Promise<void> {
    await this.log.flush()
  }

  describe(): Record<string, string | number> {
    return { 'In flight': this.inflight.length - this.head }
  }
}
