/**
 * NodeCache: a local mirror of one znode's data and Stat (Curator's
 * NodeCache), kept current by one-shot watches: getData's watch while the
 * node exists, exists' watch while it does not. A single watcher function is
 * registered, so watches never pile up; refreshes run one at a time and
 * coalesce bursts. After a reconnect the node is not read again: the
 * session re-registers the watch, and it fires if the node changed meanwhile
 * (replayed from a Conclave server's history, or ZooKeeper's SetWatches
 * rule: a change after the last zxid seen fires at once).
 *
 *   const cache = new NodeCache(zk, '/config/flags')
 *   cache.on('change', (node) => ...)  // { data, stat } or null when deleted
 *   await cache.start() ; cache.current ; await cache.close()
 *
 * Invariants: 'change' fires only when the node appears, disappears, or its
 * czxid or mzxid changes (not for the initial load made by start()); when the
 * session ends the cache emits 'error' (SESSION_EXPIRED) and stops.
 * Async-iterable: `for await (const node of cache)` (see changes()).
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, Stat } from '../client/index.js'
import { Emitter, ErrorCode } from '../client/index.js'
import { TURNS_MAX } from './lock-core.js'
import { SessionGuard } from './session-guard.js'
import { type IterateOptions, newest, StreamSet } from './streams.js'
import { checkRecipePath, isCode, retryOnLoss } from './znodes.js'

export interface CachedNode {
  data: Uint8Array
  stat: Stat
}

type NodeCacheEvents = { change: [node: CachedNode | null]; error: [err: unknown] }

function sameNode(a: CachedNode | null, b: CachedNode | null): boolean {
  if (a === null || b === null) return a === b
  return a.stat.czxid === b.stat.czxid && a.stat.mzxid === b.stat.mzxid
}

export class NodeCache extends Emitter<NodeCacheEvents> {
  readonly path: string
  private node: CachedNode | null | undefined
  private guard: SessionGuard | undefined
  private dirty = false
  private loop: Promise<void> | undefined
  private readonly onWatch = (): void => void this.refresh()
  private readonly streams = new StreamSet<CachedNode | null>()
  /** Started only for iterators (not by start()): it stops with the last one. */
  private forIterators = false

  constructor(
    private readonly zk: Client,
    path: string,
  ) {
    super()
    this.path = checkRecipePath(path)
  }

  /** The cached node: null if absent, undefined before start(). */
  get current(): CachedNode | null | undefined {
    return this.node
  }

  /** Loads the node and starts following it. */
  start(): Promise<void> {
    this.forIterators = false
    return this.startCache()
  }

  private async startCache(): Promise<void> {
    if (this.guard !== undefined) return
    const guard = new SessionGuard(this.zk)
    this.guard = guard
    guard.onEnd((err) => {
      this.stop(err)
      this.emit('error', err)
    })
    if (guard.endError !== undefined) this.stop(guard.endError)
    await this.refresh()
  }

  /**
   * The node as an async iterator: its state once loaded ({ data, stat }, or
   * null when absent), then every change. It starts the cache if nothing has
   * (and stops it when the last iterator ends). A slow consumer gets the
   * newest state, not every one in between. `break`, the signal or close()
   * end it; the end of the session throws SESSION_EXPIRED.
   */
  changes(opts: IterateOptions = {}): AsyncIterableIterator<CachedNode | null> {
    const stream = this.streams.open(opts, 1, newest, () => {
      if (this.streams.size === 0 && this.forIterators) this.stop()
    })
    if (!stream.open) return stream
    // The last state first (when the cache starts again, a newer one follows if it changed).
    if (this.node !== undefined) stream.push(this.node)
    if (this.guard === undefined) {
      this.forIterators = true
      this.startCache().catch((err: unknown) => stream.fail(err))
    }
    return stream
  }

  /** `for await (const node of cache)`: see changes(). */
  [Symbol.asyncIterator](): AsyncIterableIterator<CachedNode | null> {
    return this.changes()
  }

  /** Stops following the node (pending one-shot watches fire into nothing). */
  async close(): Promise<void> {
    this.stop()
  }

  /** Stops following; iterators end, or throw `err` (the end of the session). */
  private stop(err?: unknown): void {
    this.guard?.dispose()
    this.guard = undefined
    this.forIterators = false
    if (err === undefined) this.streams.endAll()
    else this.streams.failAll(err)
  }

  private async read(): Promise<CachedNode | null | 'again'> {
    try {
      return await retryOnLoss(() => this.zk.getData(this.path, { watch: this.onWatch }))
    } catch (err) {
      if (!isCode(err, ErrorCode.NO_NODE)) throw err
    }
    // Absent: watch for its creation (and look again if it was created meanwhile).
    const stat = await retryOnLoss(() => this.zk.exists(this.path, { watch: this.onWatch }))
    return stat === null ? null : 'again'
  }

  private refresh(): Promise<void> {
    this.dirty = true
    this.loop ??= this.runRefresh()
    return this.loop
  }

  private async runRefresh(): Promise<void> {
    try {
      for (let i = 0; this.dirty && this.guard !== undefined && i < TURNS_MAX; i++) {
        this.dirty = false
        try {
          const node = await this.read()
          if (node === 'again') {
            this.dirty = true
            continue
          }
          const first = this.node === undefined
          const changed = first || !sameNode(this.node ?? null, node)
          this.node = node
          // Iterators get the first load too; 'change' listeners only what follows.
          if (changed) this.streams.push(node)
          if (changed && !first) this.emit('change', node)
        } catch (err) {
          if (!isCode(err, ErrorCode.CONNECTION_LOSS) && !isCode(err, ErrorCode.SESSION_EXPIRED))
            this.emit('error', err)
        }
      }
    } finally {
      this.loop = undefined
    }
  }
}
