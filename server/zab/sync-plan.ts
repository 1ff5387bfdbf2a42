/**
 * planSync: how the leader brings one learner to its history in the sync
 * phase (ZooKeeper's LearnerHandler.syncFollower), as a pure function of the
 * leader's in-memory log and the learner's last logged zxid.
 *
 *  - DIFF: the learner's last zxid is part of our history; send what follows.
 *  - TRUNC: the learner has entries we never had (uncommitted proposals of an
 *    older epoch, or a tail past ours); drop them back to the largest zxid of
 *    our history below its last, then send what follows.
 *  - SNAP: the learner is older than the committed entries we keep in memory
 *    (commitLogCount); send a snapshot, then what follows it.
 *
 * Invariants: a TRUNC target and a DIFF start are always known history (an
 * in-memory entry or the log base); `upTo` bounds what is sent (observers are
 * only sent committed entries).
 *
 * Must not import anything but shared/ and server/zab (pure module).
 */
import type { ZabLog } from './zab-log.js'

export type SyncPlan = { kind: 'DIFF'; from: number } | { kind: 'TRUNC'; to: number } | { kind: 'SNAP' }

export function planSync(log: ZabLog, learnerLastZxid: number, upTo: number): SyncPlan {
  const last = Math.min(log.lastZxid, upTo)
  if (learnerLastZxid === last) return { kind: 'DIFF', from: last }
  if (learnerLastZxid < log.baseZxid) return { kind: 'SNAP' }
  if (learnerLastZxid > last) {
    // Everything past our last entry is something we never had.
    const to = log.floor(last)
    return to === undefined ? { kind: 'SNAP' } : { kind: 'TRUNC', to }
  }
  if (log.knows(learnerLastZxid)) return { kind: 'DIFF', from: learnerLastZxid }
  const to = log.floor(learnerLastZxid)
  return to === undefined ? { kind: 'SNAP' } : { kind: 'TRUNC', to }
}
