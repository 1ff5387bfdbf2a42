/**
 * Mutations: deliberate, realistic bugs planted in the simulator's own code
 * paths (never in server/), one per invariant, to prove that each checker
 * can fail and that it alone catches its bug (sim.test.ts runs each one on a
 * few seeds and expects exactly its invariant).
 *
 * Where each bug lives: in a wrapper around ZabPeer (the peer classes
 * below, like HastyPeer in sim-node.ts), in the state machine wrappers (the
 * KV model; the tree state machine, whose DataTree may be a subclass below),
 * in the disk model (sim-disk.ts), the network model (sim-network.ts), the
 * simulated server's replicator (sim-server.ts), or the simulated clients
 * (tree-workload.ts). MUTATIONS maps each to the invariant it must trip and
 * the state machine it needs (a KV-only checker forces KV seeds, a tree
 * checker tree seeds).
 *
 * Invariant -> mutation (the first six predate this file):
 *   durable-before-ack    sendBeforeDurable   one-leader-per-epoch  noQuorum
 *   ephemerals-closed     skipClose           equal-digests         divergentClose
 *   acked-write-lost      lyingDisk           epoch-after-history   metaFirst
 *   epochs                forgetfulEpoch      commit-in-log         baseBlindLog
 *   protocol              duplicateUpToDate   apply                 staleAppliedRestore
 *   prefix-agreement      corruptProposal     sync-read             localSync
 *   disk                  reorderingDisk      app-fifo              slowApp
 *   liveness              noReconnect         sequence-unique       reuseSequence
 *   ephemeral-owner-live  truncatedOwner      ephemeral-index       lossyIndex
 *   ephemerals-agree      unsortedIndex       tree-apply            applyOnPropose
 *   acked-create-lost     requestedPath       session-fifo          lifoReplies
 *   once-applied-twice    amnesicWrites       once-result           offByOneRecall
 *   once-forgotten        oneResultMemory     reconfig-quorums      oneConfigQuorum
 *   watch-resume          amnesicHistory
 *   resume-live           localResumeSync (and resume-closed)
 *   config-agreement      ownStaticConfig
 *
 * Invariants: with mutation 'none' nothing here is used; every mutation is
 * deterministic given the seed (a mutated seed replays exactly).
 */

import { type RestoreJob, whenRestored } from '../../server/replicate/zab-driver.js'
import { TreeDb } from '../../server/state/tree-db.js'
import { DataTree } from '../../server/tree/data-tree.js'
import type { ApplyMode, ChangeEvent, CreateNodeArgs } from '../../server/tree/tree-types.js'
import type { Recalled, RememberedWrite, RememberLimits } from '../../server/tree/write-memory.js'
import type { Input, Output, Snapshot, ZabPeerOptions } from '../../server/zab/index.js'
import { type ConfigAt, Membership, majority, ZabPeer } from '../../server/zab/index.js'
import { ZabLog } from '../../server/zab/zab-log.js'
import { KvStateMachine } from './kv-state-machine.js'
import { TreeStateMachine } from './tree-state-machine.js'

export type Mutation =
  | 'none'
  | 'sendBeforeDurable'
  | 'noQuorum'
  | 'skipClose'
  | 'divergentClose'
  | 'lyingDisk'
  | 'metaFirst'
  | 'forgetfulEpoch'
  | 'baseBlindLog'
  | 'duplicateUpToDate'
  | 'staleAppliedRestore'
  | 'corruptProposal'
  | 'localSync'
  | 'reorderingDisk'
  | 'slowApp'
  | 'noReconnect'
  | 'reuseSequence'
  | 'truncatedOwner'
  | 'lossyIndex'
  | 'unsortedIndex'
  | 'applyOnPropose'
  | 'requestedPath'
  | 'lifoReplies'
  | 'amnesicWrites'
  | 'offByOneRecall'
  | 'oneResultMemory'
  | 'oneConfigQuorum'
  | 'amnesicHistory'
  | 'localResumeSync'
  | 'ownStaticConfig'

export interface MutationInfo {
  /** The one invariant that must catch it. */
  readonly catches: string
  /** The state machine its checker needs (undefined: either). */
  readonly stateMachine?: 'kv' | 'tree'
  readonly bug: string
}

