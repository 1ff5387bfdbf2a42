/**
 * `conclave cluster`: a local ensemble on 127.0.0.1 for development and
 * tests, one `conclave server` child process per member (data under
 * <data-dir>/node-N), sharing CONCLAVE_SECRET or a freshly generated secret.
 *
 * What it promises a person at the terminal: a line per server (its id, pid
 * and address), a `ready` line once every client port accepts connections, a
 * line when a server dies saying whether the ensemble still has a quorum (the
 * others keep running), and on Ctrl-C or SIGTERM every server stopped
 * cleanly (a second signal kills them) and none left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Socket } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type CommandSpec, formatHelp, parseCommandArgs, UsageError } from './args.js'

export const CLUSTER_COMMAND: CommandSpec = {
  name: 'cluster',
  usage: '[options]',
  summary:
    'A local ensemble on 127.0.0.1: one `conclave server` process per member, data in\n' +
    '<data-dir>/node-N, sharing CONCLAVE_SECRET if it is set, else a fresh random secret.\n' +
    'Ctrl-C (or SIGTERM) stops every server cleanly; a second one kills them. A server\n' +
    'that dies is reported, with whether a quorum is left; the others keep running.',
  options: {
    size: { value: 'N', default: '3', help: 'voters: 1, 3, 5 or 7' },
    observers: { value: 'N', default: '0', help: 'observers: 0 to 5' },
    'base-port': { value: 'PORT', default: '2181', help: 'client port of server 1 (server N: + N - 1)' },
    'peer-port': { value: 'PORT', default: '2888', help: 'peer port of server 1 (server N: + N - 1)' },
    'data-dir': { value: 'DIR', default: './data', help: 'where the node-N directories go' },
    'tick-time': { value: 'MS', default: '2000', help: 'handed on to every server' },
    'allowed-origins': { value: 'LIST', default: 'none', help: 'handed on to every server' },
    'log-level': { value: 'LEVEL', default: 'info', help: 'handed on to every server' },
    'log-format': {
      value: 'FORMAT',
      default: 'auto',
      help: 'handed on to every server (json, pretty, auto)',
    },
  },
  footer: '`npm run cluster` is `conclave cluster --size 3`.',
}

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
const PASSED_TO_SERVERS = ['tick-time', 'allowed-origins', 'log-level', 'log-format'] as const

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

/** An integer flag within [min, max]; a UsageError naming the flag otherwise. */
function intFlag(
  flags: ReadonlyMap<string, string | true>,
  name: string,
  dflt: number,
  allowed: number[] | [number, number],
) {
  const text = flags.get(name)
  const v = text === undefined ? dflt : /^\d+$/.test(String(text)) ? Number(text) : Number.NaN
  const ok = allowed.length === 2 ? v >= allowed[0]! && v <= allowed[1]! : allowed.includes(v)
  if (!ok) {
    const want = allowed.length === 2 ? `an integer from ${allowed[0]} to ${allowed[1]}` : allowed.join(', ')
    throw new UsageError(`--${name} (got ${JSON.stringify(text)}): expected ${want}`)
  }
  return v
}

export interface ClusterPlan {
  size: number
  members: ClusterMember[]
  dataDir: string
  flags: ReadonlyMap<string, string | true>
}

/** argv → the members to start; UsageError for a bad flag. Undefined for --help. */
export function parseClusterArgs(argv: string[]): ClusterPlan | undefined {
  const { flags, help } = parseCommandArgs(argv, CLUSTER_COMMAND)
  if (help) return undefined
  const size = intFlag(flags, 'size', 3, [1, 3, 5, 7])
  const observers = intFlag(flags, 'observers', 0, [0, 5])
  const n = size + observers
  const basePort = intFlag(flags, 'base-port', 2181, [1, 65536 - n])
  const peerPort = intFlag(flags, 'peer-port', 2888, [1, 65536 - n])
  if (Math.abs(basePort - peerPort) < n)
    throw new UsageError(
      `--base-port ${basePort} and --peer-port ${peerPort}: their ranges of ${n} ports overlap`,
    )
  const dataDir = String(flags.get('data-dir') ?? './data')
  return { size, members: planCluster(size, observers, basePort, peerPort), dataDir, flags }
}

