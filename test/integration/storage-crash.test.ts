/**
 * Storage under kill -9: a child process (fixtures/storage-crash-child.ts,
 * run from source through the storage TS loader, no build needed) appends as
 * fast as group commit allows and prints every durable zxid, epoch and
 * snapshot as it happens. The parent kills it with SIGKILL 20-300 ms after
 * its first durable report, reopens the database, and checks that everything reported
 * durable is there, in order, intact and without gaps; that epochs and
 * snapshots reported durable survived; and that the next child continues.
 * A final child runs to completion to show restart + append works. The same
 * again with a child whose lone appends (each waited for) the storage
 * commits on its main thread (inline-writer.ts), between pipelined bursts
 * committed by its worker: switching between the two writers keeps the
 * order and loses nothing reported durable.
 *
 * The second test kills a child (fixtures/storage-zab-order-child.ts) that
 * issues what a follower's ZAB driver issues, in the driver's order
 * (acceptedEpoch; then truncation, the sync entries and currentEpoch in one
 * batch; then broadcast entries), with small group commits. The child
 * prints every operation before issuing it; after every kill the recovered
 * state must be the result of a prefix of the operations issued (storage
 * applies them in order: durable history is never ahead of or behind what a
 * durable epoch vouches for), a prefix covering everything reported durable.
 * In particular a durable currentEpoch E means E's truncation and sync
 * entries, and everything issued before them, are durable too
 * (ZOOKEEPER-4646).
 *
 * The schedules are seeded (CONCLAVE_CRASH_SEED=... reproduces one); every
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
import {
  CRASH_EPOCH_BASE,
  counterOf,
  crashEntryData,
  epochOf,
  zabOrderEntryData,
  zxidOf,
} from './fixtures/storage-crash-data.js'

const CHILD = join(import.meta.dirname, 'fixtures', 'storage-crash-child.ts')
const ZAB_CHILD = join(import.meta.dirname, 'fixtures', 'storage-zab-order-child.ts')
const ROUNDS = 20
const MIXED_ROUNDS = 12
/** Kills of the ZAB-order child, and the time they may take in all. */
const ZAB_KILLS = 30
const ZAB_KILLS_MS = 120_000
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
  /** Mixed mode: the child's storage's group commits so far, on its main thread and on its worker. */
  inlineCommits: number
  workerCommits: number
  done: boolean
  stderr: string
}

/** `pipelined`: bursts of appends only (worker commits); `mixed`: lone appends (inline commits) between them. */
type ChildMode = 'pipelined' | 'mixed'

interface RunningChild {
  report: ChildReport
  /** Resolves at the first durable report: the child's worker is up and appending. */
  appending: Promise<void>
  exited: Promise<void>
  child: ChildProcess
}

