/**
 * The load generator's core: a closed-loop runner (C workers, each with one
 * request outstanding, for a fixed time) and a log-linear latency histogram
 * with percentiles (HdrHistogram's layout: 64 sub-buckets per power of two,
 * so any recorded value is off by less than 1/64 of itself).
 *
 * Invariants: every loop is bounded in time — a worker stops issuing at the
 * deadline and every operation is raced against opTimeoutMs, so run()
 * resolves at most deadline + opTimeoutMs after it starts. Only operations
 * that start inside the measured window (after the warm-up) are counted.
 * Bench-only: imports node:* freely, nothing of server/.
 */
import { performance } from 'node:perf_hooks'

const SUB_BUCKETS = 64
const BUCKETS = SUB_BUCKETS * 44

/** A latency histogram over whole microseconds; percentiles in milliseconds. */
export class Histogram {
  private readonly counts = new Float64Array(BUCKETS)
  count = 0
  private sumUs = 0
  private maxUs = 0

  private static index(us: number): number {
    if (us < 2 * SUB_BUCKETS) return us
    const shift = 31 - Math.clz32(us) - 6
    return Math.min(BUCKETS - 1, SUB_BUCKETS * shift + Math.floor(us / 2 ** shift))
  }

  /** The midpoint of a bucket's range, in microseconds. */
  private static value(index: number): number {
    if (index < 2 * SUB_BUCKETS) return index
    const shift = Math.floor(index / SUB_BUCKETS) - 1
    const low = (index - SUB_BUCKETS * shift) * 2 ** shift
    return low + 2 ** shift / 2
  }

  recordMs(ms: number): void {
    const us = Math.min(2 ** 31, Math.max(0, Math.round(ms * 1000)))
    this.counts[Histogram.index(us)]! += 1
    this.count++
    this.sumUs += us
    if (us > this.maxUs) this.maxUs = us
  }

  merge(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!
    this.count += other.count
    this.sumUs += other.sumUs
    this.maxUs = Math.max(this.maxUs, other.maxUs)
  }

  /** The q-quantile (0 < q <= 1) in ms; NaN when empty. */
  percentileMs(q: number): number {
    if (this.count === 0) return Number.NaN
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return Math.min(Histogram.value(i), this.maxUs) / 1000
    }
    return this.maxUs / 1000
  }

  get maxMs(): number {
    return this.count === 0 ? Number.NaN : this.maxUs / 1000
  }

  get meanMs(): number {
    return this.count === 0 ? Number.NaN : this.sumUs / this.count / 1000
  }

  summary(): LatencySummary {
    return {
      p50: this.percentileMs(0.5),
      p99: this.percentileMs(0.99),
      p999: this.percentileMs(0.999),
      max: this.maxMs,
      mean: this.meanMs,
      count: this.count,
    }
  }
}

export interface LatencySummary {
  p50: number
  p99: number
  p999: number
  max: number
  mean: number
  count: number
}

/** Exact percentiles of a small sample (may be negative, unlike the histogram). */
export function summarizeSample(values: readonly number[]): LatencySummary {
  const v = [...values].sort((a, b) => a - b)
  const at = (q: number) => (v.length === 0 ? Number.NaN : v[Math.max(0, Math.ceil(q * v.length) - 1)]!)
  return {
    p50: at(0.5),
    p99: at(0.99),
    p999: at(0.999),
    max: v.length === 0 ? Number.NaN : v[v.length - 1]!,
    mean: v.length === 0 ? Number.NaN : v.reduce((a, x) => a + x, 0) / v.length,
    count: v.length,
  }
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  const mid = Math.floor(v.length / 2)
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
}

/** Rejects with `Error('timeout')` if the promise has not settled within ms. */
export function withTimeout<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`)), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

export class TimeoutError extends Error {
  override name = 'TimeoutError'
}

/** A short, stable name for an error: the ZkError code, or the error's name. */
export function errorName(err: unknown): string {
  if (err instanceof TimeoutError) return 'TIMEOUT'
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') return code
  return err instanceof Error ? err.name : String(err)
}

export interface ClosedLoopOptions {
  concurrency: number
  durationMs: number
  warmupMs: number
  /** Each operation is abandoned (counted as TIMEOUT) after this long. */
  opTimeoutMs: number
  /** Throughput is also measured per slice; their median and spread show the noise. */
  slices?: number
  /** One operation of worker `worker`; `kind` names the histogram it is recorded in. */
  op: (worker: number, seq: number) => Promise<string | undefined>
  /** Called when the measured window opens and closes (CPU sampling). */
  onWindowStart?: () => void
  onWindowEnd?: () => void
}

export interface ClosedLoopResult {
  ops: number
  errors: number
  errorNames: Record<string, number>
  windowMs: number
  /** Ops/s over the whole window. */
  throughput: number
  /** Ops/s per slice: median and (max - min) / median in percent. */
  sliceMedian: number
  spreadPct: number
  /** All operations, and per `kind` when op() returns one. */
  latency: Histogram
  byKind: Map<string, Histogram>
}

/** Runs C workers in a closed loop for warmupMs + durationMs. */
export async function runClosedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const slices = o.slices ?? 5
  const start = performance.now()
  const windowStart = start + o.warmupMs
  const deadline = windowStart + o.durationMs
  const sliceMs = o.durationMs / slices
  const sliceOps = new Array<number>(slices).fill(0)
  const latency = new Histogram()
  const byKind = new Map<string, Histogram>()
  const errorNames: Record<string, number> = {}
  let ops = 0
  let errors = 0
  let opened = false
  const openWindow = () => {
    if (opened) return
    opened = true
    o.onWindowStart?.()
  }
  const windowTimer = setTimeout(openWindow, o.warmupMs)
  const worker = async (w: number) => {
    for (let seq = 0; ; seq++) {
      const t0 = performance.now()
      if (t0 >= deadline) return
      try {
        const kind = await withTimeout(o.op(w, seq), o.opTimeoutMs)
        const t1 = performance.now()
        if (t0 < windowStart) continue
        ops++
        latency.recordMs(t1 - t0)
        const slice = Math.min(slices - 1, Math.floor((t0 - windowStart) / sliceMs))
        sliceOps[slice]! += 1
        if (kind !== undefined) {
          let h = byKind.get(kind)
          if (h === undefined) byKind.set(kind, (h = new Histogram()))
          h.recordMs(t1 - t0)
        }
      } catch (err) {
        // An error can come back at once (the server is gone); do not spin.
        await new Promise((r) => setTimeout(r, 5))
        if (t0 < windowStart) continue
        errors++
        const name = errorName(err)
        errorNames[name] = (errorNames[name] ?? 0) + 1
      }
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, (_, w) => worker(w)))
  clearTimeout(windowTimer)
  openWindow()
  o.onWindowEnd?.()
  const rates = sliceOps.map((n) => n / (sliceMs / 1000))
  const sliceMedian = median(rates)
  return {
    ops,
    errors,
    errorNames,
    windowMs: o.durationMs,
    throughput: ops / (o.durationMs / 1000),
    sliceMedian,
    spreadPct: sliceMedian > 0 ? ((Math.max(...rates) - Math.min(...rates)) / sliceMedian) * 100 : Number.NaN,
    latency,
    byKind,
  }
}

/** Runs `fn` over items with at most `limit` in flight; settles every one. */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0
  const run = async () => {
    while (next < items.length) {
      const i = next++
      await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run))
}