export const MUTATIONS: Readonly<Record<Exclude<Mutation, 'none'>, MutationInfo>> = {
  sendBeforeDurable: {
    catches: 'durable-before-ack',
    bug: 'a peer sends its sendAfterDurable messages (ACK, ACKEPOCH, LEADERINFO) at once',
  },
  noQuorum: {
    catches: 'one-leader-per-epoch',
    bug: 'every server believes it is alone (a quorum of one)',
  },
  skipClose: {
    catches: 'ephemerals-closed',
    stateMachine: 'tree',
    bug: 'every server applies closeSession as a no-op',
  },
  divergentClose: {
    catches: 'equal-digests',
    stateMachine: 'tree',
    bug: 'server 1, while it is not leading, applies closeSession as a no-op (its tree diverges)',
  },
  lyingDisk: {
    catches: 'acked-write-lost',
    bug: 'the disk reports writes durable at once and really syncs them 500 ms later',
  },
  metaFirst: {
    catches: 'epoch-after-history',
    bug: 'the epochs go to a file made durable at once, ahead of queued log writes (ZOOKEEPER-4646)',
  },
  forgetfulEpoch: {
    catches: 'epochs',
    bug: 'a peer persists a new acceptedEpoch but does not keep it in memory',
  },
  baseBlindLog: {
    catches: 'commit-in-log',
    bug: 'an in-memory log whose lastZxid forgets its base when it holds no entry (0 after a SNAP or a restart from a snapshot)',
  },
  duplicateUpToDate: {
    catches: 'protocol',
    bug: 'the network delivers every UPTODATE twice (a retransmission layer that does not deduplicate)',
  },
  staleAppliedRestore: {
    catches: 'apply',
    stateMachine: 'kv',
    bug: 'restore() rebuilds the map and the digest but keeps the old applied zxid',
  },
  corruptProposal: {
    catches: 'prefix-agreement',
    stateMachine: 'kv',
    bug: 'the network flips a bit in the last byte of every PROPOSAL payload (no payload checksum)',
  },
  localSync: {
    catches: 'sync-read',
    stateMachine: 'kv',
    bug: "a learner answers sync from its own commit point, without the leader's round trip",
  },
  reorderingDisk: {
    catches: 'disk',
    bug: 'the disk makes the last two log entries of a group commit durable in the wrong order',
  },
  slowApp: {
    catches: 'app-fifo',
    stateMachine: 'kv',
    bug: 'APP messages take a connection of their own, slower than the ZAB one (no FIFO with COMMITs)',
  },
  noReconnect: {
    catches: 'liveness',
    bug: 'a peer connection that broke is never re-established (the reconnect loop gives up)',
  },
  reuseSequence: {
    catches: 'sequence-unique',
    stateMachine: 'tree',
    bug: "the leader renames a sequential create to the lowest number free in the tree, not the parent's counter",
  },
  truncatedOwner: {
    catches: 'ephemeral-owner-live',
    stateMachine: 'tree',
    bug: "a tree that stores an ephemeral's owner as a 32-bit int (the session id's high bits lost)",
  },
  lossyIndex: {
    catches: 'ephemeral-index',
    stateMachine: 'tree',
    bug: "a tree whose ephemeral index lookup leaves out a session's last ephemeral",
  },
  unsortedIndex: {
    catches: 'ephemerals-agree',
    stateMachine: 'tree',
    bug: "a tree whose ephemeral index lookup returns insertion order, not sorted (a restored tree's order differs)",
  },
  applyOnPropose: {
    catches: 'tree-apply',
    stateMachine: 'tree',
    bug: 'the leader applies a Txn to its tree when it proposes it, before it commits',
  },
  requestedPath: {
    catches: 'acked-create-lost',
    stateMachine: 'tree',
    bug: 'a client takes the path it asked for (not the one in the reply) as the node a create made',
  },
  lifoReplies: {
    catches: 'session-fifo',
    stateMachine: 'tree',
    bug: 'a client handles a write reply after the packet that follows it (a reply queue popped from the wrong end)',
  },
  amnesicWrites: {
    catches: 'once-applied-twice',
    stateMachine: 'tree',
    bug: "applying an exactly-once write does not keep its result in the session's write memory",
  },
  offByOneRecall: {
    catches: 'once-result',
    stateMachine: 'tree',
    bug: 'the write memory answers a re-sent write with the result kept before the one it asked for',
  },
  oneResultMemory: {
    catches: 'once-forgotten',
    stateMachine: 'tree',
    bug: 'the write memory keeps one result per session (resultsMax read as 1)',
  },
  oneConfigQuorum: {
    catches: 'reconfig-quorums',
    bug: 'a leader commits a reconfig once a quorum of the new config alone has it (not the old one too)',
  },
  amnesicHistory: {
    catches: 'watch-resume',
    stateMachine: 'tree',
    bug: 'the watch history forgets where it starts: after dropping its oldest Txns, or a reset by a SNAP, it claims to start where it began (a resume older than it is replayed with a hole, not compacted)',
  },
  ownStaticConfig: {
    catches: 'config-agreement',
    bug: "a learner keeps its own static config (a joiner's, naming itself) instead of the one its leader sends with NEWLEADER",
  },
  localResumeSync: {
    catches: 'resume-live',
    stateMachine: 'tree',
    bug: "a server catches up for a resume without the leader's round trip (a sync answered from its own state)",
  },
}

