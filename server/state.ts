/**
 * ServerState: a server's durable state brought to life — storage opened
 * and recovered (newest valid snapshot + log replay), the tree rebuilt, and
 * snapshots taken as Txns are applied. Snapshots are fuzzy: the tree is
 * serialized a slice per event-loop turn while Txns keep being applied, and
 * recovery replays the log from the snapshot's starting zxid (Txns are
 * idempotent), so no long pause is needed.
 */

import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import { formatZxid } from '../shared/zxid.js'
import type { ServerConfig } from './config.js'
import type { Replicator, ReplicatorEvents } from './replicate/replicator.js'
import { StandaloneReplicator } from './replicate/standalone-replicator.js'
import { ZabReplicator } from './replicate/zab-replicator.js'
import { StallMonitor } from './stall-monitor.js'
import { Storage, StorageError } from './storage/index.js'
import type { StorageLimits } from './storage/storage-options.js'
import { recoverDb, TreeDb } from './tree-db.js'
import type { LogEntry } from './zab/index.js'

const SECRET_KEY = 'ensembleSecret'
/** Time one snapshot slice may take before yielding to the event loop. */
const SNAPSHOT_SLICE_MS = 4

export interface ServerState {
  readonly db: TreeDb
  /** Ensemble mode: durable log entries not yet known committed (ZAB decides). */
  readonly pendingLog: LogEntry[]
  /** Ensemble mode: the zxid through which the tree was rebuilt from storage. */
  readonly snapshotZxid: number
  readonly storage: Storage
  readonly secret: string | undefined
  saveSecret(secret: string): void
  /** Called after every applied Txn (snapshot scheduling). */
  applied(zxid: number, txn: Uint8Array): void
  /** Starts a snapshot now unless one is running; resolves when it is durable. */
  snapshot(): Promise<void>
  /** Abandons the snapshot being written, if any (a SNAP from the leader replaces it). */
  cancelSnapshot(): void
  close(): Promise<void>
}

export async function openState(config: ServerConfig, logger: Logger): Promise<ServerState> {
  const storage = Storage.open({
    dataDir: config.dataDir,
    serverId: config.serverId,
    snapshotsRetained: config.snapRetainCount,
    logger,
    ...storageLimitsForTests(logger),
  })
  const started = performance.now()
  // Standalone: everything logged was committed (a quorum of one). In an
  // ensemble only what a snapshot covers is known committed; ZAB commits the rest.
  const ensemble = config.servers.length > 1
  const snap = storage.recovery.snapshot
  const through = ensemble ? (snap?.zxidEnd ?? 0) : Number.POSITIVE_INFINITY
  const { db, rest } = recoverDb(storage.recovery, logger, through)
  logger.info(
    {
      zxid: formatZxid(db.lastZxid),
      nodes: db.nodeCount(),
      snapshot: storage.recovery.snapshot ? formatZxid(storage.recovery.snapshot.zxidStart) : null,
      tornTail: storage.recovery.tornTailZxid ?? null,
      ms: Math.round(performance.now() - started),
    },
    'recovered',
  )
  return new State(storage, db, config, logger, rest, ensemble ? db.lastZxid : 0)
}

/**
 * Txns until the next snapshot: a random count in [snapCount/2, snapCount], as
 * ZooKeeper does (SyncRequestProcessor's randRoll), so the members of an
 * ensemble, which apply the same txns, do not all snapshot at once: a snapshot
 * slows its server's log writes, and the quorum is served by the others.
 */
export function nextSnapshotAfter(snapCount: number): number {
  const half = Math.floor(snapCount / 2)
  return snapCount - half + Math.floor(Math.random() * (half + 1))
}

class State implements ServerState {
  private sinceSnapshot = 0
  private snapshotAfter: number
  private running: Promise<void> | undefined
  private closed = false
  private cancelled = false
  private drainWaiters: (() => void)[] = []

  constructor(
    readonly storage: Storage,
    readonly db: TreeDb,
    private readonly config: ServerConfig,
    private readonly logger: Logger,
    readonly pendingLog: LogEntry[],
    readonly snapshotZxid: number,
  ) {
    this.snapshotAfter = nextSnapshotAfter(config.snapCount)
    storage.onDrain(() => {
      const waiters = this.drainWaiters
      this.drainWaiters = []
      for (const w of waiters) w()
    })
  }

  get secret(): string | undefined {
    return this.storage.getMeta(SECRET_KEY)
  }

  saveSecret(secret: string): void {
    this.storage.setMeta(SECRET_KEY, secret, (err) => {
      if (err) this.logger.error({ err }, 'could not save the session secret')
    })
  }

  applied(): void {
    if (++this.sinceSnapshot >= this.snapshotAfter && this.running === undefined) void this.snapshot()
  }

  snapshot(): Promise<void> {
    if (this.running !== undefined) return this.running
    // A snapshot from the leader (SNAP) is being installed: it is one; ours waits for the next applied Txn.
    if (this.storage.snapshotInProgress) return Promise.resolve()
    this.sinceSnapshot = 0
    this.snapshotAfter = nextSnapshotAfter(this.config.snapCount)
    this.cancelled = false
    this.running = this.takeSnapshot().finally(() => {
      this.running = undefined
    })
    return this.running
  }

  private async takeSnapshot(): Promise<void> {
    const started = performance.now()
    const monitor = new StallMonitor()
    let written: Record<string, unknown> | undefined
    try {
      written = await this.writeSnapshot()
    } catch (err) {
      monitor.stop()
      throw err
    }
    const stalls = monitor.stop()
    if (written === undefined) return
    this.logger.info({ ...written, ms: Math.round(performance.now() - started), ...stalls }, 'snapshot taken')
  }

