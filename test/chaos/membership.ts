/**
 * The membership side of the nemesis: every reconfig it issues and every
 * read of /zookeeper/config it makes goes into the history as an operation
 * of the `membership` lane (its invocation, ok / failed / indeterminate, the
 * config version), so the timeline shows them and a checker can judge them.
 *
 * A membership fault is healed by restoring the original membership (the
 * static configuration): read the config (`sync` + read); if its members
 * differ, reconfig to the original list (`newMembers`); again until it
 * holds, within a bound. Each restore is one `restore` operation (ok with
 * the config it left, or indeterminate when the bound ran out). At the end,
 * every member's /zookeeper/config is read (`final`).
 *
 * The checker (checkMembership, pure, self-tested in
 * test/unit/chaos/membership.test.ts):
 *   - an acknowledged reconfig produced what it asked for (the members it
 *     named joined, the ids it named left; a whole list, exactly that list);
 *   - one version is one config: every read and result of a version shows
 *     the same text;
 *   - versions move forward in real time: an operation invoked after another
 *     returned sees at least its version, and a reconfig a higher one;
 *   - no refused reconfig took effect: the versions seen that no
 *     acknowledged reconfig made are at most the indeterminate reconfigs;
 *   - the last restore succeeded, and afterwards every member of the
 *     configuration serves exactly that configuration (version and text).
 */
import type { ReconfigOptions } from '../../client/index.js'
import type { ChaosCluster, ConfigRead } from './cluster.js'
import type { ChaosEvent, History } from './history.js'
import { classifier, sleep, type Verdict } from './workloads/workload.js'

export const MEMBERSHIP = 'membership'

/** Why the nemesis made an operation: a fault, the heal after it, or the final reads. */
export type Purpose = 'fault' | 'heal' | 'final'

/** Codes with which a reconfig is refused before anything changes. */
const REFUSED = [
  'BAD_ARGUMENTS',
  'BAD_VERSION',
  'NEW_CONFIG_NO_QUORUM',
  'RECONFIG_IN_PROGRESS',
  'RECONFIG_DISABLED',
  'NO_AUTH',
  'UNIMPLEMENTED',
  'NOT_READ_ONLY',
]

/** Longest the nemesis waits for one reconfig or read (the SDK itself has no request timeout). */
const OP_TIMEOUT_MS = 30_000
/** How long a restore of the original membership may take. */
export const RESTORE_BOUND_MS = 60_000

class NemesisTimeout extends Error {
  override name = 'OPERATION_TIMEOUT'
}

class RestoreTimeout extends Error {
  override name = 'RESTORE_TIMEOUT'
}