// ------------------------------------------------------------ ZAB peers

/** forgetfulEpoch: acceptedEpoch goes to disk, not to memory (and no assertion guards it). */
class ForgetfulEpochPeer extends ZabPeer {
  override setAcceptedEpoch(epoch: number): void {
    this.out.persistMeta({ acceptedEpoch: epoch })
  }

  override setCurrentEpoch(epoch: number): void {
    this.currentEpoch = epoch
    this.out.persistMeta({ currentEpoch: epoch })
  }
}

/** baseBlindLog: with no entry in memory, lastZxid is 0 instead of the base (the snapshot's zxid). */
class BaseBlindLog extends ZabLog {
  override get lastZxid(): number {
    return this.size > 0 ? super.lastZxid : 0
  }
}

class BaseBlindLogPeer extends ZabPeer {
  constructor(opts: ZabPeerOptions) {
    super(opts)
    Object.setPrototypeOf(this.log, BaseBlindLog.prototype)
  }
}

/** localSync: a serving learner answers a sync at once, with its own commit point (a stale read). */
class LocalSyncPeer extends ZabPeer {
  override step(input: Input): Output {
    const out = super.step(input)
    if (input.kind !== 'sync') return out
    const st = this.status()
    if (st.role === 'LEADING' || !st.serving) return out
    // The SYNC still goes to the leader; its late SYNCREPLY finds nobody waiting.
    return { ...out, syncDone: [...out.syncDone, { requestId: input.requestId, zxid: st.commitZxid }] }
  }
}

/** The peer a mutation runs (undefined: the server's own ZabPeer, or sim-node's HastyPeer). */
/** oneConfigQuorum: commits count only the newest config's voters (a reconfig commits on the new quorum alone). */
class NewestOnlyMembership extends Membership {
  override quorumZxid(ackOf: (id: number) => number | undefined): number {
    const acks: number[] = []
    for (const v of this.latest.config.voters) {
      const a = ackOf(v)
      if (a !== undefined) acks.push(a)
    }
    acks.sort((a, b) => b - a)
    const q = majority(this.latest.config.voters.length)
    return acks.length < q ? 0 : acks[q - 1]!
  }
}

class OneConfigQuorumPeer extends ZabPeer {
  protected override makeMembership(committed: ConfigAt): Membership {
    return new NewestOnlyMembership(committed)
  }
}

/** ownStaticConfig: the leader's static config is ignored (a joiner keeps its own, naming itself). */
class OwnStaticConfigPeer extends ZabPeer {
  override adoptLeaderConfig(at: ConfigAt): boolean {
    return at.zxid === 0 ? true : super.adoptLeaderConfig(at)
  }
}

export function mutantPeer(mutation: Mutation): ((opts: ZabPeerOptions) => ZabPeer) | undefined {
  switch (mutation) {
    case 'ownStaticConfig':
      return (opts) => new OwnStaticConfigPeer(opts)
    case 'oneConfigQuorum':
      return (opts) => new OneConfigQuorumPeer(opts)
    case 'forgetfulEpoch':
      return (opts) => new ForgetfulEpochPeer(opts)
    case 'baseBlindLog':
      return (opts) => new BaseBlindLogPeer(opts)
    case 'localSync':
      return (opts) => new LocalSyncPeer(opts)
    default:
      return undefined
  }
}

// ------------------------------------------------------------ KV state machine

/** staleAppliedRestore: the restored map and digest, with the applied zxid of before. */
class StaleAppliedKv extends KvStateMachine {
  override restore(s: Snapshot): void {
    const applied = this.appliedZxid
    super.restore(s)
    this.appliedZxid = applied
  }
}

// ------------------------------------------------------------ trees

