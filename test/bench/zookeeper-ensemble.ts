/**
 * Apache ZooKeeper (Debian's `zookeeper` package, 3.8) for the bench:
 * standalone (ZooKeeperServerMain) or a 3-node ensemble (QuorumPeerMain with
 * `server.N=127.0.0.1:peer:election` lines and a myid file per server), each
 * server with its own data dir, on 127.0.0.1 only, fsync on (ZooKeeper's
 * default forceSync=yes), the same tickTime as Conclave and no connection
 * limit. Unlike test/helpers/zookeeper.ts it exposes each JVM's pid (CPU and
 * RSS sampling), kill -9 and restart of one member, and snapCount.
 *
 * Invariants: every JVM is tracked by reaper.ts and SIGKILLed on exit; every
 * wait has a deadline. Bench-only: imports node:* freely, nothing of server/.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, tempDir, waitForPort } from '../helpers/wait.js'
import { zookeeperAvailable } from '../helpers/zookeeper.js'
import { alive, exited, trackChild, trackDir } from './reaper.js'

export { zookeeperAvailable }

const JAR = '/usr/share/java/zookeeper.jar'
const READY_MS = 30_000

export interface ZkMember {
  id: number
  clientPort: number
  dataDir: string
  readonly child: ChildProcess
  /** The last few KiB the JVM wrote to stdout/stderr (for error messages). */
  output(): string
}

export interface ZkCluster {
  members: ZkMember[]
  kill9(index: number): Promise<void>
  /** Starts a stopped member again with the same config and data. */
  restart(index: number): Promise<void>
  stop(): Promise<void>
}

export interface ZkStartOptions {
  size: 1 | 3
  tickTime: number
  /** ZooKeeper's snapCount: a snapshot after a random count of txns in [snapCount/2, snapCount). */
  snapCount?: number
  heapMb?: number
  /**
   * localSessionsEnabled and localSessionsUpgradingEnabled in zoo.cfg. Only
   * QuorumPeerMain reads them: ZooKeeperServerMain (standalone) builds its
   * ServerConfig from a few keys and ignores these, so a standalone server
   * still logs a createSession and a closeSession per session.
   */
  localSessions?: boolean
}

interface Spec {
  id: number
  clientPort: number
  peerPort: number
  electionPort: number
  dir: string
}

function writeConfig(spec: Spec, all: Spec[], opts: ZkStartOptions): string {
  const dataDir = join(spec.dir, 'data')
  mkdirSync(dataDir, { recursive: true })
  const lines = [
    `tickTime=${opts.tickTime}`,
    'initLimit=10',
    'syncLimit=5',
    `dataDir=${dataDir}`,
    `clientPort=${spec.clientPort}`,
    'clientPortAddress=127.0.0.1',
    'admin.enableServer=false',
    '4lw.commands.whitelist=*',
    'maxClientCnxns=0',
    'forceSync=yes',
  ]
  if (opts.localSessions === true)
    lines.push('localSessionsEnabled=true', 'localSessionsUpgradingEnabled=true')
  if (all.length > 1) {
    writeFileSync(join(dataDir, 'myid'), `${spec.id}\n`)
    for (const s of all) lines.push(`server.${s.id}=127.0.0.1:${s.peerPort}:${s.electionPort}`)
  }
  const cfg = join(spec.dir, 'zoo.cfg')
  writeFileSync(cfg, `${lines.join('\n')}\n`)
  return cfg
}

/**
 * A full run's create cases leave ~10^6 znodes of 1 KiB behind; with 1 GiB
 * ZooKeeper thrashed in GC and refused sessions for every later case. 3 GiB
 * is in line with what each Conclave (Node) process may grow to by default.
 */
const HEAP_MB_DEFAULT = 3072

function spawnJvm(
  cfg: string,
  opts: ZkStartOptions,
  ensemble: boolean,
): { child: ChildProcess; out: string[] } {
  const args = [
    `-Xmx${opts.heapMb ?? HEAP_MB_DEFAULT}m`,
    '-Dzookeeper.admin.enableServer=false',
    '-Djute.maxbuffer=1200000',
    ...(opts.snapCount === undefined ? [] : [`-Dzookeeper.snapCount=${opts.snapCount}`]),
    '-cp',
    `/etc/zookeeper/conf:${JAR}`,
    ensemble
      ? 'org.apache.zookeeper.server.quorum.QuorumPeerMain'
      : 'org.apache.zookeeper.server.ZooKeeperServerMain',
    cfg,
  ]
  const child = spawn('/usr/bin/java', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const out: string[] = []
  const keep = (c: Buffer) => {
    out.push(c.toString())
    if (out.length > 64) out.shift()
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return { child, out }
}

/** Starts ZooKeeper and resolves once every client port accepts connections (not yet a quorum). */
export async function startZooKeeperCluster(opts: ZkStartOptions): Promise<ZkCluster> {
  if (!zookeeperAvailable()) throw new Error(`Apache ZooKeeper is not installed (${JAR})`)
  const specs: Spec[] = []
  const removers: (() => void)[] = []
  for (let id = 1; id <= opts.size; id++) {
    const dir = tempDir(`bench-zk${id}-`)
    removers.push(trackDir(dir.remove))
    specs.push({
      id,
      clientPort: await freePort(),
      peerPort: await freePort(),
      electionPort: await freePort(),
      dir: dir.path,
    })
  }
  const procs = specs.map((s) => {
    const cfg = writeConfig(s, specs, opts)
    const p = { cfg, ...spawnJvm(cfg, opts, opts.size > 1) }
    return p
  })
  const members: ZkMember[] = specs.map((s, i) => {
    const m: ZkMember = {
      id: s.id,
      clientPort: s.clientPort,
      dataDir: join(s.dir, 'data'),
      get child() {
        return procs[i]!.child
      },
      output: () => procs[i]!.out.join('').slice(-4000),
    }
    trackChild(m)
    return m
  })
  const kill9 = async (i: number) => {
    const c = procs[i]!.child
    if (alive(c)) c.kill('SIGKILL')
    await exited(c)
  }
  const stop = async () => {
    await Promise.all(procs.map((_, i) => kill9(i)))
    for (const r of removers) r()
  }
  const restart = async (i: number) => {
    await kill9(i)
    const p = procs[i]!
    Object.assign(p, spawnJvm(p.cfg, opts, opts.size > 1))
    await waitForPort(specs[i]!.clientPort, READY_MS)
  }
  try {
    await Promise.all(specs.map((s) => waitForPort(s.clientPort, READY_MS)))
  } catch (err) {
    const tail = members.map((m) => m.output()).join('\n')
    await stop()
    throw new Error(`ZooKeeper did not open its client ports: ${String(err)}\n${tail}`)
  }
  return { members, kill9, restart, stop }
}
