/**
 * Apache Curator, unmodified (Debian's libcurator-framework-java,
 * libcurator-recipes-java and libcurator-discovery-java with
 * libzookeeper-java), against a 3-server Conclave ensemble over Curator's
 * normal connection string (host:port,host:port,host:port), and the same
 * program against a 3-server Apache ZooKeeper as the oracle: mutex and
 * semaphore under contention, LeaderLatch and LeaderSelector with the
 * leader's server killed, CuratorCache across a reconnect,
 * DistributedQueue, SharedCount, PersistentNode across a lost session and
 * ServiceDiscovery (test/compat/curator/CuratorCheck.java, compiled here
 * with javac against the packaged jars).
 *
 * The program prints `CMD kill <port>` / `CMD start <port>` when a check needs
 * a server gone or back, and this driver answers `OK` once it is done.
 *
 * Without Java or Curator the tests are skipped with the reason printed;
 * under CI=true they fail instead, naming the apt package (.ci/run installs
 * them).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { basename } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { startZooKeeperCluster, type ZkCluster } from '../bench/zookeeper-ensemble.js'
import { stopAllConclave } from '../helpers/conclave.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { canRun, skipped, zookeeperMissing } from '../helpers/prerequisites.js'
import { tempDir, waitFor } from '../helpers/wait.js'

const SOURCE = fileURLToPath(new URL('../compat/curator/CuratorCheck.java', import.meta.url))
const JAVA = '/usr/bin/java'
const JAVAC = '/usr/bin/javac'

/**
 * The jars, found with `dpkg -L <package>`: Curator and ZooKeeper's client
 * (required), and what they load (guava, slf4j, jackson for discovery's JSON,
 * netty, metrics, snappy: the ZooKeeper jar's own dependencies).
 */
const PACKAGES: { pkg: string; jars: string[]; required: boolean }[] = [
  { pkg: 'libcurator-framework-java', jars: ['curator-framework.jar'], required: true },
  { pkg: 'libcurator-recipes-java', jars: ['curator-recipes.jar'], required: true },
  { pkg: 'libcurator-discovery-java', jars: ['curator-x-discovery.jar'], required: true },
  { pkg: 'libcurator-client-java', jars: ['curator-client.jar'], required: true },
  { pkg: 'libzookeeper-java', jars: ['zookeeper.jar', 'zookeeper-jute.jar'], required: true },
  { pkg: 'libguava-java', jars: ['guava.jar'], required: true },
  { pkg: 'libslf4j-java', jars: ['slf4j-api.jar', 'slf4j-simple.jar'], required: true },
  { pkg: 'libjackson2-databind-java', jars: ['jackson-databind.jar'], required: true },
  { pkg: 'libjackson2-core-java', jars: ['jackson-core.jar'], required: true },
  { pkg: 'libjackson2-annotations-java', jars: ['jackson-annotations.jar'], required: true },
  {
    pkg: 'libnetty-java',
    jars: [
      'netty-buffer.jar',
      'netty-codec.jar',
      'netty-common.jar',
      'netty-handler.jar',
      'netty-resolver.jar',
      'netty-transport.jar',
      'netty-transport-native-epoll.jar',
      'netty-transport-native-unix-common.jar',
    ],
    required: false,
  },
  { pkg: 'libdropwizard-metrics-java', jars: ['metrics-core.jar'], required: false },
  { pkg: 'libsnappy-java', jars: ['snappy-java.jar'], required: false },
  { pkg: 'libcommons-lang3-java', jars: ['commons-lang3.jar'], required: false },
]

/** The classpath, or why there is none (naming the apt package to install). */
function findClasspath(): { classpath: string[] } | { missing: string } {
  if (!existsSync(JAVA) || !existsSync(JAVAC))
    return { missing: `no Java compiler (${JAVAC}): apt-get install openjdk-17-jdk-headless` }
  const classpath: string[] = []
  for (const { pkg, jars, required } of PACKAGES) {
    const r = spawnSync('dpkg', ['-L', pkg], { encoding: 'utf8', timeout: 10_000 })
    const files = r.status === 0 ? r.stdout.split('\n') : []
    for (const jar of jars) {
      const path = files.find((f) => f.startsWith('/usr/share/java/') && basename(f) === jar)
      if (path !== undefined && existsSync(path)) classpath.push(path)
      else if (required) return { missing: `${jar} not found (dpkg -L ${pkg}): apt-get install ${pkg}` }
    }
  }
  return { classpath }
}

const found = findClasspath()
const MISSING = 'missing' in found ? found.missing : undefined
const CI = process.env.CI === 'true'
if (MISSING !== undefined && !CI) skipped('Apache Curator recipes (curator.test.ts)', MISSING)

/** Check name -> 'PASS' | 'FAIL', and every line the program printed. */
interface Run {
  status: Map<string, 'PASS' | 'FAIL'>
  lines: string[]
  code: number | null
  stderr: string
  ms: number
}

interface Servers {
  kill(port: number): Promise<void>
  start(port: number): Promise<void>
}

const children = new Set<ChildProcess>()