  /** Writes one snapshot; what it wrote, or undefined if the server closed meanwhile (aborted). */
  private async writeSnapshot(): Promise<Record<string, unknown> | undefined> {
    const { zxid: zxidStart, chunks } = this.db.snapshot()
    this.storage.beginSnapshot(zxidStart)
    let bytes = 0
    let count = 0
    for (;;) {
      const sliceStart = performance.now()
      let done = false
      while (performance.now() - sliceStart < SNAPSHOT_SLICE_MS) {
        const next = chunks.next()
        if (next.done) {
          done = true
          break
        }
        bytes += next.value.byteLength
        count++
        if (!this.storage.writeSnapshotChunk(next.value, { transfer: true })) await this.drained()
      }
      if (done || this.closed || this.cancelled) break
      await new Promise<void>((r) => setImmediate(r))
    }
    if (this.closed || this.cancelled)
      return new Promise((r) => this.storage.abortSnapshot(() => r(undefined)))
    // Not just the last applied: a tree rebuilt from a fuzzy SNAP may hold more until replayed past it.
    const zxidEnd = this.db.reflectsThrough
    await new Promise<void>((resolve, reject) =>
      this.storage.finishSnapshot(
        { zxidEnd, digest: zxidEnd === zxidStart ? this.db.digest() : '' },
        (err) => (err ? reject(err) : resolve()),
      ),
    )
    return { zxidStart: formatZxid(zxidStart), zxidEnd: formatZxid(zxidEnd), bytes, chunks: count }
  }

  cancelSnapshot(): void {
    if (this.running !== undefined) this.cancelled = true
    // A writer waiting for the storage to drain goes on to its check (and aborts).
    for (const w of this.drainWaiters.splice(0)) w()
  }

  private drained(): Promise<void> {
    return new Promise((r) => this.drainWaiters.push(r))
  }

  async close(): Promise<void> {
    this.closed = true
    await this.running?.catch(() => {})
    await new Promise<void>((resolve, reject) =>
      this.storage.close((err) =>
        err && !(err instanceof StorageError && this.closed) ? reject(err) : resolve(),
      ),
    )
  }
}

/** How much of the tree a SNAP stream writes out at a time. */
const SNAP_SOURCE_CHUNK_BYTES = 64 * 1024

/** The Replicator this configuration needs: standalone, or a ZAB ensemble member. */
export function createReplicator(
  config: ServerConfig,
  state: ServerState,
  events: ReplicatorEvents,
  logger: Logger,
  secret: string,
): Replicator {
  const storage = state.storage
  storage.onFatal((err) => events.fatal(err))
  if (config.servers.length <= 1) {
    const log = {
      append: (entries: LogEntry[]) => {
        storage.append(entries)
      },
      onDurable: (cb: (upTo: number) => void) => storage.onDurable(cb),
      flush: () => Promise.resolve(),
    }
    return new StandaloneReplicator(state.db.lastZxid, log, events)
  }
  const db = state.db
  const zab = new ZabReplicator(
    config,
    {
      storage,
      log: state.pendingLog,
      snapshotZxid: state.snapshotZxid,
      // Lazy: the replicator streams the chunks in slices while the tree keeps changing.
      // Chunks of a peer message's size: each is written out in about a millisecond, so
      // the stream's slices keep to their budget (the storage default, 512 KiB, took ~8 ms).
      takeSnapshot: () => db.snapshot({ chunkBytes: SNAP_SOURCE_CHUNK_BYTES }),
      reflectsThrough: () => db.reflectsThrough,
      cancelSnapshot: () => state.cancelSnapshot(),
      restoreSnapshot: (s) => {
        db.replaceTree(TreeDb.fromSnapshot(s.chunks), s.endZxid ?? s.zxid)
        events.restored?.()
      },
    },
    events,
    logger.child({ component: 'zab' }),
    secret,
  )
  watchFaultFile(zab, logger)
  return zab
}

/**
 * Test hook: CONCLAVE_STORAGE_LIMITS is a JSON object of storage limits
 * (pendingBytesMax, pendingBytesHighWater, …: see storage-options.ts), so a
 * test can reach them without writing hundreds of megabytes. Storage
 * validates the values; a malformed hook is refused loudly.
 */
function storageLimitsForTests(logger: Logger): Partial<StorageLimits> {
  const text = process.env.CONCLAVE_STORAGE_LIMITS
  if (text === undefined || text === '') return {}
  const limits = JSON.parse(text) as Partial<StorageLimits>
  logger.warn({ limits }, 'storage limits overridden (CONCLAVE_STORAGE_LIMITS, a test hook)')
  return limits
}

/**
 * Test hook: CONCLAVE_FAULT_FILE names a JSON file `{ "blockPeers": [ids] }`,
 * polled every 100 ms, that partitions this server from those peers (the
 * process keeps running; only the peer links are cut).
 */
function watchFaultFile(zab: ZabReplicator, logger: Logger): void {
  const file = process.env.CONCLAVE_FAULT_FILE
  if (!file) return
  let last = ''
  const timer = setInterval(() => {
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      text = '{}'
    }
    if (text === last) return
    last = text
    try {
      const ids = (JSON.parse(text) as { blockPeers?: number[] }).blockPeers ?? []
      logger.warn({ blockPeers: ids }, 'fault injection: peer links blocked')
      zab.setBlockedPeers(ids)
    } catch {
      // A half-written file: read it again next time.
      last = ''
    }
  }, 100)
  timer.unref()
}
