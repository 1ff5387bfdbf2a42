/**
 * Measures recovery of a large tree from disk, by phase, without a client
 * load in front of it (the bench's memory workload takes minutes to load
 * 1M znodes through the wire before it can time one restart):
 *
 *   node dist/test/bench/measure-recovery.js build --dir D [--znodes N]
 *     seeds D with one snapshot of N znodes of 100 bytes under /m/p0..p99
 *     (the memory workload's layout) and a log of 1,000 setData Txns after it;
 *   node dist/test/bench/measure-recovery.js recover --dir D [--runs R]
 *     opens the storage (recovery.ts: torn tail, snapshot choice) and rebuilds
 *     the tree (tree-db.ts recoverDb: snapshot, then log replay), R times,
 *     each in the same process after a full GC; prints the ms of each phase;
 *   node --expose-gc dist/test/bench/measure-recovery.js snap --dir D
 *     installs D's snapshot as a SNAP does, in steps (see snapInstall).
 *
 * Run it under `node --cpu-prof --cpu-prof-dir DIR` and read the profile with
 * `node dist/test/bench/cpu-profile.js DIR`. An entry point run by hand (the
 * architecture test skips measure-* files).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { StallMonitor } from '../../server/admin/stall-monitor.js'
import { recoverDb, TreeDb } from '../../server/state/tree-db.js'
import { seedDataDir } from '../../server/storage/data-dir.js'
import { Storage } from '../../server/storage/index.js'
import { DataTree } from '../../server/tree/data-tree.js'
import { Kind } from '../../server/tree/node-store.js'
import { type NodeRecord, writeSnapshot } from '../../server/tree/snapshot.js'
import { encodeTxn } from '../../server/txn/codec.js'
import { OPEN_ACL_UNSAFE } from '../../shared/acl.js'

const PARENTS = 100
const EPOCH = 1
const LOG_ENTRIES = 1000

const quiet = { info: () => {}, warn: () => {}, error: (o: object, m: string) => console.error(m, o) }
const silentPino = {
  info: () => {},
  warn: () => {},
  error: () => {},
  debug: () => {},
  child: () => silentPino,
} as unknown as import('pino').Logger

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : process.argv[i + 1]
}

function* records(n: number, zxid0: number): Generator<NodeRecord> {
  const stat = (z: number) => ({
    czxid: z,
    mzxid: z,
    pzxid: z,
    ctime: 1_700_000_000_000 + z,
    mtime: 1_700_000_000_000 + z,
    version: 0,
    cversion: 0,
    aversion: 0,
  })
  const base = { acl: OPEN_ACL_UNSAFE, kind: Kind.persistent, owner: 0n, ttlMs: 0 }
  const empty = new Uint8Array(0)
  yield { ...base, path: '/', data: empty, ...stat(0), cversion: 1 }
  yield { ...base, path: '/zookeeper', data: empty, ...stat(0) }
  yield { ...base, path: '/zookeeper/quota', data: empty, ...stat(0) }
  yield { ...base, path: '/zookeeper/config', data: empty, ...stat(0), aversion: -1 }
  yield { ...base, path: '/m', data: new Uint8Array(100).fill(0x61), ...stat(zxid0), cversion: PARENTS }
  for (let p = 0; p < PARENTS; p++) {
    const kids = Math.floor(n / PARENTS) + (p < n % PARENTS ? 1 : 0)
    yield { ...base, path: `/m/p${p}`, data: new Uint8Array(100).fill(0x61), ...stat(zxid0), cversion: kids }
  }
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(100).fill(0x61 + (i % 26))
    yield { ...base, path: `/m/p${i % PARENTS}/n${i}`, data, ...stat(zxid0 + 1 + i) }
  }
}

async function build(dir: string, n: number): Promise<void> {
  const zxid0 = EPOCH * 2 ** 32 + 1
  const snapZxid = zxid0 + n
  const chunks = [...writeSnapshot(snapZxid, [], records(n, zxid0))]
  const digest = DataTree.fromSnapshot(chunks).digest()
  seedDataDir({ dataDir: dir, serverId: 1, zxid: snapZxid, digest, chunks, epoch: EPOCH, replace: true })
  // A log after the snapshot, as a server that kept running after it took one has.
  const storage = Storage.open({ dataDir: dir, serverId: 1, logger: quiet })
  const entries = []
  for (let i = 1; i <= LOG_ENTRIES; i++) {
    const zxid = snapZxid + i
    const txn = {
      sessionId: 0n,
      cxid: 0,
      zxid,
      timeMs: 1_700_000_000_000 + zxid,
      type: 'setData' as const,
      path: `/m/p${i % PARENTS}/n${i}`,
      data: new Uint8Array(100).fill(0x62),
      version: 1,
    }
    entries.push({ zxid, data: encodeTxn(txn).slice() })
  }
  storage.append(entries)
  await new Promise<void>((resolve, reject) => storage.close((err) => (err ? reject(err) : resolve())))
  const bytes = chunks.reduce((s, c) => s + c.length, 0)
  console.log(
    `seeded ${dir}: ${n} znodes, ${chunks.length} chunks, ${bytes} bytes, ${LOG_ENTRIES} log entries`,
  )
}

async function recoverOnce(dir: string): Promise<Record<string, number | string>> {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  const cpu = () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  const t0 = performance.now()
  const c0 = cpu()
  const storage = Storage.open({ dataDir: dir, serverId: 1, logger: quiet })
  const t1 = performance.now()
  const c1 = cpu()
  const { db } = recoverDb(storage.recovery, silentPino)
  const t2 = performance.now()
  const c2 = cpu()
  const nodes = db.nodeCount()
  const digest = db.digest()
  await new Promise<void>((resolve, reject) => storage.close((err) => (err ? reject(err) : resolve())))
  const ms = (x: number) => Math.round(x)
  return {
    openMs: ms(t1 - t0),
    treeMs: ms(t2 - t1),
    totalMs: ms(t2 - t0),
    openCpuMs: ms(c1 - c0),
    treeCpuMs: ms(c2 - c1),
    totalCpuMs: ms(c2 - c0),
    nodes,
    digest,
  }
}

/**
 * A SNAP install of the seeded snapshot as a follower runs it: the chunks
 * read from storage one at a time and cut again into SNAPCHUNK-sized pieces
 * (64 KiB), each pushed into TreeDb.beginReplace as it comes (a step: the
 * follower reads a chunk as it arrives, and keeps none), then the install
 * stepped with the driver's step budget (2,048 znodes): the longest step,
 * by the wall clock and by CPU, the longest GC pause, the peak heap and
 * RSS, and the total.
 */
