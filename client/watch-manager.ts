/**
 * The client's watch registry, with ZooKeeper's routing rules
 * (ZKWatchManager.materialize): which registered listeners an event fires.
 *
 * - created / dataChanged fire the data and exist watches of the path;
 * - deleted fires its data, exist and child watches;
 * - childrenChanged fires its child watches;
 * - a persistent watch fires for every event on its path (and stays);
 * - a persistentRecursive watch fires for its path and everything below it,
 *   never for childrenChanged.
 * One-shot watches are removed as they fire. An event fires each listener at
 * most once, even if several registrations match it.
 *
 * Invariants: keys are client paths (chroot stripped); no empty set is kept.
 * Pure and synchronous. Imports only shared/ and client/types.
 */
import { EventType } from '../shared/opcodes.js'
import { parentPath } from '../shared/paths.js'
import type { PersistentWatchMode, Watcher } from './types.js'

export type OneShotKind = 'data' | 'exist' | 'child'
export type WatchKind = OneShotKind | PersistentWatchMode

type Table = Map<string, Set<Watcher>>

function add(table: Table, path: string, w: Watcher): void {
  const set = table.get(path)
  if (set === undefined) table.set(path, new Set([w]))
  else set.add(w)
}

function take(table: Table, path: string, into: Set<Watcher>): void {
  const set = table.get(path)
  if (set === undefined) return
  table.delete(path)
  for (const w of set) into.add(w)
}

function copy(table: Table, path: string, into: Set<Watcher>): void {
  const set = table.get(path)
  if (set !== undefined) for (const w of set) into.add(w)
}

/** Paths of every registered watch, per kind (for SetWatches). */
export interface WatchPaths {
  data: string[]
  exist: string[]
  child: string[]
  persistent: string[]
  persistentRecursive: string[]
}

export class WatchManager {
  private readonly tables: Record<WatchKind, Table> = {
    data: new Map(),
    exist: new Map(),
    child: new Map(),
    persistent: new Map(),
    persistentRecursive: new Map(),
  }

  add(kind: WatchKind, path: string, w: Watcher): void {
    add(this.tables[kind], path, w)
  }

  /** Removes one listener; returns true if the path has no listener of that kind left. */
  remove(kind: WatchKind, path: string, w: Watcher): boolean {
    const table = this.tables[kind]
    const set = table.get(path)
    if (set === undefined) return true
    set.delete(w)
    if (set.size > 0) return false
    table.delete(path)
    return true
  }

  has(kind: WatchKind, path: string): boolean {
    return this.tables[kind].has(path)
  }

  /** True if any persistent or persistentRecursive watch is registered. */
  hasPersistent(): boolean {
    return this.tables.persistent.size > 0 || this.tables.persistentRecursive.size > 0
  }

  get size(): number {
    let n = 0
    for (const t of Object.values(this.tables)) for (const s of t.values()) n += s.size
    return n
  }

  /**
   * The listeners an event fires (removing the one-shot ones that fire).
   * `type` is a wire EventType; session and removal events fire nothing.
   */
  route(type: number, path: string): Set<Watcher> {
    const out = new Set<Watcher>()
    const t = this.tables
    switch (type) {
      case EventType.nodeCreated:
      case EventType.nodeDataChanged:
        take(t.data, path, out)
        take(t.exist, path, out)
        break
      case EventType.nodeChildrenChanged:
        take(t.child, path, out)
        break
      case EventType.nodeDeleted:
        take(t.data, path, out)
        take(t.exist, path, out)
        take(t.child, path, out)
        break
      default:
        return out
    }
    copy(t.persistent, path, out)
    if (type !== EventType.nodeChildrenChanged && t.persistentRecursive.size > 0) {
      for (let p = path; ; p = parentPath(p)) {
        copy(t.persistentRecursive, p, out)
        if (p === '/') break
      }
    }
    return out
  }

  paths(): WatchPaths {
    const t = this.tables
    return {
      data: [...t.data.keys()],
      exist: [...t.exist.keys()],
      child: [...t.child.keys()],
      persistent: [...t.persistent.keys()],
      persistentRecursive: [...t.persistentRecursive.keys()],
    }
  }

  /** Every persistent listener with the path it watches (one entry per listener and path). */
  persistentListeners(): { path: string; listener: Watcher }[] {
    const out: { path: string; listener: Watcher }[] = []
    for (const table of [this.tables.persistent, this.tables.persistentRecursive])
      for (const [path, set] of table) for (const listener of set) out.push({ path, listener })
    return out
  }

  /** The one-shot kinds registered on a path. */
  oneShotKindsAt(path: string): OneShotKind[] {
    return (['data', 'exist', 'child'] as const).filter((k) => this.tables[k].has(path))
  }

  /** Removes every listener on a path; returns true if there was one. */
  removeAllAt(path: string): boolean {
    let removed = false
    for (const t of Object.values(this.tables)) removed = t.delete(path) || removed
    return removed
  }

  clear(): void {
    for (const t of Object.values(this.tables)) t.clear()
  }
}
