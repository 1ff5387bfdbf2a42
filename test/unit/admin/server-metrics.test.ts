/**
 * ServerMetrics over a fake server view: its /metrics text parses with a
 * strict Prometheus text-format parser (HELP and TYPE for every family,
 * histograms' buckets consistent, counters monotonic across scrapes); the
 * request latency histogram counts replies by operation and keeps each
 * connection's statistics; commit latency matches commits to their
 * proposals in zxid order and forgets a leadership's proposals when it
 * ends; an election is timed from LOOKING to serving; DIFF, TRUNC and SNAP
 * (and SNAP's bytes) are counted; a FastHistogram's series keep counting
 * across a reset. Also the admin port's command table: ZooKeeper's
 * AdminServer names and aliases.
 */

import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { ADMIN_COMMANDS, adminCommand, runAdminCommand } from '../../../server/admin/admin-commands.js'
import type { AdminView } from '../../../server/admin/admin-view.js'
import { FastHistogram } from '../../../server/admin/fast-histogram.js'
import { FOUR_LETTER_WORDS } from '../../../server/admin/four-letter-words.js'
import { ServerMetrics } from '../../../server/admin/server-metrics.js'
import { parseConfig } from '../../../server/config.js'
import { ConnectionStats } from '../../../server/request/request-probe.js'
import { OpCode } from '../../../shared/opcodes.js'
import {
  checkHistograms,
  checkMonotonic,
  parseExposition,
  sampleValue,
} from '../../helpers/prometheus-text.js'
import { fakeAdminView } from './fake-admin-view.js'

function view(role = 'leading'): AdminView {
  return fakeAdminView({
    serverId: () => 2,
    role: () => role,
    serving: () => role !== 'looking',
    ready: () => role !== 'looking',
    connectionCount: () => 1,
    digest: () => 'abcdef',
    writesInFlight: () => 3,
    replication: () => ({ Leader: 2 }),
    config: () => parseConfig({}),
    connections: () => [
      {
        sessionId: 1n,
        conn: { remoteAddress: '127.0.0.1', remotePort: 1 },
        outstanding: 5,
        reading: true,
        stats: new ConnectionStats(),
      },
    ],
  })
}

