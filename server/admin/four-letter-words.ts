/**
 * ZooKeeper's four-letter words as Conclave answers them on its client port
 * (and on the admin port's /commands/<word>): `ruok`, `srvr`/`stat`, `mntr`,
 * `isro`, `envi`; and the `describe` (srvr, /stat) and `metrics` (mntr,
 * /metrics) tables behind them. Everything comes from a FourLetterSource, a
 * read-only view of one server, so this module holds no server state.
 *
 * `envi` has ZooKeeper's format ("Environment:" then key=value lines).
 * Clients read the protocol version from its `zookeeper.version` line
 * (kazoo's server_version() takes the leading digits and dots and refuses a
 * server without them, e.g. before a transaction): Conclave reports
 * ZOOKEEPER_COMPATIBLE_VERSION, the ZooKeeper release whose client protocol
 * it speaks — 3.8.0's opcode table is Conclave's (up to whoAmI, 3.7's last
 * addition), and 3.8.0 is the oracle of the differential tests. Reconfig
 * (opcode 16) is the one 3.8 operation it does not implement. Conclave's own
 * version is the `conclave.version` line.
 */
import { hostname, type as osType, release, userInfo } from 'node:os'
import { getHeapStatistics } from 'node:v8'
import { formatZxid } from '../../shared/zxid.js'

export const ZOOKEEPER_COMPATIBLE_VERSION = '3.8.0'

/** A server's roles (the Replicator's Role), as srvr's Mode names them. */
const MODE: Record<string, string> = {
  standalone: 'standalone',
  leading: 'leader',
  following: 'follower',
  observing: 'observer',
  looking: 'looking',
}

/** What the four-letter words read from a server. */
export interface FourLetterSource {
  /** Conclave's version. */
  readonly version: string
  serverId(): number
  readOnlyMode(): boolean
  treeBytesMax(): number
  /** The Replicator's role: standalone, leading, following, observing or looking. */
  role(): string
  epoch(): number
  lastZxid(): number
  sessionCount(): number
  connectionCount(): number
  nodeCount(): number
  watchCount(): number
  digest(): string
  treeBytesEstimate(): number
  packetsReceived(): number
  writesInFlight(): number
  writesDeferred(): number
  readingPaused(): boolean
  /** The Replicator's own srvr lines (followers, leader, …). */
  replication(): Record<string, string | number>
}

export function fourLetterWord(s: FourLetterSource, word: string): string | undefined {
  switch (word) {
    case 'ruok':
      return 'imok'
    case 'srvr':
    case 'stat':
      return `${Object.entries(describe(s))
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n')}\n`
    case 'mntr':
      return `${Object.entries(metrics(s))
        .map(([k, v]) => `${k}\t${v}`)
        .join('\n')}\n`
    case 'isro':
      return s.role() === 'looking' && s.readOnlyMode() ? 'ro' : 'rw'
    case 'envi':
      return `Environment:\n${Object.entries(environment(s))
        .map(([k, v]) => `${k}=${v}`)
        .join('\n')}\n`
    default:
      return undefined
  }
}

export function describe(s: FourLetterSource): Record<string, string | number> {
  return {
    'Conclave version': s.version,
    Mode: MODE[s.role()] ?? s.role(),
    'Server id': s.serverId(),
    Epoch: s.epoch(),
    Zxid: formatZxid(s.lastZxid()),
    Sessions: s.sessionCount(),
    Connections: s.connectionCount(),
    'Node count': s.nodeCount(),
    Watches: s.watchCount(),
    Digest: s.digest(),
    ...s.replication(),
  }
}

export function metrics(s: FourLetterSource): Record<string, string | number> {
  const mem = process.memoryUsage()
  return {
    conclave_version: s.version,
    conclave_server_state: s.role(),
    conclave_znode_count: s.nodeCount(),
    conclave_tree_bytes_estimate: s.treeBytesEstimate(),
    conclave_tree_bytes_max: s.treeBytesMax(),
    conclave_watch_count: s.watchCount(),
    conclave_num_alive_connections: s.connectionCount(),
    conclave_session_count: s.sessionCount(),
    conclave_packets_received: s.packetsReceived(),
    conclave_last_zxid: s.lastZxid(),
    conclave_writes_in_flight: s.writesInFlight(),
    conclave_writes_deferred: s.writesDeferred(),
    conclave_reading_paused: s.readingPaused() ? 1 : 0,
    conclave_heap_used_bytes: mem.heapUsed,
    conclave_rss_bytes: mem.rss,
  }
}

/**
 * `envi`'s lines, in ZooKeeper's order where there is an equivalent (the
 * runtime is Node's, so node.version stands where ZooKeeper has java.*).
 * No environment variables: they may hold secrets (CONCLAVE_SECRET).
 */
export function environment(s: FourLetterSource): Record<string, string> {
  const mb = (n: number) => `${Math.round(n / (1024 * 1024))}MB`
  const mem = process.memoryUsage()
  let user = '<NA>'
  let home = '<NA>'
  try {
    const u = userInfo()
    user = u.username
    home = u.homedir
  } catch {
    // No passwd entry for this uid (containers): ZooKeeper's <NA>.
  }
  return {
    'zookeeper.version': ZOOKEEPER_COMPATIBLE_VERSION,
    'conclave.version': s.version,
    'host.name': hostname(),
    'node.version': process.version,
    'os.name': osType(),
    'os.arch': process.arch,
    'os.version': release(),
    'user.name': user,
    'user.home': home,
    'user.dir': process.cwd(),
    'os.memory.free': mb(mem.heapTotal - mem.heapUsed),
    'os.memory.max': mb(getHeapStatistics().heap_size_limit),
    'os.memory.total': mb(mem.heapTotal),
  }
}
