/**
 * `conclave cluster --size 3|5|7 [--observers N] [--tick-time MS]
 * [--allowed-origins A,B]`: a local ensemble on
 * 127.0.0.1, one child process per server (data under <data-dir>/node-N),
 * sharing a freshly generated ensemble secret. Ctrl-C (or SIGTERM) stops
 * every server cleanly; if one server dies the others keep running and the
 * death is reported.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, UsageError } from './args.js'

export interface ClusterMember {
  id: number
  clientPort: number
  peerPort: number
  observer: boolean
}

export function planCluster(
  size: number,
  observers: number,
  basePort: number,
  basePeerPort: number,
): ClusterMember[] {
  const out: ClusterMember[] = []
  for (let i = 1; i <= size + observers; i++)
    out.push({ id: i, clientPort: basePort + i - 1, peerPort: basePeerPort + i - 1, observer: i > size })
  return out
}

export function serversFlag(members: ClusterMember[]): string {
  return members
    .map((m) => `${m.id}=127.0.0.1:${m.peerPort}:${m.clientPort}${m.observer ? ':observer' : ''}`)
    .join(',')
}

/** Flags of `conclave cluster` handed on, as they are, to every server. */
const PASSED_TO_SERVERS = ['tick-time', 'allowed-origins'] as const

/** The `conclave server` arguments for one member of a local cluster. */
export function memberArgs(
  m: ClusterMember,
  members: ClusterMember[],
  dataDir: string,
  flags: ReadonlyMap<string, string | boolean>,
): string[] {
  const args = ['server', '--id', String(m.id), '--servers', serversFlag(members)]
  args.push('--port', String(m.clientPort), '--data-dir', join(dataDir, `node-${m.id}`))
  for (const f of PASSED_TO_SERVERS) if (flags.has(f)) args.push(`--${f}`, String(flags.get(f)))
  return args
}

export async function runCluster(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    size: true,
    observers: true,
    'base-port': true,
    'peer-port': true,
    'data-dir': true,
    'tick-time': true,
    'allowed-origins': true,
  })
  const size = Number(flags.get('size') ?? 3)
  const observers = Number(flags.get('observers') ?? 0)
  if (![1, 3, 5, 7].includes(size))
    throw new UsageError(`--size (got ${flags.get('size')}): expected 1, 3, 5 or 7`)
  if (!Number.isInteger(observers) || observers < 0 || observers > 5)
    throw new UsageError(`--observers (got ${flags.get('observers')}): expected 0 to 5`)
  const basePort = Number(flags.get('base-port') ?? 2181)
  const peerPort = Number(flags.get('peer-port') ?? 2888)
  const dataDir = String(flags.get('data-dir') ?? './data')
  const members = planCluster(size, observers, basePort, peerPort)
  const secret = process.env.CONCLAVE_SECRET ?? randomBytes(24).toString('base64url')
  const bin = fileURLToPath(new URL('../../../bin/conclave.js', import.meta.url))
  const children = new Map<number, ChildProcess>()
  for (const m of members) {
    const child = spawn(process.execPath, [bin, ...memberArgs(m, members, dataDir, flags)], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, CONCLAVE_SECRET: secret },
    })
    children.set(m.id, child)
  }
  const urls = members.map((m) => `ws://127.0.0.1:${m.clientPort}`).join(',')
  process.stderr.write(`conclave cluster: ${size} voters, ${observers} observers; connect with ${urls}\n`)
  return new Promise<number>((resolve) => {
    let stopping = false
    let alive = children.size
    for (const [id, child] of children) {
      child.on('exit', (code, signal) => {
        alive--
        if (!stopping) process.stderr.write(`conclave cluster: server ${id} exited (${signal ?? code})\n`)
        if (alive === 0) resolve(stopping ? 0 : 1)
      })
    }
    const stop = () => {
      if (stopping) return
      stopping = true
      for (const child of children.values()) if (child.exitCode === null) child.kill('SIGTERM')
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}
