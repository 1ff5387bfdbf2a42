/**
 * A client process for the lock workload: contends for one Lock
 * (recipes/lock.ts) again and again, and while it holds it asks the harness
 * to make protected writes with its fencing token — one line on stdout
 * each, which the harness checks against its FencedResource when it reads
 * it (as a store would when the write arrives). Being a process of its own,
 * the harness can SIGSTOP it past its session's expiry: it wakes believing
 * it still holds the lock, and its late writes must be fenced off.
 *
 *   node dist/test/chaos/lock-holder.js <connectString> <lockPath> <sessionTimeoutMs>
 *
 * Lines: acquiring · acquired T · acquire-failed CODE · write T VALUE ·
 * lost T · releasing T · released T · release-failed CODE.
 */
import { Client } from '../../client/index.js'
import { Lock } from '../../recipes/lock.js'

const say = (line: string) => process.stdout.write(`${line}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const code = (err: unknown) => (err as { code?: string }).code ?? (err as Error).name

async function main(): Promise<void> {
  const [connectString, path, timeout] = process.argv.slice(2)
  if (connectString === undefined || path === undefined || timeout === undefined)
    throw new Error('usage: lock-holder <connectString> <lockPath> <sessionTimeoutMs>')
  let zk = await Client.connect(connectString, {
    sessionTimeoutMs: Number(timeout),
    connectTimeoutMs: 15_000,
  })
  let n = 0
  for (;;) {
    if (zk.state === 'expired' || zk.state === 'closed') {
      await zk.close().catch(() => {})
      zk = await zk.newSession({ connectTimeoutMs: 15_000 }).catch(async () => {
        await sleep(200)
        return zk
      })
      continue
    }
    const lock = new Lock(zk, path)
    say('acquiring')
    let grant: Awaited<ReturnType<Lock['acquire']>>
    try {
      grant = await lock.acquire({ timeoutMs: 3000 })
    } catch (err) {
      say(`acquire-failed ${code(err)}`)
      await sleep(100)
      continue
    }
    const token = grant.fencingToken
    say(`acquired ${token}`)
    grant.signal.addEventListener('abort', () => say(`lost ${token}`), { once: true })
    for (let i = 0; i < 4 && !grant.signal.aborted; i++) {
      say(`write ${token} p${process.pid}-${n++}`)
      await sleep(20 + Math.floor(Math.random() * 60))
    }
    say(`releasing ${token}`)
    try {
      await lock.release()
      say(`released ${token}`)
    } catch (err) {
      say(`release-failed ${code(err)}`)
    }
    await sleep(Math.floor(Math.random() * 50))
  }
}

main().catch((err: unknown) => {
  say(`error ${code(err)}: ${(err as Error).message}`)
  process.exit(1)
})
