/**
 * The coordination view: the recipes found under a path (coordination.ts),
 * kept current by a persistent recursive watch on it (a change rescans,
 * at most every RESCAN_MS). Browser only.
 */
import type { Client } from '../../client/index.js'
import type { AppContext, View } from './context.js'
import { type Contender, type ScanResult, type Structure, scan } from './coordination.js'
import { byId, errorText, h, replace } from './dom.js'

const RESCAN_MS = 150

function who(c: Contender): string {
  return `${c.id !== undefined ? `${c.id} ` : ''}(session ${c.session})`
}

export class CoordinationView implements View {
  private zk: Client | null = null
  private visible = false
  private stopWatch: (() => Promise<void>) | undefined
  private root = '/'
  private timer: ReturnType<typeof setTimeout> | undefined
  private scanning = false
  private again = false

  constructor(private readonly app: AppContext) {
    byId('coord-form').addEventListener('submit', (e) => {
      e.preventDefault()
      this.root = byId<HTMLInputElement>('coord-root').value.trim() || '/'
      void this.watchAndScan()
    })
  }

  setClient(zk: Client | null): void {
    this.zk = zk
    this.stopWatch = undefined
    if (zk === null) replace(byId('coord-results'))
    else if (this.visible) void this.watchAndScan()
  }

  setVisible(visible: boolean): void {
    this.visible = visible
    if (visible) void this.watchAndScan()
    else void this.unwatch()
  }

  private async unwatch(): Promise<void> {
    const stop = this.stopWatch
    this.stopWatch = undefined
    await stop?.().catch(() => {})
  }

  private async watchAndScan(): Promise<void> {
    const zk = this.zk
    if (zk === null) return
    await this.unwatch()
    try {
      this.stopWatch = await zk.addWatch(this.root, 'persistentRecursive', () => this.soon())
    } catch (err) {
      this.app.notify(errorText(err), 'error')
    }
    await this.rescan()
  }

  private soon(): void {
    if (this.timer !== undefined) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.rescan()
    }, RESCAN_MS)
  }

  private async rescan(): Promise<void> {
    const zk = this.zk
    if (zk === null) return
    if (this.scanning) {
      this.again = true
      return
    }
    this.scanning = true
    const started = performance.now()
    try {
      const r = await scan(zk, this.root)
      this.render(r, performance.now() - started)
    } catch (err) {
      byId('coord-status').textContent = `Scan failed: ${errorText(err)}`
    } finally {
      this.scanning = false
      if (this.again) {
        this.again = false
        this.soon()
      }
    }
  }

  private render(r: ScanResult, ms: number): void {
    byId('coord-status').textContent =
      `${r.structures.length} found under ${r.root}: ${r.visited} znodes looked at in ${ms.toFixed(0)} ms` +
      `${r.truncated ? ' (stopped at the limit: scan a narrower path)' : ''}. Updated ${new Date().toLocaleTimeString()}.`
    const of = <T extends Structure['type']>(t: T): Extract<Structure, { type: T }>[] =>
      r.structures.filter((s): s is Extract<Structure, { type: T }> => s.type === t)
    const link = (path: string): HTMLElement =>
      h('a', { href: '#tree', onclick: () => this.app.showInTree(path) }, path)
    const contenders = (list: Contender[], role: string): HTMLElement =>
      h(
        'ol',
        { class: 'contenders', 'aria-label': role },
        list.map((c) =>
          h('li', null, `${who(c)} — fencing token ${c.fencingToken}`, h('span', { class: 'node' }, c.node)),
        ),
      )
    const section = (title: string, id: string, items: HTMLElement[]): HTMLElement | null =>
      items.length === 0
        ? null
        : h('section', { 'aria-labelledby': id }, h('h3', { id }, title), h('div', { class: 'cards' }, items))
    replace(
      byId('coord-results'),
      r.structures.length === 0 ? h('p', null, 'No locks, elections, groups or queues here.') : null,
      section(
        'Locks',
        'coord-locks',
        [...of('lock'), ...of('rwlock')].map((s) =>
          h(
            'article',
            { class: 'card', 'data-kind': s.type, 'data-path': s.path },
            h('h4', null, link(s.path), s.type === 'rwlock' ? ' (read-write)' : ''),
            h(
              'p',
              { class: 'holder' },
              s.holders.length === 0
                ? 'Free.'
                : `Held by ${s.holders.map((c) => `${c.kind !== undefined ? `${c.kind} ` : ''}${who(c)}, fencing token ${c.fencingToken}`).join('; ')}`,
            ),
            s.waiters.length === 0
              ? h('p', null, 'No one waiting.')
              : contenders(s.waiters, 'Waiting, in order'),
          ),
        ),
      ),
      section(
        'Semaphores',
        'coord-semaphores',
        of('semaphore').map((s) =>
          h(
            'article',
            { class: 'card', 'data-kind': 'semaphore', 'data-path': s.path },
            h('h4', null, link(s.path)),
            h('p', null, `${s.leases.length} lease${s.leases.length === 1 ? '' : 's'} held`),
            contenders(s.leases, 'Leases'),
          ),
        ),
      ),
      section(
        'Elections',
        'coord-elections',
        of('election').map((s) =>
          h(
            'article',
            { class: 'card', 'data-kind': 'election', 'data-path': s.path },
            h('h4', null, link(s.path)),
            h('p', { class: 'leader' }, s.leader === undefined ? 'No leader.' : `Leader: ${who(s.leader)}`),
            contenders(s.candidates, 'Candidates, in order'),
          ),
        ),
      ),
      section(
        'Groups',
        'coord-groups',
        of('group').map((s) =>
          h(
            'article',
            { class: 'card', 'data-kind': 'group', 'data-path': s.path },
            h('h4', null, link(s.path)),
            h('p', null, `${s.members.length} member${s.members.length === 1 ? '' : 's'}`),
            h(
              'ul',
              { 'aria-label': 'Members' },
              s.members.map((m) =>
                h(
                  'li',
                  null,
                  `${m.id} (session ${m.session})`,
                  m.data !== '' ? h('code', null, ` ${m.data.slice(0, 80)}`) : null,
                ),
              ),
            ),
          ),
        ),
      ),
      section(
        'Queues',
        'coord-queues',
        of('queue').map((s) =>
          h(
            'article',
            { class: 'card', 'data-kind': 'queue', 'data-path': s.path },
            h('h4', null, link(s.path), ` (${s.kind})`),
            h(
              'p',
              { class: 'depth' },
              `Depth: ${s.depth}${s.claims > 0 ? `, ${s.claims} take${s.claims === 1 ? '' : 's'} in progress` : ''}`,
            ),
          ),
        ),
      ),
    )
  }
}
