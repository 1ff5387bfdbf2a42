/**
 * The sessions view: every session the members know, with its timeout, the
 * member and address it is connected from, and its ephemeral nodes — from
 * the console server's /api/sessions (the admin port's dump and connections
 * commands, else the four-letter words dump and cons, which a server
 * answers only when its whitelist has them). Also this console's own
 * session and its ephemerals (getEphemerals). Browser only.
 */
import type { Client } from '../../client/index.js'
import type { SessionsReport } from '../api.js'
import { type AppContext, getJson, type View } from './context.js'
import { byId, errorText, h, replace } from './dom.js'

interface Row {
  id: string
  timeoutMs: number | undefined
  ephemerals: Set<string>
  connected: string[]
  knownBy: string[]
}

export class SessionsView implements View {
  private zk: Client | null = null
  private visible = false

  constructor(private readonly app: AppContext) {
    byId('sessions-refresh').addEventListener('click', () => void this.refresh())
  }

  setClient(zk: Client | null): void {
    this.zk = zk
    if (this.visible) void this.refresh()
  }

  setVisible(visible: boolean): void {
    this.visible = visible
    if (visible) void this.refresh()
  }

  async refresh(): Promise<void> {
    const zk = this.zk
    if (zk !== null) {
      try {
        const mine = await zk.getEphemerals('/')
        byId('sessions-mine').textContent =
          `This console's session: ${zk.sessionId} (timeout ${zk.sessionTimeoutMs} ms, connected to ${zk.server ?? '—'}); ` +
          `its ephemerals: ${mine.length === 0 ? 'none' : mine.join(', ')}`
      } catch (err) {
        byId('sessions-mine').textContent = errorText(err)
      }
    } else byId('sessions-mine').textContent = 'Not connected.'
    let report: SessionsReport
    try {
      report = await getJson<SessionsReport>('api/sessions')
    } catch (err) {
      byId('sessions-notes').textContent = errorText(err)
      return
    }
    const rows = new Map<string, Row>()
    const row = (id: string): Row => {
      let r = rows.get(id)
      if (r === undefined) {
        r = { id, timeoutMs: undefined, ephemerals: new Set(), connected: [], knownBy: [] }
        rows.set(id, r)
      }
      return r
    }
    for (const m of report.members) {
      for (const [id, timeout] of Object.entries(m.sessions)) {
        const r = row(id)
        r.timeoutMs ??= timeout
        r.knownBy.push(m.address)
      }
      for (const [id, paths] of Object.entries(m.ephemerals)) for (const p of paths) row(id).ephemerals.add(p)
      for (const c of m.connections) row(c.session).connected.push(`${m.address} from ${c.remote}`)
    }
    replace(
      byId('sessions-notes'),
      report.members
        .filter((m) => m.error !== undefined)
        .map((m) => h('li', null, `${m.address}: ${m.error}`)),
    )
    const sorted = [...rows.values()].sort((a, b) => (a.id < b.id ? -1 : 1))
    byId('sessions-count').textContent = `${sorted.length} session${sorted.length === 1 ? '' : 's'}`
    replace(
      byId('sessions-rows'),
      sorted.map((r) =>
        h(
          'tr',
          { 'data-session': r.id, class: r.id === zk?.sessionId ? 'mine' : '' },
          h('th', { scope: 'row' }, r.id, r.id === zk?.sessionId ? ' (this console)' : ''),
          h('td', null, r.timeoutMs === undefined ? '—' : `${r.timeoutMs} ms`),
          h('td', null, r.connected.length === 0 ? '—' : r.connected.join(', ')),
          h(
            'td',
            null,
            r.ephemerals.size === 0
              ? '—'
              : h(
                  'ul',
                  { class: 'plain' },
                  [...r.ephemerals]
                    .sort()
                    .map((p) =>
                      h('li', null, h('a', { href: '#tree', onclick: () => this.app.showInTree(p) }, p)),
                    ),
                ),
          ),
        ),
      ),
    )
  }
}
