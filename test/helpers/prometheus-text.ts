/**
 * A strict parser of Prometheus's text exposition format (version 0.0.4),
 * written for the tests from the format's description: `# HELP` and
 * `# TYPE` lines, then a family's samples, contiguous. It throws on anything
 * a scraper could misread: a sample before its family's TYPE or HELP, a
 * family split in two, a repeated HELP or TYPE, a bad name, label or value,
 * a sample name that does not fit its type (a histogram's `_bucket` with
 * `le`, `_sum`, `_count`), a duplicate sample. `checkHistograms` checks the
 * buckets of every histogram; `checkMonotonic` compares two scrapes.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Family {
  name: string
  help: string
  type: MetricType
  samples: Sample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

export class ExpositionError extends Error {}

function fail(line: number, why: string): never {
  throw new ExpositionError(`line ${line}: ${why}`)
}

/** A value as Go's strconv.ParseFloat reads it (Prometheus's rule): NaN and Inf in any case. */
function parseValue(text: string, line: number): number {
  if (/^[+]?inf(inity)?$/i.test(text)) return Number.POSITIVE_INFINITY
  if (/^-inf(inity)?$/i.test(text)) return Number.NEGATIVE_INFINITY
  if (/^nan$/i.test(text)) return Number.NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) fail(line, `bad value ${JSON.stringify(text)}`)
  return Number(text)
}

/** `{a="x",b="y"}` from `at` (at '{'): the labels and where parsing stopped. */
function parseLabels(
  text: string,
  at: number,
  line: number,
): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {}
  let i = at + 1
  while (text[i] !== '}') {
    const eq = text.indexOf('=', i)
    if (eq < 0) fail(line, 'label without =')
    const name = text.slice(i, eq)
    if (!LABEL_NAME.test(name)) fail(line, `bad label name ${JSON.stringify(name)}`)
    if (name in labels) fail(line, `label ${name} twice`)
    if (text[eq + 1] !== '"') fail(line, `label ${name}: value not quoted`)
    let value = ''
    let j = eq + 2
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] !== '\\') {
        value += text[j]
        continue
      }
      const next = text[++j]
      if (next === 'n') value += '\n'
      else if (next === '\\' || next === '"') value += next
      else fail(line, `label ${name}: bad escape \\${next}`)
    }
    if (j >= text.length) fail(line, `label ${name}: unterminated value`)
    labels[name] = value
    i = j + 1
    if (text[i] === ',') i++
    else if (text[i] !== '}') fail(line, `after label ${name}: expected , or }`)
  }
  return { labels, end: i + 1 }
}

function sampleFamily(name: string, families: Map<string, Family>): Family | undefined {
  for (const suffix of ['', '_bucket', '_sum', '_count']) {
    if (suffix !== '' && !name.endsWith(suffix)) continue
    const f = families.get(name.slice(0, name.length - suffix.length))
    if (f !== undefined) return f
  }
  return undefined
}

