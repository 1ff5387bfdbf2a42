/**
 * A measurement script for the storage layer (run by hand, not by tests):
 *   npx tsc -p tsconfig.json && node dist/test/bench/storage-bench.js [--dir <path>] [--records N]
 * It prints
 *   1. durable Txns/s when the caller waits for each group of 1, 10 and 100
 *      entries (100..1000 bytes) to be durable before issuing the next, and
 *      with unbounded pipelining (the natural group-commit size);
 *   2. the longest event-loop stall while a snapshot of N (default 1,000,000)
 *      140-byte records, in ~1 MiB chunks, is written as log appends continue;
 *   3. the time to recover it: open (incl. snapshot verification), read the
 *      snapshot chunks, replay the log.
 * Data goes to a fresh temp directory (removed afterwards) unless --dir.
 *
 * Invariants: measures the real Storage (worker, SQLite, fsync) — no shortcuts.
 *
 * Must not import: anything outside server/storage and shared/.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { Storage } from '../../server/storage/storage.js'
import type { StorageLogger } from '../../server/storage/storage-options.js'
import type { LogEntry } from '../../server/storage/worker-protocol.js'

const quiet: StorageLogger = { info: () => {}, warn: () => {}, error: (o, m) => console.error(m, o) }
const RECORD_BYTES = 140
const CHUNK_BYTES = 1024 * 1024

function entryOf(zxid: number): LogEntry {
  const size = 100 + ((zxid * 7919) % 901)
  return { zxid, data: new Uint8Array(size).fill(zxid & 0xff) }
}

/** Promises for "zxid is durable", released by the storage's onDurable event. */
class DurableWaiters {
  private readonly waiting: { zxid: number; resolve: () => void }[] = []

  constructor(private readonly storage: Storage) {
    storage.onDurable((upTo) => {
      for (let i = this.waiting.length - 1; i >= 0; i--) {
        const w = this.waiting[i]!
        if (w.zxid <= upTo) {
          this.waiting.splice(i, 1)
          w.resolve()
        }
      }
    })
  }

  wait(zxid: number): Promise<void> {
    if (this.storage.durableZxid >= zxid) return Promise.resolve()
    return new Promise((resolve) => this.waiting.push({ zxid, resolve }))
  }
}

function open(dir: string): Storage {
  return Storage.open({ dataDir: dir, serverId: 1, logger: quiet })
}

function close(storage: Storage): Promise<void> {
  return new Promise((resolve, reject) => storage.close((err) => (err ? reject(err) : resolve())))
}

async function groupCommitRun(
  storage: Storage,
  waiters: DurableWaiters,
  groupSize: number,
  seconds: number,
): Promise<string> {
  let zxid = storage.lastZxid
  let txns = 0
  let commits = 0
  const start = performance.now()
  while (performance.now() - start < seconds * 1000) {
    const batch: LogEntry[] = []
    for (let i = 0; i < groupSize; i++) batch.push(entryOf(++zxid))
    storage.append(batch)
    await waiters.wait(zxid)
    txns += groupSize
    commits += 1
  }
  const s = (performance.now() - start) / 1000
  return `group ${String(groupSize).padStart(3)}: ${Math.round(txns / s)} durable txns/s, ${Math.round(commits / s)} commits/s, ${((s * 1000) / commits).toFixed(2)} ms/commit`
}

async function pipelinedRun(storage: Storage, waiters: DurableWaiters, seconds: number): Promise<string> {
  let commits = 0
  const firstZxid = storage.lastZxid
  storage.onDurable(() => commits++)
  const start = performance.now()
  const inFlightMax = 10_000
  while (performance.now() - start < seconds * 1000) {
    while (storage.lastZxid - storage.durableZxid < inFlightMax) {
      const batch: LogEntry[] = []
      for (let i = 0; i < 100; i++) batch.push(entryOf(storage.lastZxid + 1 + i))
      storage.append(batch)
    }
    await waiters.wait(storage.lastZxid - inFlightMax / 2)
  }
  await waiters.wait(storage.lastZxid)
  const s = (performance.now() - start) / 1000
  const txns = storage.lastZxid - firstZxid
  return `pipelined (<= ${inFlightMax} in flight): ${Math.round(txns / s)} durable txns/s, ${Math.round(commits / s)} commits/s, mean group ${Math.round(txns / Math.max(1, commits))} entries`
}

/** One ~1 MiB chunk of synthetic 140-byte records, numbered from `first`. */
function makeChunk(first: number, count: number): Uint8Array {
  const out = new Uint8Array(count * RECORD_BYTES)
  const view = new DataView(out.buffer)
  for (let r = 0; r < count; r++) {
    const at = r * RECORD_BYTES
    view.setFloat64(at, first + r, true)
    out.fill((first + r) & 0xff, at + 8, at + RECORD_BYTES)
  }
  return out
}

interface SnapshotResult {
  stallMs: number
  probeGapMs: number
  seconds: number
  bytes: number
  appendedDuring: number
  appendLatencyMs: number
  zxidStart: number
}

