/**
 * Output: the batch of effects one ZabPeer.step returns, and the builder
 * that collects them during the step.
 *
 * The durability order is in the types, as in etcd-raft's Ready with
 * msgsAfterAppend: `persist` must be written (snapshot, then truncation, then
 * entries, then meta: history before currentEpoch, ZOOKEEPER-4646) and
 * `sendAfterDurable` may leave only once every persist batch up to
 * `afterSeq` is durable. Messages that vouch for data (ACK, ACKEPOCH,
 * ACK of NEWLEADER, LEADERINFO) are only ever put in `sendAfterDurable`.
 *
 * Order of application for the driver: `snapshotIn` (a SNAP arriving:
 * storage and the state machine take its chunks as they come), `restore`
 * (state machine), then `commit` entries in order, then `app` deliveries,
 * then `syncDone`.
 *
 * Must not import anything but shared/ and server/zab (pure module).
 */
import { assert } from '../../shared/assert.js'
import type { PeerMessage } from './messages.js'
import type { SnapshotStream } from './snapshot-stream.js'
import type { LogEntry, ReceivedSnapshot, Role, ServerId, SnapshotIn } from './types.js'

/**
 * One message to send. With `stream`, `msg` is its SNAP header and the
 * driver sends the stream's chunks and SNAPEND right after it, holding back
 * every later message to that peer until the stream has ended.
 */
export interface Envelope {
  readonly to: ServerId
  readonly msg: PeerMessage
  readonly stream?: SnapshotStream
}

export interface MetaWrite {
  acceptedEpoch?: number
  currentEpoch?: number
}

/** Writes to make durable, in this order; `seq` increases by one per batch. */
export interface PersistBatch {
  readonly seq: number
  /**
   * Replace the log: the snapshot is installed and the log restarts after
   * snapshot.zxid. Its chunks went to storage as they arrived (snapshotIn);
   * this completes it.
   */
  readonly snapshot: ReceivedSnapshot | undefined
  /** Drop every log entry with zxid > this. */
  readonly truncateAfterZxid: number | undefined
  readonly entries: readonly LogEntry[]
  readonly meta: MetaWrite | undefined
  /**
   * A static configuration (no reconfig committed yet) taken from the leader
   * in place of this server's own (its config file's): its dynamic-config
   * text, kept across a restart (the driver stores it before the epochs).
   */
  readonly staticConfig: string | undefined
}

export interface RoleEvent {
  readonly role: Role
  /** LEADING/FOLLOWING/OBSERVING: the epoch being led or followed; LOOKING: currentEpoch. */
  readonly epoch: number
  readonly leaderId: ServerId | undefined
  /** True when this server may serve clients (established leader, or learner after UPTODATE). */
  readonly serving: boolean
}

/**
 * A proposal's fate at the leader. A reconfig (a config entry) may also be
 * refused: another one is in flight, a quorum of the new config is not
 * synced with the leader, or the config is malformed.
 */
export type ProposeResult =
  | { ok: true; zxid: number }
  | {
      ok: false
      reason: 'not-leader' | 'not-ready' | 'reconfig-in-progress' | 'new-config-no-quorum' | 'bad-config'
    }

export interface Output {
  readonly persist: PersistBatch | undefined
  readonly sendNow: readonly Envelope[]
  /** Send only after persist batch `afterSeq` (and every earlier one) is durable. */
  readonly sendAfterDurable: readonly Envelope[]
  readonly afterSeq: number
  /** A SNAP's pieces as they arrive, in order (see SnapshotIn), before everything else of the step. */
  readonly snapshotIn: readonly SnapshotIn[]
  /** Install into the state machine before applying `commit` (its chunks came in snapshotIn). */
  readonly restore: ReceivedSnapshot | undefined
  /** Committed entries, in zxid order, to apply. */
  readonly commit: readonly LogEntry[]
  readonly app: readonly { from: ServerId; payload: Uint8Array }[]
  readonly syncDone: readonly { requestId: number; zxid: number }[]
  readonly syncFailed: readonly number[]
  readonly proposed: ProposeResult | undefined
  /** Set when role, epoch, leader or serving changed during the step (the final value). */
  readonly role: RoleEvent | undefined
  /**
   * Close these peer connections now and drop their queued sendAfterDurable
   * messages: the FIFO session with that peer is over (ZooKeeper closes the
   * learner socket). Both ends then see peerDisconnected.
   */
  readonly disconnect: readonly ServerId[]
}

/** Collects effects during one step. */
export class OutputBuilder {
  private snapshot: ReceivedSnapshot | undefined
  private truncateAfterZxid: number | undefined
  private entries: LogEntry[] = []
  private meta: MetaWrite | undefined
  private staticConfig: string | undefined
  readonly sendNow: Envelope[] = []
  readonly sendAfterDurable: Envelope[] = []
  readonly snapshotIn: SnapshotIn[] = []
  restore: ReceivedSnapshot | undefined
  readonly commit: LogEntry[] = []
  readonly app: { from: ServerId; payload: Uint8Array }[] = []
  readonly syncDone: { requestId: number; zxid: number }[] = []
  readonly syncFailed: number[] = []
  proposed: ProposeResult | undefined
  readonly disconnect: ServerId[] = []

  send(to: ServerId, msg: PeerMessage): void {
    this.sendNow.push({ to, msg })
  }

  sendSnapshot(to: ServerId, stream: SnapshotStream): void {
    this.sendNow.push({ to, msg: stream.header(), stream })
  }

  sendDurable(to: ServerId, msg: PeerMessage): void {
    this.sendAfterDurable.push({ to, msg })
  }

  persistSnapshot(s: ReceivedSnapshot): void {
    assert(this.entries.length === 0 && this.truncateAfterZxid === undefined, 'snapshot after log writes')
    this.snapshot = s
  }

  persistTruncate(zxid: number): void {
    assert(this.entries.length === 0, 'truncate after appends in one batch')
    this.truncateAfterZxid =
      this.truncateAfterZxid === undefined ? zxid : Math.min(zxid, this.truncateAfterZxid)
  }

  persistEntry(e: LogEntry): void {
    this.entries.push(e)
  }

  persistMeta(m: MetaWrite): void {
    this.meta = { ...this.meta, ...m }
  }

  persistStaticConfig(text: string): void {
    this.staticConfig = text
  }

  get hasPersist(): boolean {
    return (
      this.snapshot !== undefined ||
      this.truncateAfterZxid !== undefined ||
      this.entries.length > 0 ||
      this.meta !== undefined ||
      this.staticConfig !== undefined
    )
  }

  build(seq: number | undefined, afterSeq: number, role: RoleEvent | undefined): Output {
    const persist: PersistBatch | undefined =
      seq === undefined
        ? undefined
        : {
            seq,
            snapshot: this.snapshot,
            truncateAfterZxid: this.truncateAfterZxid,
            entries: this.entries,
            meta: this.meta,
            staticConfig: this.staticConfig,
          }
    return {
      persist,
      sendNow: this.sendNow,
      sendAfterDurable: this.sendAfterDurable,
      afterSeq,
      snapshotIn: this.snapshotIn,
      restore: this.restore,
      commit: this.commit,
      app: this.app,
      syncDone: this.syncDone,
      syncFailed: this.syncFailed,
      proposed: this.proposed,
      role,
      disconnect: this.disconnect,
    }
  }
}
