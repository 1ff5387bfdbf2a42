/**
 * ZooKeeper's four-letter words as Conclave answers them on its client port:
 * `ruok`, `srvr`/`stat`, `mntr`, `isro`, `envi`, `cons`, `dump`, `wchs`,
 * `wchc`, `wchp`, `conf`, `crst`, `dirs`, in ZooKeeper's text formats; and
 * the `describe` (srvr), `metrics` (mntr) and `environment` (envi) tables
 * behind them, which the admin port's JSON commands (admin-commands.ts) use
 * too. Everything comes from an AdminView, so this module holds no server
 * state.
 *
 * The whitelist is ZooKeeper's `4lw.commands.whitelist`: a word not in it is
 * answered "<word> is not executed because it is not in the whitelist.", as
 * ZooKeeper answers; `srvr` is always allowed (ZooKeeper's zkServer.sh and
 * `conclave status` need it), and `isro` with readOnlyMode, as in ZooKeeper.
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
import { unreachable } from '../../shared/assert.js'
import { formatZxid } from '../../shared/zxid.js'
import {
  configReport,
  connectionReports,
  dirsReport,
  type SessionReport,
  sessionReport,
  watchReport,
} from './admin-reports.js'
import type { AdminView } from './admin-view.js'

export const ZOOKEEPER_COMPATIBLE_VERSION = '3.8.0'

/** A server's roles (the Replicator's Role), as srvr's Mode names them. */
const MODE: Record<string, string> = {
  standalone: 'standalone',
  leading: 'leader',
  following: 'follower',
  observing: 'observer',
  looking: 'looking',
}

/** What the four-letter words read from a server (admin-view.ts). */
export type FourLetterSource = AdminView

/** Every word Conclave answers. */
export const FOUR_LETTER_WORDS = [
  'ruok',
  'srvr',
  'stat',
  'mntr',
  'isro',
  'envi',
  'cons',
  'dump',
  'wchs',
  'wchc',
  'wchp',
  'conf',
  'crst',
  'dirs',
] as const
export type FourLetterWord = (typeof FOUR_LETTER_WORDS)[number]

const ALL: ReadonlySet<string> = new Set(FOUR_LETTER_WORDS)

export function isFourLetterWord(word: string): word is FourLetterWord {
  return ALL.has(word)
}

/**
 * The words answered when fourLetterWordWhitelist is not set: those Conclave
 * answered before the whitelist existed, which report counts and state but
 * no client addresses, session ids, paths or settings. ZooKeeper's default
 * is `srvr` alone; `*` allows every word.
 */
export const DEFAULT_WHITELIST: readonly FourLetterWord[] = ['ruok', 'srvr', 'stat', 'mntr', 'isro', 'envi']

/** The words a server answers, from its fourLetterWordWhitelist setting (ZooKeeper's rules). */
export function allowedWords(
  list: readonly string[] | undefined,
  readOnlyMode: boolean,
): ReadonlySet<FourLetterWord> {
  const words = list ?? DEFAULT_WHITELIST
  const allowed = new Set<FourLetterWord>(
    words.includes('*') ? FOUR_LETTER_WORDS : words.filter(isFourLetterWord),
  )
  allowed.add('srvr')
  if (readOnlyMode) allowed.add('isro')
  return allowed
}

/**
 * The answer to a four-letter word, or undefined for a word Conclave does not
 * know (the client port then reads it as ZooKeeper framing and closes).
 */
export function fourLetterWord(
  s: AdminView,
  word: string,
  allowed: ReadonlySet<string> = ALL,
): string | undefined {
  if (!isFourLetterWord(word)) return undefined
  if (!allowed.has(word)) return `${word} is not executed because it is not in the whitelist.\n`
  switch (word) {
    case 'ruok':
      return 'imok'
    case 'srvr':
      return lines(describe(s), ': ')
    case 'stat':
      return `${lines(describe(s), ': ')}Clients:\n${connectionsText(s, true)}\n`
    case 'mntr':
      return lines(metrics(s), '\t')
    case 'isro':
      // ZooKeeper's IsroCommand: 'null' when not serving at all (no quorum, read-only mode off).
      return s.role() !== 'looking' ? 'rw' : s.serving() ? 'ro' : 'null'
    case 'envi':
      return `Environment:\n${lines(environment(s), '=')}`
    default:
      return reportText(s, word)
  }
}

