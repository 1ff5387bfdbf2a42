/**
 * A Jepsen-style run: a real Conclave ensemble (server processes on
 * 127.0.0.1), several SDK clients running a register workload on a few
 * znodes, and a nemesis that kills (-9) and restarts members, freezes them
 * (SIGSTOP/SIGCONT: a paused leader wakes up deposed) and cuts a member off
 * from its peers — one fault at a time, never a majority. Every operation's
 * invocation and completion is recorded (a CONNECTION_LOSS or timeout is
 * indeterminate: it may or may not have happened), and each znode's history
 * is checked for linearizability (linearizability.ts).
 *
 * Reads are `sync` then `getData`: ZooKeeper promises linearizable writes
 * and sequentially consistent reads; sync + read is what a client uses to
 * read the latest (and is exactly what ZOOKEEPER-1675 broke upstream).
 *
 * Bounded: the run stops after `durationMs`, every wait has a deadline, and
 * every process is stopped at the end (stop() reaps them even on failure).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client, ZkError } from '../../client/index.js'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { Prng } from '../../server/core/prng.js'
import { startZooKeeperCluster } from '../bench/zookeeper-ensemble.js'
import { startEnsemble } from '../helpers/ensemble.js'
import {
  checkPartitioned,
  type Operation,
  type RegisterInput,
  type RegisterOutput,
  znodeRegister,
} from './linearizability.js'

export type Fault = 'kill' | 'pause' | 'partition'

/** What the nemesis and the clients need of the system under test. */
export interface ChaosCluster {
  readonly name: string
  readonly connectString: string
  readonly ids: readonly number[]
  /** The current leader, if one is known within the deadline. */
  leader(): Promise<number | undefined>
  kill9(id: number): Promise<void>
  start(id: number): Promise<void>
  pause(id: number): void
  resume(id: number): void
  /** Cuts `id` off from its peers (undefined: this target cannot). */
  partition?(id: number, from: number[]): void
  heal?(): void
  stop(): Promise<void>
}

/** A Conclave ensemble (test/helpers/ensemble.ts). */
export async function conclaveCluster(servers: number): Promise<ChaosCluster> {
  const e = await startEnsemble({ size: servers, tickTime: 200 })
  const ids = e.members.filter((m) => !m.observer).map((m) => m.id)
  const proc = (id: number) => e.members.find((m) => m.id === id)?.proc
  return {
    name: 'conclave',
    connectString: e.connectString,
    ids,
    leader: () => e.leader(5000).catch(() => undefined),
    kill9: (id) => e.kill9(id),
    start: (id) => e.start(id),
    pause: (id) => void proc(id)?.child.kill('SIGSTOP'),
    resume: (id) => void proc(id)?.child.kill('SIGCONT'),
    partition: (id, from) => e.partition(id, from),
    heal: () => e.heal(),
    stop: () => e.stop(),
  }
}

/** An Apache ZooKeeper ensemble (Debian's package), for comparison: no partitions (no fault hook). */
export async function zookeeperCluster(servers: 1 | 3): Promise<ChaosCluster> {
  const zk = await startZooKeeperCluster({ size: servers, tickTime: 200 })
  const ids = zk.members.map((m) => m.id)
  const index = (id: number) => ids.indexOf(id)
  return {
    name: 'zookeeper',
    connectString: zk.members.map((m) => `tcp://127.0.0.1:${m.clientPort}`).join(','),
    ids,
    async leader() {
      for (const m of zk.members) {
        const srvr = await fourLetterWord('127.0.0.1', m.clientPort, 'srvr', 1000).catch(() => '')
        if (/Mode: (leader|standalone)/.test(srvr)) return m.id
      }
      return undefined
    },
    kill9: (id) => zk.kill9(index(id)),
    start: (id) => zk.restart(index(id)),
    pause: (id) => void zk.members[index(id)]?.child.kill('SIGSTOP'),
    resume: (id) => void zk.members[index(id)]?.child.kill('SIGCONT'),
    stop: () => zk.stop(),
  }
}

