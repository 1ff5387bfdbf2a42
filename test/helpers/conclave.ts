/**
 * Starts real Conclave server processes (node bin/conclave.js server …) on
 * free 127.0.0.1 ports, each with its own data dir; stop (SIGTERM), kill -9
 * and restart them. Every process is reaped by stop()/stopAll(), including
 * after a failed test. Needs dist/ (npm test compiles first).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, tempDir, waitForPort } from './wait.js'

/** The repository root: the nearest ancestor with bin/conclave.js (works from source and from dist/). */
function findRoot(): string {
  let dir = fileURLToPath(new URL('.', import.meta.url))
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'bin', 'conclave.js'))) return dir
    dir = join(dir, '..')
  }
  throw new Error('cannot find the repository root (bin/conclave.js)')
}

const ROOT = findRoot()
/** bin/conclave.js, the `conclave` command. */
export const BIN = join(ROOT, 'bin', 'conclave.js')

export interface ConclaveProcess {
  port: number
  dataDir: string
  connectString: string
  /** Everything the process wrote to stdout and stderr. */
  output(): string
  readonly child: ChildProcess
  stop(): Promise<number | null>
  kill9(): Promise<void>
  restart(): Promise<void>
  remove(): void
}

const running = new Set<ChildProcess>()

export interface StartOptions {
  tickTime?: number
  extraArgs?: string[]
  dataDir?: string
  port?: number
  env?: Record<string, string>
}

function spawnServer(
  port: number,
  dataDir: string,
  opts: StartOptions,
): { child: ChildProcess; out: string[] } {
  if (!existsSync(join(ROOT, 'dist', 'server', 'cli', 'main.js')))
    throw new Error(
      'dist/ is missing: run `npx tsc -p tsconfig.json` (npm test does it) before the integration tests',
    )
  const args = [BIN, 'server', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn']
  if (opts.tickTime !== undefined) args.push('--tick-time', String(opts.tickTime))
  args.push(...(opts.extraArgs ?? []))
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  })
  const out: string[] = []
  child.stdout?.on('data', (c: Buffer) => out.push(c.toString()))
  child.stderr?.on('data', (c: Buffer) => out.push(c.toString()))
  running.add(child)
  child.once('exit', () => running.delete(child))
  return { child, out }
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((r) => child.once('exit', (code) => r(code)))
}

export async function startConclave(opts: StartOptions = {}): Promise<ConclaveProcess> {
  const dir = opts.dataDir === undefined ? tempDir('conclave-data-') : undefined
  const dataDir = opts.dataDir ?? dir!.path
  const port = opts.port ?? (await freePort())
  let proc = spawnServer(port, dataDir, opts)
  const ready = async () => {
    const died = exited(proc.child).then((code) => {
      throw new Error(`server exited (${code}) before it was ready:\n${proc.out.join('')}`)
    })
    await Promise.race([waitForPort(port, 30_000), died])
    died.catch(() => {})
  }
  await ready()
  const handle: ConclaveProcess = {
    port,
    dataDir,
    connectString: `ws://127.0.0.1:${port}`,
    output: () => proc.out.join(''),
    get child() {
      return proc.child
    },
    async stop() {
      const child = proc.child
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      const code = await exited(child)
      clearTimeout(timer)
      return code
    },
    async kill9() {
      proc.child.kill('SIGKILL')
      await exited(proc.child)
    },
    async restart() {
      await handle.stop()
      proc = spawnServer(port, dataDir, opts)
      await ready()
    },
    remove() {
      dir?.remove()
    },
  }
  return handle
}

/** Kills every server process this module started (for afterAll hooks). */
export async function stopAllConclave(): Promise<void> {
  const all = [...running]
  for (const c of all) c.kill('SIGKILL')
  await Promise.all(all.map(exited))
}
