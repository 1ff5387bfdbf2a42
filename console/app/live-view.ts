/**
 * Live events: a persistent (recursive, or not) watch on a path through
 * zk.watch() (addWatch on the server), each event with the zxid of its
 * change. Pausable (events that arrive while paused wait, counted, and
 * appear on resume) and filterable (by event type and by a path substring).
 * At most EVENTS_MAX events are kept. Browser only.
 */
import type { Client, WatchStream, WatchStreamEvent } from '../../client/index.js'
import type { AppContext, View } from './context.js'
import { byId, errorText, h, replace } from './dom.js'
import { zxidHex } from './format.js'

const EVENTS_MAX = 1000
const TYPES = ['created', 'deleted', 'dataChanged', 'childrenChanged', 'resync'] as const

interface Logged extends WatchStreamEvent {
  at: number
  seq: number
}

export class LiveView implements View {
  private zk: Client | null = null
  private stream: WatchStream | undefined
  private readonly events: Logged[] = []
  private readonly waiting: Logged[] = []
  private paused = false
  private seq = 0
  private watching: string | undefined

  constructor(private readonly app: AppContext) {
    byId('live-form').addEventListener('submit', (e) => {
      e.preventDefault()
      if (this.stream === undefined) void this.start()
      else this.stop()
    })
    byId('live-pause').addEventListener('click', () => this.togglePause())
    byId('live-clear').addEventListener('click', () => {
      this.events.length = 0
      this.waiting.length = 0
      this.render()
    })
    byId('live-filter').addEventListener('input', () => this.render())
    for (const t of TYPES) byId(`live-type-${t}`).addEventListener('change', () => this.render())
    this.render()
  }

  setClient(zk: Client | null): void {
    this.stop()
    this.zk = zk
  }

  setVisible(): void {}

  private async start(): Promise<void> {
    const zk = this.zk
    if (zk === null) return this.app.notify('not connected', 'error')
    const path = byId<HTMLInputElement>('live-path').value.trim() || '/'
    const recursive = byId<HTMLInputElement>('live-recursive').checked
    let stream: WatchStream
    try {
      stream = zk.watch(path, { recursive })
    } catch (err) {
      return this.app.notify(errorText(err), 'error')
    }
    this.stream = stream
    // Requests of a session are answered in order: once this read is answered, the watch is registered.
    await zk.exists(path).catch(() => null)
    if (this.stream !== stream) return
    this.watching = `${path}${recursive ? ' and below' : ''}`
    this.updateControls()
    try {
      for await (const ev of stream) {
        const logged: Logged = { ...ev, at: Date.now(), seq: ++this.seq }
        if (this.paused) this.waiting.push(logged)
        else this.events.push(logged)
        this.trim()
        this.render()
      }
    } catch (err) {
      this.app.notify(`live events stopped: ${errorText(err)}`, 'error')
    } finally {
      if (this.stream === stream) {
        this.stream = undefined
        this.watching = undefined
        this.updateControls()
      }
    }
  }

  private stop(): void {
    const s = this.stream
    this.stream = undefined
    this.watching = undefined
    if (s !== undefined) void s.close()
    this.updateControls()
  }

  private togglePause(): void {
    this.paused = !this.paused
    if (!this.paused) {
      this.events.push(...this.waiting)
      this.waiting.length = 0
      this.trim()
    }
    this.updateControls()
    this.render()
  }

  private trim(): void {
    if (this.events.length > EVENTS_MAX) this.events.splice(0, this.events.length - EVENTS_MAX)
    if (this.waiting.length > EVENTS_MAX) this.waiting.splice(0, this.waiting.length - EVENTS_MAX)
  }

  private updateControls(): void {
    byId('live-start').textContent = this.stream === undefined ? 'Start' : 'Stop'
    const pause = byId('live-pause')
    pause.textContent = this.paused ? 'Resume' : 'Pause'
    pause.setAttribute('aria-pressed', String(this.paused))
    this.render()
  }

  private render(): void {
    const filter = byId<HTMLInputElement>('live-filter').value.trim()
    const types = new Set(TYPES.filter((t) => byId<HTMLInputElement>(`live-type-${t}`).checked))
    const shown = this.events.filter((e) => types.has(e.type) && (filter === '' || e.path.includes(filter)))
    const state =
      this.watching === undefined
        ? 'Not watching.'
        : `Watching ${this.watching}${this.paused ? ` — paused, ${this.waiting.length} waiting` : ''}.`
    byId('live-status').textContent =
      `${state} ${this.events.length} event${this.events.length === 1 ? '' : 's'}, ${shown.length} shown.`
    replace(
      byId('live-events'),
      shown
        .slice()
        .reverse()
        .map((e) =>
          h(
            'tr',
            { class: `ev-${e.type}` },
            h('td', null, new Date(e.at).toLocaleTimeString()),
            h('td', { class: 'type' }, e.type),
            h('td', { class: 'path' }, e.path),
            h('td', null, zxidHex(e.zxid)),
          ),
        ),
    )
  }
}
