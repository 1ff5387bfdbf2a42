/**
 * Storage under kill -9: a child process (fixtures/storage-crash-child.ts,
 * run from source through the storage TS loader, no build needed) appends as
 * fast as group commit allows and prints every durable zxid, epoch and
 * snapshot as it happens. The parent kills it with SIGKILL 20-300 ms after
 * its first durable report, reopens the database, and checks that everything reported
 * durable is there, in order, intact and without gaps; that epochs and
 * snapshots reported durable survived; and that the next child continues.
 * A final child runs to completion to show restart + append works.
 *
 * The schedule is seeded (CONCLAVE_CRASH_SEED=... reproduces one); every
 * child is reaped in afterEach, even on failure.
 *
 * Must not import: anything of server/ other than server/storage.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Storage } from '../../server/storage/index.js'
import { tsSourceExecArgv } from '../../server/storage/ts-source-loader.js'
import { CRASH_EPOCH_BASE, crashEntryData } from './fixtures/storage-crash-data.js'

const CHILD = join(import.meta.dirname, 'fixtures', 'storage-crash-child.ts')
const ROUNDS = 20
const children = new Set<ChildProcess>()
const dirs: string[] = []

afterEach(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  children.clear()
})
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** sfc32-style small PRNG so a failing schedule can be replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

interface ChildReport {
  ready: number | undefined
  durable: number
  epoch: number
  snapshot: number
  snapshots: number
  done: boolean
  stderr: string
}

interface RunningChild {
  report: ChildReport
  /** Resolves at the first durable report: the child's worker is up and appending. */
  appending: Promise<void>
  exited: Promise<void>
  child: ChildProcess
}

function startChild(dataDir: string, count?: number): RunningChild {
  const args = [...tsSourceExecArgv(), CHILD, dataDir, ...(count === undefined ? [] : [String(count)])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  const report: ChildReport = {
    ready: undefined,
    durable: 0,
    epoch: 0,
    snapshot: 0,
    snapshots: 0,
    done: false,
    stderr: '',
  }
  child.stderr!.on('data', (d: Buffer) => {
    report.stderr += d.toString()
  })
  let onAppending: () => void = () => {}
  const appending = new Promise<void>((resolve) => {
    onAppending = resolve
  })
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const [word, value] = line.split(' ')
    const n = Number(value)
    if (word === 'ready') report.ready = n
    else if (word === 'durable') {
      report.durable = Math.max(report.durable, n)
      onAppending()
    } else if (word === 'epoch') report.epoch = Math.max(report.epoch, n)
    else if (word === 'snapshot') {
      report.snapshot = Math.max(report.snapshot, n)
      report.snapshots += 1
    } else if (word === 'done') report.done = true
  })
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()))
  return { report, appending, exited, child }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** Reopens the database and checks it against everything the child reported durable. */
async function verify(dataDir: string, expected: ChildReport): Promise<number> {
  const storage = Storage.open({ dataDir, serverId: 1, snapshotsRetained: 2 })
  try {
    const rec = storage.recovery
    expect(rec.lastLogZxid).toBeGreaterThanOrEqual(expected.durable)
    expect(rec.epochs.acceptedEpoch).toBeGreaterThanOrEqual(expected.epoch)
    if (expected.snapshot > 0) expect(rec.snapshot?.zxidStart ?? 0).toBeGreaterThanOrEqual(expected.snapshot)
    let previous = rec.replayAfterZxid
    for (const e of rec.logEntries()) {
      // No gaps: the child appends consecutive counters of one epoch.
      if (previous >= CRASH_EPOCH_BASE) expect(e.zxid).toBe(previous + 1)
      expect(Buffer.from(e.data).equals(Buffer.from(crashEntryData(e.zxid)))).toBe(true)
      previous = e.zxid
    }
    expect(previous).toBe(Math.max(rec.lastLogZxid, rec.replayAfterZxid))
    if (rec.snapshot !== undefined) expect([...rec.snapshot.chunks()]).toHaveLength(rec.snapshot.chunkCount)
    return rec.lastLogZxid
  } finally {
    await new Promise<void>((resolve) => storage.close(() => resolve()))
  }
}

describe('storage crash safety (kill -9)', () => {
  it(`loses nothing reported durable over ${ROUNDS} kill -9 rounds`, { timeout: 180_000 }, async () => {
    const seed = Number(process.env.CONCLAVE_CRASH_SEED ?? Date.now() % 2 ** 31)
    const random = prng(seed)
    const dataDir = mkdtempSync(join(tmpdir(), 'conclave-crash-'))
    dirs.push(dataDir)
    let everDurable = 0
    let snapshots = 0
    for (let round = 0; round < ROUNDS; round++) {
      const run = startChild(dataDir)
      await withDeadline(
        run.appending,
        30_000,
        `child appending (seed ${seed}, round ${round}): ${run.report.stderr}`,
      )
      expect(run.report.ready, `seed ${seed} round ${round}`).toBeGreaterThanOrEqual(everDurable)
      const delayMs = 20 + Math.floor(random() * 281)
      await new Promise((r) => setTimeout(r, delayMs))
      run.child.kill('SIGKILL')
      await withDeadline(run.exited, 10_000, 'child exit after SIGKILL')
      expect(run.report.stderr, `seed ${seed} round ${round}`).not.toMatch(/fatal/)
      everDurable = Math.max(everDurable, run.report.durable)
      snapshots += run.report.snapshots
      const last = await verify(dataDir, { ...run.report, durable: everDurable })
      expect(last, `seed ${seed} round ${round}`).toBeGreaterThanOrEqual(everDurable)
    }
    // After all the crashes, a clean run appends and closes normally.
    const final = startChild(dataDir, 5000)
    await withDeadline(final.exited, 60_000, `final child: ${final.report.stderr}`)
    expect(final.report.done, final.report.stderr).toBe(true)
    expect(final.report.durable).toBeGreaterThanOrEqual(Math.max(everDurable, CRASH_EPOCH_BASE) + 5000)
    await verify(dataDir, final.report)
    expect(everDurable, `seed ${seed}: the children made progress`).toBeGreaterThan(CRASH_EPOCH_BASE)
    console.info(
      `storage crash: seed ${seed}, ${ROUNDS} kill -9 rounds, ${everDurable - CRASH_EPOCH_BASE} entries ` +
        `and ${snapshots} snapshots reported durable before the last kill, all recovered`,
    )
  })
})
