/**
 * Conclave servers for the bench: `node bin/conclave.js server …`,
 * standalone or a 3-node ensemble (`--id N --servers 1=127.0.0.1:P1:C1,…`
 * with one CONCLAVE_SECRET), each with its own data dir, on 127.0.0.1, no
 * connection limit. Like zookeeper-ensemble.ts it exposes pids, kill -9 and
 * restart of one member, and the output (the memory workload parses the
 * info-level JSON lines).
 *
 * Why not test/helpers/conclave.ts: it finds the repository from its own
 * location, which is one level off once compiled to dist/test/helpers/
 * (the bench runs from dist/), so it reports dist/ as missing.
 *
 * Invariants: every process is tracked by reaper.ts; every wait has a
 * deadline; output kept per process is bounded (OUTPUT_CHARS_MAX).
 * Bench-only: imports node:* freely, nothing of server/.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, tempDir, waitForPort } from '../helpers/wait.js'
import { alive, exited, trackChild, trackDir } from './reaper.js'

const READY_MS = 30_000
const OUTPUT_CHARS_MAX = 8 * 1024 * 1024

/** The repository root: the nearest directory above this file with bin/conclave.js. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'bin', 'conclave.js')) && existsSync(join(dir, 'package.json'))) return dir
    dir = dirname(dir)
  }
  throw new Error('cannot find the repository root (bin/conclave.js) above the bench')
}

export interface ConclaveMember {
  id: number
  clientPort: number
  readonly child: ChildProcess
  output(): string
}

export interface ConclaveCluster {
  members: ConclaveMember[]
  kill9(index: number): Promise<void>
  /** Starts a stopped member again with the same arguments and data. */
  restart(index: number): Promise<void>
  stop(): Promise<void>
}

export interface ConclaveStartOptions {
  size: 1 | 3
  tickTime: number
  snapCount?: number
  logLevel?: string
  /** node's --max-old-space-size: the tree's default limit (treeBytesMax) is half of it. */
  heapMb?: number
  /** How long a (re)started server may take to open its port: it recovers its tree first. Default READY_MS. */
  readyMs?: number
  /** --local-sessions on every member (upgrading on, its default). */
  localSessions?: boolean
}

interface Proc {
  args: string[]
  child: ChildProcess
  out: string
}

/** `npm run bench -- --cpu-prof DIR` profiles every Conclave server (node --cpu-prof) into DIR. */
export const CPU_PROF_ENV = 'CONCLAVE_BENCH_CPU_PROF'
/** Extra node flags for every Conclave server the bench starts, space-separated. */
export const NODE_ARGS_ENV = 'CONCLAVE_BENCH_NODE_ARGS'
/** A directory where each server's kept output is written when the cluster stops. */
export const OUTPUT_DIR_ENV = 'CONCLAVE_BENCH_OUTPUT_DIR'
const STOP_GRACE_MS = 15_000

function spawnServer(root: string, args: string[], secret: string, heapMb: number | undefined): Proc {
  const profDir = process.env[CPU_PROF_ENV]
  const nodeArgs = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []
  if (heapMb !== undefined) nodeArgs.push(`--max-old-space-size=${heapMb}`)
  // Diagnostics such as --trace-gc (NODE_OPTIONS refuses some flags).
  const extra = process.env[NODE_ARGS_ENV]
  if (extra) nodeArgs.push(...extra.split(' ').filter((a) => a !== ''))
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'bin', 'conclave.js'), 'server', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CONCLAVE_SECRET: secret },
  })
  const p: Proc = { args, child, out: '' }
  const keep = (c: Buffer) => {
    p.out += c.toString()
    if (p.out.length > OUTPUT_CHARS_MAX) p.out = p.out.slice(-OUTPUT_CHARS_MAX / 2)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return p
}

async function ready(p: Proc, port: number, timeoutMs: number): Promise<void> {
  const died = exited(p.child).then(() => {
    throw new Error(
      `server exited (${p.child.exitCode ?? p.child.signalCode}) before it was ready:\n${p.out.slice(-2000)}`,
    )
  })
  died.catch(() => {})
  await Promise.race([waitForPort(port, timeoutMs), died])
}

export async function startConclaveCluster(o: ConclaveStartOptions): Promise<ConclaveCluster> {
  const root = repoRoot()
  if (!existsSync(join(root, 'dist', 'server', 'cli', 'main.js')))
    throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first')
  const secret = randomBytes(16).toString('hex')
  const clientPorts: number[] = []
  const peerPorts: number[] = []
  for (let i = 0; i < o.size; i++) {
    clientPorts.push(await freePort())
    peerPorts.push(await freePort())
  }
  const servers = clientPorts.map((c, i) => `${i + 1}=127.0.0.1:${peerPorts[i]}:${c}`).join(',')
  const removers: (() => void)[] = []
  const procs: Proc[] = clientPorts.map((port, i) => {
    const dir = tempDir(`bench-conclave${i + 1}-`)
    removers.push(trackDir(dir.remove))
    const args = ['--port', String(port), '--data-dir', dir.path, '--tick-time', String(o.tickTime)]
    args.push('--max-client-cnxns', '0', '--log-level', o.logLevel ?? 'warn')
    if (o.snapCount !== undefined) args.push('--snap-count', String(o.snapCount))
    if (o.localSessions === true) args.push('--local-sessions')
    if (o.size > 1) args.push('--id', String(i + 1), '--servers', servers)
    return spawnServer(root, args, secret, o.heapMb)
  })
  const members = procs.map((_, i) => {
    const m: ConclaveMember = {
      id: i + 1,
      clientPort: clientPorts[i]!,
      get child() {
        return procs[i]!.child
      },
      output: () => procs[i]!.out,
    }
    trackChild(m)
    return m
  })
  const kill9 = async (i: number) => {
    const c = procs[i]!.child
    if (alive(c)) c.kill('SIGKILL')
    await exited(c)
  }
  /** A profiled server must exit by itself (SIGTERM) to write its profile; kill -9 after a grace period. */
  const term = async (i: number) => {
    const c = procs[i]!.child
    if (alive(c)) c.kill('SIGTERM')
    const t = setTimeout(() => alive(c) && c.kill('SIGKILL'), STOP_GRACE_MS)
    await exited(c)
    clearTimeout(t)
  }
  const stop = async () => {
    // Profilers (--cpu-prof, --heap-prof, …) write their output only on a clean exit.
    const graceful = Boolean(process.env[CPU_PROF_ENV] || process.env[NODE_ARGS_ENV])
    await Promise.all(procs.map((_, i) => (graceful ? term(i) : kill9(i))))
    const outDir = process.env[OUTPUT_DIR_ENV]
    if (outDir) {
      for (const p of procs) writeFileSync(join(outDir, `conclave-${p.child.pid}.log`), p.out)
    }
    for (const r of removers) r()
  }
  const restart = async (i: number) => {
    await kill9(i)
    procs[i] = spawnServer(root, procs[i]!.args, secret, o.heapMb)
    await ready(procs[i]!, clientPorts[i]!, o.readyMs ?? READY_MS)
  }
  try {
    await Promise.all(procs.map((p, i) => ready(p, clientPorts[i]!, o.readyMs ?? READY_MS)))
  } catch (err) {
    await stop()
    throw err
  }
  return { members, kill9, restart, stop }
}