export async function runCluster(argv: string[]): Promise<number> {
  const plan = parseClusterArgs(argv)
  if (plan === undefined) {
    process.stdout.write(formatHelp(CLUSTER_COMMAND))
    return 0
  }
  const { members, size } = plan
  const secret = process.env.CONCLAVE_SECRET ?? randomBytes(24).toString('base64url')
  const bin = fileURLToPath(new URL('../../../bin/conclave.js', import.meta.url))
  const say = (text: string) => process.stderr.write(`conclave cluster: ${text}\n`)
  const children = new Map<number, ChildProcess>()
  for (const m of members) {
    const child = spawn(process.execPath, [bin, ...memberArgs(m, members, plan.dataDir, plan.flags)], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, CONCLAVE_SECRET: secret },
    })
    children.set(m.id, child)
    say(
      `server ${m.id}${m.observer ? ' (observer)' : ''}: pid ${child.pid}, ws://127.0.0.1:${m.clientPort}, ` +
        `peer port ${m.peerPort}, data ${join(plan.dataDir, `node-${m.id}`)}`,
    )
  }
  const urls = members.map((m) => `ws://127.0.0.1:${m.clientPort}`).join(',')
  say(`${size} voters, ${members.length - size} observers; connect with ${urls}`)
  return supervise({ members, size, children, urls, say })
}

interface Supervised {
  members: ClusterMember[]
  size: number
  children: Map<number, ChildProcess>
  urls: string
  say: (text: string) => void
}

/** Waits for the servers; reports readiness and deaths; stops them all on a signal. */
function supervise({ members, size, children, urls, say }: Supervised): Promise<number> {
  const quorum = Math.floor(size / 2) + 1
  const running = new Set(children.keys())
  let stopping = false
  let cleanStop = true
  const readiness = waitUntilListening(members, () => stopping || running.size < children.size)
  readiness.then((ready) => {
    if (ready) say(`ready: ${urls}`)
  })
  return new Promise<number>((resolve) => {
    let killTimer: NodeJS.Timeout | undefined
    for (const [id, child] of children) {
      child.on('exit', (code, signal) => {
        running.delete(id)
        if (stopping) cleanStop &&= code === 0
        else {
          const voters = members.filter((m) => !m.observer && running.has(m.id)).length
          const verdict =
            voters >= quorum
              ? `the ensemble keeps its quorum (${quorum}) and goes on serving`
              : `below quorum (${quorum}): no leader, no writes until a voter is back`
          say(
            `server ${id} exited (${signal ?? `code ${code}`}); ${voters} of ${size} voters running: ${verdict}`,
          )
        }
        if (running.size > 0) return
        clearTimeout(killTimer)
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        if (stopping) say(cleanStop ? 'all servers stopped' : 'all servers stopped, not all cleanly')
        else say('every server has exited')
        resolve(stopping && cleanStop ? 0 : 1)
      })
    }
    function stop() {
      if (stopping) {
        say('second signal: killing the servers')
        for (const id of running) children.get(id)!.kill('SIGKILL')
        cleanStop = false
        return
      }
      stopping = true
      say(`stopping ${running.size} servers`)
      for (const id of running) children.get(id)!.kill('SIGTERM')
      // A server that does not stop within 20 s is killed: none is left behind.
      killTimer = setTimeout(() => {
        for (const id of running) children.get(id)!.kill('SIGKILL')
        cleanStop = false
      }, 20_000)
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}

/** Resolves true once every client port accepts a connection; false if `abandon` says so or after 60 s. */
async function waitUntilListening(members: ClusterMember[], abandon: () => boolean): Promise<boolean> {
  const pending = new Set(members.map((m) => m.clientPort))
  const deadline = Date.now() + 60_000
  while (pending.size > 0) {
    if (abandon() || Date.now() > deadline) return false
    for (const port of [...pending]) if (await accepts(port)) pending.delete(port)
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 100))
  }
  return !abandon()
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket()
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
    s.connect(port, '127.0.0.1')
  })
}
