/**
 * The admin port's commands: ZooKeeper's AdminServer command set, answered
 * as JSON at `/commands/<name>`, by its AdminServer name or any alias (the
 * four-letter word among them). Each answer is ZooKeeper's CommandResponse
 * shape: `command` (the primary name), `error` (null), then the command's
 * fields, with ZooKeeper's field names. The data is the four-letter words'
 * (admin-reports.ts, four-letter-words.ts), so both always agree.
 *
 * Session ids are hex strings (`0x…`; they do not fit a JSON number). The
 * four-letter whitelist does not apply here (as in ZooKeeper, whose
 * AdminServer ignores it): the admin port is off unless configured, and
 * binds to clientPortAddress. A command that changes anything
 * (connection_stat_reset) is answered only to POST.
 */
import { configReport, connectionReports, dirsReport, sessionReport, watchReport } from './admin-reports.js'
import type { AdminView } from './admin-view.js'
import { describe, environment, metrics, ZOOKEEPER_COMPATIBLE_VERSION } from './four-letter-words.js'

export interface AdminCommand {
  /** ZooKeeper's AdminServer name. */
  readonly name: string
  /** Other names: ZooKeeper's, the four-letter word among them. */
  readonly aliases: readonly string[]
  /** Changes something (statistics, never data): POST only. */
  readonly changes?: boolean
  run(v: AdminView): Record<string, unknown>
}

function serverStats(v: AdminView): Record<string, unknown> {
  return {
    version: v.version,
    zookeeper_version: ZOOKEEPER_COMPATIBLE_VERSION,
    read_only: v.role() === 'looking' && v.serving(),
    server_stats: describe(v),
    node_count: v.nodeCount(),
  }
}

function briefConnections(v: AdminView): Record<string, unknown>[] {
  return connectionReports(v).map((c) => ({
    remote_socket_address: c.remote_socket_address,
    interest_ops: c.interest_ops,
    outstanding_requests: c.outstanding_requests,
    packets_received: c.packets_received,
    packets_sent: c.packets_sent,
  }))
}

function dump(v: AdminView): Record<string, unknown> {
  const r = sessionReport(v)
  const expiry: Record<string, string[]> = {}
  for (const b of r.expiry ?? []) expiry[String(b.deadlineMs)] = b.ids
  const ephemerals: Record<string, string[]> = {}
  for (const e of r.ephemerals) ephemerals[e.id] = e.paths
  const sessions: Record<string, number> = {}
  for (const s of r.sessions) sessions[s.id] = s.timeoutMs
  return {
    expiry_time_to_session_ids: expiry,
    session_id_to_ephemeral_paths: ephemerals,
    // Conclave's: every session this server knows (a follower has no expiry table), with its timeout in ms.
    session_id_to_timeout: sessions,
  }
}

function leader(v: AdminView): Record<string, unknown> {
  const role = v.role()
  if (role === 'standalone') return { error: 'server is not initialized' }
  const id = v.replication().Leader
  const leaderId = typeof id === 'number' ? id : -1
  const member = v.config().servers.find((s) => s.id === leaderId)
  return {
    is_leader: role === 'leading',
    leader_id: leaderId,
    leader_ip: member === undefined ? '' : member.host,
  }
}

export const ADMIN_COMMANDS: readonly AdminCommand[] = [
  { name: 'configuration', aliases: ['conf', 'config'], run: (v) => configReport(v) },
  {
    name: 'connection_stat_reset',
    aliases: ['crst'],
    changes: true,
    run: (v) => {
      v.resetConnectionStats()
      return {}
    },
  },
  {
    name: 'connections',
    aliases: ['cons'],
    run: (v) => {
      const all = connectionReports(v)
      return { connections: all.filter((c) => !c.secure), secure_connections: all.filter((c) => c.secure) }
    },
  },
  { name: 'dirs', aliases: [], run: (v) => ({ ...dirsReport(v) }) },
  { name: 'dump', aliases: [], run: dump },
  { name: 'environment', aliases: ['env', 'envi'], run: (v) => environment(v) },
  {
    name: 'is_read_only',
    aliases: ['isro'],
    run: (v) => ({ read_only: v.role() === 'looking' && v.serving() }),
  },
  { name: 'leader', aliases: ['lead'], run: leader },
  { name: 'monitor', aliases: ['mntr'], run: (v) => metrics(v) },
  { name: 'ruok', aliases: [], run: () => ({}) },
  { name: 'server_stats', aliases: ['srvr'], run: serverStats },
  { name: 'stats', aliases: ['stat'], run: (v) => ({ ...serverStats(v), connections: briefConnections(v) }) },
  {
    name: 'watch_summary',
    aliases: ['wchs'],
    run: (v) => {
      const w = watchReport(v)
      return { num_connections: w.bySession.size, num_paths: w.byPath.size, num_total_watches: w.total }
    },
  },
  {
    name: 'watches',
    aliases: ['wchc'],
    run: (v) => ({ session_id_to_watched_paths: Object.fromEntries(watchReport(v).bySession) }),
  },
  {
    name: 'watches_by_path',
    aliases: ['wchp'],
    run: (v) => ({ path_to_session_ids: Object.fromEntries(watchReport(v).byPath) }),
  },
]

const BY_NAME = new Map<string, AdminCommand>()
for (const c of ADMIN_COMMANDS) for (const n of [c.name, ...c.aliases]) BY_NAME.set(n, c)

export function adminCommand(name: string): AdminCommand | undefined {
  return BY_NAME.get(name)
}

/** ZooKeeper's CommandResponse: the primary name, no error, the command's fields. */
export function runAdminCommand(c: AdminCommand, v: AdminView): Record<string, unknown> {
  return { command: c.name, error: null, ...c.run(v) }
}
