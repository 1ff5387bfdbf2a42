/**
 * A well-behaved client in a process of its own (test/helpers/hostile.ts,
 * Bystander): connects to argv[2] over the SDK, asks `exists /` every
 * argv[3] ms, and on a line on stdin (or its closing) prints one JSON line:
 * answers, failures and the slowest answer in ms. Its own process, so an
 * attacker busy in the test's process cannot delay it.
 */
import { performance } from 'node:perf_hooks'
import { Client } from '../../client/index.js'

async function main(): Promise<void> {
  const connectString = process.argv[2]!
  const everyMs = Number(process.argv[3] ?? 50)
  const client = await Client.connect(connectString, { connectTimeoutMs: 10_000 })
  let served = 0
  let failed = 0
  let maxMs = 0
  let running = true
  const stop = () => {
    running = false
  }
  process.stdin.on('data', stop)
  process.stdin.on('end', stop)
  process.stdout.write('ready\n')
  while (running) {
    const t0 = performance.now()
    try {
      await client.exists('/')
      served++
    } catch {
      failed++
    }
    maxMs = Math.max(maxMs, performance.now() - t0)
    await new Promise((r) => setTimeout(r, everyMs))
  }
  await client.close().catch(() => {})
  process.stdout.write(`${JSON.stringify({ served, failed, maxMs: Math.round(maxMs) })}\n`)
  process.exit(0)
}

main().catch((err) => {
  process.stdout.write(`error ${(err as Error).message}\n`)
  process.exit(1)
})
