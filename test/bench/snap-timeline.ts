/**
 * The phases of a follower's SNAP restart (the resync workload's second
 * round, issue 21), from the servers' logs a bench run kept:
 *
 *   CONCLAVE_BENCH_OUTPUT_DIR=D node dist/test/bench/cli.js --only resync --deploy ensemble
 *   node dist/test/bench/snap-timeline.js D [D2 …]
 *
 * For each directory: the restarted follower's own recovery (znodes, ms),
 * when it started looking for the leader, the leader's 'snapshot sent' (ms,
 * event-loop and GC maxima), the follower's 'snapshot installed' (the install
 * after SNAPEND, the whole stream, how often it paused the leader), when it
 * followed; and every server's own snapshot ('snapshot taken') and purge in
 * that span, which compete with the SNAP for the machine. Times are seconds
 * from the follower's start (its 'recovered' time less its ms).
 *
 * Bench-only, run by hand: imports node:* freely, nothing of server/.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

interface LogLine {
  file: string
  time: number
  msg: string
  server?: number
  [field: string]: unknown
}

/** Messages that mark a phase, or compete with the SNAP. */
const SHOWN = new Set([
  'recovered',
  'conclave server ready',
  'role',
  'sending a snapshot (SNAP)',
  'snapshot sent',
  'snapshot installed (SNAP)',
  'snapshot taken',
  'storage purge finished',
])
/** Fields printed when a line has them. */
const FIELDS = ['role', 'nodes', 'ms', 'totalMs', 'pauses', 'slices', 'loopMaxMs', 'gcMaxMs', 'bytes']

function readLogs(dir: string): LogLine[] {
  const lines: LogLine[] = []
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.log')))
    for (const text of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (!text.startsWith('{')) continue
      try {
        lines.push({ ...(JSON.parse(text) as LogLine), file })
      } catch {
        // A line cut when the output was bounded: not a phase.
      }
    }
  return lines.sort((a, b) => a.time - b.time)
}

function timeline(dir: string): string[] {
  const lines = readLogs(dir)
  const installed = lines.find((l) => l.msg === 'snapshot installed (SNAP)')
  if (installed === undefined) return [`${dir}: no SNAP installed in these logs`]
  const follower = installed.file
  const recovered = lines.find((l) => l.file === follower && l.msg === 'recovered')
  if (recovered === undefined) return [`${dir}: the follower's log has no 'recovered' line`]
  const start = recovered.time - Number(recovered.ms)
  const end =
    lines.find(
      (l) => l.file === follower && l.msg === 'role' && l.role === 'following' && l.time >= installed.time,
    )?.time ?? installed.time
  const out = [`== ${dir}: follower ${follower}`]
  for (const l of lines) {
    if (l.time < start || l.time > end || !SHOWN.has(l.msg)) continue
    const fields = FIELDS.filter((f) => l[f] !== undefined).map((f) =>
      f === 'bytes' ? `MB=${Math.round(Number(l.bytes) / 2 ** 20)}` : `${f}=${String(l[f])}`,
    )
    out.push(
      `${((l.time - start) / 1000).toFixed(1).padStart(7)}s  s${l.server ?? '?'}  ${l.msg}  ${fields.join(' ')}`,
    )
  }
  out.push(`start -> following: ${((end - start) / 1000).toFixed(1)} s`)
  return out
}

const dirs = process.argv.slice(2)
if (dirs.length === 0) {
  console.error(
    'usage: node dist/test/bench/snap-timeline.js DIR [DIR …] (CONCLAVE_BENCH_OUTPUT_DIR of a resync run)',
  )
  process.exit(2)
}
for (const dir of dirs) console.log(timeline(dir).join('\n'))