export interface ChaosOptions {
  durationMs: number
  servers: number
  clients: number
  keys: number
  faults: readonly Fault[]
  seed: number
  /** The system under test (default: a Conclave ensemble of `servers`). */
  target?: 'conclave' | 'zookeeper'
  /**
   * 'sync' (default): sync then getData, which must be linearizable. 'plain':
   * getData alone, which ZooKeeper's model allows to be stale on a lagging
   * server — a run that must be able to find anomalies (the checker's proof).
   */
  reads?: 'sync' | 'plain'
  /** Where the history and report go (a folder per run); none if undefined. */
  outDir?: string
  log?: (line: string) => void
}

export interface ChaosReport {
  target: string
  seed: number
  servers: number
  durationMs: number
  operations: number
  ok: number
  failed: number
  indeterminate: number
  faults: Record<string, number>
  /** Keys whose history is not linearizable. */
  anomalies: { key: string; detail: string }[]
  /** Keys the checker could not decide within its bound. */
  unknown: string[]
  checkSteps: number
}

type Op = Operation<RegisterInput, RegisterOutput>

/** Error codes that leave the outcome unknown to the client. */
const INDETERMINATE = new Set(['CONNECTION_LOSS', 'OPERATION_TIMEOUT', 'SESSION_EXPIRED', 'SESSION_MOVED'])
const DEFINITE: Record<string, 'NO_NODE' | 'BAD_VERSION' | 'NODE_EXISTS'> = {
  NO_NODE: 'NO_NODE',
  BAD_VERSION: 'BAD_VERSION',
  NODE_EXISTS: 'NODE_EXISTS',
}

const dec = new TextDecoder()

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => {})
  const prng = new Prng(opts.seed)
  const cluster =
    opts.target === 'zookeeper'
      ? await zookeeperCluster(opts.servers === 1 ? 1 : 3)
      : await conclaveCluster(opts.servers)
  const history = new Map<string, Op[]>()
  const counts = { ok: 0, failed: 0, indeterminate: 0 }
  const faults: Record<string, number> = {}
  const clients: Client[] = []
  try {
    for (let i = 0; i < opts.clients; i++)
      clients.push(
        await Client.connect(cluster.connectString, { sessionTimeoutMs: 8000, connectTimeoutMs: 5000 }),
      )
    const start = performance.now()
    const deadline = start + opts.durationMs
    const now = () => performance.now() - start
    const record = (key: string, o: Op) => {
      let list = history.get(key)
      if (list === undefined) history.set(key, (list = []))
      list.push(o)
    }
    const reads = opts.reads ?? 'sync'
    const workers = clients.map((c, i) =>
      worker(c, i, prng.fork(`client-${i}`), opts.keys, reads, deadline, now, record, counts),
    )
    const nemesis = runNemesis(cluster, prng.fork('nemesis'), opts.faults, deadline, faults, log)
    await Promise.all([...workers, nemesis])
    log(`workload done: ${counts.ok} ok, ${counts.failed} failed, ${counts.indeterminate} indeterminate`)
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()))
    await cluster.stop()
  }
  const checked = checkPartitioned(znodeRegister, history)
  const operations = [...history.values()].reduce((n, l) => n + l.length, 0)
  const report: ChaosReport = {
    target: opts.target ?? 'conclave',
    seed: opts.seed,
    servers: opts.servers,
    durationMs: opts.durationMs,
    operations,
    ...counts,
    faults,
    anomalies: checked.illegal.map((i) => ({
      key: i.key,
      detail: describeHistory(history.get(i.key) ?? [], i.longest),
    })),
    unknown: checked.unknown,
    checkSteps: checked.steps,
  }
  if (opts.outDir !== undefined) {
    mkdirSync(opts.outDir, { recursive: true })
    writeFileSync(join(opts.outDir, 'history.json'), JSON.stringify(Object.fromEntries(history), jsonSafe))
    writeFileSync(join(opts.outDir, 'report.json'), JSON.stringify(report, null, 2))
  }
  return report
}

function jsonSafe(_k: string, v: unknown): unknown {
  return v === Number.POSITIVE_INFINITY ? 'Infinity' : v
}