function startChild(dataDir: string, count?: number, mode: ChildMode = 'pipelined'): RunningChild {
  const args = [...tsSourceExecArgv(), CHILD, dataDir, ...(count === undefined ? [] : [String(count)])]
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CRASH_CHILD_MODE: mode },
  })
  children.add(child)
  const report: ChildReport = {
    ready: undefined,
    durable: 0,
    epoch: 0,
    snapshot: 0,
    snapshots: 0,
    inlineCommits: 0,
    workerCommits: 0,
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
    const [word, value, second] = line.split(' ')
    const n = Number(value)
    if (word === 'ready') report.ready = n
    else if (word === 'commits') {
      report.inlineCommits = n
      report.workerCommits = Number(second)
    } else if (word === 'durable') {
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

/**
 * Kills a child `rounds` times, 20-300 ms after its first durable report,
 * checking after each kill that everything it reported durable is there;
 * then a clean run. Returns the commits the children reported (mixed mode).
 */
async function crashRounds(mode: ChildMode, rounds: number): Promise<{ inline: number; worker: number }> {
  const seed = Number(process.env.CONCLAVE_CRASH_SEED ?? Date.now() % 2 ** 31)
  const random = prng(seed)
  const dataDir = mkdtempSync(join(tmpdir(), 'conclave-crash-'))
  dirs.push(dataDir)
  let everDurable = 0
  let snapshots = 0
  const commits = { inline: 0, worker: 0 }
  for (let round = 0; round < rounds; round++) {
    const run = startChild(dataDir, undefined, mode)
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
    commits.inline += run.report.inlineCommits
    commits.worker += run.report.workerCommits
    const last = await verify(dataDir, { ...run.report, durable: everDurable })
    expect(last, `seed ${seed} round ${round}`).toBeGreaterThanOrEqual(everDurable)
  }
  // After all the crashes, a clean run appends and closes normally.
  const final = startChild(dataDir, 5000, mode)
  await withDeadline(final.exited, 60_000, `final child: ${final.report.stderr}`)
  expect(final.report.done, final.report.stderr).toBe(true)
  expect(final.report.durable).toBeGreaterThanOrEqual(Math.max(everDurable, CRASH_EPOCH_BASE) + 5000)
  await verify(dataDir, final.report)
  expect(everDurable, `seed ${seed}: the children made progress`).toBeGreaterThan(CRASH_EPOCH_BASE)
  console.info(
    `storage crash (${mode}): seed ${seed}, ${rounds} kill -9 rounds, ${everDurable - CRASH_EPOCH_BASE} entries ` +
      `and ${snapshots} snapshots reported durable before the last kill, all recovered` +
      (mode === 'mixed' ? ` (${commits.inline} inline and ${commits.worker} worker commits)` : ''),
  )
  return commits
}

describe('storage crash safety (kill -9)', () => {
  it(`loses nothing reported durable over ${ROUNDS} kill -9 rounds`, { timeout: 180_000 }, async () => {
    await crashRounds('pipelined', ROUNDS)
  })

  it(`loses nothing reported durable when lone appends, committed on the main thread, alternate with pipelined ones, over ${MIXED_ROUNDS} kill -9 rounds`, {
    timeout: 180_000,
  }, async () => {
    const commits = await crashRounds('mixed', MIXED_ROUNDS)
    // Both kinds of commit ran, one after the other, before the kills.
    expect(commits.inline).toBeGreaterThan(0)
    expect(commits.worker).toBeGreaterThan(0)
  })
})

/** A run of consecutive counters of one epoch in the log. */
interface Run {
  epoch: number
  from: number
  to: number
}

/** What the storage holds, as the ZAB-order test models it: the epochs and the log as runs. */
interface ZabState {
  accepted: number
  current: number
  log: Run[]
}

type ZabOp =
  | { kind: 'accepted' | 'current'; epoch: number }
  | { kind: 'truncate'; zxid: number }
  | { kind: 'append'; first: number; last: number }

function cloneState(s: ZabState): ZabState {
  return { accepted: s.accepted, current: s.current, log: s.log.map((r) => ({ ...r })) }
}

function lastZxidOf(s: ZabState): number {
  const r = s.log[s.log.length - 1]
  return r === undefined ? 0 : zxidOf(r.epoch, r.to)
}

/** Applies one operation (an append only up to `upTo`, when given) to a copy of the state. */
function applyOp(state: ZabState, op: ZabOp, upTo?: number): ZabState {
  const s = cloneState(state)
  switch (op.kind) {
    case 'accepted':
      s.accepted = op.epoch
      break
    case 'current':
      s.current = op.epoch
      break
    case 'truncate':
      s.log = s.log.flatMap((r) => {
        if (zxidOf(r.epoch, r.to) <= op.zxid) return [r]
        if (zxidOf(r.epoch, r.from) > op.zxid) return []
        return [{ ...r, to: counterOf(op.zxid) }]
      })
      break
    case 'append': {
      const last = Math.min(op.last, upTo ?? op.last)
      if (last < op.first) break
      const epoch = epochOf(op.first)
      const tail = s.log[s.log.length - 1]
      if (tail !== undefined && tail.epoch === epoch && tail.to + 1 === counterOf(op.first))
        tail.to = counterOf(last)
      else s.log.push({ epoch, from: counterOf(op.first), to: counterOf(last) })
      break
    }
  }
  return s
}

/** A zxid as epoch:counter. */
const zx = (zxid: number): string => `${epochOf(zxid)}:${counterOf(zxid)}`

const describeState = (s: ZabState): string =>
  `accepted ${s.accepted}, current ${s.current}, log ${s.log.map((r) => `${r.epoch}:${r.from}-${r.to}`).join(' ') || '(empty)'}`

/** Reads the storage's state back, checking every entry's bytes; closes it. */
async function recoverZabState(dataDir: string): Promise<ZabState> {
  const storage = Storage.open({ dataDir, serverId: 1 })
  try {
    const rec = storage.recovery
    expect(rec.snapshot).toBeUndefined()
    const state: ZabState = { accepted: rec.epochs.acceptedEpoch, current: rec.epochs.currentEpoch, log: [] }
    let previous = 0
    for (const e of rec.logEntries()) {
      // Plain checks: an expect() per entry would cost more than the recovery.
      if (e.zxid <= previous) throw new Error(`entry ${e.zxid} follows ${previous}`)
      previous = e.zxid
      if (!Buffer.from(e.data).equals(Buffer.from(zabOrderEntryData(e.zxid))))
        throw new Error(`entry ${e.zxid} holds the wrong bytes`)
      const tail = state.log[state.log.length - 1]
      const epoch = epochOf(e.zxid)
      if (tail !== undefined && tail.epoch === epoch && tail.to + 1 === counterOf(e.zxid)) tail.to += 1
      else state.log.push({ epoch, from: counterOf(e.zxid), to: counterOf(e.zxid) })
    }
    expect(previous).toBe(rec.lastLogZxid)
    return state
  } finally {
    await new Promise<void>((resolve) => storage.close(() => resolve()))
  }
}

interface ZabChild {
  ops: ZabOp[]
  /** Lower bounds from what the child reported durable: op index, and for an append the zxid it reached. */
  durable: { op: number; upTo: number }[]
  /** Truncation point and sync batch end of every round this child issued, by epoch. */
  rounds: Map<number, { truncateAfter: number; syncEnd: number }>
  ready: { accepted: number; current: number; lastZxid: number } | undefined
  started: Promise<void>
  exited: Promise<void>
  child: ChildProcess
  stderr: () => string
  done: boolean
}

function lastIndex<T>(list: readonly T[], pred: (x: T) => boolean): number {
  for (let i = list.length - 1; i >= 0; i--) if (pred(list[i]!)) return i
  return -1
}

function startZabChild(dataDir: string, seed: number, rounds?: number): ZabChild {
  const args = [...tsSourceExecArgv(), ZAB_CHILD, dataDir, String(seed)]
  if (rounds !== undefined) args.push(String(rounds))
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  let onStarted: () => void = () => {}
  const started = new Promise<void>((resolve) => {
    onStarted = resolve
  })
  const run: ZabChild = {
    ops: [],
    durable: [],
    rounds: new Map(),
    ready: undefined,
    started,
    exited: new Promise<void>((resolve) => child.on('close', () => resolve())),
    child,
    stderr: () => stderr,
    done: false,
  }
  let truncatedAt = 0
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const [word, a, b, c] = line.split(' ').map((x, i) => (i === 0 ? x : Number(x))) as [string, ...number[]]
    switch (word) {
      case 'ready':
        run.ready = { accepted: a!, current: b!, lastZxid: c! }
        onStarted()
        break
      case 'accepted':
      case 'current':
        run.ops.push({ kind: word, epoch: a! })
        if (word === 'current') {
          // The sync batch just issued: its truncation point and its last entry.
          const sync = run.ops[run.ops.length - 2]
          if (sync?.kind === 'append') run.rounds.set(a!, { truncateAfter: truncatedAt, syncEnd: sync.last })
        }
        break
      case 'truncate':
        truncatedAt = a!
        run.ops.push({ kind: 'truncate', zxid: a! })
        break
      case 'append':
        run.ops.push({ kind: 'append', first: a!, last: b! })
        break
      case 'current-durable': {
        const i = lastIndex(run.ops, (o) => o.kind === 'current' && o.epoch === a)
        run.durable.push({ op: i, upTo: Number.POSITIVE_INFINITY })
        break
      }
      case 'durable': {
        const i = lastIndex(run.ops, (o) => o.kind === 'append' && o.first <= a! && a! <= o.last)
        run.durable.push({ op: i, upTo: a! })
        break
      }
      case 'done':
        run.done = true
        break
    }
  })
  return run
}

