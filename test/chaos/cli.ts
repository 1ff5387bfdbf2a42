/**
 * `npm run chaos -- [options]`: runs the Jepsen-style chaos harness (run.ts)
 * K times and prints each run's report; exit code 1 if any checker found an
 * anomaly or could not decide. Each run's history.jsonl, report.txt,
 * report.json and timeline.svg go to DIR/run-<seed>/ (--out, default
 * chaos-runs/). `--check DIR` re-checks a kept run folder's history.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { readHistory } from './history.js'
import { checkMembership, MEMBERSHIP } from './membership.js'
import { checkFaultNames, FAULT_NAMES } from './nemesis.js'
import { formatReport, verdictWord } from './report.js'
import { runChaos } from './run.js'
import { WORKLOAD_NAMES, workloadsNamed } from './workloads/index.js'

const USAGE = `usage: npm run chaos -- [--minutes 1] [--runs 1] [--servers 3|5] [--observer] [--spare]
  [--workloads ${WORKLOAD_NAMES.join(',')}] [--faults ${FAULT_NAMES.join(',')}] [--majority] [--no-faults]
  [--clients 5] [--keys 5] [--seed N] [--reads sync|plain] [--target conclave|zookeeper] [--out chaos-runs]
       npm run chaos -- --check chaos-runs/run-N|history.jsonl [--workloads …]`

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '1' },
      runs: { type: 'string', default: '1' },
      servers: { type: 'string', default: '3' },
      observer: { type: 'boolean', default: false },
      spare: { type: 'boolean', default: false },
      clients: { type: 'string', default: '5' },
      keys: { type: 'string', default: '5' },
      workloads: { type: 'string' },
      faults: { type: 'string' },
      'no-faults': { type: 'boolean', default: false },
      majority: { type: 'boolean', default: false },
      seed: { type: 'string' },
      reads: { type: 'string', default: 'sync' },
      target: { type: 'string', default: 'conclave' },
      out: { type: 'string', default: 'chaos-runs' },
      check: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  const list = (text: string | undefined) => text?.split(',').filter((x) => x !== '')
  if (values.check !== undefined) {
    // A run folder, or a history file (a minimised one, say).
    const file = values.check.endsWith('.jsonl') ? values.check : join(values.check, 'history.jsonl')
    const { events } = readHistory(file)
    const present = new Set(events.map((e) => e.workload))
    let bad = 0
    const verdicts = workloadsNamed(
      list(values.workloads) ?? WORKLOAD_NAMES.filter((n) => present.has(n)),
    ).map((w) => w.check(events))
    if (present.has(MEMBERSHIP)) verdicts.push(checkMembership(events))
    for (const v of verdicts) {
      console.log(`${v.workload}: ${verdictWord(v.valid)} — ${v.summary}`)
      for (const p of v.problems) console.log(`  - ${p}`)
      if (v.valid !== true) bad++
    }
    return bad === 0 ? 0 : 1
  }
  const num = (name: string, text: string, min: number, max: number): number => {
    const n = Number(text)
    if (!Number.isFinite(n) || n < min || n > max)
      throw new Error(`--${name}: expected a number in [${min}, ${max}], got ${text}`)
    return n
  }
  const minutes = num('minutes', values.minutes, 0.1, 600)
  const runs = num('runs', values.runs, 1, 1000)
  const target = values.target
  if (target !== 'conclave' && target !== 'zookeeper')
    throw new Error(`--target: conclave or zookeeper, got ${target}`)
  const servers = num('servers', values.servers, 1, 7)
  if (target === 'conclave' && servers !== 3 && servers !== 5) throw new Error('--servers: 3 or 5')
  if (target === 'zookeeper' && servers !== 1 && servers !== 3)
    throw new Error('--servers: 1 or 3 for ZooKeeper')
  if (target === 'zookeeper' && values.observer) throw new Error('--observer: Conclave only')
  if (target === 'zookeeper' && values.spare) throw new Error('--spare: Conclave only')
  const clients = num('clients', values.clients, 1, 64)
  const keys = num('keys', values.keys, 1, 100)
  const workloads = list(values.workloads)
  workloadsNamed(workloads)
  if (values.reads !== 'sync' && values.reads !== 'plain')
    throw new Error(`--reads: sync or plain, got ${values.reads}`)
  const reads = values.reads
  const faults = values['no-faults'] ? [] : list(values.faults)
  checkFaultNames(faults, values.majority)
  let bad = 0
  for (let run = 0; run < runs; run++) {
    const seed =
      values.seed !== undefined ? num('seed', values.seed, 0, 2 ** 32) + run : (Date.now() + run) >>> 0
    const outDir = join(values.out, `run-${seed}`)
    const r = await runChaos({
      durationMs: minutes * 60_000,
      servers,
      observer: values.observer,
      spare: values.spare,
      clients,
      keys,
      faults,
      majority: values.majority,
      workloads,
      seed,
      reads,
      target,
      outDir,
      log: (line) => console.log(`[${seed}] ${line}`),
    })
    console.log(formatReport(r))
    console.log(`run ${run + 1}/${runs} seed ${seed}: ${verdictWord(r.valid)} (${outDir})`)
    if (r.valid !== true) bad++
  }
  console.log(`${runs - bad} passed, ${bad} failed`)
  return bad === 0 ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exit(2)
  },
)
