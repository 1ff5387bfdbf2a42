/**
 * The admin surface, its documentation and its dashboard agree:
 * docs/operations.md names every four-letter word, every admin command and
 * every `conclave_*` metric family the server exposes (with its type); every
 * metric docs/grafana-dashboard.json queries is one the server exposes; the
 * dashboard's panels have distinct ids and every query a panel.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ADMIN_COMMANDS } from '../../../server/admin/admin-commands.js'
import type { AdminView } from '../../../server/admin/admin-view.js'
import { FOUR_LETTER_WORDS } from '../../../server/admin/four-letter-words.js'
import { ServerMetrics } from '../../../server/admin/server-metrics.js'
import { parseConfig } from '../../../server/config.js'
import { parseExposition } from '../../helpers/prometheus-text.js'

const ROOT = new URL('../../../', import.meta.url)
const operations = readFileSync(new URL('docs/operations.md', ROOT), 'utf8')
const dashboard = JSON.parse(readFileSync(new URL('docs/grafana-dashboard.json', ROOT), 'utf8')) as {
  panels: { id: number; type: string; title: string; targets?: { expr: string }[] }[]
  templating: { list: { definition?: string }[] }
}

const view: AdminView = {
  version: '0.0.0',
  serverId: () => 1,
  readOnlyMode: () => false,
  treeBytesMax: () => 1,
  role: () => 'standalone',
  serving: () => true,
  ready: () => true,
  epoch: () => 1,
  lastZxid: () => 0,
  sessionCount: () => 0,
  connectionCount: () => 0,
  nodeCount: () => 0,
  watchCount: () => 0,
  digest: () => '',
  treeBytesEstimate: () => 0,
  packetsReceived: () => 0,
  writesInFlight: () => 0,
  writesDeferred: () => 0,
  readingPaused: () => false,
  watchHistory: () => ({ changes: 12, bytes: 1500, startZxid: 0x400000001 }),
  watchResumes: () => ({ resumed: 3, compacted: 1, replayedEvents: 40 }),
  exactlyOnce: () => ({
    remembered: 2,
    inFlight: 1,
    forgotten: 0,
    memorySessions: 1,
    memoryResults: 5,
    memoryBytes: 700,
  }),
  replication: () => ({}),
  config: () => parseConfig({}),
  connections: () => [],
  sessions: () => [],
  sessionDeadlines: () => undefined,
  ephemerals: () => [],
  watches: () => [],
  statsTimeToEpochMs: (t) => t,
  resetConnectionStats: () => {},
}

async function families() {
  return parseExposition(await new ServerMetrics(view, { ensemble: true }).text())
}

describe('docs/operations.md', () => {
  it('describes every four-letter word and every admin command', () => {
    for (const w of FOUR_LETTER_WORDS) expect(operations, w).toContain(`| \`${w}\` |`)
    for (const c of ADMIN_COMMANDS)
      expect(operations, c.name).toMatch(new RegExp(`\\| \`${c.name}\`( \\(POST\\))? \\|`))
  })

  it('describes every conclave_* metric family with its type', async () => {
    for (const f of (await families()).values()) {
      if (!f.name.startsWith('conclave_')) continue
      const row = operations
        .split('\n')
        .find((l) => l.startsWith('| `') && l.includes(`\`${f.name}\``) && l.includes(` ${f.type} `))
      expect(row, `${f.name} (${f.type})`).toBeDefined()
    }
  })
})

describe('docs/grafana-dashboard.json', () => {
  it('queries only metrics the server exposes', async () => {
    const exposed = new Set([...(await families()).keys()])
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr))
    exprs.push(...dashboard.templating.list.map((v) => v.definition ?? ''))
    const used = new Set<string>()
    for (const e of exprs)
      for (const m of e.matchAll(/\b((?:conclave|process|nodejs)_[a-z0-9_]+)/g))
        used.add(exposed.has(m[1]!) ? m[1]! : m[1]!.replace(/_(bucket|sum|count)$/, ''))
    expect(used.size).toBeGreaterThan(15)
    for (const name of used) expect(exposed, name).toContain(name)
  })

  it('has distinct panel ids, and a query in every panel that is not a row', () => {
    const ids = dashboard.panels.map((p) => p.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const p of dashboard.panels)
      if (p.type !== 'row') expect(p.targets?.length, p.title).toBeGreaterThan(0)
  })
})
