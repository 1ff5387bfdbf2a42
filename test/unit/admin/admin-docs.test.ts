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
import { FOUR_LETTER_WORDS } from '../../../server/admin/four-letter-words.js'
import { ServerMetrics } from '../../../server/admin/server-metrics.js'
import { parseExposition } from '../../helpers/prometheus-text.js'
import { fakeAdminView } from './fake-admin-view.js'

const ROOT = new URL('../../../', import.meta.url)
const operations = readFileSync(new URL('docs/operations.md', ROOT), 'utf8')
const dashboard = JSON.parse(readFileSync(new URL('docs/grafana-dashboard.json', ROOT), 'utf8')) as {
  panels: { id: number; type: string; title: string; targets?: { expr: string }[] }[]
  templating: { list: { definition?: string }[] }
}

const view = fakeAdminView({ role: () => 'standalone' })

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