function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NemesisTimeout(`no answer in ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/** A refused reconfig failed; a lost answer, a timeout or a restore out of time are indeterminate. */
const classify = classifier(REFUSED, ['RESTORE_TIMEOUT'])

const sortedLines = (text: string) => text.split('\n').sort().join('\n')
const hex = (v: number) => `0x${v.toString(16)}`

/** A config operation's result as the history holds it. */
interface ConfigResult {
  readonly version: number
  readonly config: string
}

const resultOf = (r: ConfigRead): ConfigResult => ({ version: r.version, config: r.text })

export class MembershipNemesis {
  /** The static configuration, which every heal restores. */
  readonly original: string
  /** Whether the last restore succeeded (true before any). */
  restored = true

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly history: History,
    private readonly lane: number,
    private readonly log: (line: string) => void,
  ) {
    const r = cluster.reconfig
    if (r === undefined) throw new Error(`${cluster.name}: no membership changes`)
    this.original = cluster.members
      .map((m) => r.line(m.id, m.observer ? 'observer' : 'participant'))
      .join('\n')
  }

  private get ops() {
    return this.cluster.reconfig!
  }

  /** A reconfig, recorded; resolves to what the history says of it (never throws for a refusal). */
  async change(
    opts: ReconfigOptions,
    purpose: Purpose,
  ): Promise<{ type: ChaosEvent['type']; result?: ConfigRead; error?: string }> {
    let error: string | undefined
    const r = await this.history.record(
      { workload: MEMBERSHIP, process: this.lane, f: 'reconfig', value: { ...opts, purpose } },
      () => bounded(this.ops.reconfig(opts), OP_TIMEOUT_MS),
      (err) => {
        const c = classify(err)
        error = c.error
        return c
      },
      resultOf,
    )
    return {
      type: r.type,
      ...(r.result !== undefined ? { result: r.result } : {}),
      ...(error ? { error } : {}),
    }
  }

  /** `sync` + /zookeeper/config (through any member, or member `id`), recorded. */
  async read(purpose: Purpose, id?: number): Promise<ConfigRead | undefined> {
    const r = await this.history.record(
      {
        workload: MEMBERSHIP,
        process: this.lane,
        f: 'read-config',
        ...(id !== undefined ? { key: `n${id}` } : {}),
        value: { purpose },
      },
      () => bounded(this.ops.read(id), OP_TIMEOUT_MS),
      classify,
      resultOf,
    )
    return r.result
  }

  /** A change's outcome in a few words (for the fault's detail). */
  static describe(r: { type: ChaosEvent['type']; result?: ConfigRead; error?: string }): string {
    return r.type === 'ok'
      ? `ok, version ${hex(r.result!.version)}`
      : `${r.type === 'fail' ? 'refused' : 'indeterminate'} ${r.error}`
  }

  /**
   * Restores the original membership within `boundMs`: reads the config, and
   * while its members differ, reconfigs to the original list. Recorded as one
   * `restore` operation (plus each read and reconfig it made).
   */
  async restore(boundMs = RESTORE_BOUND_MS): Promise<boolean> {
    const until = performance.now() + boundMs
    const r = await this.history.record(
      { workload: MEMBERSHIP, process: this.lane, f: 'restore', value: { target: this.original } },
      async () => {
        for (let attempt = 0; ; attempt++) {
          if (attempt > 0) {
            if (performance.now() > until) throw new RestoreTimeout(`not restored in ${boundMs} ms`)
            await sleep(300)
          }
          const now = await this.read('heal')
          if (now === undefined) continue
          if (sortedLines(now.text) === sortedLines(this.original)) return now
          const c = await this.change({ newMembers: this.original.split('\n') }, 'heal')
          if (c.type === 'ok') return c.result!
        }
      },
      classify,
      resultOf,
    )
    this.restored = r.type === 'ok'
    if (!this.restored) this.log(`nemesis: could not restore the membership in ${boundMs} ms`)
    return this.restored
  }

  /**
   * After the run: restores the membership if the last restore did not, then
   * reads /zookeeper/config on every member until it shows the version the
   * restore left (bounded; the last read of each is what the checker judges).
   */
  async finish(boundMs = 30_000): Promise<void> {
    if (!this.restored) await this.restore()
    const expected = this.lastRestored()
    const until = performance.now() + boundMs
    for (const m of this.cluster.members) {
      for (;;) {
        const r = await this.read('final', m.id)
        if ((r !== undefined && r.version === expected?.version) || performance.now() > until) break
        await sleep(300)
      }
    }
  }

  private lastRestored(): ConfigResult | undefined {
    const last = this.history.events.filter((e) => e.workload === MEMBERSHIP && e.f === 'restore').at(-1)
    return last?.type === 'ok' ? (last.result as ConfigResult) : undefined
  }
}

/** The ids a config text names. */
function idsOf(config: string): number[] {
  return config
    .split('\n')
    .map((l) => Number(/^server\.(\d+)=/.exec(l)?.[1]))
    .filter((n) => Number.isInteger(n))
}

const listOf = (v: unknown): string[] =>
  v === undefined || v === null
    ? []
    : (Array.isArray(v) ? v : [v])
        .flatMap((x) => String(x).split(','))
        .map((x) => x.trim())
        .filter((x) => x !== '')

/** Pure: the verdict on the membership lane's operations (see the header). */
export function checkMembership(events: readonly ChaosEvent[]): Verdict {
  const ops = events.filter((e) => e.workload === MEMBERSHIP)
  const problems: string[] = []
  const at = (e: ChaosEvent) =>
    `${e.f}${e.key ? ` ${e.key}` : ''} [${e.invokedAt.toFixed(0)}, ${Number.isFinite(e.returnedAt) ? e.returnedAt.toFixed(0) : '∞'}] ms`
  const res = (e: ChaosEvent) => e.result as ConfigResult
  const reconfigs = ops.filter((e) => e.f === 'reconfig')
  // An acknowledged reconfig produced what it asked for.
  for (const e of reconfigs.filter((x) => x.type === 'ok')) {
    const v = (e.value ?? {}) as { joining?: unknown; leaving?: unknown; newMembers?: unknown }
    const lines = res(e).config.split('\n')
    const whole = listOf(v.newMembers)
    if (whole.length > 0 && sortedLines(whole.join('\n')) !== sortedLines(res(e).config))
      problems.push(
        `${at(e)} asked for ${JSON.stringify(whole)} and produced ${JSON.stringify(res(e).config)}`,
      )
    for (const line of listOf(v.joining))
      if (!lines.includes(line))
        problems.push(`${at(e)}: ${line} did not join (${JSON.stringify(res(e).config)})`)
    for (const id of listOf(v.leaving))
      if (idsOf(res(e).config).includes(Number(id)))
        problems.push(`${at(e)}: server ${id} did not leave (${JSON.stringify(res(e).config)})`)
  }
  // One version, one config; versions forward in real time.
  const seen = ops.filter((e) => e.type === 'ok' && (e.f === 'reconfig' || e.f === 'read-config'))
  const textOf = new Map<number, { text: string; by: ChaosEvent }>()
  for (const e of seen) {
    const prior = textOf.get(res(e).version)
    if (prior === undefined) textOf.set(res(e).version, { text: res(e).config, by: e })
    else if (prior.text !== res(e).config)
      problems.push(
        `version ${hex(res(e).version)} is two configs: ${JSON.stringify(prior.text)} (${at(prior.by)}) and ${JSON.stringify(res(e).config)} (${at(e)})`,
      )
  }
  for (const a of seen)
    for (const b of seen) {
      if (!(a.returnedAt < b.invokedAt)) continue
      const strict = b.f === 'reconfig'
      if (res(b).version < res(a).version || (strict && res(b).version === res(a).version))
        problems.push(
          `${at(b)} saw version ${hex(res(b).version)} after ${at(a)} had returned version ${hex(res(a).version)}`,
        )
    }
  // A refused reconfig changed nothing: versions no acknowledged reconfig made are indeterminate ones'.
  const made = new Set(reconfigs.filter((e) => e.type === 'ok').map((e) => res(e).version))
  const unexplained = [...textOf.keys()].filter((v) => v !== 0 && !made.has(v))
  const indeterminate = reconfigs.filter((e) => e.type === 'info').length
  if (unexplained.length > indeterminate)
    problems.push(
      `${unexplained.length} config versions (${unexplained.map(hex).join(', ')}) came from no acknowledged reconfig, but only ${indeterminate} reconfigs were indeterminate: a refused one took effect`,
    )
  // The last restore held, and every member serves what it left.
  const restores = ops.filter((e) => e.f === 'restore')
  const last = restores.at(-1)
  const finals = new Map<string, ChaosEvent>()
  for (const e of ops)
    if (e.f === 'read-config' && (e.value as { purpose?: string })?.purpose === 'final')
      finals.set(e.key ?? '', e)
  if (last === undefined) {
    if (reconfigs.length > 0) problems.push('reconfigs were made, but the membership was never restored')
  } else if (last.type !== 'ok') {
    problems.push(`the last restore of the original membership did not succeed (${last.error}): ${at(last)}`)
  } else {
    const want = res(last)
    const target = (last.value as { target?: string } | undefined)?.target
    if (target !== undefined && sortedLines(target) !== sortedLines(want.config))
      problems.push(
        `the last restore left ${JSON.stringify(want.config)}, not the original ${JSON.stringify(target)}`,
      )
    for (const id of idsOf(want.config)) {
      const f = finals.get(`n${id}`)
      if (f === undefined) problems.push(`n${id}: no final read of /zookeeper/config`)
      else if (f.type !== 'ok')
        problems.push(`n${id}: /zookeeper/config unreadable at the end (${f.error}, ${at(f)})`)
      else if (res(f).version !== want.version || res(f).config !== want.config)
        problems.push(
          `n${id} serves config version ${hex(res(f).version)} ${JSON.stringify(res(f).config)} at the end, not the restored ${hex(want.version)} ${JSON.stringify(want.config)}`,
        )
    }
  }
  const n = (t: ChaosEvent['type']) => reconfigs.filter((e) => e.type === t).length
  return {
    workload: MEMBERSHIP,
    valid: problems.length === 0,
    problems,
    summary: `${reconfigs.length} reconfigs (${n('ok')} ok, ${n('fail')} refused, ${n('info')} indeterminate), ${restores.length} restores, ${finals.size} members read at the end, ${textOf.size} config versions seen`,
  }
}
