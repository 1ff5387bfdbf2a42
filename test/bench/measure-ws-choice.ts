/**
 * Our WebSocket framing or the `ws` package's on the server (issue 15; the
 * decision is in docs/architecture.md's design notes): the same server run
 * with server/net/ws-connection.ts and with ws-package-connection.ts
 * swapped in (ws-package/register.mjs), alternating, and for each run the
 * server's own CPU time (user + system, /proc/<pid>/stat) per session
 * opened and closed (16 in flight) and per 1 KiB getData with 64 clients in
 * closed loops, and the rates. CPU per operation is what the framing costs
 * the server; it moves far less than the rates when other work shares the
 * machine.
 *
 *   node dist/test/bench/measure-ws-choice.js [--rounds 3] [--sessions 2000] [--reads 200000]
 *
 * Run by hand; imports nothing of server/.
 */
import { fileURLToPath } from 'node:url'
import { Client } from '../../client/index.js'
import { startConclave, stopAllConclave } from '../helpers/conclave.js'
import { cpuMs } from '../helpers/server-cost.js'

type Variant = 'ours' | 'ws'

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : Number(process.argv[i + 1])
}

const HOOK = fileURLToPath(new URL('../../../test/bench/ws-package/register.mjs', import.meta.url))

async function sessions(connect: string, n: number, inFlight = 16): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        next++
        const c = await Client.connect(connect, { connectTimeoutMs: 30_000 })
        await c.close()
      }
    }),
  )
}

async function reads(clients: Client[], n: number): Promise<void> {
  let done = 0
  await Promise.all(
    clients.map(async (c) => {
      while (done < n) {
        done++
        await c.getData('/r')
      }
    }),
  )
}

interface Run {
  variant: Variant
  sessionCpuUs: number
  sessionsPerS: number
  readCpuUs: number
  readsPerS: number
}

async function run(variant: Variant, sessionCount: number, readCount: number): Promise<Run> {
  const env: Record<string, string> = variant === 'ws' ? { NODE_OPTIONS: `--import=${HOOK}` } : {}
  const s = await startConclave({ env, extraArgs: ['--max-client-cnxns', '0'] })
  try {
    const pid = s.child.pid!
    await sessions(s.connectString, Math.ceil(sessionCount / 2))
    let cpu0 = cpuMs(pid)
    let t0 = performance.now()
    await sessions(s.connectString, sessionCount)
    const sessionCpuUs = ((cpuMs(pid) - cpu0) * 1000) / sessionCount
    const sessionsPerS = sessionCount / ((performance.now() - t0) / 1000)
    const clients = await Promise.all(
      Array.from({ length: 64 }, () => Client.connect(s.connectString, { connectTimeoutMs: 30_000 })),
    )
    await clients[0]!.create('/r', new Uint8Array(1024))
    await reads(clients, Math.ceil(readCount / 4))
    cpu0 = cpuMs(pid)
    t0 = performance.now()
    await reads(clients, readCount)
    const readCpuUs = ((cpuMs(pid) - cpu0) * 1000) / readCount
    const readsPerS = readCount / ((performance.now() - t0) / 1000)
    await Promise.all(clients.map((c) => c.close()))
    return { variant, sessionCpuUs, sessionsPerS, readCpuUs, readsPerS }
  } finally {
    await s.stop()
    s.remove()
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function main(): Promise<void> {
  const rounds = arg('rounds', 3)
  const sessionCount = arg('sessions', 2000)
  const readCount = arg('reads', 200_000)
  const runs: Run[] = []
  console.log(
    '| run | framing | server CPU per session open+close | sessions/s | server CPU per read (C=64) | reads/s |',
  )
  console.log('|---|---|---|---|---|---|')
  for (let i = 1; i <= rounds; i++) {
    // Alternating, and which goes first alternates too.
    const order: Variant[] = i % 2 === 1 ? ['ours', 'ws'] : ['ws', 'ours']
    for (const v of order) {
      const r = await run(v, sessionCount, readCount)
      runs.push(r)
      console.log(
        `| ${i} | ${v} | ${r.sessionCpuUs.toFixed(0)} µs | ${r.sessionsPerS.toFixed(0)} | ` +
          `${r.readCpuUs.toFixed(1)} µs | ${r.readsPerS.toFixed(0)} |`,
      )
    }
  }
  for (const v of ['ours', 'ws'] as const) {
    const mine = runs.filter((r) => r.variant === v)
    console.log(
      `| median | ${v} | ${median(mine.map((r) => r.sessionCpuUs)).toFixed(0)} µs | ` +
        `${median(mine.map((r) => r.sessionsPerS)).toFixed(0)} | ${median(mine.map((r) => r.readCpuUs)).toFixed(1)} µs | ` +
        `${median(mine.map((r) => r.readsPerS)).toFixed(0)} |`,
    )
  }
  await stopAllConclave()
}

await main()
