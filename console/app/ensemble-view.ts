/**
 * The ensemble view: each member's role, zxid, lag behind the leader,
 * connections, sessions, znodes, watches and requests per second, with
 * small live charts of the last HISTORY samples (one a second while the
 * view is shown). From the console server's /api/ensemble (admin port JSON,
 * else four-letter words). Browser only.
 */
import type { Client } from '../../client/index.js'
import type { EnsembleReport, MemberReport } from '../api.js'
import { getJson, type View } from './context.js'
import { byId, errorText, h, replace } from './dom.js'
import { parseZxid, zxidHex, zxidParts } from './format.js'

const HISTORY = 60
const POLL_MS = 1000

interface Series {
  requests: number[]
  connections: number[]
  znodes: number[]
  lastPackets?: number
  lastAt?: number
}

const num = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : Number.NaN
  return Number.isFinite(n) ? n : undefined
}

/** A sparkline: an SVG polyline of the values, scaled to their own maximum. */
function spark(values: number[], label: string): SVGSVGElement {
  const w = 120
  const hgt = 28
  const ns = 'http://www.w3.org/2000/svg'
  const svg = document.createElementNS(ns, 'svg')
  svg.setAttribute('width', String(w))
  svg.setAttribute('height', String(hgt))
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`)
  svg.setAttribute('role', 'img')
  const last = values[values.length - 1]
  svg.setAttribute('aria-label', `${label}: ${last === undefined ? 'no data' : last.toFixed(0)} now`)
  svg.classList.add('spark')
  const max = Math.max(1, ...values)
  const step = w / Math.max(1, values.length - 1)
  const pts = values.map((v, i) => `${i * step},${hgt - 2 - (v / max) * (hgt - 4)}`).join(' ')
  const line = document.createElementNS(ns, 'polyline')
  line.setAttribute('points', pts)
  svg.append(line)
  return svg
}

export class EnsembleView implements View {
  private visible = false
  private timer: ReturnType<typeof setInterval> | undefined
  private readonly series = new Map<string, Series>()

  setClient(_zk: Client | null): void {}

  setVisible(visible: boolean): void {
    this.visible = visible
    if (visible && this.timer === undefined) {
      void this.poll()
      this.timer = setInterval(() => void this.poll(), POLL_MS)
    } else if (!visible && this.timer !== undefined) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  private async poll(): Promise<void> {
    let report: EnsembleReport
    try {
      report = await getJson<EnsembleReport>('api/ensemble')
    } catch (err) {
      byId('ensemble-summary').textContent = `The console server did not answer: ${errorText(err)}`
      return
    }
    if (!this.visible) return
    for (const m of report.members) this.record(m)
    this.render(report)
  }

  private record(m: MemberReport): void {
    let s = this.series.get(m.address)
    if (s === undefined) {
      s = { requests: [], connections: [], znodes: [] }
      this.series.set(m.address, s)
    }
    const push = (arr: number[], v: number): void => {
      arr.push(v)
      if (arr.length > HISTORY) arr.shift()
    }
    const packets = num(m.mntr.conclave_packets_received)
    let rate = 0
    if (packets !== undefined && s.lastPackets !== undefined && s.lastAt !== undefined && m.at > s.lastAt)
      rate = Math.max(0, ((packets - s.lastPackets) * 1000) / (m.at - s.lastAt))
    s.lastPackets = packets
    s.lastAt = m.at
    push(s.requests, m.reachable ? rate : 0)
    push(s.connections, num(m.srvr.Connections) ?? 0)
    push(s.znodes, num(m.srvr['Node count']) ?? 0)
  }

  private render(report: EnsembleReport): void {
    const leader = report.members.find(
      (m) => m.reachable && (m.srvr.Mode === 'leader' || m.srvr.Mode === 'standalone'),
    )
    const leaderZxid = leader === undefined ? undefined : parseZxid(leader.srvr.Zxid)
    const up = report.members.filter((m) => m.reachable).length
    byId('ensemble-summary').textContent =
      leader === undefined
        ? `No leader: ${up} of ${report.members.length} members answer.`
        : `Leader: ${leader.address} (server ${leader.srvr['Server id']}), epoch ${leader.srvr.Epoch}. ${up} of ${report.members.length} members answer.`
    const lag = (m: MemberReport): string => {
      const z = parseZxid(m.srvr.Zxid)
      if (!m.reachable || z === undefined || leaderZxid === undefined) return '—'
      if (m === leader) return '0'
      const a = zxidParts(leaderZxid)
      const b = zxidParts(z)
      return a.epoch === b.epoch ? String(Math.max(0, a.counter - b.counter)) : 'other epoch'
    }
    replace(
      byId('ensemble-rows'),
      report.members.map((m) => {
        const s = this.series.get(m.address)!
        const z = parseZxid(m.srvr.Zxid)
        return h(
          'tr',
          { 'data-address': m.address, class: m === leader ? 'leader' : m.reachable ? '' : 'down' },
          h(
            'th',
            { scope: 'row' },
            m.address,
            h(
              'div',
              { class: 'note' },
              m.source === undefined
                ? ''
                : `via ${m.source === 'admin' ? 'admin port' : 'four-letter words'}`,
            ),
          ),
          h(
            'td',
            { class: 'mode' },
            m.reachable
              ? String(m.srvr.Mode ?? '?')
              : `unreachable${m.error !== undefined ? `: ${m.error}` : ''}`,
          ),
          h('td', null, z === undefined ? '—' : zxidHex(z)),
          h('td', null, lag(m)),
          h('td', null, String(m.srvr.Connections ?? '—')),
          h('td', null, String(m.srvr.Sessions ?? '—')),
          h('td', null, String(m.srvr['Node count'] ?? '—')),
          h('td', null, String(m.srvr.Watches ?? '—')),
          h(
            'td',
            { class: 'chart' },
            h('span', { class: 'now' }, (s.requests.at(-1) ?? 0).toFixed(0)),
            spark(s.requests, `requests per second at ${m.address}`),
          ),
          h('td', { class: 'chart' }, spark(s.connections, `connections at ${m.address}`)),
          h('td', { class: 'chart' }, spark(s.znodes, `znodes at ${m.address}`)),
        )
      }),
    )
  }
}
