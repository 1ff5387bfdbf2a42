/**
 * ServerState: a server's durable state brought to life — storage opened
 * and recovered (newest valid snapshot + log replay), the tree rebuilt, and
 * snapshots taken as Txns are applied. Snapshots are fuzzy: the tree is
 * serialized a slice per event-loop turn while Txns keep being applied, and
 * recovery replays the log from the snapshot's starting zxid (Txns are
 * idempotent), so no long pause is needed.
 */
import type { Logger } from 'pino'
import { formatZxid } from '../shared/zxid.js'
import type { ServerConfig } from './config.js'
import type { Db } from './db.js'
import type { Replicator, ReplicatorEvents } from './replicator.js'
import { StandaloneReplicator } from './standalone-replicator.js'
import { Storage, StorageError } from './storage/index.js'
import { createDb } from './tree-db.js'

const SECRET_KEY = 'ensembleSecret'
/** Time one snapshot slice may take before yielding to the event loop. */
const SNAPSHOT_SLICE_MS = 4

export interface ServerState {
  readonly db: Db
  readonly storage: Storage
  readonly secret: string | undefined
  saveSecret(secret: string): void
  /** Called after every applied Txn (snapshot scheduling). */
  applied(zxid: number, txn: Uint8Array): void
  /** Starts a snapshot now unless one is running; resolves when it is durable. */
  snapshot(): Promise<void>
  close(): Promise<void>
}

export async function openState(config: ServerConfig, logger: Logger): Promise<ServerState> {
  const storage = Storage.open({
    dataDir: config.dataDir,
    serverId: config.serverId,
    snapshotsRetained: config.snapRetainCount,
    logger,
  })
  const started = performance.now()
  const db = createDb(storage.recovery, logger)
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
  return new State(storage, db, config, logger)
}

class State implements ServerState {
  private sinceSnapshot = 0
  private running: Promise<void> | undefined
  private closed = false
  private drainWaiters: (() => void)[] = []

  constructor(
    readonly storage: Storage,
    readonly db: Db,
    private readonly config: ServerConfig,
    private readonly logger: Logger,
  ) {
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
    if (++this.sinceSnapshot >= this.config.snapCount && this.running === undefined) void this.snapshot()
  }

  snapshot(): Promise<void> {
    if (this.running !== undefined) return this.running
    this.sinceSnapshot = 0
    this.running = this.takeSnapshot().finally(() => {
      this.running = undefined
    })
    return this.running
  }

  private async takeSnapshot(): Promise<void> {
    const started = performance.now()
    const zxidStart = this.db.lastZxid
    this.storage.beginSnapshot(zxidStart)
    const chunks = this.db.snapshotChunks()
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
      if (done || this.closed) break
      await new Promise<void>((r) => setImmediate(r))
    }
    if (this.closed) return new Promise((r) => this.storage.abortSnapshot(() => r()))
    const zxidEnd = this.db.lastZxid
    await new Promise<void>((resolve, reject) =>
      this.storage.finishSnapshot(
        { zxidEnd, digest: zxidEnd === zxidStart ? this.db.digest() : '' },
        (err) => (err ? reject(err) : resolve()),
      ),
    )
    this.logger.info(
      {
        zxidStart: formatZxid(zxidStart),
        zxidEnd: formatZxid(zxidEnd),
        bytes,
        chunks: count,
        ms: Math.round(performance.now() - started),
      },
      'snapshot taken',
    )
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

/** The Replicator this configuration needs: standalone, or a ZAB ensemble member. */
export function createReplicator(
  config: ServerConfig,
  state: ServerState,
  events: ReplicatorEvents,
  _logger: Logger,
): Replicator {
  const storage = state.storage
  storage.onFatal((err) => events.fatal(err))
  if (config.servers.length <= 1) {
    return new StandaloneReplicator(
      state.db.lastZxid,
      {
        append: (entries) => {
          storage.append(entries)
        },
        onDurable: (cb) => storage.onDurable(cb),
        flush: () => Promise.resolve(),
      },
      events,
    )
  }
  throw new Error('ensemble mode is not wired yet')
}
