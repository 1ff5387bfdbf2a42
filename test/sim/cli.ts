/**
 * The simulator's command line: `node dist/test/sim/cli.js [--seed N]
 * [--seeds COUNT] [--mutation M] [--state-machine kv|tree] [--echo]
 * [--safety-ms MS] [--local-sessions]`. Seeds may be
 * decimal or 0x-hex. One seed replays exactly; a range prints one line per
 * failure and a summary. Exit code 1 if any seed failed.
 *
 * Invariants: no real time or randomness reaches the simulation; the wall
 * clock is read only to report how long the runs took.
 */
import { performance } from 'node:perf_hooks'
import { MUTATIONS } from './mutations.js'
import { faultCount, formatFailure, type Mutation, runSimulation } from './simulation.js'

interface Args {
  seed: number
  seeds: number
  mutation: Mutation
  echo: boolean
  safetyMs: number | undefined
  stateMachine: 'kv' | 'tree' | undefined
  /** Every server with localSessions on (not a swarm choice: the default runs stay as they were). */
  localSessions: boolean
}

function parseNumber(flag: string, v: string | undefined): number {
  const n = v === undefined ? Number.NaN : v.startsWith('0x') ? Number.parseInt(v.slice(2), 16) : Number(v)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer, got ${v}`)
  return n
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    seed: 1,
    seeds: 1,
    mutation: 'none',
    echo: false,
    safetyMs: undefined,
    stateMachine: undefined,
    localSessions: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    if (flag === '--seed') a.seed = parseNumber(flag, argv[++i])
    else if (flag === '--seeds') a.seeds = parseNumber(flag, argv[++i])
    else if (flag === '--safety-ms') a.safetyMs = parseNumber(flag, argv[++i])
    else if (flag === '--echo') a.echo = true
    else if (flag === '--local-sessions') a.localSessions = true
    else if (flag === '--mutation') {
      const v = argv[++i]
      if (v !== 'none' && !(v !== undefined && Object.hasOwn(MUTATIONS, v)))
        throw new Error(`--mutation needs none or one of ${Object.keys(MUTATIONS).join(', ')}; got ${v}`)
      a.mutation = v as Mutation
    } else if (flag === '--state-machine') {
      const v = argv[++i]
      if (v !== 'kv' && v !== 'tree') throw new Error(`--state-machine needs kv or tree, got ${v}`)
      a.stateMachine = v
    } else throw new Error(`unknown flag ${flag}`)
  }
  return a
}

function main(): number {
  const args = parseArgs(process.argv.slice(2))
  const started = performance.now()
  let failed = 0
  let faults = 0
  let events = 0
  const totals: Record<string, number> = {}
  for (let seed = args.seed; seed < args.seed + args.seeds; seed++) {
    const r = runSimulation({
      seed,
      mutation: args.mutation,
      echo: args.echo,
      safetyMs: args.safetyMs,
      stateMachine: args.stateMachine,
      ...(args.localSessions ? { localSessions: true } : {}),
    })
    faults += faultCount(r.stats)
    events += r.stats.events
    for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v
    if (!r.ok) {
      failed++
      console.log(formatFailure(r))
    } else if (args.seeds === 1) {
      console.log(`seed ${seed} ok: ${JSON.stringify(r.stats)}`)
      console.log(`swarm: ${JSON.stringify(r.swarm)}`)
    }
  }
  const ms = Math.round(performance.now() - started)
  console.log(`${args.seeds} seeds, ${failed} failed, ${faults} faults, ${events} events, ${ms} ms`)
  if (args.seeds > 1) console.log(`totals: ${JSON.stringify(totals)}`)
  return failed > 0 ? 1 : 0
}

process.exitCode = main()