/** Runs CuratorCheck against `connect`, answering its CMD lines through `servers`; bounded by timeoutMs. */
async function runCuratorCheck(
  classDir: string,
  classpath: string[],
  connect: string,
  servers: Servers,
  timeoutMs: number,
): Promise<Run> {
  const started = Date.now()
  const child = spawn(
    JAVA,
    [
      '-Xmx256m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-cp',
      [classDir, ...classpath].join(':'),
      'CuratorCheck',
      connect,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  )
  children.add(child)
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-20_000)
  })
  const lines: string[] = []
  const status = new Map<string, 'PASS' | 'FAIL'>()
  const rl = createInterface({ input: child.stdout! })
  rl.on('line', (line) => {
    lines.push(line)
    console.log(`[curator ${connect.split(',')[0]}] ${line}`)
    const m = /^(PASS|FAIL) ([a-z-]+):/.exec(line)
    if (m) status.set(m[2]!, m[1] as 'PASS' | 'FAIL')
    const cmd = /^CMD (kill|start) (\d+)$/.exec(line)
    if (cmd) {
      const port = Number(cmd[2])
      const act = cmd[1] === 'kill' ? servers.kill(port) : servers.start(port)
      act.then(
        () => child.stdin?.write('OK\n'),
        (err: unknown) => child.stdin?.write(`ERR ${String(err).replaceAll('\n', ' ')}\n`),
      )
    }
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  clearTimeout(timer)
  children.delete(child)
  if (code !== 0) console.log(`[curator] exit ${code}; stderr tail:\n${stderr.slice(-6000)}`)
  return { status, lines, code, stderr, ms: Date.now() - started }
}

async function serving(port: number): Promise<void> {
  await waitFor(
    async () =>
      /Mode: (leader|follower|standalone)/.test(await fourLetterWord('127.0.0.1', port, 'srvr', 1000)),
    { timeoutMs: 30_000, intervalMs: 50, what: `the server on port ${port} to serve` },
  )
}

let ensemble: Ensemble | undefined
let zk: ZkCluster | undefined
let classes: { path: string; remove(): void } | undefined
const runs: { conclave?: Run; zookeeper?: Run } = {}

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL')
  await ensemble?.stop()
  await zk?.stop()
  await stopAllConclave()
  classes?.remove()
})

/** The program gives up by itself after 120 s (TOTAL_MS); this is the backstop. */
const RUN_MS = 130_000

describe.runIf(MISSING === undefined || CI)('Apache Curator recipes (Debian libcurator-*-java)', () => {
  it('compiles CuratorCheck.java against the packaged jars', () => {
    if ('missing' in found) throw new Error(`Curator cannot run under CI: ${found.missing}`)
    classes = tempDir('curator-check-')
    const r = spawnSync(
      JAVAC,
      ['-Xlint:-path', '-d', classes.path, '-cp', found.classpath.join(':'), SOURCE],
      { encoding: 'utf8', timeout: 60_000 },
    )
    expect(r.status, `${r.stdout}${r.stderr}${r.error ?? ''}`).toBe(0)
  })

  it(
    'passes every check against a 3-server Conclave ensemble',
    async () => {
      if (classes === undefined || 'missing' in found) throw new Error('CuratorCheck did not compile')
      ensemble = await startEnsemble({ size: 3, extraArgs: ['--max-session-timeout', '20000'] })
      const e = ensemble
      const byPort = (port: number) => {
        const m = e.members.find((x) => x.clientPort === port)
        if (m === undefined) throw new Error(`no Conclave member has client port ${port}`)
        return m
      }
      const servers: Servers = {
        kill: (port) => e.kill9(byPort(port).id),
        start: async (port) => {
          await e.start(byPort(port).id)
          await serving(port)
        },
      }
      const connect = e.members.map((m) => `127.0.0.1:${m.clientPort}`).join(',')
      const run = await runCuratorCheck(classes.path, found.classpath, connect, servers, RUN_MS)
      runs.conclave = run
      await e.stop()
      ensemble = undefined
      console.log(`[curator] Conclave run: ${run.ms} ms`)
      expect(
        run.lines.filter((l) => l.startsWith('FAIL')),
        run.stderr.slice(-3000),
      ).toEqual([])
      expect(run.code).toBe(0)
      expect(run.status.size).toBe(9)
    },
    RUN_MS + 60_000,
  )

  it.runIf(canRun('Curator against Apache ZooKeeper, the oracle (curator.test.ts)', zookeeperMissing()))(
    'passes the same checks against a 3-server Apache ZooKeeper (the oracle)',
    async () => {
      if (classes === undefined || 'missing' in found) throw new Error('CuratorCheck did not compile')
      zk = await startZooKeeperCluster({ size: 3, tickTime: 2000, heapMb: 256 })
      const z = zk
      for (const m of z.members) await serving(m.clientPort)
      const index = (port: number) => {
        const i = z.members.findIndex((m) => m.clientPort === port)
        if (i < 0) throw new Error(`no ZooKeeper member has client port ${port}`)
        return i
      }
      const servers: Servers = {
        kill: (port) => z.kill9(index(port)),
        start: async (port) => {
          await z.restart(index(port))
          await serving(port)
        },
      }
      const connect = z.members.map((m) => `127.0.0.1:${m.clientPort}`).join(',')
      const run = await runCuratorCheck(classes.path, found.classpath, connect, servers, RUN_MS)
      runs.zookeeper = run
      await z.stop()
      zk = undefined
      console.log(`[curator] ZooKeeper run: ${run.ms} ms`)
      expect(
        run.lines.filter((l) => l.startsWith('FAIL')),
        run.stderr.slice(-3000),
      ).toEqual([])
      expect(run.code).toBe(0)
      expect(run.status.size).toBe(9)
    },
    RUN_MS + 60_000,
  )

  it('gives Conclave and ZooKeeper the same outcome, check by check', (ctx) => {
    if (runs.conclave === undefined || runs.zookeeper === undefined) {
      ctx.skip()
      return
    }
    expect(Object.fromEntries(runs.conclave.status)).toEqual(Object.fromEntries(runs.zookeeper.status))
  })
})
