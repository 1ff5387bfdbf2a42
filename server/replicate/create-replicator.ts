/**
 * The Replicator a configuration needs: standalone (a quorum of one over
 * this server's log), or a ZAB ensemble member over its recovered state.
 */
import type { Logger } from 'pino'
import type { ServerConfig } from '../config.js'
import type { ReloadingSecureContext } from '../net/reloading-secure-context.js'
import type { RecoveredState } from '../state/recover-state.js'
import type { Snapshotter } from '../state/snapshotter.js'
import { watchFaultFile } from '../state/test-hooks.js'
import type { LogEntry } from '../zab/index.js'
import type { Replicator, ReplicatorEvents } from './replicator.js'
import { StandaloneReplicator } from './standalone-replicator.js'
import { whenRestored } from './zab-driver.js'
import { ZabReplicator } from './zab-replicator.js'

/**
 * How much of the tree a SNAP stream writes out at a time: chunks of a peer
 * message's size are written in about a millisecond each, so the stream's
 * slices keep to their budget (the storage default, 512 KiB, took ~8 ms).
 */
const SNAP_SOURCE_CHUNK_BYTES = 64 * 1024

export function createReplicator(
  config: ServerConfig,
  state: RecoveredState,
  snapshotter: Snapshotter,
  events: ReplicatorEvents,
  logger: Logger,
  quorumTls: ReloadingSecureContext | undefined,
): Replicator {
  const { storage, tree } = state
  storage.onFatal((err) => events.fatal(err))
  if (config.servers.length <= 1) {
    const log = {
      append: (entries: LogEntry[]) => {
        storage.append(entries)
      },
      onDurable: (cb: (upTo: number) => void) => storage.onDurable(cb),
      flush: () => Promise.resolve(),
    }
    return new StandaloneReplicator(tree.lastZxid, log, events)
  }
  const zab = new ZabReplicator(
    config,
    {
      storage,
      log: state.pendingLog,
      snapshotZxid: state.snapshotZxid,
      // Lazy: the driver streams the chunks in slices while the tree keeps changing.
      takeSnapshot: () => tree.snapshot({ chunkBytes: SNAP_SOURCE_CHUNK_BYTES }),
      reflectsThrough: () => tree.reflectsThrough,
      cancelSnapshot: () => snapshotter.cancel(),
      memberConfig: () => tree.memberConfig(),
      beginRestore: (zxid) => whenRestored(tree.beginReplace(zxid), () => events.restored?.()),
    },
    events,
    logger.child({ component: 'zab' }),
    quorumTls,
  )
  watchFaultFile((f) => {
    zab.setBlockedPeers(f.blockPeers)
    zab.setDeafPeers(f.deafTo)
  }, logger)
  return zab
}
