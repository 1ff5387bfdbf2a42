/**
 * FastHistogram: a prom-client Histogram whose observations cost a few
 * nanoseconds, for the request path. prom-client's own observe() validates
 * the labels and builds a hash key on every call: ~1 µs here (measured with
 * 2,000,000 observations on the 2-core test machine), against ~10-30 ns for
 * a bucket search and two additions in a Float64Array. A request is answered
 * in tens of microseconds, so the difference is a few percent of a server's
 * throughput.
 *
 * So each label set is a Series, looked up once by the caller and kept;
 * `Series.observe` is the hot path. The registry (prom-client's, per server)
 * reads the counts at scrape time through `get()`, in prom-client's own
 * histogram shape: cumulative `_bucket{le=…}`, `+Inf`, `_sum`, `_count`.
 */
import { Histogram, type Registry } from 'prom-client'

type HistogramData<T extends string> = Awaited<ReturnType<Histogram<T>['get']>>
type HistogramValue<T extends string> = HistogramData<T>['values'][number]

/** One label set's buckets: `counts[i]` observations in (bounds[i-1], bounds[i]], the last past every bound. */
export class Series {
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor(private readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe(value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
  }
}

export interface FastHistogramOptions<T extends string> {
  name: string
  help: string
  labelNames?: readonly T[]
  /** Upper bounds, ascending (seconds for a duration, as Prometheus names them). */
  buckets: readonly number[]
  registers: Registry[]
}

export class FastHistogram<T extends string = string> extends Histogram<T> {
  private readonly bounds: Float64Array
  private readonly all = new Map<string, { labels: Partial<Record<T, string>>; series: Series }>()

  constructor(private readonly opts: FastHistogramOptions<T>) {
    super({
      name: opts.name,
      help: opts.help,
      labelNames: opts.labelNames ?? [],
      buckets: [...opts.buckets],
      registers: opts.registers,
    })
    this.bounds = Float64Array.from(opts.buckets)
    for (let i = 1; i < this.bounds.length; i++)
      if (!(this.bounds[i]! > this.bounds[i - 1]!)) throw new Error(`${opts.name}: buckets must ascend`)
  }

  /** The series of one label set (created on first use; keep it: looking it up is the slow part). */
  series(labels: Partial<Record<T, string>> = {}): Series {
    const key = (this.opts.labelNames ?? []).map((n) => labels[n] ?? '').join('\u0000')
    let entry = this.all.get(key)
    if (entry === undefined) {
      entry = { labels: { ...labels }, series: new Series(this.bounds) }
      this.all.set(key, entry)
    }
    return entry.series
  }

  override async get(): Promise<HistogramData<T>> {
    const values: HistogramValue<T>[] = []
    for (const { labels, series } of this.all.values()) {
      let cumulative = 0
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += series.counts[i]!
        const le = i < this.bounds.length ? this.bounds[i]! : '+Inf'
        const withLe = { ...labels, le }
        values.push({ labels: withLe, value: cumulative, metricName: `${this.opts.name}_bucket` })
      }
      values.push({ labels, value: series.sum, metricName: `${this.opts.name}_sum` })
      values.push({ labels, value: series.count, metricName: `${this.opts.name}_count` })
    }
    // prom-client's typings declare `type` a numeric enum; at run time (and in the text format) it is the string.
    const type = 'histogram' as unknown as HistogramData<T>['type']
    return { name: this.opts.name, help: this.opts.help, type, values, aggregator: 'sum', collect: () => {} }
  }

  /** What prom-client's registry reads for the text format (its own Histogram defines one too). */
  async getForPromString(): Promise<HistogramData<T>> {
    return this.get()
  }

  /** Zeroes every series (callers keep the series they hold). */
  override reset(): void {
    // prom-client's constructor calls reset() before this class's fields exist.
    if ((this.all as typeof this.all | undefined) === undefined) return super.reset()
    for (const { series } of this.all.values()) {
      series.counts.fill(0)
      series.sum = 0
      series.count = 0
    }
  }
}
