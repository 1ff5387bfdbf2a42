/**
 * Keeping the watch history (ChangeRing, server/watch/change-ring.ts) true to
 * the tree it describes. The history claims to hold every change above its
 * startZxid; that is only so from a point whose changes this server saw.
 *
 * A tree rebuilt from a fuzzy snapshot (a SNAP from the leader, or the
 * newest stored snapshot at startup) may already reflect any entry up to
 * the snapshot's fuzzy end (TreeDb.reflectsThrough). Those entries are
 * replayed idempotently: what the snapshot caught changes nothing again, so
 * their changes are not what the Txns did. The history therefore starts at
 * the fuzzy end, not at the snapshot's zxid, and a replayed entry is never
 * recorded: a resume from inside the window is told 'compacted' rather than
 * given a replay with a hole.
 */
import type { ApplyOutcome, TreeDb } from '../state/tree-db.js'
import { ChangeRing, type ChangeRingLimits } from '../watch/change-ring.js'

/** A history for a tree just built or rebuilt: complete from where the tree may reflect through. */
export function newHistory(limits: ChangeRingLimits, db: TreeDb): ChangeRing {
  return new ChangeRing(limits, db.reflectsThrough)
}

/** The tree was replaced (a snapshot restored): the history starts again where it may reflect through. */
export function restartHistory(history: ChangeRing, db: TreeDb): void {
  history.reset(db.reflectsThrough)
}

/** Records an applied Txn's changes; one replayed over a fuzzy snapshot is no history of it. */
export function recordApplied(history: ChangeRing, zxid: number, out: ApplyOutcome): void {
  if (out.replayed === true) {
    // Started at the fuzzy end, the history is past it already; were it not, it is no longer complete.
    if (zxid > history.startZxid) history.reset(zxid)
    return
  }
  history.append(zxid, out.changes)
}
