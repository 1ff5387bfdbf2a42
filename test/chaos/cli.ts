/**
 * `npm run chaos -- [--minutes N] [--runs K] [--servers 3|5] [--clients C]
 * [--keys K] [--faults kill,pause,partition] [--seed S] [--out DIR]`: runs
 * the Jepsen-style chaos harness (run.ts) K times and prints each run's
 * report; exit code 1 if any history is not linearizable (or could not be
 * decided). Histories and reports go to DIR/run-<seed>/ when --out is given.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { type Fault, runChaos } from './run.js'

const FAULTS: readonly Fault[] = ['kill', 'pause', 'partition']

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '1' },
      runs: { type: 'string', default: '1' },
      servers: { type: 'string', default: '3' },
      clients: { type: 'string', default: '5' },
      keys: { type: 'string', default: '3' },
      faults: { type: 'string', default: FAULTS.join(',') },
      seed: { type: 'string' },
      reads: { type: 'string', default: 'sync' },
      target: { type: 'string', default: 'conclave' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) {
    console.log(
      'usage: npm run chaos -- [--minutes 1] [--runs 1] [--servers 3|5] [--clients 5] [--keys 3] [--faults kill,pause,partition] [--seed N] [--reads sync|plain] [--target conclave|zookeeper] [--out DIR]',
    )
    return 0
  }
  const num = (name: string, text: string, min: number, max: number): number => {
    const n = Number(text)
    if (!Number.isFinite(n) || n < min || n > max)
      throw new Error(`--${name}: expected a number in [${min}, ${max}], got ${text}`)
    return n
  }
  const minutes = num('minutes', values.minutes, 0.1, 600)
  const runs = num('runs', values.runs, 1, 1000)
  const servers = num('servers', values.servers, 1, 7)
  const clients = num('clients', values.clients, 1, 64)
  const keys = num('keys', values.keys, 1, 100)
  const faults = values.faults.split(',').filter((f) => f !== '') as Fault[]
  for (const f of faults)
    if (!FAULTS.includes(f)) throw new Error(`--faults: unknown fault ${f} (kill, pause, partition)`)
  if (values.reads !== 'sync' && values.reads !== 'plain')
    throw new Error(`--reads: sync or plain, got ${values.reads}`)
  const reads = values.reads
  if (values.target !== 'conclave' && values.target !== 'zookeeper')
    throw new Error(`--target: conclave or zookeeper, got ${values.target}`)
  const target = values.target
  let bad = 0
  for (let run = 0; run < runs; run++) {
    const seed =
      values.seed !== undefined ? num('seed', values.seed, 0, 2 ** 32) + run : (Date.now() + run) >>> 0
    const r = await runChaos({
      durationMs: minutes * 60_000,
      servers,
      clients,
      keys,
      faults,
      seed,
      reads,
      target,
      ...(values.out !== undefined ? { outDir: join(values.out, `run-${seed}`) } : {}),
      log: (line) => console.log(`[${seed}] ${line}`),
    })
    const verdict = r.anomalies.length > 0 ? 'ANOMALY' : r.unknown.length > 0 ? 'UNKNOWN' : 'ok'
    console.log(
      `run ${run + 1}/${runs} ${target} seed ${seed}: ${verdict} — ${r.operations} ops (${r.ok} ok, ${r.failed} failed, ${r.indeterminate} indeterminate), faults ${JSON.stringify(r.faults)}, ${r.checkSteps} check steps`,
    )
    for (const a of r.anomalies) console.log(`anomaly on ${a.key}:\n${a.detail}`)
    if (verdict !== 'ok') bad++
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