function checkSampleName(f: Family, s: Sample, line: number): void {
  const suffix = s.name.slice(f.name.length)
  const ok =
    f.type === 'histogram'
      ? (suffix === '_bucket' && 'le' in s.labels) || suffix === '_sum' || suffix === '_count'
      : f.type === 'summary'
        ? (suffix === '' && 'quantile' in s.labels) || suffix === '_sum' || suffix === '_count'
        : suffix === ''
  if (!ok) fail(line, `sample ${s.name} does not fit ${f.type} ${f.name}`)
  if (f.type === 'counter' && !(s.value >= 0)) fail(line, `counter ${s.name} is ${s.value}`)
}

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const pending = new Map<string, { help?: string; type?: MetricType }>()
  const seen = new Set<string>()
  let current: Family | undefined
  /** The family the previous line belonged to: a family's lines (HELP, TYPE, samples) are one group. */
  let group: string | undefined
  if (!text.endsWith('\n')) throw new ExpositionError('the exposition must end with a newline')
  const lines = text.slice(0, -1).split('\n')
  for (const [n, raw] of lines.entries()) {
    const line = n + 1
    if (raw.trim() === '') continue
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw)
    if (meta !== null) {
      const [, kind, name, rest] = meta as unknown as [string, 'HELP' | 'TYPE', string, string]
      if (!METRIC_NAME.test(name)) fail(line, `bad metric name ${JSON.stringify(name)}`)
      if (families.has(name)) fail(line, `${kind} for ${name} after its samples`)
      if (pending.has(name) && group !== name) fail(line, `the lines of ${name} are not one group`)
      group = name
      const p = pending.get(name) ?? {}
      if (kind === 'HELP') {
        if (p.help !== undefined) fail(line, `HELP for ${name} twice`)
        if (rest.trim() === '') fail(line, `empty HELP for ${name}`)
        p.help = rest
      } else {
        if (p.type !== undefined) fail(line, `TYPE for ${name} twice`)
        if (!TYPES.has(rest as MetricType)) fail(line, `bad type ${JSON.stringify(rest)}`)
        p.type = rest as MetricType
      }
      pending.set(name, p)
      continue
    }
    if (raw.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(raw)
    if (m === null) fail(line, `not a sample: ${JSON.stringify(raw)}`)
    const name = m[1]!
    let labels: Record<string, string> = {}
    let rest = raw.slice(name.length)
    if (rest.startsWith('{')) {
      const parsed = parseLabels(raw, name.length, line)
      labels = parsed.labels
      rest = raw.slice(parsed.end)
    }
    const parts = rest.trim().split(/\s+/)
    if (!rest.startsWith(' ') || parts.length < 1 || parts.length > 2) fail(line, `bad sample: ${raw}`)
    const sample: Sample = { name, labels, value: parseValue(parts[0]!, line) }
    // A sample named exactly like a family whose HELP and TYPE just came starts that family
    // (`x_count` may be a gauge of its own after a family `x`).
    let family =
      current !== undefined && !pending.has(name) && sampleFamily(name, new Map([[current.name, current]]))
    if (!family) {
      let base: string | undefined
      for (const suffix of ['', '_bucket', '_sum', '_count']) {
        const candidate = name.slice(0, name.length - suffix.length)
        if (name.endsWith(suffix) && pending.has(candidate)) {
          base = candidate
          break
        }
      }
      if (base === undefined) fail(line, `sample ${name} without TYPE and HELP`)
      if (families.has(base) || sampleFamily(name, families) !== undefined || group !== base)
        fail(line, `family ${base} split in two (lines of another family in between)`)
      const p = pending.get(base)!
      if (p.type === undefined || p.help === undefined)
        fail(line, `family ${base} lacks ${p.type ? 'HELP' : 'TYPE'}`)
      family = { name: base, help: p.help, type: p.type, samples: [] }
      families.set(base, family)
      pending.delete(base)
      current = family
    }
    group = family.name
    checkSampleName(family, sample, line)
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seen.has(key)) fail(line, `duplicate sample ${key}`)
    seen.add(key)
    family.samples.push(sample)
  }
  // A family with no samples yet (a histogram nothing was observed in) is still a family.
  for (const [name, p] of pending) {
    if (p.type === undefined || p.help === undefined)
      throw new ExpositionError(`family ${name} lacks ${p.type === undefined ? 'TYPE' : 'HELP'}`)
    families.set(name, { name, help: p.help, type: p.type, samples: [] })
  }
  return families
}

/** Every histogram: per label set, ascending `le` ending in +Inf, cumulative counts, +Inf = _count, a _sum. */
export function checkHistograms(families: Map<string, Family>): void {
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue
    const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>()
    for (const s of f.samples) {
      const { le, ...rest } = s.labels
      const key = JSON.stringify(Object.entries(rest).sort())
      const entry = series.get(key) ?? { buckets: [] }
      series.set(key, entry)
      if (s.name.endsWith('_bucket')) entry.buckets.push([parseValue(le!, 0), s.value])
      else if (s.name.endsWith('_sum')) entry.sum = s.value
      else entry.count = s.value
    }
    for (const [key, e] of series) {
      const where = `${f.name}${key}`
      if (e.buckets.length === 0) throw new ExpositionError(`${where}: no buckets`)
      for (let i = 1; i < e.buckets.length; i++) {
        if (!(e.buckets[i]![0] > e.buckets[i - 1]![0]))
          throw new ExpositionError(`${where}: le not ascending`)
        if (e.buckets[i]![1] < e.buckets[i - 1]![1])
          throw new ExpositionError(`${where}: buckets not cumulative`)
      }
      const last = e.buckets.at(-1)!
      if (last[0] !== Number.POSITIVE_INFINITY) throw new ExpositionError(`${where}: no +Inf bucket`)
      if (e.count === undefined || e.sum === undefined)
        throw new ExpositionError(`${where}: no _count or _sum`)
      if (last[1] !== e.count)
        throw new ExpositionError(`${where}: +Inf bucket ${last[1]} != _count ${e.count}`)
    }
  }
}

/** Counters and histogram counts never go down from one scrape to the next (same server, same label set). */
export function checkMonotonic(before: Map<string, Family>, after: Map<string, Family>): void {
  for (const f of before.values()) {
    if (f.type !== 'counter' && f.type !== 'histogram') continue
    const later = after.get(f.name)
    if (later === undefined) throw new ExpositionError(`${f.name} disappeared`)
    const values = new Map(later.samples.map((s) => [`${s.name}${JSON.stringify(s.labels)}`, s.value]))
    for (const s of f.samples) {
      if (f.type === 'histogram' && s.name.endsWith('_sum')) continue
      const key = `${s.name}${JSON.stringify(s.labels)}`
      const v = values.get(key)
      if (v === undefined) throw new ExpositionError(`${key} disappeared`)
      if (v < s.value) throw new ExpositionError(`${key} went down: ${s.value} -> ${v}`)
    }
  }
}

/** The value of one sample (undefined if absent). */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const f of families.values())
    for (const s of f.samples)
      if (s.name === name && Object.keys(labels).every((k) => s.labels[k] === labels[k])) return s.value
  return undefined
}