async function snapInstall(dir: string): Promise<Record<string, number>> {
  const storage = Storage.open({ dataDir: dir, serverId: 1, logger: quiet })
  const snap = storage.recovery.snapshot!
  ;(globalThis as { gc?: () => void }).gc?.()
  const db = TreeDb.empty()
  const cpu = () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  const monitor = new StallMonitor()
  let pieces = 0
  let steps = 0
  let stepMaxMs = 0
  let stepMaxCpuMs = 0
  const stepCpu: number[] = []
  const timed = (fn: () => boolean): boolean => {
    const t = performance.now()
    const c = cpu()
    const done = fn()
    steps++
    stepMaxMs = Math.max(stepMaxMs, performance.now() - t)
    stepCpu.push(cpu() - c)
    stepMaxCpuMs = Math.max(stepMaxCpuMs, cpu() - c)
    if (steps % 64 === 0) monitor.sample()
    return done
  }
  const t0 = performance.now()
  const c0 = cpu()
  const job = db.beginReplace(snap.zxidStart)
  for (const c of snap.chunks())
    for (let at = 0; at < c.length; at += 64 * 1024) {
      const piece = c.slice(at, at + 64 * 1024)
      pieces++
      timed(() => {
        job.push(piece)
        return false
      })
    }
  while (!timed(() => job.step(2048, snap.zxidEnd))) {}
  const totalCpuMs = Math.round(cpu() - c0)
  const totalMs = Math.round(performance.now() - t0)
  // GC entries reach the observer from the event loop, after this synchronous install.
  await new Promise((r) => setTimeout(r, 100))
  const { gcMaxMs, rssStartMB, rssMaxMB, heapStartMB, heapMaxMB } = monitor.stop()
  void storage.close(() => {})
  const sorted = [...stepCpu].sort((a, b) => a - b)
  const r = (x: number) => Math.round(x * 10) / 10
  return {
    pieces,
    steps,
    stepMaxMs: r(stepMaxMs),
    stepMaxCpuMs: r(stepMaxCpuMs),
    stepP50CpuMs: r(sorted[Math.floor(sorted.length / 2)]!),
    stepP99CpuMs: r(sorted[Math.floor(sorted.length * 0.99)]!),
    stepsOver20CpuMs: sorted.filter((x) => x > 20).length,
    stepMaxAt: stepCpu.indexOf(sorted.at(-1)!),
    gcMaxMs,
    rssStartMB,
    rssMaxMB,
    heapStartMB,
    heapMaxMB,
    totalMs,
    totalCpuMs,
    nodes: db.nodeCount(),
  }
}

async function main(): Promise<void> {
  const cmd = process.argv[2]
  const given = arg('dir')
  const dir = given ?? mkdtempSync(join(tmpdir(), 'measure-recovery-'))
  try {
    if (cmd === 'build' || given === undefined) await build(dir, Number(arg('znodes', '1000000')))
    if (cmd === 'snap') console.log(JSON.stringify(await snapInstall(dir)))
    if (cmd === 'recover' || given === undefined) {
      for (let r = 0; r < Number(arg('runs', '1')); r++) console.log(JSON.stringify(await recoverOnce(dir)))
    }
  } finally {
    if (given === undefined) rmSync(dir, { recursive: true, force: true })
  }
}

await main()
