/**
 * Deployments under test: Conclave or Apache ZooKeeper, standalone or a
 * 3-node ensemble on 127.0.0.1, behind one interface (endpoints per member,
 * pids, kill -9 and restart of a member, stop); four-letter words (srvr,
 * mntr); and the process measurements: CPU from /proc/PID/stat utime+stime
 * deltas, RSS from /proc/PID/status, heap from mntr (Conclave) or jstat
 * (ZooKeeper's JVM).
 *
 * Invariants: every process started here is tracked by reaper.ts; an
 * ensemble is returned only once it has exactly one leader and every other
 * member follows it, else start fails (with the reason) within its deadline.
 * Bench-only: imports node:* freely, nothing of server/.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { performance } from 'node:perf_hooks'
import { waitFor } from '../helpers/wait.js'
import { type ConclaveCluster, startConclaveCluster } from './conclave-cluster.js'
import { startZooKeeperCluster, type ZkCluster } from './zookeeper-ensemble.js'

export type TargetName = 'conclave' | 'zookeeper'
export type DeployKind = 'standalone' | 'ensemble'
export type Transport = 'ws' | 'tcp'

export const QUORUM_MS = 30_000

export interface DeployOptions {
  target: TargetName
  kind: DeployKind
  tickTime: number
  /** Conclave only: ZooKeeper is always spoken to over tcp://. */
  transport: Transport
  snapCount?: number
  /** Conclave: passes --log-level (the memory workload parses info lines). */
  logLevel?: string
  /** ZooKeeper: the JVM's -Xmx; Conclave: node's --max-old-space-size. */
  heapMb?: number
  /** Conclave: how long a (re)started server may take to recover and open its port. */
  readyMs?: number
  /** Local sessions: Conclave's --local-sessions; ZooKeeper's localSessionsEnabled (+ upgrading). */
  localSessions?: boolean
}

export interface Deployment {
  target: TargetName
  kind: DeployKind
  size: number
  scheme: Transport
  clientPort(i: number): number
  pid(i: number): number | undefined
  /** One member's connect string. */
  endpoint(i: number): string
  /** Every member, for a client that should fail over. */
  connectString(): string
  kill9(i: number): Promise<void>
  restart(i: number): Promise<void>
  /** What the member's process printed (Conclave: stdout and stderr; ZooKeeper: the tail). */
  output(i: number): string
  stop(): Promise<void>
}

export async function startDeployment(o: DeployOptions): Promise<Deployment> {
  const dep = o.target === 'conclave' ? await startConclaveDeployment(o) : await startZkDeployment(o)
  try {
    if (dep.size > 1) await waitQuorum(dep, QUORUM_MS)
    // ZooKeeper opens its port before it serves; a session attempt in between is dropped.
    else await waitFor(() => modeOf(dep.clientPort(0)), { timeoutMs: QUORUM_MS, what: 'a serving server' })
  } catch (err) {
    await dep.stop()
    throw err
  }
  return dep
}

function liveOrUndefined(pid: number | undefined, exitCode: number | null, signal: string | null) {
  return exitCode === null && signal === null ? pid : undefined
}

async function startConclaveDeployment(o: DeployOptions): Promise<Deployment> {
  const c: ConclaveCluster = await startConclaveCluster({
    size: o.kind === 'ensemble' ? 3 : 1,
    tickTime: o.tickTime,
    ...(o.snapCount === undefined ? {} : { snapCount: o.snapCount }),
    ...(o.logLevel === undefined ? {} : { logLevel: o.logLevel }),
    ...(o.heapMb === undefined ? {} : { heapMb: o.heapMb }),
    ...(o.readyMs === undefined ? {} : { readyMs: o.readyMs }),
    ...(o.localSessions === undefined ? {} : { localSessions: o.localSessions }),
  })
  const port = (i: number) => c.members[i]!.clientPort
  return {
    target: 'conclave',
    kind: o.kind,
    size: c.members.length,
    scheme: o.transport,
    clientPort: port,
    pid: (i) => {
      const ch = c.members[i]!.child
      return liveOrUndefined(ch.pid, ch.exitCode, ch.signalCode)
    },
    endpoint: (i) => `${o.transport}://127.0.0.1:${port(i)}`,
    connectString: () => c.members.map((m) => `${o.transport}://127.0.0.1:${m.clientPort}`).join(','),
    kill9: (i) => c.kill9(i),
    restart: (i) => c.restart(i),
    output: (i) => c.members[i]!.output(),
    stop: () => c.stop(),
  }
}

async function startZkDeployment(o: DeployOptions): Promise<Deployment> {
  const zk: ZkCluster = await startZooKeeperCluster({
    size: o.kind === 'ensemble' ? 3 : 1,
    tickTime: o.tickTime,
    ...(o.snapCount === undefined ? {} : { snapCount: o.snapCount }),
    ...(o.heapMb === undefined ? {} : { heapMb: o.heapMb }),
    ...(o.localSessions === undefined ? {} : { localSessions: o.localSessions }),
  })
  const port = (i: number) => zk.members[i]!.clientPort
  return {
    target: 'zookeeper',
    kind: o.kind,
    size: zk.members.length,
    scheme: 'tcp',
    clientPort: port,
    pid: (i) => {
      const c = zk.members[i]!.child
      return liveOrUndefined(c.pid, c.exitCode, c.signalCode)
    },
    endpoint: (i) => `tcp://127.0.0.1:${port(i)}`,
    connectString: () => zk.members.map((m) => `tcp://127.0.0.1:${m.clientPort}`).join(','),
    kill9: (i) => zk.kill9(i),
    restart: (i) => zk.restart(i),
    output: (i) => zk.members[i]!.output(),
    stop: () => zk.stop(),
  }
}

