/**
 * The run's timeline as an SVG picture, drawn by hand (no dependency): time
 * on x; one lane per server, shaded where a fault hit it (kill, pause,
 * partition: each its colour, the fault's name on the span), then one lane
 * per client, each operation a bar from invocation to completion coloured by
 * outcome (ok green, failed amber, indeterminate red: a red tick at its
 * invocation and a faded bar up to the lane's next operation, as it never
 * returned). Consecutive operations of a lane with the same outcome that
 * touch within a pixel merge into one bar. Hovering a bar shows the
 * operation (or how many were merged). A client process the harness froze
 * (the lock workload's holders) shows the freeze in the pause colour, and
 * the nemesis's acknowledged reconfigs (its `membership` lane) are drawn in
 * the reconfig colour, as are the membership faults on the server lanes.
 */
import type { ChaosEvent, FaultEvent } from './history.js'

const LANE = 14
const LEFT = 150
const WIDTH = 1600
const COLOURS = { ok: '#2e9e44', fail: '#e0a000', info: '#d62728' }

function faultColour(kind: string): string {
  if (kind.startsWith('kill')) return '#7f0000'
  if (kind.startsWith('pause')) return '#6a3d9a'
  if (kind.startsWith('partition')) return '#1f5fbf'
  if (kind.startsWith('reconfig')) return '#0f8b8d'
  if (kind.startsWith('disk')) return '#8c6d1f'
  return '#555555'
}

