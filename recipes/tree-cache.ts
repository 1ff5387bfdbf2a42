/**
 * TreeCache: a local mirror of a whole subtree (Curator's CuratorCache),
 * kept current by one persistentRecursive watch. Every event makes the cache
 * read that node again (getData), so the cache applies the server's state,
 * not the event; replies come back in request order, so the last reply for a
 * path wins. After a reconnect a Conclave server replays the events the
 * watch missed (watches resume: client/session.ts), so the cache reads only
 * what changed; when it cannot (its history no longer reaches back, or an
 * Apache ZooKeeper server, which re-adds the watch without the missed
 * events) the watch gets a 'resync' and the cache walks the subtree again
 * and repairs the difference ('resynced').
 *
 *   const tree = new TreeCache(zk, '/config')
 *   tree.on('change', ({ type, path, node }) => ...)  // 'added' | 'updated' | 'removed'
 *   await tree.start() ; tree.get('/config/a') ; tree.children('/config') ; await tree.close()
 *
 * Invariants: a cached node's parent chain is cached or about to be (events
 * arrive parents first); removing a node removes its cached subtree, children
 * first; a per-path ticket keeps an older read from overwriting a newer one;
 * when the session ends the cache emits 'error' (SESSION_EXPIRED) and stops.
 * Async-iterable: `for await (const event of tree)` (see changes()).
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, WatchEvent } from '../client/index.js'
import { Emitter, ErrorCode } from '../client/index.js'
import type { CachedNode } from './node-cache.js'
import { SessionGuard } from './session-guard.js'
import { type IterateOptions, newestPerKey, StreamSet } from './streams.js'
import { baseName, checkRecipePath, isCode, joinPath, retryOnLoss } from './znodes.js'

export type TreeCacheEventType = 'added' | 'updated' | 'removed'

/** Events waiting for a slow iterator before they are folded to one per path. */
export const TREE_BUFFER_DEFAULT = 10_000

export interface TreeCacheEvent {
  type: TreeCacheEventType
  path: string
  /** The node after the change (undefined for 'removed'). */
  node: CachedNode | undefined
}