/** truncatedOwner: the owner of an ephemeral kept as a 32-bit int. */
class TruncatedOwnerTree extends DataTree {
  override createNode(a: CreateNodeArgs, mode: ApplyMode, events: ChangeEvent[]) {
    return super.createNode({ ...a, sessionId: BigInt.asIntN(32, a.sessionId) }, mode, events)
  }
}

/** lossyIndex: the index lookup leaves out the last of a session's ephemerals. */
class LossyIndexTree extends DataTree {
  override ephemerals(sessionId: bigint): string[] {
    return super.ephemerals(sessionId).slice(0, -1)
  }
}

/** unsortedIndex: the index lookup in the index's own (insertion) order: the sort is missing. */
class UnsortedIndexTree extends DataTree {
  override ephemerals(sessionId: bigint): string[] {
    // The tree's private index, read as its own code would (a test-only look inside).
    const index = (this as unknown as { ephemeralIndex?: Map<bigint, Iterable<string>> }).ephemeralIndex
    if (index === undefined) throw new Error('DataTree has no ephemeralIndex: update UnsortedIndexTree')
    return [...(index.get(sessionId) ?? [])]
  }
}

/** amnesicWrites: says it kept an exactly-once write's result, keeps nothing (a re-sent write runs again). */
class AmnesicWritesTree extends DataTree {
  override rememberWrite(sessionId: bigint): boolean {
    return this.hasSession(sessionId)
  }
}

/** offByOneRecall: a create's result is looked up one xid too low (when that was a create too). */
class OffByOneRecallTree extends DataTree {
  override recallWrite(sessionId: bigint, xid: number): Recalled {
    const hit = super.recallWrite(sessionId, xid)
    const before = super.recallWrite(sessionId, xid - 1)
    if (hit.kind !== 'remembered' || before.kind !== 'remembered') return hit
    // Both creates (type 1 in bytes 4-7 of the encoding, result-codec.ts), so the answer is well formed.
    const create = (r: Uint8Array) => r[7] === 1 && r[4] === 0 && r[5] === 0 && r[6] === 0
    return create(hit.result) && create(before.result) ? before : hit
  }
}

/** oneResultMemory: every session keeps its newest result only. */
class OneResultTree extends DataTree {
  override rememberWrite(
    sessionId: bigint,
    write: RememberedWrite,
    spec: RememberLimits,
    mode: ApplyMode,
  ): boolean {
    return super.rememberWrite(sessionId, write, { ...spec, resultsMax: 1 }, mode)
  }
}

/** A tree state machine whose DataTree is a mutant: from the start, and after every restore. */
class MutantTreeStateMachine extends TreeStateMachine {
  constructor(
    serverId: number,
    chunkBytes: number,
    private readonly Tree: new () => DataTree,
  ) {
    super(serverId, chunkBytes)
    this.db = new TreeDb(new Tree())
  }

  override beginRestore(zxid: number): RestoreJob {
    // DataTree.loader builds a plain DataTree: the same state, with the mutant's methods.
    return whenRestored(super.beginRestore(zxid), () =>
      Object.setPrototypeOf(this.db.tree, this.Tree.prototype),
    )
  }
}

const MUTANT_TREES: Partial<Record<Mutation, new () => DataTree>> = {
  truncatedOwner: TruncatedOwnerTree,
  lossyIndex: LossyIndexTree,
  unsortedIndex: UnsortedIndexTree,
  amnesicWrites: AmnesicWritesTree,
  offByOneRecall: OffByOneRecallTree,
  oneResultMemory: OneResultTree,
}

/**
 * The state machine of server `id` under a mutation, or undefined for the
 * simulation's usual one. `isLeading` tells whether that server leads now.
 */
export function mutantStateMachine(
  mutation: Mutation,
  id: number,
  snapshotChunkBytes: number,
  isLeading: () => boolean,
): KvStateMachine | TreeStateMachine | undefined {
  if (mutation === 'staleAppliedRestore') return new StaleAppliedKv(snapshotChunkBytes)
  if (mutation === 'skipClose') return new TreeStateMachine(id, snapshotChunkBytes, 'skipClose')
  if (mutation === 'divergentClose')
    return new TreeStateMachine(id, snapshotChunkBytes, 'divergentClose', isLeading)
  const Tree = MUTANT_TREES[mutation]
  return Tree ? new MutantTreeStateMachine(id, snapshotChunkBytes, Tree) : undefined
}