/** The words that print a report (admin-reports.ts), in ZooKeeper's formats. */
function reportText(
  s: AdminView,
  word: Exclude<FourLetterWord, 'ruok' | 'srvr' | 'stat' | 'mntr' | 'isro' | 'envi'>,
): string {
  switch (word) {
    case 'cons':
      return `${connectionsText(s, false)}\n`
    case 'dump':
      return dumpText(sessionReport(s))
    case 'wchs': {
      const w = watchReport(s)
      return `${w.bySession.size} connections watching ${w.byPath.size} paths\nTotal watches:${w.total}\n`
    }
    case 'wchc':
      return `${listing(watchReport(s).bySession)}\n`
    case 'wchp':
      return `${listing(watchReport(s).byPath)}\n`
    case 'conf':
      return confText(configReport(s))
    case 'crst':
      s.resetConnectionStats()
      return 'Connection stats reset.\n'
    case 'dirs': {
      const d = dirsReport(s)
      return `datadir_size: ${d.datadir_size}\nlogdir_size: ${d.logdir_size}\n`
    }
    default:
      return unreachable(word, 'a four-letter word without an answer')
  }
}

function lines(table: Record<string, string | number>, sep: string): string {
  return `${Object.entries(table)
    .map(([k, v]) => `${k}${sep}${v}`)
    .join('\n')}\n`
}

/** Key, then its values one per line after a tab (ZooKeeper's dumpWatches). */
function listing(map: Map<string, string[]>): string {
  let out = ''
  for (const [key, values] of map) {
    out += `${key}\n`
    for (const v of values) out += `\t${v}\n`
  }
  return out
}

const hex = (n: number) => (n < 0 ? BigInt.asUintN(64, BigInt(n)).toString(16) : n.toString(16))

/** ZooKeeper's ServerCnxn.dumpConnectionInfo, one connection per line (`brief`: stat's Clients). */
function connectionsText(s: AdminView, brief: boolean): string {
  let out = ''
  for (const c of connectionReports(s)) {
    out += ` /${c.remote_socket_address}[${c.interest_ops}](queued=${c.outstanding_requests},recved=${c.packets_received},sent=${c.packets_sent}`
    if (!brief) {
      out += `,sid=${c.session_id},lop=${c.last_operation},est=${c.established},to=${c.session_timeout}`
      if (c.last_cxid >= 0) out += `,lcxid=0x${hex(c.last_cxid)}`
      out += `,lzxid=0x${hex(c.last_zxid)},lresp=${c.last_response_time},llat=${Math.round(c.last_latency)}`
      out += `,minlat=${Math.round(c.min_latency)},avglat=${Math.round(c.avg_latency)},maxlat=${Math.round(c.max_latency)}`
    }
    out += ')\n'
  }
  return out
}

/**
 * ZooKeeper's `dump`: the session table (on the leader its expiry buckets,
 * SessionTrackerImpl's format; elsewhere the sessions it knows, the
 * LearnerSessionTracker's), then the ephemeral nodes by session.
 */
function dumpText(r: SessionReport): string {
  let out = 'SessionTracker dump:\n'
  if (r.expiry !== undefined) {
    const count = r.expiry.reduce((n, b) => n + b.ids.length, 0)
    out += `Session Sets (${r.expiry.length})/(${count}):\n`
    for (const b of r.expiry) {
      out += `${b.ids.length} expire at ${javaDate(b.deadlineMs)}:\n`
      for (const id of b.ids) out += `\t${id}\n`
    }
  } else {
    out += `Global Sessions(${r.sessions.length}):\n`
    for (const x of r.sessions) out += `${x.id}\t${x.timeoutMs}ms\n`
  }
  out += `ephemeral nodes dump:\nSessions with Ephemerals (${r.ephemerals.length}):\n`
  for (const e of r.ephemerals) {
    out += `${e.id}:\n`
    for (const p of e.paths) out += `\t${p}\n`
  }
  return `${out}Connections dump:\n`
}

/** java.util.Date's toString, in UTC: `Tue Mar 05 14:03:22 UTC 2024`. */
function javaDate(ms: number): string {
  const d = new Date(ms)
  const two = (n: number) => String(n).padStart(2, '0')
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][
    d.getUTCMonth()
  ]
  const time = `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`
  return `${day} ${month} ${two(d.getUTCDate())} ${time} UTC ${d.getUTCFullYear()}`
}

/** `conf`: key=value lines (ZooKeeper's dumpConf), members as zoo.cfg's server.N lines, lists comma-separated. */
function confText(conf: Record<string, unknown>): string {
  let out = ''
  for (const [key, value] of Object.entries(conf)) {
    if (key === 'servers' && Array.isArray(value)) {
      for (const m of value as {
        id: number
        host: string
        peerPort: number
        clientPort: number
        observer: boolean
      }[])
        out += `server.${m.id}=${m.host}:${m.peerPort}:${m.clientPort}${m.observer ? ':observer' : ''}\n`
      continue
    }
    out += `${key}=${Array.isArray(value) ? value.join(',') : String(value)}\n`
  }
  return out
}

export function describe(s: AdminView): Record<string, string | number> {
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

export function metrics(s: AdminView): Record<string, string | number> {
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
    conclave_local_session_count: s.localSessionCount(),
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
export function environment(s: AdminView): Record<string, string> {
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