type TreeCacheEvents = {
  change: [event: TreeCacheEvent]
  /** The first walk after start() is complete. */
  initialized: []
  /** A walk after a reconnect that could not resume the watch is complete. */
  resynced: []
  error: [err: unknown]
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

export class TreeCache extends Emitter<TreeCacheEvents> {
  readonly root: string
  private readonly nodes = new Map<string, CachedNode>()
  private readonly kids = new Map<string, Set<string>>()
  private readonly applied = new Map<string, number>()
  private ticket = 0
  private inFlight = 0
  private guard: SessionGuard | undefined
  private stopWatch: (() => Promise<void>) | undefined
  private readonly streams = new StreamSet<TreeCacheEvent>()
  /** Started only for iterators (not by start()): it stops with the last one. */
  private forIterators = false
  private readonly onEvent = (ev: WatchEvent): void => {
    if (ev.type === 'resync') this.resync()
    else void this.refresh(ev.path).catch(this.onError)
  }
  private readonly onError = (err: unknown): void => {
    if (!isCode(err, ErrorCode.CONNECTION_LOSS) && !isCode(err, ErrorCode.SESSION_EXPIRED))
      this.emit('error', err)
  }

  constructor(
    private readonly zk: Client,
    root: string,
  ) {
    super()
    this.root = checkRecipePath(root)
  }

  /** Watches the subtree and loads it; resolves after the first walk ('initialized'). */
  start(): Promise<void> {
    this.forIterators = false
    return this.startCache()
  }

  private async startCache(): Promise<void> {
    if (this.guard !== undefined) return
    const guard = new SessionGuard(this.zk)
    this.guard = guard
    guard.onEnd((err) => {
      void this.stopCache(err)
      this.emit('error', err)
    })
    if (guard.endError !== undefined) {
      await this.stopCache(guard.endError)
      throw guard.endError
    }
    this.stopWatch = await this.zk.addWatch(this.root, 'persistentRecursive', this.onEvent)
    await this.walk(this.root)
    this.emit('initialized')
  }

  async close(): Promise<void> {
    await this.stopCache()
  }

  /** The watch missed events it cannot replay: read the whole subtree again. */
  private resync(): void {
    void this.walk(this.root)
      .then(() => {
        if (this.guard !== undefined) this.emit('resynced')
      })
      .catch(this.onError)
  }

  /** Stops the cache; its iterators end, or throw `err` (the end of the session). */
  private async stopCache(err?: unknown): Promise<void> {
    this.guard?.dispose()
    this.guard = undefined
    this.forIterators = false
    if (err === undefined) this.streams.endAll()
    else this.streams.failAll(err)
    const stop = this.stopWatch
    this.stopWatch = undefined
    await stop?.().catch(() => {})
  }

  /**
   * The changes as an async iterator of { type, path, node }: first an
   * 'added' for every node already cached (parents first), then every change
   * (so a consumer can keep its own mirror). It starts the cache if nothing
   * has (the first walk then yields the 'added's; it stops when the last
   * iterator ends). A consumer more than `bufferSize` (default 10,000) events
   * behind gets the newest event of each path instead, in order of their last
   * change: applying them still gives the current tree. `break`, the signal
   * or close() end it; the end of the session throws SESSION_EXPIRED.
   */
  changes(opts: IterateOptions = {}): AsyncIterableIterator<TreeCacheEvent> {
    const stream = this.streams.open(
      opts,
      TREE_BUFFER_DEFAULT,
      newestPerKey((e) => e.path),
      () => {
        if (this.streams.size === 0 && this.forIterators) void this.stopCache()
      },
    )
    if (!stream.open) return stream
    // What is cached now (parents sort before their children); a (re)started walk adds the rest.
    const paths = [...this.nodes.keys()].sort()
    for (const path of paths) stream.push({ type: 'added', path, node: this.nodes.get(path) })
    if (this.guard === undefined) {
      this.forIterators = true
      this.startCache().catch((err: unknown) => stream.fail(err))
    }
    return stream
  }

  /** `for await (const event of tree)`: see changes(). */
  [Symbol.asyncIterator](): AsyncIterableIterator<TreeCacheEvent> {
    return this.changes()
  }

  private emitChange(event: TreeCacheEvent): void {
    this.streams.push(event)
    this.emit('change', event)
  }

  /** The cached node at `path`. */
  get(path: string): CachedNode | undefined {
    return this.nodes.get(path)
  }

  /** Names of the cached children of `path`, sorted. */
  children(path: string): string[] {
    return [...(this.kids.get(path) ?? [])].filter((n) => this.nodes.has(joinPath(path, n))).sort()
  }

  /** Every cached node by path (a copy). */
  snapshot(): Map<string, CachedNode> {
    return new Map(this.nodes)
  }

  get size(): number {
    return this.nodes.size
  }

  /** Reads one node and applies the reply, unless a newer read of it was applied. */
  private async refresh(path: string): Promise<boolean> {
    if (this.guard === undefined) return false
    const t = ++this.ticket
    let node: CachedNode | null
    this.inFlight++
    try {
      node = await retryOnLoss(() => this.zk.getData(path))
    } catch (err) {
      if (!isCode(err, ErrorCode.NO_NODE)) throw err
      node = null
    } finally {
      this.inFlight--
    }
    if ((this.applied.get(path) ?? 0) > t || this.guard === undefined) return node !== null
    this.applied.set(path, t)
    if (node === null) this.removeSubtree(path)
    else this.put(path, node)
    this.pruneTickets()
    return node !== null
  }

  /** Reads `path` and its subtree again, dropping cached children that are gone. */
  private async walk(path: string): Promise<void> {
    const listing = retryOnLoss(() => this.zk.getChildren(path)).catch((err: unknown) => {
      if (isCode(err, ErrorCode.NO_NODE)) return null
      throw err
    })
    const [exists, names] = await Promise.all([this.refresh(path), listing])
    if (!exists || names === null || this.guard === undefined) return
    const live = new Set(names)
    for (const old of [...(this.kids.get(path) ?? [])])
      if (!live.has(old)) this.removeSubtree(joinPath(path, old))
    await Promise.all(names.map((n) => this.walk(joinPath(path, n))))
  }

  /** With no read in flight, tickets of removed paths can no longer matter: forget them. */
  private pruneTickets(): void {
    if (this.inFlight > 0 || this.applied.size <= this.nodes.size * 2 + 64) return
    for (const p of this.applied.keys()) if (!this.nodes.has(p)) this.applied.delete(p)
  }

  private put(path: string, node: CachedNode): void {
    const prev = this.nodes.get(path)
    this.nodes.set(path, node)
    if (path !== this.root) {
      const parent = parentOf(path)
      let set = this.kids.get(parent)
      if (set === undefined) this.kids.set(parent, (set = new Set()))
      set.add(baseName(path))
    }
    if (prev === undefined) this.emitChange({ type: 'added', path, node })
    else if (prev.stat.mzxid !== node.stat.mzxid || prev.stat.czxid !== node.stat.czxid)
      this.emitChange({ type: 'updated', path, node })
  }

  private removeSubtree(path: string): void {
    for (const name of [...(this.kids.get(path) ?? [])]) this.removeSubtree(joinPath(path, name))
    this.kids.delete(path)
    if (path !== this.root) this.kids.get(parentOf(path))?.delete(baseName(path))
    const prev = this.nodes.get(path)
    if (prev === undefined) return
    this.nodes.delete(path)
    this.emitChange({ type: 'removed', path, node: undefined })
  }
}