describe('ServerMetrics', () => {
  it('exposes every family with HELP and TYPE, consistent histograms, monotonic counters', async () => {
    const m = new ServerMetrics(view(), { ensemble: true })
    const stats = new ConnectionStats()
    m.connected(stats)
    m.replied(stats, OpCode.getData, 1, 7, m.received())
    const first = parseExposition(await m.text())
    checkHistograms(first)
    for (const f of first.values()) expect(f.help.length, f.name).toBeGreaterThan(0)
    expect(first.get('conclave_request_duration_seconds')?.type).toBe('histogram')
    expect(first.get('conclave_sessions_opened_total')?.type).toBe('counter')
    expect(first.get('conclave_znode_count')?.type).toBe('gauge')
    expect(first.get('process_cpu_seconds_total')?.type).toBe('counter')
    expect(sampleValue(first, 'conclave_outstanding_requests_max')).toBe(5)
    expect(sampleValue(first, 'conclave_server_state', { state: 'leading' })).toBe(1)
    expect(sampleValue(first, 'conclave_server_state', { state: 'looking' })).toBe(0)
    m.sessionOpened()
    m.notified()
    m.replied(stats, OpCode.getData, 2, 7, m.received())
    m.replied(stats, OpCode.setData, 3, 8, m.received())
    const second = parseExposition(await m.text())
    checkHistograms(second)
    checkMonotonic(first, second)
    expect(sampleValue(second, 'conclave_request_duration_seconds_count', { op: 'getData' })).toBe(2)
    expect(sampleValue(second, 'conclave_request_duration_seconds_count', { op: 'setData' })).toBe(1)
    expect(sampleValue(second, 'conclave_sessions_opened_total')).toBe(1)
    expect(sampleValue(second, 'conclave_watch_notifications_total')).toBe(1)
    expect(sampleValue(second, 'conclave_packets_received_total')).toBe(99)
  })

  it("keeps a connection's statistics as cons reports them", () => {
    const m = new ServerMetrics(view(), { ensemble: false })
    const stats = new ConnectionStats()
    m.connected(stats)
    expect(stats.establishedAt).toBeGreaterThan(0)
    m.replied(stats, OpCode.create, 5, 0x100000001, m.received() - 2)
    m.replied(stats, OpCode.ping, -2, 0x100000001, m.received())
    expect(stats).toMatchObject({ lastOp: 'PING', lastCxid: 5, lastZxid: 0x100000001, count: 2 })
    expect(stats.maxLatencyMs).toBeGreaterThanOrEqual(2)
    expect(stats.minLatencyMs).toBeLessThanOrEqual(stats.maxLatencyMs)
  })

  it('times a commit from its proposal, in zxid order, and forgets proposals of an ended leadership', async () => {
    const m = new ServerMetrics(view(), { ensemble: false })
    m.proposed(10)
    m.proposed(11)
    m.proposed(12)
    m.committed(11) // 10 was decided with it (commits are cumulative): only 11 is observed by its own commit
    m.committed(12)
    const count = async () =>
      sampleValue(parseExposition(await m.text()), 'conclave_commit_duration_seconds_count')
    expect(await count()).toBe(2)
    m.proposed(13)
    m.roleChanged('following')
    m.committed(13) // applied as a follower: not this server's proposal any more
    expect(await count()).toBe(2)
  })

  it('times an election from LOOKING to serving, and counts DIFF, TRUNC, SNAP and the SNAP bytes', async () => {
    const m = new ServerMetrics(view(), { ensemble: true })
    m.roleChanged('looking')
    m.roleChanged('following')
    m.roleChanged('looking')
    m.roleChanged('leading')
    m.peerMessage({ type: 'DIFF', lastZxid: 1 })
    m.peerMessage({ type: 'SNAP', zxid: 1, configZxid: 0, config: '' })
    m.peerMessage({ type: 'SNAPCHUNK', index: 0, data: new Uint8Array(100) })
    m.peerMessage({ type: 'SNAPCHUNK', index: 1, data: new Uint8Array(23) })
    m.peerMessage({ type: 'COMMIT', zxid: 1 })
    m.groupCommitted(3, 500)
    const f = parseExposition(await m.text())
    expect(sampleValue(f, 'conclave_election_duration_seconds_count')).toBe(2)
    expect(sampleValue(f, 'conclave_learner_syncs_total', { type: 'DIFF' })).toBe(1)
    expect(sampleValue(f, 'conclave_learner_syncs_total', { type: 'TRUNC' })).toBe(0)
    expect(sampleValue(f, 'conclave_learner_syncs_total', { type: 'SNAP' })).toBe(1)
    expect(sampleValue(f, 'conclave_snap_bytes_total')).toBe(123)
    expect(sampleValue(f, 'conclave_fsync_duration_seconds_count')).toBe(1)
    expect(sampleValue(f, 'conclave_fsync_duration_seconds_bucket', { le: '0.005' })).toBe(1)
    expect(sampleValue(f, 'conclave_fsync_duration_seconds_bucket', { le: '0.002' })).toBe(0)
    expect(sampleValue(f, 'conclave_durable_bytes_total')).toBe(500)
  })

  it('has a registry of its own: two servers in one process do not share metrics', async () => {
    const a = new ServerMetrics(view(), { ensemble: false })
    const b = new ServerMetrics(view(), { ensemble: false })
    a.sessionOpened()
    expect(sampleValue(parseExposition(await a.text()), 'conclave_sessions_opened_total')).toBe(1)
    expect(sampleValue(parseExposition(await b.text()), 'conclave_sessions_opened_total')).toBe(0)
  })
})

describe('FastHistogram', () => {
  it('puts a value on a bound into that bucket, past every bound into +Inf; reset keeps series live', async () => {
    const registry = new Registry()
    const h = new FastHistogram({ name: 't_seconds', help: 'test', buckets: [1, 2], registers: [registry] })
    const s = h.series()
    for (const v of [0.5, 1, 1.5, 2, 3]) s.observe(v)
    let f = parseExposition(await registry.metrics())
    checkHistograms(f)
    expect(sampleValue(f, 't_seconds_bucket', { le: '1' })).toBe(2)
    expect(sampleValue(f, 't_seconds_bucket', { le: '2' })).toBe(4)
    expect(sampleValue(f, 't_seconds_bucket', { le: '+Inf' })).toBe(5)
    expect(sampleValue(f, 't_seconds_sum')).toBe(8)
    h.reset()
    s.observe(1)
    f = parseExposition(await registry.metrics())
    expect(sampleValue(f, 't_seconds_count')).toBe(1)
  })
})