/** Writes the snapshot one chunk per event-loop turn while a timer keeps appending. */
async function snapshotRun(
  storage: Storage,
  waiters: DurableWaiters,
  records: number,
): Promise<SnapshotResult> {
  const perChunk = Math.floor(CHUNK_BYTES / RECORD_BYTES)
  const zxidStart = storage.durableZxid
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  let probeGapMs = 0
  let lastProbe = performance.now()
  const probe = setInterval(() => {
    const now = performance.now()
    probeGapMs = Math.max(probeGapMs, now - lastProbe)
    lastProbe = now
  }, 1)
  const firstAppended = storage.lastZxid
  // Log traffic alongside the snapshot; track how long an append waits to be durable.
  const issuedAt: [number, number][] = []
  let appendLatencyMs = 0
  storage.onDurable((upTo) => {
    while (issuedAt.length > 0 && issuedAt[0]![0] <= upTo) {
      appendLatencyMs = Math.max(appendLatencyMs, performance.now() - issuedAt.shift()![1])
    }
  })
  const appender = setInterval(() => {
    const batch: LogEntry[] = []
    for (let i = 0; i < 20; i++) batch.push(entryOf(storage.lastZxid + 1 + i))
    storage.append(batch)
    issuedAt.push([storage.lastZxid, performance.now()])
  }, 2)
  const start = performance.now()
  storage.beginSnapshot(zxidStart)
  let written = 0
  let bytes = 0
  let drained: () => void = () => {}
  storage.onDrain(() => drained())
  while (written < records) {
    // One chunk per event-loop turn (as the tree serializes); above the high water mark, wait for onDrain.
    const count = Math.min(perChunk, records - written)
    const chunk = makeChunk(written, count)
    written += count
    bytes += chunk.byteLength
    if (storage.writeSnapshotChunk(chunk, { transfer: true })) await new Promise((r) => setImmediate(r))
    else await new Promise<void>((r) => (drained = r))
  }
  await new Promise<void>((resolve, reject) =>
    storage.finishSnapshot({ zxidEnd: storage.durableZxid, digest: 'bench' }, (err) =>
      err ? reject(err) : resolve(),
    ),
  )
  const seconds = (performance.now() - start) / 1000
  clearInterval(appender)
  clearInterval(probe)
  histogram.disable()
  await waiters.wait(storage.lastZxid)
  const stallMs = histogram.max / 1e6
  const appendedDuring = storage.lastZxid - firstAppended
  return { stallMs, probeGapMs, seconds, bytes, appendedDuring, appendLatencyMs, zxidStart }
}

function recoverRun(dir: string): { storage: Storage; line: string } {
  const t0 = performance.now()
  const storage = open(dir)
  const t1 = performance.now()
  let bytes = 0
  let chunks = 0
  for (const c of storage.recovery.snapshot?.chunks() ?? []) {
    bytes += c.byteLength
    chunks++
  }
  const t2 = performance.now()
  let replayed = 0
  for (const _ of storage.recovery.logEntries()) replayed++
  const t3 = performance.now()
  const line =
    `recovery: ${(t3 - t0).toFixed(0)} ms total = open+verify ${(t1 - t0).toFixed(0)} ms, ` +
    `read snapshot ${(t2 - t1).toFixed(0)} ms (${chunks} chunks, ${(bytes / 2 ** 20).toFixed(1)} MiB), ` +
    `replay ${(t3 - t2).toFixed(0)} ms (${replayed} entries after zxidStart)`
  return { storage, line }
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}

async function main(): Promise<void> {
  const records = Number(argValue('--records') ?? 1_000_000)
  const given = argValue('--dir')
  const dir = given ?? mkdtempSync(join(tmpdir(), 'conclave-bench-'))
  console.log(`storage bench: ${dir} (node ${process.version})`)
  try {
    let storage = open(dir)
    const waiters = new DurableWaiters(storage)
    for (const size of [1, 10, 100]) console.log(await groupCommitRun(storage, waiters, size, 3))
    console.log(await pipelinedRun(storage, waiters, 3))
    const snap = await snapshotRun(storage, waiters, records)
    console.log(
      `snapshot: ${records} records, ${(snap.bytes / 2 ** 20).toFixed(1)} MiB in ${snap.seconds.toFixed(2)} s ` +
        `with ${snap.appendedDuring} log appends alongside (slowest append->durable ${snap.appendLatencyMs.toFixed(1)} ms); ` +
        'longest event-loop stall ' +
        `${snap.stallMs.toFixed(1)} ms (monitorEventLoopDelay max), ${snap.probeGapMs.toFixed(1)} ms (1 ms interval probe gap)`,
    )
    await close(storage)
    const recovered = recoverRun(dir)
    storage = recovered.storage
    console.log(recovered.line)
    await close(storage)
  } finally {
    if (given === undefined) rmSync(dir, { recursive: true, force: true })
  }
}

void main()
