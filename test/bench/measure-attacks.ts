/**
 * Measures what each hostile client costs a real server (the attacks of
 * test/helpers/attacks.ts and session-attacks.ts): a fresh server per attack,
 * its memory after a full GC before the attack and at its peak (the attack's
 * connections still open), its CPU time over the attack, what the attacker
 * was told, and whether a well-behaved session was served meanwhile (its
 * answers and its slowest one). Prints a Markdown table (docs/security.md).
 *
 *   node dist/test/bench/measure-attacks.js [--only id,id] [--config '{"key":value}'] [--size N] [--close-wait-ms N]
 *
 * Run by hand; not part of npm test. Imports nothing of server/.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Attack, outcome, TRANSPORT_ATTACKS } from '../helpers/attacks.js'
import { stopAllConclave } from '../helpers/conclave.js'
import { Bystander, settle } from '../helpers/hostile.js'
import { type Cost, costDelta, mib, startMeasured } from '../helpers/server-cost.js'
import { SESSION_ATTACKS } from '../helpers/session-attacks.js'
import { tempDir, waitFor } from '../helpers/wait.js'

/** Each attack's scale: bytes sent, or connections for the idle ones. */
const SIZES: Record<string, number> = {
  idle: 1000,
  'upgraded-idle': 1000,
  'tcp-partial': 1000,
  'slow-head': 8000,
  'empty-continuations': 16 * 2 ** 20,
  'one-byte-fragments': 7 * 2 ** 20,
  'pings-no-read': 64 * 2 ** 20,
  'ws-trickle': 64 * 1024,
  'tcp-trickle': 64 * 1024,
  'request-flood': 200_000,
  'replies-no-read': 1_000_000,
  'many-watches': 100_000,
  'deep-path': 2048,
  'big-acl': 18_000,
  'addauth-flood': 20_000,
  'big-setwatches': 65_000,
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? undefined : process.argv[i + 1]
}

interface Row {
  id: string
  title: string
  sent: number
  buffered: number
  peak: Cost
  cpuMs: number
  saw: string
  bystander: string
}

async function measure(attack: Attack, size: number, config: Record<string, unknown>, closeWaitMs: number) {
  const dir = tempDir('conclave-attack-')
  const cfg = join(dir.path, 'conclave.json')
  writeFileSync(cfg, JSON.stringify({ maxClientCnxns: 0, ...config }))
  const m = await startMeasured({ extraArgs: ['--config', cfg] })
  try {
    const pid = m.server.child.pid!
    const step = (what: string) => process.stderr.write(`${attack.id}: ${what}\n`)
    const bystander = await Bystander.start(m.server.port)
    await settle(pid)
    const before = await m.cost()
    step('attacking')
    const run = await attack.run(m.server.port, size)
    step('settling')
    await settle(pid)
    const peak = costDelta(before, await m.cost())
    step('waiting for closes')
    // Deadlines and limits close connections in their own time: give them closeWaitMs.
    await waitFor(() => run.sockets.every((s) => s.closed), { timeoutMs: closeWaitMs }).catch(() => {})
    const saw = outcome(run)
    step('stopping the bystander')
    const b = await bystander.stop()
    for (const s of run.sockets) s.destroy()
    const row: Row = {
      id: attack.id,
      title: attack.title,
      sent: run.sent,
      buffered: run.buffered,
      peak,
      cpuMs: peak.cpuMs,
      saw,
      bystander: `${b.served} served, ${b.failed} failed, slowest ${b.maxMs} ms`,
    }
    return row
  } finally {
    await m.server.stop()
    m.remove()
    dir.remove()
  }
}

async function main(): Promise<void> {
  const only = arg('only')?.split(',')
  const config = JSON.parse(arg('config') ?? '{}') as Record<string, unknown>
  const closeWaitMs = Number(arg('close-wait-ms') ?? 15_000)
  const attacks = [...TRANSPORT_ATTACKS, ...SESSION_ATTACKS].filter((a) => !only || only.includes(a.id))
  console.log(
    '| attack | sent | buffered | heap at peak | outside heap at peak | RSS at peak | CPU | client saw | bystander |',
  )
  console.log('|---|---|---|---|---|---|---|---|---|')
  for (const a of attacks) {
    const size = Number(arg('size') ?? SIZES[a.id] ?? 0)
    try {
      const r = await measure(a, size, config, closeWaitMs)
      console.log(
        `| ${r.id}: ${r.title} | ${mib(r.sent)} | ${mib(r.buffered)} | ${mib(r.peak.heapBytes)} | ` +
          `${mib(r.peak.externalBytes)} | ${mib(r.peak.rssBytes)} | ${r.cpuMs} ms | ${r.saw} | ${r.bystander} |`,
      )
    } catch (err) {
      console.log(`| ${a.id} | failed: ${(err as Error).message.split('\n')[0]} |`)
    }
  }
  await stopAllConclave()
}

await main()
