/**
 * kazoo's own test suite, unmodified (Debian's python3-kazoo ships it as
 * kazoo/tests), against a 3-server Conclave ensemble: test/compat/kazoo/run.sh
 * runs kazoo's harness with conclave_cluster.py in place of its ZooKeeper
 * cluster, over the modules client, connection, lock, election, barrier,
 * counter, queue, party, partitioner, cache, watchers, lease, paths, retry
 * and security (267 tests, about 90 s on 2 cores). Everything must pass but
 * the failures listed, with their reasons, in test/compat/kazoo/known-failures.txt
 * (today only ZooKeeper's, in read-only mode); one of those passing fails too, so
 * the list stays true. The same suite on Apache ZooKeeper 3.8.0 (the
 * oracle): `test/compat/kazoo/run.sh --zookeeper` (266 passed, 1 known).
 *
 * Bounded: run.sh kills pytest after 420 s, and this test stops run.sh's
 * whole process group (run.sh, pytest, the servers) at 480 s. Without python3-kazoo, python3-pytest or
 * python3-objgraph it is skipped with the reason printed; under CI=true it
 * fails instead (.ci/run installs them).
 */
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { skipped } from '../helpers/prerequisites.js'

const RUN = fileURLToPath(new URL('../compat/kazoo/run.sh', import.meta.url))
const DEADLINE_MS = 480_000
const CI = process.env.CI === 'true'
const MISSING =
  spawnSync('/usr/bin/python3', ['-c', 'import kazoo.testing, pytest, objgraph'], { stdio: 'ignore' })
    .status === 0
    ? undefined
    : 'python3-kazoo, python3-pytest or python3-objgraph is not installed for /usr/bin/python3 (apt-get install python3-kazoo python3-pytest python3-objgraph; .ci/run does)'
if (MISSING !== undefined && !CI) skipped("kazoo's test suite (kazoo-suite.test.ts)", MISSING)

interface Run {
  status: number | null
  output: string
  ms: number
}

/** run.sh in its own process group, killed as a group at the deadline. */
function runSuite(): Promise<Run> {
  const started = Date.now()
  const child = spawn(RUN, [], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const out: string[] = []
  child.stdout.on('data', (c: Buffer) => out.push(c.toString()))
  child.stderr.on('data', (c: Buffer) => out.push(c.toString()))
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal)
    } catch {
      // Already gone.
    }
  }
  let hard: NodeJS.Timeout | undefined
  const timer = setTimeout(() => {
    out.push(`\n[kazoo-suite] stopped after ${DEADLINE_MS} ms\n`)
    // SIGTERM lets run.sh remove its directory; SIGKILL if anything is left.
    killGroup('SIGTERM')
    hard = setTimeout(() => killGroup('SIGKILL'), 15_000)
  }, DEADLINE_MS)
  return new Promise((resolve) => {
    child.once('exit', (status) => {
      clearTimeout(timer)
      if (hard !== undefined) {
        clearTimeout(hard)
        killGroup('SIGKILL')
      }
      resolve({ status, output: out.join(''), ms: Date.now() - started })
    })
  })
}

describe.runIf(MISSING === undefined || CI)("kazoo's test suite (Debian python3-kazoo)", () => {
  it(
    'passes against a 3-server Conclave ensemble, but for the known failures',
    async () => {
      if (MISSING !== undefined) throw new Error(`kazoo's suite cannot run under CI: ${MISSING}`)
      const run = await runSuite()
      const counts = /^kazoo-suite: target=conclave (.*)$/m.exec(run.output)?.[1]
      console.log(`[kazoo] ${counts ?? 'no counts'} in ${Math.round(run.ms / 1000)} s`)
      const tail = run.output.slice(-8000)
      expect(counts, tail).toBeDefined()
      const n: Record<string, number> = {}
      for (const kv of counts!.split(' ')) {
        const [k, v] = kv.split('=')
        n[k!] = Number(v)
      }
      expect(n, tail).toMatchObject({ failed: 0, error: 0, xpassed: 0, skipped: 0, exit: 0 })
      expect(n.passed, tail).toBeGreaterThanOrEqual(263)
      expect(run.status, tail).toBe(0)
    },
    DEADLINE_MS + 30_000,
  )
})
