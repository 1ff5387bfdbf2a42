/**
 * A chaos run's report as text: the setup, operations per workload
 * (ok / failed / indeterminate), every fault with its times, and each
 * checker's verdict with its anomalies (or undecided parts) spelled out.
 */
import type { ChaosReport } from './run.js'

export function verdictWord(v: boolean | 'unknown'): string {
  return v === true ? 'ok' : v === false ? 'ANOMALY' : 'UNKNOWN'
}

export function formatReport(r: ChaosReport): string {
  const s = (ms: number) => (ms / 1000).toFixed(1)
  const out: string[] = []
  out.push(
    `chaos run: ${r.target}, ${r.servers} voters${r.observer ? ' + 1 observer' : ''}, seed ${r.seed}, ${s(r.durationMs)} s, reads ${r.reads}${r.majority ? ', majority mode' : ''}`,
  )
  out.push(
    `members: ${r.members.map((m) => `n${m.id}${m.observer ? ' (observer)' : ''} ${m.connectString}`).join(', ')}`,
  )
  out.push(`verdict: ${verdictWord(r.valid)}`)
  out.push('')
  out.push('operations (ok / failed / indeterminate):')
  for (const [w, c] of Object.entries(r.workloads))
    out.push(
      `  ${w.padEnd(14)} ${String(c.ok + c.fail + c.info).padStart(7)}  (${c.ok} / ${c.fail} / ${c.info})`,
    )
  out.push(`  ${'total'.padEnd(14)} ${String(r.operations).padStart(7)}`)
  out.push('')
  const byKind = new Map<string, number>()
  for (const f of r.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1)
  out.push(
    `faults: ${r.faults.length} (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}); times in s from the start:`,
  )
  for (const f of r.faults)
    out.push(
      `  ${s(f.startAt).padStart(7)}–${s(f.endAt).padEnd(7)} ${f.kind}: ${f.detail}${f.leader !== undefined ? ` (leader was n${f.leader})` : ''}`,
    )
  out.push('')
  out.push(`checkers (${r.checkMs} ms):`)
  for (const v of r.verdicts) {
    out.push(`  ${v.workload.padEnd(14)} ${verdictWord(v.valid).padEnd(8)} ${v.summary}`)
    for (const p of v.problems) out.push(`    - ${p.split('\n').join('\n      ')}`)
  }
  return `${out.join('\n')}\n`
}