const esc = (text: string) =>
  (text.length > 300 ? `${text.slice(0, 300)}…` : text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')

export function timelineSvg(
  events: readonly ChaosEvent[],
  faults: readonly FaultEvent[],
  servers: readonly number[],
  durationMs: number,
): string {
  const lanes = new Map<number, string>()
  for (const e of events) if (!lanes.has(e.process)) lanes.set(e.process, e.workload)
  const clientLanes = [...lanes.keys()].sort((a, b) => a - b)
  // A loop, not Math.max(...): a 5-minute run's 130,000 arguments overflow the stack.
  let end = durationMs
  for (const e of events) end = Math.max(end, Number.isFinite(e.returnedAt) ? e.returnedAt : e.invokedAt)
  for (const f of faults) end = Math.max(end, f.endAt)
  const x = (t: number) => LEFT + (Math.min(t, end) / end) * (WIDTH - LEFT - 10)
  const top = 30
  const serverY = (i: number) => top + i * LANE
  const clientTop = top + servers.length * LANE + 10
  const clientY = (i: number) => clientTop + i * LANE
  const height = clientTop + clientLanes.length * LANE + 30
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="10">`,
  )
  out.push(`<rect width="${WIDTH}" height="${height}" fill="white"/>`)
  // Time axis: a tick every 5 or 10 s.
  const step = end > 120_000 ? 30_000 : end > 30_000 ? 10_000 : 5_000
  for (let t = 0; t <= end; t += step) {
    out.push(`<line x1="${x(t)}" y1="${top - 5}" x2="${x(t)}" y2="${height - 20}" stroke="#eee"/>`)
    out.push(`<text x="${x(t)}" y="${top - 8}" text-anchor="middle">${t / 1000}s</text>`)
  }
  // Faults: a shaded span over every lane, darker on the servers hit.
  for (const f of faults) {
    const w = Math.max(1, x(f.endAt) - x(f.startAt))
    const c = faultColour(f.kind)
    out.push(
      `<rect x="${x(f.startAt)}" y="${top}" width="${w}" height="${height - top - 20}" fill="${c}" opacity="0.07"><title>${esc(`${f.kind}: ${f.detail} (${(f.startAt / 1000).toFixed(1)}–${(f.endAt / 1000).toFixed(1)} s)`)}</title></rect>`,
    )
    for (const id of f.targets) {
      const i = servers.indexOf(id)
      if (i < 0) continue
      out.push(
        `<rect x="${x(f.startAt)}" y="${serverY(i) + 1}" width="${w}" height="${LANE - 2}" fill="${c}" opacity="0.75"><title>${esc(`${f.kind}: ${f.detail}`)}</title></rect>`,
      )
    }
    const i = servers.indexOf(f.targets[0] ?? -1)
    if (i >= 0)
      out.push(
        `<text x="${x(f.startAt) + 2}" y="${serverY(i) + LANE - 4}" fill="white" font-size="8">${esc(f.kind)}</text>`,
      )
  }
  servers.forEach((id, i) => {
    out.push(`<text x="4" y="${serverY(i) + LANE - 4}">server n${id}</text>`)
    out.push(
      `<line x1="${LEFT}" y1="${serverY(i) + LANE}" x2="${WIDTH - 10}" y2="${serverY(i) + LANE}" stroke="#ddd"/>`,
    )
  })
  const index = new Map(clientLanes.map((p, i) => [p, i]))
  clientLanes.forEach((p, i) => {
    out.push(`<text x="4" y="${clientY(i) + LANE - 4}">${esc(lanes.get(p) ?? '')} c${p}</text>`)
  })
  // Bars: consecutive operations of one lane with the same outcome that touch within a pixel
  // merge into one bar (a minute holds thousands of operations a lane); indeterminate ones stand alone.
  const perLane = new Map<number, ChaosEvent[]>()
  for (const e of events) {
    let l = perLane.get(e.process)
    if (l === undefined) perLane.set(e.process, (l = []))
    l.push(e)
  }
  // The lock holders' freezes in the pause colour; the nemesis's acknowledged reconfigs in the reconfig colour.
  const colour = (e: ChaosEvent, type: ChaosEvent['type']) =>
    e.f === 'client-pause'
      ? faultColour('pause')
      : e.f === 'reconfig' && type === 'ok'
        ? faultColour('reconfig')
        : COLOURS[type]
  const describe = (e: ChaosEvent) =>
    `${e.f}${e.key !== undefined ? ` ${e.key}` : ''} ${e.value !== undefined ? JSON.stringify(e.value) : ''} → ${e.type}${e.error !== undefined ? ` ${e.error}` : ''} ${e.type === 'ok' && e.result !== undefined ? JSON.stringify(e.result) : ''} [${e.invokedAt.toFixed(0)}, ${Number.isFinite(e.returnedAt) ? e.returnedAt.toFixed(0) : '∞'}] ms`
  for (const [p, list] of perLane) {
    list.sort((a, b) => a.invokedAt - b.invokedAt)
    const y = clientY(index.get(p)!) + 2
    let bar: { from: number; to: number; type: ChaosEvent['type']; first: ChaosEvent; n: number } | undefined
    const emit = () => {
      if (bar === undefined) return
      const title = esc(
        bar.n === 1 ? describe(bar.first) : `${bar.n} operations, ${bar.type}, from ${describe(bar.first)}`,
      )
      const op = bar.type === 'info' ? ' opacity="0.35"' : ''
      out.push(
        `<rect x="${bar.from.toFixed(1)}" y="${y}" width="${Math.max(0.6, bar.to - bar.from).toFixed(1)}" height="${LANE - 4}" fill="${colour(bar.first, bar.type)}"${op}><title>${title}</title></rect>`,
      )
      if (bar.type === 'info')
        out.push(
          `<rect x="${bar.from.toFixed(1)}" y="${y}" width="2" height="${LANE - 4}" fill="${COLOURS.info}"/>`,
        )
      bar = undefined
    }
    for (const [k, e] of list.entries()) {
      const from = x(e.invokedAt)
      // An indeterminate operation never returns: drawn (faded) up to the lane's next operation.
      const to = Number.isFinite(e.returnedAt) ? x(e.returnedAt) : x(list[k + 1]?.invokedAt ?? end)
      if (
        bar !== undefined &&
        e.type !== 'info' &&
        bar.type === e.type &&
        e.f !== 'client-pause' &&
        bar.first.f !== 'client-pause' &&
        colour(e, e.type) === colour(bar.first, bar.type) &&
        from <= bar.to + 1
      ) {
        bar.to = Math.max(bar.to, to)
        bar.n++
        continue
      }
      emit()
      bar = { from, to, type: e.type, first: e, n: 1 }
    }
    emit()
  }
  const ly = height - 8
  const legend: [string, string][] = [
    ['ok', COLOURS.ok],
    ['failed', COLOURS.fail],
    ['indeterminate', COLOURS.info],
    ['kill', faultColour('kill')],
    ['pause', faultColour('pause')],
    ['partition', faultColour('partition')],
    ['reconfig', faultColour('reconfig')],
    ['disk stall', faultColour('disk')],
  ]
  legend.forEach(([name, c], i) => {
    out.push(`<rect x="${LEFT + i * 110}" y="${ly - 8}" width="10" height="10" fill="${c}"/>`)
    out.push(`<text x="${LEFT + i * 110 + 14}" y="${ly}">${name}</text>`)
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
