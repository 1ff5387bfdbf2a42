/**
 * WatchTable: the server's watches, as ZooKeeper's WatchManager keeps them.
 * One-shot data watches (set by exists and getData), one-shot child watches
 * (getChildren), persistent and persistent-recursive watches (addWatch).
 * `fire(change)` returns the deliveries for one change and removes the
 * one-shot watches it triggered; a watcher gets at most one notification per
 * change even when several of its watches match (ZooKeeper's rule).
 *
 * Pure: no I/O, no clock. W is the watcher handle (a connection). The
 * path maps are sharded (server/core/sharded-map.ts): a million watched
 * paths must not rehash all at once inside one getData.
 * Imports only shared/ and server/core/.
 */
import { EventType } from '../../shared/opcodes.js'
import { ShardedMap } from '../core/sharded-map.js'

export type ChangeType = 'created' | 'deleted' | 'dataChanged' | 'childrenChanged'

/** The wire's event type of a change (Watcher.Event.EventType): what a watcher is notified with. */
export const EVENT_TYPE: Readonly<Record<ChangeType, number>> = {
  created: EventType.nodeCreated,
  deleted: EventType.nodeDeleted,
  dataChanged: EventType.nodeDataChanged,
  childrenChanged: EventType.nodeChildrenChanged,
}

export interface WatchChange {
  type: ChangeType
  path: string
}

export type WatchKind = 'data' | 'child' | 'persistent' | 'persistentRecursive'

export interface Delivery<W> {
  watcher: W
  type: ChangeType
  path: string
}

type PathMap<W> = ShardedMap<string, Set<W>>

function add<W>(map: PathMap<W>, path: string, w: W): boolean {
  let set = map.get(path)
  if (set === undefined) {
    set = new Set()
    map.set(path, set)
  }
  if (set.has(w)) return false
  set.add(w)
  return true
}

function remove<W>(map: PathMap<W>, path: string, w: W): boolean {
  const set = map.get(path)
  if (set === undefined || !set.delete(w)) return false
  if (set.size === 0) map.delete(path)
  return true
}

export class WatchTable<W> {
  private readonly maps: Record<WatchKind, PathMap<W>> = {
    data: new ShardedMap(),
    child: new ShardedMap(),
    persistent: new ShardedMap(),
    persistentRecursive: new ShardedMap(),
  }
  /** Per watcher: the (kind, path) pairs it holds, so a closed connection drops them all. */
  private readonly byWatcher = new Map<W, Set<string>>()
  private total = 0

  /** Number of watches held (a (watcher, kind, path) triple counts once). */
  get size(): number {
    return this.total
  }

  countFor(w: W): number {
    return this.byWatcher.get(w)?.size ?? 0
  }

  add(kind: WatchKind, path: string, w: W): void {
    if (!add(this.maps[kind], path, w)) return
    let keys = this.byWatcher.get(w)
    if (keys === undefined) {
      keys = new Set()
      this.byWatcher.set(w, keys)
    }
    keys.add(`${kind}\u0000${path}`)
    this.total++
  }

  has(kind: WatchKind, path: string, w: W): boolean {
    return this.maps[kind].get(path)?.has(w) ?? false
  }

  /** Removes one watch; returns whether it existed. */
  remove(kind: WatchKind, path: string, w: W): boolean {
    if (!remove(this.maps[kind], path, w)) return false
    const keys = this.byWatcher.get(w)
    keys?.delete(`${kind}\u0000${path}`)
    if (keys?.size === 0) this.byWatcher.delete(w)
    this.total--
    return true
  }

  /** Drops every watch of a watcher (its connection closed). */
  removeWatcher(w: W): void {
    const keys = this.byWatcher.get(w)
    if (keys === undefined) return
    for (const key of keys) {
      const at = key.indexOf('\u0000')
      remove(this.maps[key.slice(0, at) as WatchKind], key.slice(at + 1), w)
      this.total--
    }
    this.byWatcher.delete(w)
  }

  /** The deliveries for one change, in a deterministic order; one-shot watches it triggers are removed. */
  fire(change: WatchChange): Delivery<W>[] {
    const notified = new Set<W>()
    const out: Delivery<W>[] = []
    const deliver = (w: W): void => {
      if (notified.has(w)) return
      notified.add(w)
      out.push({ watcher: w, type: change.type, path: change.path })
    }
    const { type, path } = change
    // One-shot: created/dataChanged wake data watches (exists and getData);
    // deleted wakes data and child watches; childrenChanged wakes child watches.
    if (type !== 'childrenChanged') this.takeOneShot('data', path, deliver)
    if (type === 'deleted' || type === 'childrenChanged') this.takeOneShot('child', path, deliver)
    const persistent = this.maps.persistent.get(path)
    if (persistent !== undefined) for (const w of persistent) deliver(w)
    // Recursive watches never report childrenChanged (ZooKeeper 3.6 semantics).
    if (type !== 'childrenChanged' && this.maps.persistentRecursive.size > 0) {
      for (let p = path; ; p = parentOf(p)) {
        const set = this.maps.persistentRecursive.get(p)
        if (set !== undefined) for (const w of set) deliver(w)
        if (p === '/') break
      }
    }
    return out
  }

  private takeOneShot(kind: 'data' | 'child', path: string, deliver: (w: W) => void): void {
    const set = this.maps[kind].get(path)
    if (set === undefined) return
    for (const w of [...set]) {
      this.remove(kind, path, w)
      deliver(w)
    }
  }

  /** Every watcher and its watches, watcher by watcher, in insertion order (the admin's wchc, wchp). */
  *watchers(): Generator<{ watcher: W; watches: { kind: WatchKind; path: string }[] }> {
    for (const [watcher, keys] of this.byWatcher) {
      const watches: { kind: WatchKind; path: string }[] = []
      for (const key of keys) {
        const at = key.indexOf('\u0000')
        watches.push({ kind: key.slice(0, at) as WatchKind, path: key.slice(at + 1) })
      }
      yield { watcher, watches }
    }
  }

  /** Paths a watcher watches with the given kind (for dumps and tests). */
  pathsOf(kind: WatchKind, w: W): string[] {
    const out: string[] = []
    for (const key of this.byWatcher.get(w) ?? []) {
      const at = key.indexOf('\u0000')
      if (key.slice(0, at) === kind) out.push(key.slice(at + 1))
    }
    return out
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}