/**
 * Which prefix of the child's operations the recovered state is: [ops applied
 * in full, zxid reached in the next one (an append cut between group
 * commits), or 0]; undefined if it is none.
 */
function matchPrefix(base: ZabState, ops: ZabOp[], recovered: ZabState): [number, number] | undefined {
  const same = (x: ZabState) => describeState(x) === describeState(recovered)
  let state = base
  for (let k = 0; k <= ops.length; k++) {
    if (same(state)) return [k, 0]
    const op = ops[k]
    if (op === undefined) break
    const reached = lastZxidOf(recovered)
    if (op.kind === 'append' && reached >= op.first && reached < op.last && same(applyOp(state, op, reached)))
      return [k, reached]
    state = applyOp(state, op)
  }
  return undefined
}

/** What a durable currentEpoch vouches for: its truncation and its sync entries (and all before) are durable. */
function currentEpochProblems(
  s: ZabState,
  round: { truncateAfter: number; syncEnd: number } | undefined,
): string[] {
  if (s.current === 0) return []
  if (round === undefined)
    return [`currentEpoch ${s.current} is durable but was never issued: ${describeState(s)}`]
  const out: string[] = []
  const cut = s.log.filter((r) => r.epoch < s.current && zxidOf(r.epoch, r.to) > round.truncateAfter)
  if (cut.length > 0)
    out.push(
      `entries above its truncation point ${round.truncateAfter} survive: ${describeState({ ...s, log: cut })}`,
    )
  const synced = s.log.find((r) => r.epoch === s.current)
  if (synced === undefined || synced.from !== 1 || zxidOf(synced.epoch, synced.to) < round.syncEnd)
    out.push(`its sync entries (through ${zx(round.syncEnd)}) are not all there: ${describeState(s)}`)
  return out
}

