/**
 * A client process for the ephemerals workload: connects, creates one
 * ephemeral znode, prints `created <sessionId>` and then holds its session
 * until the harness kills it (-9: the session then expires on the servers
 * after its timeout). Prints `expired` if the session expires while it
 * still runs (the nemesis cut it off long enough).
 *
 *   node dist/test/chaos/ephemeral-holder.js <connectString> <path> <sessionTimeoutMs>
 */
import { Client, CreateMode } from '../../client/index.js'

async function main(): Promise<void> {
  const [connectString, path, timeout] = process.argv.slice(2)
  if (connectString === undefined || path === undefined || timeout === undefined)
    throw new Error('usage: ephemeral-holder <connectString> <path> <sessionTimeoutMs>')
  const zk = await Client.connect(connectString, {
    sessionTimeoutMs: Number(timeout),
    connectTimeoutMs: 15_000,
  })
  zk.on('state', (s) => {
    if (s === 'expired') process.stdout.write('expired\n')
  })
  await zk.create(path, '', { mode: CreateMode.ephemeral })
  process.stdout.write(`created ${zk.sessionId}\n`)
  setInterval(() => {}, 60_000)
}

main().catch((err: unknown) => {
  process.stdout.write(`error ${(err as { code?: string }).code ?? (err as Error).message}\n`)
  process.exit(1)
})
