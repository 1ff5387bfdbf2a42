/**
 * Watch resumption, the pure part: given the server's recent history
 * (ChangeRing), a resume position and the watches a reconnecting client
 * holds, the events those watches missed and the watches still to register.
 *
 * The missed events are what the live path would have sent: the history's
 * changes after `fromZxid`, in zxid order, each through WatchTable.fire on a
 * table of just these watches — so the same matching rules (persistent,
 * recursive without childrenChanged, one-shots that fire once and are gone)
 * and at most one event per change. The one-shot watches a replayed change
 * fired are spent; the rest, and every persistent watch, are to be
 * registered. The caller (server/request/read-ops.ts) sends the events and
 * registers the watches in the same synchronous step, so no Txn is applied
 * in between: nothing is missed between the replay and the live events, and
 * nothing comes twice.
 *
 * Pure: no I/O, no clock. Imports only server/watch and server/core.
 */
import type { ChangeRing } from './change-ring.js'
import { type ChangeType, type WatchKind, WatchTable } from './watch-table.js'

export interface ResumedWatch {
  kind: WatchKind
  path: string
}

export interface ReplayedEvent {
  type: ChangeType
  path: string
  zxid: number
}

export type ResumePlan =
  | { kind: 'compacted' }
  | { kind: 'replay'; events: ReplayedEvent[]; register: ResumedWatch[] }

export function planResume(
  history: ChangeRing,
  fromZxid: number,
  watches: readonly ResumedWatch[],
): ResumePlan {
  const entries = history.since(fromZxid)
  if (entries === 'compacted') return { kind: 'compacted' }
  const table = new WatchTable<0>()
  for (const w of watches) table.add(w.kind, w.path, 0)
  const events: ReplayedEvent[] = []
  for (const entry of entries) {
    if (table.size === 0) break
    for (const change of entry.changes)
      if (table.fire(change).length > 0)
        events.push({ type: change.type, path: change.path, zxid: entry.zxid })
  }
  const register: ResumedWatch[] = []
  for (const { watches: held } of table.watchers()) register.push(...held)
  return { kind: 'replay', events, register }
}
