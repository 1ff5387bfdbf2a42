/**
 * `conclave cluster` as a process: it starts its servers (one line each,
 * with its pid), says when they all listen, serves the SDK; when a server is
 * killed it says so and whether a quorum is left, and the rest go on
 * serving; Ctrl-C at a terminal (SIGINT to the whole process group) or a
 * SIGTERM to the cluster process alone stops every server cleanly, exit 0,
 * and no process is left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Client, ZkError } from '../../client/index.js'
import { tempDir, waitFor } from '../helpers/wait.js'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'conclave.js')

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** `count` consecutive ports that were free a moment ago (client ports, then peer ports after them). */
async function freeRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000)
    let all = true
    for (let p = base; p < base + count && all; p++) all = await portFree(p)
    if (all) return base
  }
  throw new Error(`no ${count} consecutive free ports found`)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

interface Cluster {
  child: ChildProcess
  /** What the cluster said on stderr (its servers log to stdout). */
  said: () => string
  pids: Map<number, number>
  urls: string
  dataDir: string
  exited: Promise<number | null>
}

let running: Cluster | undefined
const dirs: { remove(): void }[] = []

afterEach(async () => {
  const c = running
  running = undefined
  if (c !== undefined) {
    for (const pid of c.pids.values()) if (alive(pid)) process.kill(pid, 'SIGKILL')
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL')
    await c.exited
  }
  for (const d of dirs.splice(0)) d.remove()
})

async function startCluster(): Promise<Cluster> {
  const dir = tempDir('conclave-cluster-')
  dirs.push(dir)
  const base = await freeRange(6)
  const args = ['cluster', '--size', '3', '--base-port', String(base), '--peer-port', String(base + 3)]
  args.push('--data-dir', dir.path, '--tick-time', '500', '--log-format', 'json')
  // Its own process group, as a shell gives a job: Ctrl-C at a terminal signals the group.
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let said = ''
  child.stdout!.resume()
  child.stderr!.on('data', (c: Buffer) => (said += c.toString()))
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)))
  const c: Cluster = { child, said: () => said, pids: new Map(), urls: '', dataDir: dir.path, exited }
  running = c
  const ready = await waitFor(() => /^conclave cluster: ready: (\S+)$/m.exec(said), {
    timeoutMs: 60_000,
    what: `the cluster's ready line in:\n${said}`,
  })
  c.urls = ready[1]!
  for (const m of said.matchAll(/^conclave cluster: server (\d+): pid (\d+), ws:\/\/127\.0\.0\.1:(\d+)/gm))
    c.pids.set(Number(m[1]), Number(m[2]))
  return c
}

/** A write that succeeds, retried while the ensemble recovers (a lost connection, a new leader). */
async function write(zk: Client, path: string): Promise<void> {
  await waitFor(
    async () => {
      try {
        await zk.create(path, 'x')
        return true
      } catch (err) {
        if (ZkError.is(err, 'NODE_EXISTS')) return true
        throw err
      }
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `create ${path}` },
  )
}

describe('conclave cluster (a process)', () => {
  it('serves, survives a killed server and says so, and Ctrl-C stops every server', async () => {
    const c = await startCluster()
    expect([...c.pids.keys()]).toEqual([1, 2, 3])
    expect(c.urls.split(',')).toHaveLength(3)
    const zk = await Client.connect(c.urls, { sessionTimeoutMs: 10_000, connectTimeoutMs: 20_000 })
    try {
      await write(zk, '/before')
      process.kill(c.pids.get(2)!, 'SIGKILL')
      await waitFor(
        () =>
          /server 2 exited \(SIGKILL\); 2 of 3 voters running: the ensemble keeps its quorum/.test(c.said()),
        {
          timeoutMs: 10_000,
          what: `the cluster to report server 2's death in:\n${c.said()}`,
        },
      )
      await write(zk, '/after')
      expect((await zk.getChildren('/')).filter((n) => n !== 'zookeeper').sort()).toEqual(['after', 'before'])
    } finally {
      await zk.close()
    }
    // Ctrl-C at a terminal: SIGINT to the cluster and its servers alike.
    process.kill(-c.child.pid!, 'SIGINT')
    expect(await c.exited).toBe(0)
    expect(c.said()).toMatch(/stopping 2 servers\n.*all servers stopped\n$/s)
    await waitFor(() => [...c.pids.values()].every((pid) => !alive(pid)), {
      timeoutMs: 5_000,
      what: 'no server process left',
    })
    for (const id of [1, 2, 3]) expect(existsSync(join(c.dataDir, `node-${id}`, 'conclave.db'))).toBe(true)
  })

  it('says when the quorum is lost; SIGTERM to the cluster process alone stops the rest', async () => {
    const c = await startCluster()
    process.kill(c.pids.get(1)!, 'SIGKILL')
    process.kill(c.pids.get(3)!, 'SIGKILL')
    await waitFor(() => /1 of 3 voters running: below quorum \(2\)/.test(c.said()), {
      timeoutMs: 10_000,
      what: `the cluster to report the lost quorum in:\n${c.said()}`,
    })
    expect(alive(c.child.pid!)).toBe(true)
    // Not the group: the cluster must pass the signal on itself.
    c.child.kill('SIGTERM')
    expect(await c.exited).toBe(0)
    expect(c.said()).toMatch(/stopping 1 servers\n.*all servers stopped\n$/s)
    await waitFor(() => !alive(c.pids.get(2)!), { timeoutMs: 5_000, what: 'server 2 to be gone' })
  })
})
