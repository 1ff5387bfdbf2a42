/**
 * The web console's entry (bundled by scripts/build-browser.mjs into
 * dist/browser/console/app.js): the connection bar (servers, digest
 * credentials), the views as tabs (#tree, #live, #coordination, #ensemble,
 * #sessions, kept in the URL's hash), notices. The console is a client of
 * the ensemble through the SDK's browser build; the console server
 * (server/console/console-server.ts) serves it and answers what a browser
 * cannot ask itself (four-letter words, the admin port's JSON).
 * Browser only; imports only the SDK's public entry and console/app.
 */
import { Client } from '../../client/index.js'
import type { OriginReport } from '../api.js'
import { type AppContext, type ConsoleConfig, getJson, type View } from './context.js'
import { CoordinationView } from './coordination-view.js'
import { byId, errorText } from './dom.js'
import { EnsembleView } from './ensemble-view.js'
import { LiveView } from './live-view.js'
import { SessionsView } from './sessions-view.js'
import { TreeView } from './tree-view.js'

const TABS = ['tree', 'live', 'coordination', 'ensemble', 'sessions'] as const
type Tab = (typeof TABS)[number]

let client: Client | null = null
let noticeTimer: ReturnType<typeof setTimeout> | undefined

function notify(text: string, kind: 'info' | 'error' = 'info'): void {
  const el = byId('notice')
  el.textContent = text
  el.className = kind
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status')
  if (noticeTimer !== undefined) clearTimeout(noticeTimer)
  noticeTimer = setTimeout(() => {
    el.textContent = ''
    el.className = ''
  }, 8000)
}

function setStatus(text: string, state: string): void {
  const el = byId('conn-status')
  el.textContent = text
  el.dataset.state = state
}

async function main(): Promise<void> {
  let config: ConsoleConfig
  try {
    config = await getJson<ConsoleConfig>('api/config')
  } catch {
    config = { servers: 'ws://127.0.0.1:2181', origin: location.origin, members: [] }
  }
  const params = new URLSearchParams(location.search)
  const serversInput = byId<HTMLInputElement>('servers')
  serversInput.value = params.get('servers') ?? config.servers
  const views: Record<Tab, View> = {} as Record<Tab, View>
  const app: AppContext = {
    config,
    client: () => client,
    notify,
    showInTree: (path) => {
      showTab('tree')
      void tree.reveal(path)
    },
  }
  const tree = new TreeView(app)
  views.tree = tree
  views.live = new LiveView(app)
  views.coordination = new CoordinationView(app)
  views.ensemble = new EnsembleView()
  views.sessions = new SessionsView(app)

  let shown: Tab | undefined
  const showTab = (tab: Tab): void => {
    if (shown === tab) return
    for (const t of TABS) {
      const on = t === tab
      const button = byId(`tab-${t}`)
      button.setAttribute('aria-selected', String(on))
      button.tabIndex = on ? 0 : -1
      byId(`view-${t}`).hidden = !on
    }
    if (shown !== undefined) views[shown].setVisible(false)
    shown = tab
    views[tab].setVisible(true)
    if (location.hash !== `#${tab}`) history.replaceState(null, '', `#${tab}`)
  }
  const fromHash = (): Tab => {
    const t = location.hash.slice(1)
    return (TABS as readonly string[]).includes(t) ? (t as Tab) : 'tree'
  }
  for (const t of TABS) byId(`tab-${t}`).addEventListener('click', () => showTab(t))
  // Arrow keys move between tabs (WAI-ARIA tabs).
  byId('tabs').addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return
    const i = TABS.indexOf(shown ?? 'tree')
    const next = TABS[(i + (e.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length]!
    showTab(next)
    byId(`tab-${next}`).focus()
  })
  window.addEventListener('hashchange', () => showTab(fromHash()))
  showTab(fromHash())

  const setClient = (zk: Client | null): void => {
    client = zk
    for (const t of TABS) views[t].setClient(zk)
  }

  const connect = async (): Promise<void> => {
    const old = client
    setClient(null)
    if (old !== null) await old.close().catch(() => {})
    const servers = serversInput.value.trim()
    const credentials = byId<HTMLInputElement>('credentials').value
    setStatus(`Connecting to ${servers}…`, 'connecting')
    try {
      const zk = await Client.connect(servers, {
        sessionTimeoutMs: 30_000,
        connectTimeoutMs: 5_000,
        ...(credentials !== '' ? { auth: [{ scheme: 'digest', credentials }] } : {}),
      })
      const describe = (): void => {
        const s = zk.state
        if (s === 'connected')
          setStatus(`Connected to ${zk.server ?? servers}, session ${zk.sessionId}`, 'connected')
        else if (s === 'authFailed') setStatus('Authentication failed: check the credentials', 'error')
        else if (s === 'expired') setStatus(`Session ${zk.sessionId} expired: connect again`, 'error')
        else if (s === 'closed') setStatus('Disconnected', 'closed')
        else setStatus(`Connection lost: reconnecting (session ${zk.sessionId})…`, 'connecting')
      }
      zk.on('state', describe)
      describe()
      if (credentials !== '') {
        const ids = await zk.whoAmI().catch(() => [])
        notify(`Authenticated as ${ids.map((i) => `${i.scheme}:${i.id}`).join(', ')}`)
      }
      setClient(zk)
    } catch (err) {
      setStatus(`Could not connect: ${errorText(err)}`, 'error')
      void explainOrigin()
    }
  }

  /** A browser does not say why a WebSocket failed: ask the console server whether the origin is refused. */
  const explainOrigin = async (): Promise<void> => {
    try {
      const r = await getJson<OriginReport>('api/origin')
      const refused = r.members.filter((m) => m.allowed === false)
      if (refused.length > 0)
        notify(
          `${refused.map((m) => m.address).join(', ')} refuse${refused.length === 1 ? 's' : ''} this page's origin ${r.origin}: start the servers with ${r.flag}`,
          'error',
        )
    } catch {
      // The explanation is a convenience.
    }
  }

  byId('connect-form').addEventListener('submit', (e) => {
    e.preventDefault()
    void connect()
  })
  byId('disconnect').addEventListener('click', async () => {
    const old = client
    setClient(null)
    await old?.close().catch(() => {})
    setStatus('Disconnected', 'closed')
  })
  await connect()
}

void main()
