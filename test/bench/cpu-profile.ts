/**
 * Summarises V8 .cpuprofile files (from `npm run bench -- --cpu-prof DIR`
 * or `node --cpu-prof`): the functions with the most self time, and the
 * same time grouped by file, so a profile can be read without DevTools.
 *
 *   node dist/test/bench/cpu-profile.js DIR-or-FILE… [--top N]
 *
 * Bench-only: imports node:* freely, nothing of server/.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface ProfileSummary {
  file: string
  totalMs: number
  idleMs: number
  byFunction: [string, number][]
  byFile: [string, number][]
}

function shortUrl(url: string): string {
  if (url === '') return '(native)'
  const i = url.indexOf('/dist/')
  if (i >= 0) return url.slice(i + 6)
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) return url.slice(nm + 13)
  return url.replace(/^file:\/\//, '')
}

export function summarise(file: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0))
  }
  const fn = new Map<string, number>()
  const fl = new Map<string, number>()
  let idle = 0
  let total = 0
  for (const [id, us] of self) {
    const n = byId.get(id)!
    const name = n.callFrame.functionName || '(anonymous)'
    total += us
    if (name === '(idle)') {
      idle += us
      continue
    }
    const where = shortUrl(n.callFrame.url)
    const key = `${name}  ${where}:${n.callFrame.lineNumber + 1}`
    fn.set(key, (fn.get(key) ?? 0) + us)
    fl.set(where, (fl.get(where) ?? 0) + us)
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, v / 1000] as [string, number])
  return { file, totalMs: total / 1000, idleMs: idle / 1000, byFunction: sorted(fn), byFile: sorted(fl) }
}

function render(s: ProfileSummary): string {
  const busy = s.totalMs - s.idleMs
  const pct = (ms: number) => `${((100 * ms) / Math.max(busy, 1e-9)).toFixed(1).padStart(5)}%`
  const lines = [
    `${basename(s.file)}: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(busy / 1000).toFixed(1)} s busy`,
    '  self time by function (% of busy):',
    ...s.byFunction.map(([k, ms]) => `    ${pct(ms)}  ${k}`),
    '  self time by file:',
    ...s.byFile.map(([k, ms]) => `    ${pct(ms)}  ${k}`),
  ]
  return lines.join('\n')
}

function main(argv: string[]): void {
  let top = 25
  const files: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--top') top = Number(argv[++i])
    else {
      const a = argv[i]!
      if (!statSync(a).isDirectory()) {
        files.push(a)
        continue
      }
      for (const f of readdirSync(a).sort()) {
        if (f.endsWith('.cpuprofile')) files.push(join(a, f))
      }
    }
  }
  if (files.length === 0 || !Number.isInteger(top) || top <= 0) {
    process.stderr.write('usage: node dist/test/bench/cpu-profile.js DIR-or-FILE… [--top N]\n')
    process.exit(2)
  }
  for (const f of files) process.stdout.write(`${render(summarise(f, top))}\n\n`)
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(basename(process.argv[1])))
  main(process.argv.slice(2))