function describeHistory(ops: readonly Op[], linearized: readonly number[]): string {
  const lines = ops.map((o, i) => {
    const mark = linearized.includes(i) ? '*' : ' '
    const end = o.returnedAt === Number.POSITIVE_INFINITY ? '?' : o.returnedAt.toFixed(1)
    return `${mark} c${o.client} [${o.invokedAt.toFixed(1)}, ${end}] ${znodeRegister.describe!(o.input, o.output)}`
  })
  return `longest linearizable prefix marked *:\n${lines.join('\n')}`
}

/** One client: random reads (sync + getData), writes, compare-and-sets and creates on a few keys. */
async function worker(
  zk: Client,
  index: number,
  prng: Prng,
  keys: number,
  reads: 'sync' | 'plain',
  deadline: number,
  now: () => number,
  record: (key: string, o: Op) => void,
  counts: { ok: number; failed: number; indeterminate: number },
): Promise<void> {
  let seq = 0
  let lastVersion = 0
  while (performance.now() < deadline) {
    const key = `/chaos-${prng.int(0, keys - 1)}`
    const r = prng.int(0, 99)
    const value = `c${index}-${seq++}`
    const input: RegisterInput =
      r < 45
        ? { f: 'read' }
        : r < 75
          ? { f: 'write', value }
          : r < 93
            ? { f: 'cas', value, version: lastVersion }
            : { f: 'create', value }
    const invokedAt = now()
    let output: RegisterOutput | undefined
    try {
      output = await perform(zk, key, input, reads)
      if (output.ok) lastVersion = output.version
      counts.ok++
    } catch (err) {
      const code = ZkError.is(err) ? err.code : 'ERROR'
      const definite = DEFINITE[code]
      if (definite !== undefined) {
        output = { ok: false, error: definite }
        counts.failed++
      } else if (INDETERMINATE.has(code)) {
        counts.indeterminate++
        // A read that never returned constrains nothing.
        if (input.f === 'read') continue
        output = undefined
      } else throw err
    }
    record(key, {
      client: index,
      input,
      output,
      invokedAt,
      returnedAt: output === undefined ? Number.POSITIVE_INFINITY : now(),
    })
    if (output === undefined) await new Promise((res) => setTimeout(res, 50))
  }
}

async function perform(
  zk: Client,
  key: string,
  input: RegisterInput,
  reads: 'sync' | 'plain',
): Promise<RegisterOutput> {
  switch (input.f) {
    case 'read': {
      if (reads === 'sync') await zk.sync(key)
      const { data, stat } = await zk.getData(key)
      return { ok: true, exists: true, value: dec.decode(data), version: stat.version }
    }
    case 'write':
      return { ok: true, version: (await zk.setData(key, input.value, -1)).version }
    case 'cas':
      return { ok: true, version: (await zk.setData(key, input.value, input.version)).version }
    case 'create':
      await zk.create(key, input.value)
      return { ok: true, version: 0 }
  }
}

/** One fault at a time, short of a majority; each healed before the next. */
async function runNemesis(
  cluster: ChaosCluster,
  prng: Prng,
  kinds: readonly Fault[],
  deadline: number,
  faults: Record<string, number>,
  log: (line: string) => void,
): Promise<void> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
  const ids = cluster.ids
  const usable = kinds.filter((k) => k !== 'partition' || cluster.partition !== undefined)
  // Quiet at the end, so the ensemble settles and late writes complete before the check.
  const quietMs = 2000
  while (performance.now() < deadline - quietMs && usable.length > 0) {
    await sleep(prng.int(500, 1500))
    if (performance.now() > deadline - quietMs) break
    const kind = prng.pick([...usable])
    let target = prng.pick([...ids])
    if (prng.chance(0.5)) target = (await cluster.leader()) ?? target
    const holdMs = prng.int(500, 2500)
    faults[kind] = (faults[kind] ?? 0) + 1
    log(`nemesis: ${kind} n${target} for ${holdMs} ms`)
    if (kind === 'kill') {
      await cluster.kill9(target)
      await sleep(holdMs)
      await cluster.start(target)
    } else if (kind === 'pause') {
      cluster.pause(target)
      await sleep(holdMs)
      cluster.resume(target)
    } else {
      cluster.partition!(
        target,
        ids.filter((x) => x !== target),
      )
      await sleep(holdMs)
      cluster.heal!()
    }
  }
  while (performance.now() < deadline) await sleep(100)
}
