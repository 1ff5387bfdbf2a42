/**
 * CPU per session opened and closed (issue 21): a standalone server and
 * this process's SDK open and close sessions, 16 in flight (the bench's
 * session row), and the run prints the server's CPU (user + system,
 * /proc/<pid>/stat) and this process's CPU (process.cpuUsage) per session,
 * and the rate. CPU per session moves far less than the rate when other
 * work shares the machine.
 *
 *   node dist/test/bench/measure-session-cost.js [--root DIR] [--transport ws|tcp]
 *        [--sessions 3000]
 *
 * `--root` runs another checkout's built server AND SDK (its dist/), so one
 * script measures both sides of an A/B run: alternate roots, take medians.
 * For profiles: `npm run bench -- --only session --cpu-prof DIR` (the server)
 * and `node --cpu-prof` on this script (the SDK).
 * Prints one JSON line. Run by hand; imports nothing of server/.
 */
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : (process.argv[i + 1] ?? fallback)
}

interface ClientLike {
  close(): Promise<void>
}
interface ClientModule {
  Client: { connect(cs: string, opts: Record<string, unknown>): Promise<ClientLike> }
}
interface ConclaveModule {
  startConclave(opts: { extraArgs?: string[] }): Promise<{
    port: number
    child: { pid?: number }
    stop(): Promise<unknown>
    remove(): void
  }>
}
interface CostModule {
  cpuMs(pid: number): number
}

const IN_FLIGHT = 16

async function sessions(Client: ClientModule['Client'], url: string, n: number): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) {
        next++
        const c = await Client.connect(url, { sessionTimeoutMs: 20_000, connectTimeoutMs: 10_000 })
        await c.close()
      }
    }),
  )
}

async function main(): Promise<void> {
  const here = fileURLToPath(new URL('../../..', import.meta.url))
  const root = resolve(arg('root', here))
  const transport = arg('transport', 'ws')
  const n = Number(arg('sessions', '3000'))
  const load = <T>(p: string) => import(pathToFileURL(resolve(root, 'dist', p)).href) as Promise<T>
  const { Client } = await load<ClientModule>('client/index.js')
  const { startConclave } = await load<ConclaveModule>('test/helpers/conclave.js')
  const { cpuMs } = await load<CostModule>('test/helpers/server-cost.js')
  const s = await startConclave({ extraArgs: ['--max-client-cnxns', '0'] })
  try {
    const pid = s.child.pid!
    const url = `${transport}://127.0.0.1:${s.port}`
    await sessions(Client, url, Math.ceil(n / 2))
    const srv0 = cpuMs(pid)
    const cli0 = process.cpuUsage()
    const t0 = performance.now()
    await sessions(Client, url, n)
    const wallS = (performance.now() - t0) / 1000
    const cli = process.cpuUsage(cli0)
    const srvUs = ((cpuMs(pid) - srv0) * 1000) / n
    const cliUs = (cli.user + cli.system) / n
    console.log(
      JSON.stringify({
        root,
        transport,
        sessions: n,
        perS: Math.round(n / wallS),
        serverUs: Math.round(srvUs),
        clientUs: Math.round(cliUs),
      }),
    )
  } finally {
    await s.stop()
    s.remove()
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