// ------------------------------------------------------------ four-letter words

/** Sends a four-letter word to a client port; resolves with the reply (or what arrived before the deadline). */
export function fourLetter(port: number, word: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const s = connect(port, '127.0.0.1', () => s.write(word))
    const done = () => {
      clearTimeout(timer)
      s.destroy()
      resolve(Buffer.concat(chunks).toString())
    }
    const timer = setTimeout(done, timeoutMs)
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('close', done)
    s.on('error', done)
  })
}

/** `mntr` as a map (both servers answer `key<TAB>value` lines). */
export async function mntr(port: number): Promise<Map<string, string>> {
  const text = await fourLetter(port, 'mntr')
  const m = new Map<string, string>()
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t')
    if (tab > 0) m.set(line.slice(0, tab), line.slice(tab + 1).trim())
  }
  return m
}

/** 'leader' | 'follower' | 'standalone' | … from `srvr`, or undefined when not serving. */
export async function modeOf(port: number): Promise<string | undefined> {
  const text = await fourLetter(port, 'srvr', 1000)
  return /^Mode: (\S+)/m.exec(text)?.[1]
}

export async function modes(dep: Deployment): Promise<(string | undefined)[]> {
  return Promise.all(
    Array.from({ length: dep.size }, (_, i) =>
      dep.pid(i) === undefined ? Promise.resolve(undefined) : modeOf(dep.clientPort(i)),
    ),
  )
}

/** Resolves once every member runs, exactly one leads and the others follow it. */
export async function waitQuorum(dep: Deployment, timeoutMs: number): Promise<void> {
  let last: (string | undefined)[] = []
  try {
    await waitFor(
      async () => {
        last = await modes(dep)
        const leaders = last.filter((m) => m === 'leader').length
        return leaders === 1 && last.every((m) => m === 'leader' || m === 'follower')
      },
      { timeoutMs, intervalMs: 100, what: `a ${dep.target} quorum` },
    )
  } catch {
    const logs = Array.from(
      { length: dep.size },
      (_, i) => `--- server ${i + 1}\n${dep.output(i).slice(-3000)}`,
    )
    const shown = last.map((m, i) => (dep.pid(i) === undefined ? 'exited' : (m ?? 'not serving')))
    throw new Error(`no quorum within ${timeoutMs} ms (modes: ${shown.join(', ')})\n${logs.join('\n')}`)
  }
}

export async function leaderIndex(dep: Deployment): Promise<number | undefined> {
  const i = (await modes(dep)).indexOf('leader')
  return i < 0 ? undefined : i
}

// ------------------------------------------------------------ process measurements

const CLK_TCK = 100

/** utime + stime of a process, in seconds; undefined once it is gone. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK
  } catch {
    return undefined
  }
}

export function rssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

export interface CpuReport {
  /** Per member, percent of one core over the window (NaN if it died meanwhile). */
  servers: number[]
  client: number
}

/** Starts a CPU window over every member and this process; call the result to close it. */
export function startCpu(dep: Deployment): () => CpuReport {
  const t0 = performance.now()
  const pids = Array.from({ length: dep.size }, (_, i) => dep.pid(i))
  const before = pids.map(cpuSeconds)
  const client0 = process.cpuUsage()
  return () => {
    const wall = (performance.now() - t0) / 1000
    const after = pids.map(cpuSeconds)
    const c = process.cpuUsage(client0)
    return {
      servers: after.map((a, i) => {
        const b = before[i]
        return a === undefined || b === undefined || wall <= 0 ? Number.NaN : ((a - b) / wall) * 100
      }),
      client: wall > 0 ? ((c.user + c.system) / 1e6 / wall) * 100 : Number.NaN,
    }
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  )
}

/** Heap in use: Conclave's mntr conclave_heap_used_bytes; ZooKeeper's jstat -gc (S0U+S1U+EU+OU). */
export async function heapUsedBytes(dep: Deployment, i: number): Promise<number | undefined> {
  if (dep.target === 'conclave') {
    const v = (await mntr(dep.clientPort(i))).get('conclave_heap_used_bytes')
    return v === undefined ? undefined : Number(v)
  }
  const pid = dep.pid(i)
  if (pid === undefined) return undefined
  try {
    const out = await run('jstat', ['-gc', String(pid)], 15_000)
    const [head, values] = out.trim().split('\n')
    const names = head?.trim().split(/\s+/) ?? []
    const nums = values?.trim().split(/\s+/).map(Number) ?? []
    const kb = ['S0U', 'S1U', 'EU', 'OU'].reduce((sum, k) => sum + (nums[names.indexOf(k)] ?? 0), 0)
    return kb * 1024
  } catch {
    return undefined
  }
}
