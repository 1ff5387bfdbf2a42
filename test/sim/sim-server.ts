/**
 * SimServer: a simulated server's request path — the server's own
 * RequestPipeline (server/request: sessions, write router, applier, reaper,
 * client handlers) — bound to one incarnation of a SimNode: the scheduler's
 * clock and timers, the node's TreeDb, and SimReplicator, the Replicator
 * over the node's ZabDriver. Simulated clients reach it through SimLink
 * connections that carry real jute packets.
 *
 * What is the simulator's own here: the clock (scheduler time from a fixed
 * epoch), timers (gated by the node's incarnation and pauses), a silent
 * logger, and the config (server defaults; the swarm's tick).
 *
 * Mutations (mutations.ts), bugs of the leader between prep and ZAB:
 * `applyOnPropose` applies each Txn to the tree when it is proposed, before
 * it commits; `reuseSequence` renames a persistent sequential create to the
 * lowest sequence number free in the tree instead of the parent's counter;
 * `localResumeSync` answers every sync at once from this server's own state,
 * without the leader's round trip (the tree workload syncs only to resume a
 * session this server does not know: it resumes it without catching up).
 */
import { pino } from 'pino'
import { parseConfig, type ServerConfig } from '../../server/config.js'
import type { Clock, Timers } from '../../server/core/clock.js'
import type { ClientConnection } from '../../server/net/client-listener.js'
import { DriverReplicator } from '../../server/replicate/driver-replicator.js'
import type { ReplicatorEvents } from '../../server/replicate/replicator.js'
import type { ZabDriver } from '../../server/replicate/zab-driver.js'
import { RequestPipeline } from '../../server/request/request-pipeline.js'
import { ServerContext } from '../../server/request/server-context.js'
import type { TreeDb } from '../../server/state/tree-db.js'
import { TreeQuota } from '../../server/state/tree-quota.js'
import { decodeTxn, encodeTxn } from '../../server/txn/codec.js'
import type { ServerId } from '../../server/zab/index.js'
import type { TreeStateMachine } from './tree-state-machine.js'

/** Scheduler time 0 is this wall-clock time (Txn timestamps and TTLs look real). */
const EPOCH_MS = 1_700_000_000_000
const SECRET = 'simulation-secret'

export type ServerMutation = 'applyOnPropose' | 'reuseSequence' | 'amnesicHistory' | 'localResumeSync'

/** A sequential child of the tree workload's queues (tree-workload.ts): `/q<n>/s-<10 digits>`. */
const SEQUENTIAL = /^(\/q\d+)\/s-(\d{10})$/

/** The Replicator over a simulated node's ZabDriver: ZabReplicator's own mapping (DriverReplicator), plus mutations. */
export class SimReplicator extends DriverReplicator {
  /** reuseSequence: sequential names this leader proposed (some may not be applied yet). */
  private readonly proposedNames = new Set<string>()

  constructor(
    driver: ZabDriver,
    events: ReplicatorEvents,
    private readonly db?: TreeDb,
    private readonly mutation?: ServerMutation,
  ) {
    super(events)
    this.driver = driver
  }

  override propose(zxid: number, txn: Uint8Array): void {
    if (this.mutation === 'reuseSequence') txn = this.lowestFreeName(txn)
    super.propose(zxid, txn)
    // The bug under test: the leader's tree runs ahead of what is committed.
    if (this.mutation === 'applyOnPropose') this.db?.apply(zxid, txn)
  }

  /**
   * reuseSequence: a persistent sequential create takes the lowest number
   * that no znode has and no create in flight will take.
   */
  private lowestFreeName(bytes: Uint8Array): Uint8Array {
    const txn = decodeTxn(bytes)
    if (txn.type !== 'create') return bytes
    const m = SEQUENTIAL.exec(txn.path)
    if (!m || this.db === undefined) return bytes
    let path = txn.path
    if (txn.mode === 'persistentSequential') {
      for (let n = 0; n < Number(m[2]); n++) {
        const free = `${m[1]}/s-${String(n).padStart(10, '0')}`
        if (this.db.get(free) === undefined && !this.proposedNames.has(free)) {
          path = free
          break
        }
      }
    }
    this.proposedNames.add(path)
    return path === txn.path ? bytes : encodeTxn({ ...txn, path })
  }

  override sync(requestId: number): void {
    // The bug under test: "caught up" with nothing fetched from the leader.
    if (this.mutation === 'localResumeSync') return this.events.syncDone(requestId)
    super.sync(requestId)
  }

  override async close(): Promise<void> {}

  override describe(): Record<string, string | number> {
    return {}
  }
}

export interface SimServerOptions {
  readonly serverId: ServerId
  readonly tickMs: number
  readonly sm: TreeStateMachine
  readonly driver: ZabDriver
  readonly mutation?: ServerMutation | undefined
  readonly localSessions?: boolean
  readonly now: () => number
  /** Runs `fn` after `ms` in this incarnation, once the process is not paused. */
  readonly after: (ms: number, fn: () => void) => { cancel(): void }
}

export class SimServer {
  readonly pipeline: RequestPipeline
  /** The server's context (its TreeDb, clock, config): what a checker may read. */
  readonly context: ServerContext
  readonly replicator: SimReplicator
  readonly events: ReplicatorEvents
  private readonly config: ServerConfig
  /** The server's clock (the context's): scheduler time from a fixed epoch. */
  readonly now: () => number

  constructor(opts: SimServerOptions) {
    this.config = parseConfig({
      serverId: opts.serverId,
      tickTime: Math.max(10, opts.tickMs),
      minSessionTimeout: 10,
      maxSessionTimeout: 600_000,
      // A short history, so a watch resume meets a compacted one within a seed (watch-resumer.ts).
      watchHistoryChangesMax: 200,
      localSessions: opts.localSessions === true,
    })
    this.now = () => EPOCH_MS + opts.now()
    const clock: Clock = { now: this.now }
    const timers: Timers = { after: opts.after }
    const logger = pino({ level: 'silent' })
    const ctx = new ServerContext(this.config, clock, timers, logger, opts.sm.db)
    this.context = ctx
    if (opts.mutation === 'amnesicHistory') {
      // The watch history forgets where it starts (after dropping its oldest Txns, or a reset by a
      // SNAP): a resume older than what it holds is replayed with a hole, not compacted.
      const first = ctx.watchHistory.startZxid
      Object.defineProperty(ctx.watchHistory, 'start', { get: () => first, set: () => {} })
    }
    this.pipeline = new RequestPipeline({
      ctx,
      secret: SECRET,
      quota: new TreeQuota(1024 ** 3, logger),
      log: { pendingBytes: () => 0, throttleBytes: 1024 ** 3 },
      applied: () => {},
      fatal: (err) => {
        throw err
      },
    })
    this.events = this.pipeline.events()
    this.replicator = new SimReplicator(opts.driver, this.events, opts.sm.db, opts.mutation)
    ctx.attach(this.replicator)
    opts.sm.applyTxn = (zxid, data) => this.pipeline.applier.apply(zxid, data)
    this.pipeline.sessions.restore()
    const tick = () => {
      this.pipeline.tick()
      opts.after(Math.max(5, Math.floor(this.config.tickTime / 2)), tick)
    }
    opts.after(1, tick)
  }

  /** The server's tickTime (session deadlines are rounded up to it). */
  get tickTime(): number {
    return this.config.tickTime
  }

  accept(conn: ClientConnection): void {
    this.pipeline.accept(conn)
  }
}
