/**
 * recoverState: a server's durable state brought to life — storage opened
 * and recovered (newest valid snapshot + log replay), the tree rebuilt. A
 * standalone server knows everything logged was committed (a quorum of
 * one); an ensemble member replays only what its snapshot covers and hands
 * the rest of its log to ZAB, which decides what is committed.
 */
import type { Logger } from 'pino'
import { formatZxid } from '../../shared/zxid.js'
import type { ServerConfig } from '../config.js'
import { Storage } from '../storage/index.js'
import type { LogEntry } from '../zab/index.js'
import { storageLimitsForTests } from './test-hooks.js'
import { recoverDb, type TreeDb } from './tree-db.js'

export interface RecoveredState {
  readonly storage: Storage
  readonly tree: TreeDb
  /** Ensemble mode: durable log entries not yet known committed (ZAB decides). */
  readonly pendingLog: LogEntry[]
  /** Ensemble mode: the zxid through which the tree was rebuilt from storage. */
  readonly snapshotZxid: number
}

export function recoverState(config: ServerConfig, logger: Logger): RecoveredState {
  const storage = Storage.open({
    dataDir: config.dataDir,
    serverId: config.serverId,
    snapshotsRetained: config.snapRetainCount,
    logger,
    ...storageLimitsForTests(logger),
  })
  const started = performance.now()
  const ensemble = config.servers.length > 1
  const snap = storage.recovery.snapshot
  const through = ensemble ? (snap?.zxidEnd ?? 0) : Number.POSITIVE_INFINITY
  const { db, rest } = recoverDb(storage.recovery, logger, through)
  logger.info(
    {
      zxid: formatZxid(db.lastZxid),
      nodes: db.nodeCount(),
      snapshot: snap ? formatZxid(snap.zxidStart) : null,
      tornTail: storage.recovery.tornTailZxid ?? null,
      ms: Math.round(performance.now() - started),
    },
    'recovered',
  )
  return { storage, tree: db, pendingLog: rest, snapshotZxid: ensemble ? db.lastZxid : 0 }
}