describe('storage crash safety in ZAB durability order (kill -9)', () => {
  it(`a durable currentEpoch never runs ahead of the history issued before it, over ${ZAB_KILLS} kills`, {
    timeout: ZAB_KILLS_MS + 60_000,
  }, async () => {
    const seed = Number(process.env.CONCLAVE_CRASH_SEED ?? Date.now() % 2 ** 31)
    const random = prng(seed)
    const dataDir = mkdtempSync(join(tmpdir(), 'conclave-zab-crash-'))
    dirs.push(dataDir)
    let state: ZabState = { accepted: 0, current: 0, log: [] }
    const rounds = new Map<number, { truncateAfter: number; syncEnd: number }>()
    const deadline = Date.now() + ZAB_KILLS_MS
    let kills = 0
    let cutBetweenCommits = 0
    let opsSeen = 0
    for (; kills < ZAB_KILLS && Date.now() < deadline; kills++) {
      const where = `seed ${seed}, kill ${kills}`
      const run = startZabChild(dataDir, Math.floor(random() * 2 ** 31))
      await withDeadline(run.started, 30_000, `ZAB child ready (${where}): ${run.stderr()}`)
      expect(run.ready, where).toEqual({
        accepted: state.accepted,
        current: state.current,
        lastZxid: lastZxidOf(state),
      })
      await new Promise((r) => setTimeout(r, Math.floor(random() * 500)))
      run.child.kill('SIGKILL')
      await withDeadline(run.exited, 10_000, 'ZAB child exit after SIGKILL')
      expect(run.stderr(), where).not.toMatch(/fatal/)
      for (const [epoch, r] of run.rounds) rounds.set(epoch, r)
      const recovered = await recoverZabState(dataDir)
      expect(recovered.accepted, where).toBeGreaterThanOrEqual(recovered.current)
      expect(currentEpochProblems(recovered, rounds.get(recovered.current)), where).toEqual([])
      const prefix = matchPrefix(state, run.ops, recovered)
      if (prefix === undefined)
        throw new Error(
          `${where}: the recovered state is no prefix of the operations issued\n` +
            `  before: ${describeState(state)}\n  after:  ${describeState(recovered)}\n` +
            `  ops: ${JSON.stringify(run.ops.slice(0, 200))}`,
        )
      // Everything reported durable is in that prefix.
      for (const d of run.durable) {
        const covered = prefix[0] > d.op || (prefix[0] === d.op && prefix[1] >= d.upTo)
        expect(
          covered,
          `${where}: reported durable (op ${d.op} up to ${d.upTo}), recovered prefix ${prefix}`,
        ).toBe(true)
      }
      if (prefix[1] !== 0) cutBetweenCommits++
      opsSeen += run.ops.length
      state = recovered
    }
    // After the crashes, a clean run plays a few rounds and closes; all of it is durable.
    const final = startZabChild(dataDir, Math.floor(random() * 2 ** 31), 5)
    await withDeadline(final.exited, 60_000, `final ZAB child: ${final.stderr()}`)
    expect(final.done, final.stderr()).toBe(true)
    const end = await recoverZabState(dataDir)
    expect(describeState(end)).toBe(describeState(final.ops.reduce((s, op) => applyOp(s, op), state)))
    expect(end.current).toBe(Math.max(state.accepted, state.current, epochOf(lastZxidOf(state))) + 5)
    expect(kills, `seed ${seed}: kills within the time bound`).toBeGreaterThanOrEqual(10)
    expect(state.current, `seed ${seed}: the children made progress`).toBeGreaterThan(kills / 4)
    // Not vacuous: kills did land between the group commits of one batch.
    expect(cutBetweenCommits, `seed ${seed}: kills that cut a batch`).toBeGreaterThan(0)
    console.info(
      `storage ZAB order: seed ${seed}, ${kills} kill -9s, ${opsSeen} operations issued, epoch ${state.current} ` +
        `durable before the last kill; ${cutBetweenCommits} kills left a batch cut between group commits`,
    )
  })
})