describe('the admin commands', () => {
  it("answers ZooKeeper's AdminServer names and every four-letter word", () => {
    for (const name of [
      'configuration',
      'connection_stat_reset',
      'connections',
      'dirs',
      'dump',
      'environment',
      'is_read_only',
      'leader',
      'monitor',
      'ruok',
      'server_stats',
      'stats',
      'watch_summary',
      'watches',
      'watches_by_path',
    ])
      expect(adminCommand(name)?.name).toBe(name)
    for (const word of FOUR_LETTER_WORDS) expect(adminCommand(word), word).toBeDefined()
    expect(ADMIN_COMMANDS.filter((c) => c.changes).map((c) => c.name)).toEqual(['connection_stat_reset'])
  })

  it("answers in ZooKeeper's CommandResponse shape", () => {
    const c = adminCommand('wchs')!
    expect(runAdminCommand(c, view())).toEqual({
      command: 'watch_summary',
      error: null,
      num_connections: 0,
      num_paths: 0,
      num_total_watches: 0,
    })
    expect(runAdminCommand(adminCommand('lead')!, view('standalone'))).toMatchObject({
      command: 'leader',
      error: 'server is not initialized',
    })
  })
})

describe('the strict Prometheus text parser (test/helpers/prometheus-text.ts) refuses', () => {
  const ok = '# HELP a_total A counter.\n# TYPE a_total counter\na_total 1\n'
  const hist = (buckets: string) =>
    `# HELP h A histogram.\n# TYPE h histogram\n${buckets}h_sum 3\nh_count 2\n`

  it('nothing that is well formed', () => {
    expect(parseExposition(ok).get('a_total')?.samples).toEqual([{ name: 'a_total', labels: {}, value: 1 }])
    checkHistograms(parseExposition(hist('h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n')))
  })

  it('a sample without HELP or TYPE, metadata after samples, a split family, a bad value or label', () => {
    expect(() => parseExposition('# TYPE a gauge\na 1\n')).toThrow(/lacks HELP/)
    expect(() => parseExposition('a 1\n')).toThrow(/without TYPE/)
    expect(() => parseExposition(`${ok}# HELP a_total again\n`)).toThrow(/after its samples/)
    const b = '# HELP b B.\n# TYPE b gauge\nb 2\n'
    expect(() => parseExposition(`${ok.replace('a_total 1\n', '')}${b}a_total 1\n`)).toThrow(
      /without TYPE|split/,
    )
    expect(() => parseExposition(ok.replace('a_total 1', 'a_total one'))).toThrow(/bad value/)
    expect(() => parseExposition(ok.replace('a_total 1', 'a_total{x=1} 1'))).toThrow(/not quoted/)
    expect(() => parseExposition(ok.replace('a_total 1', 'a_total -1'))).toThrow(/counter/)
    expect(() => parseExposition(`${ok}a_total 2\n`)).toThrow(/duplicate/)
    expect(() => parseExposition(ok.trimEnd())).toThrow(/newline/)
  })

  it('inconsistent histogram buckets, and a counter that went down between scrapes', () => {
    const bad = (b: string) => () => checkHistograms(parseExposition(hist(b)))
    expect(bad('h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n')).toThrow(/cumulative/)
    expect(bad('h_bucket{le="1"} 1\n')).toThrow(/\+Inf/)
    expect(bad('h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 3\n')).toThrow(/_count/)
    expect(bad('h_bucket{le="+Inf"} 2\nh_bucket{le="1"} 1\n')).toThrow(/ascending/)
    expect(() =>
      checkMonotonic(parseExposition(ok), parseExposition(ok.replace('a_total 1', 'a_total 0'))),
    ).toThrow(/went down/)
  })
})
