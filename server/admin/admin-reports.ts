/**
 * The admin reports: what `cons`, `dump`, `wchs`/`wchc`/`wchp`, `conf` and
 * `dirs` say, as data read from an AdminView. The four-letter words
 * (four-letter-words.ts) print them in ZooKeeper's text formats, the admin
 * port (admin-commands.ts) as ZooKeeper's AdminServer JSON, so both always
 * say the same. Field names are ZooKeeper's JSON names.
 *
 * Session ids are hex strings (`0x…`, as ZooKeeper logs them): they do not
 * fit a JSON number. No report holds a secret: `configReport` leaves out
 * every setting named like one (ensembleSecret, superDigest).
 * I/O: `dirsReport` reads the data directory's file sizes.
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { formatSessionId } from '../../shared/session-id.js'
import type { AdminConnection, AdminView } from './admin-view.js'

/** One connection, as ZooKeeper's ServerCnxn.getConnectionInfo reports it (times in epoch ms, latencies in ms). */
export interface ConnectionReport {
  remote_socket_address: string
  /** 1 while the connection is read, 0 while reading is paused (ZooKeeper's selector interest ops). */
  interest_ops: number
  outstanding_requests: number
  packets_received: number
  packets_sent: number
  secure: boolean
  session_id: string
  last_operation: string
  established: number
  session_timeout: number
  last_cxid: number
  last_zxid: number
  last_response_time: number
  last_latency: number
  min_latency: number
  avg_latency: number
  max_latency: number
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000

export function connectionReport(
  v: AdminView,
  c: AdminConnection,
  timeouts: Map<bigint, number>,
): ConnectionReport {
  const s = c.stats
  const port = c.conn.remotePort
  return {
    remote_socket_address: port === undefined ? c.conn.remoteAddress : `${c.conn.remoteAddress}:${port}`,
    interest_ops: c.reading ? 1 : 0,
    outstanding_requests: c.outstanding,
    packets_received: s.received,
    packets_sent: s.sent,
    secure: c.conn.tls !== undefined,
    session_id: formatSessionId(c.sessionId),
    last_operation: s.lastOp,
    established: Math.round(v.statsTimeToEpochMs(s.establishedAt)),
    session_timeout: timeouts.get(c.sessionId) ?? 0,
    last_cxid: s.lastCxid,
    last_zxid: s.lastZxid,
    last_response_time: s.lastResponseAt === 0 ? 0 : Math.round(v.statsTimeToEpochMs(s.lastResponseAt)),
    last_latency: round3(s.lastLatencyMs),
    min_latency: s.count === 0 ? 0 : round3(s.minLatencyMs),
    avg_latency: s.count === 0 ? 0 : round3(s.totalLatencyMs / s.count),
    max_latency: round3(s.maxLatencyMs),
  }
}

export function connectionReports(v: AdminView): ConnectionReport[] {
  const timeouts = new Map<bigint, number>()
  for (const s of v.sessions()) timeouts.set(s.id, s.timeoutMs)
  return [...v.connections()].map((c) => connectionReport(v, c, timeouts))
}

export interface SessionReport {
  /** Leader or standalone: the session table's expiry buckets (epoch ms → session ids), in time order. */
  expiry: { deadlineMs: number; ids: string[] }[] | undefined
  /** Every session the tree holds, with its timeout (ms), in id order. */
  sessions: { id: string; timeoutMs: number }[]
  /** The sessions holding ephemeral nodes, with their paths (sorted). */
  ephemerals: { id: string; paths: string[] }[]
}

const byId = (a: { id: bigint }, b: { id: bigint }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

export function sessionReport(v: AdminView): SessionReport {
  const sessions = [...v.sessions()].sort(byId)
  const deadlines = v.sessionDeadlines()
  let expiry: SessionReport['expiry']
  if (deadlines !== undefined) {
    const buckets = new Map<number, bigint[]>()
    for (const d of deadlines) {
      const ids = buckets.get(d.deadlineMs)
      if (ids === undefined) buckets.set(d.deadlineMs, [d.id])
      else ids.push(d.id)
    }
    expiry = [...buckets]
      .sort((a, b) => a[0] - b[0])
      .map(([deadlineMs, ids]) => ({
        deadlineMs,
        ids: ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(formatSessionId),
      }))
  }
  const ephemerals: SessionReport['ephemerals'] = []
  for (const s of sessions) {
    const paths = v.ephemerals(s.id)
    if (paths.length > 0) ephemerals.push({ id: formatSessionId(s.id), paths: [...paths].sort() })
  }
  return {
    expiry,
    sessions: sessions.map((s) => ({ id: formatSessionId(s.id), timeoutMs: s.timeoutMs })),
    ephemerals,
  }
}

export interface WatchReport {
  /** Session id → the paths its connection watches (every kind of watch; a path once). */
  bySession: Map<string, string[]>
  /** Path → the sessions watching it. */
  byPath: Map<string, string[]>
  /** (connection, path) pairs: the lines of `wchc`. */
  total: number
}

export function watchReport(v: AdminView): WatchReport {
  const bySession = new Map<string, string[]>()
  const byPath = new Map<string, string[]>()
  let total = 0
  for (const w of v.watches()) {
    const id = formatSessionId(w.sessionId)
    const paths = [...new Set(w.paths)]
    total += paths.length
    bySession.set(id, [...(bySession.get(id) ?? []), ...paths])
    for (const p of paths) {
      const ids = byPath.get(p)
      if (ids === undefined) byPath.set(p, [id])
      else ids.push(id)
    }
  }
  return { bySession, byPath, total }
}

/** A setting that holds a secret (or is one): left out of `conf`. Paths to files (…File) are not secrets. */
const SECRET_SETTING = /(secret|password|passphrase|digest)$/i

/**
 * The effective configuration, secrets left out: every setting with its
 * value as the server uses it (defaults filled in, the tree-size limit as
 * computed), in the schema's order; undefined settings are omitted.
 */
export function configReport(v: AdminView): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(v.config())) {
    if (SECRET_SETTING.test(key) || value === undefined) continue
    out[key] = value
  }
  out.treeBytesMax = v.treeBytesMax()
  return out
}

/** The data directory's SQLite files (the log, the snapshots and their WAL) and their sizes. */
export interface DirsReport {
  datadir_size: number
  /** The WAL file: the log's most recent writes (the log itself lives in the database, counted above). */
  logdir_size: number
  files: Record<string, number>
}

export function dirsReport(v: AdminView): DirsReport {
  const dir = v.config().dataDir
  const files: Record<string, number> = {}
  let total = 0
  let wal = 0
  let names: string[] = []
  try {
    names = readdirSync(dir)
      .filter((n) => n.startsWith('conclave.db'))
      .sort()
  } catch {
    // A data directory that cannot be listed has no size to report.
  }
  for (const name of names) {
    let size = 0
    try {
      size = statSync(join(dir, name)).size
    } catch {
      continue // removed meanwhile (SQLite deletes -wal and -shm on close)
    }
    files[name] = size
    total += size
    if (name.endsWith('-wal')) wal = size
  }
  return { datadir_size: total, logdir_size: wal, files }
}
