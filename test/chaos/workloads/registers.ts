/**
 * Registers: a few znodes used as registers by several clients — reads
 * (`sync` then `getData`, or `getData` alone with --reads plain), blind
 * writes, compare-and-set on the version and creates — and each znode's
 * history checked for linearizability (../linearizability.ts). Indeterminate
 * reads are dropped (they constrain nothing); indeterminate writes may have
 * happened at any time after their invocation, or never.
 */
import type { Client } from '../../../client/index.js'
import type { Prng } from '../../../server/core/prng.js'
import type { ChaosEvent } from '../history.js'
import {
  anonymizeUnobserved,
  checkPartitioned,
  type Operation,
  type RegisterInput,
  type RegisterOutput,
  znodeRegister,
} from '../linearizability.js'
import { classifier, live, sleep, type Verdict, type Workload, type WorkloadContext } from './workload.js'

const NAME = 'registers'
const dec = new TextDecoder()
type Op = Operation<RegisterInput, RegisterOutput>

export const registers: Workload = {
  name: NAME,
  async run(ctx) {
    const n = Math.max(2, ctx.clients)
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        await worker(
          await ctx.connect({ sessionTimeoutMs: 8000 }),
          ctx.lane(),
          ctx.prng.fork(`registers-${i}`),
          ctx,
        )
      }),
    )
  },
  check(events) {
    return checkRegisters(events)
  },
}

/** Step budget per key: an undecided key is named, never passed. */
export const REGISTER_STEPS_PER_KEY = 5_000_000

export function checkRegisters(events: readonly ChaosEvent[], maxSteps = REGISTER_STEPS_PER_KEY): Verdict {
  const byKey = new Map([...registerHistories(events)].map(([k, ops]) => [k, anonymizeUnobserved(ops)]))
  const r = checkPartitioned(znodeRegister, byKey, maxSteps)
  const ops = [...byKey.values()].reduce((a, l) => a + l.length, 0)
  const problems = [
    ...r.illegal.map((i) => `${i.key} is not linearizable:\n${describe(byKey.get(i.key) ?? [], i.longest)}`),
    ...r.unknown.map((k) => `${k}: undecided after ${maxSteps} steps (${byKey.get(k)?.length ?? 0} ops)`),
  ]
  return {
    workload: NAME,
    valid: r.illegal.length > 0 ? false : r.unknown.length > 0 ? 'unknown' : true,
    problems,
    summary: `${byKey.size} keys, ${ops} operations checked for linearizability in ${r.steps} steps`,
  }
}

/** The server each operation completed on, for describing an anomaly. */
const servers = new WeakMap<Op, string>()

/** Each key's operations, as the checker takes them (indeterminate reads dropped). */
export function registerHistories(events: readonly ChaosEvent[]): Map<string, Op[]> {
  const byKey = new Map<string, Op[]>()
  for (const e of events) {
    if (e.workload !== NAME || e.key === undefined) continue
    if (e.type === 'info' && e.f === 'read') continue
    let list = byKey.get(e.key)
    if (list === undefined) byKey.set(e.key, (list = []))
    const op: Op = {
      client: e.process,
      input: e.value as RegisterInput,
      output: e.type === 'info' ? undefined : (e.result as RegisterOutput),
      invokedAt: e.invokedAt,
      returnedAt: e.type === 'info' ? Number.POSITIVE_INFINITY : e.returnedAt,
    }
    if (e.server !== undefined) servers.set(op, ` (${e.server})`)
    list.push(op)
  }
  return byKey
}

/**
 * The anomaly, minimised for reading: the first operation the search could
 * not place (the earliest-returning one outside the longest linearizable
 * prefix), every operation that overlapped it, and the last operations the
 * prefix placed (in that order, so the register's state is readable). The
 * whole history stays in the run folder.
 */
function describe(ops: readonly Op[], linearized: readonly number[]): string {
  const set = new Set(linearized)
  const line = (i: number, mark: string) => {
    const o = ops[i]!
    const end = o.returnedAt === Number.POSITIVE_INFINITY ? '?' : o.returnedAt.toFixed(1)
    const at = servers.get(o) ?? ''
    return `${mark} c${o.client} [${o.invokedAt.toFixed(1)}, ${end}] ${znodeRegister.describe!(o.input, o.output)}${at}`
  }
  let culprit: number | undefined
  ops.forEach((o, i) => {
    if (
      !set.has(i) &&
      Number.isFinite(o.returnedAt) &&
      (culprit === undefined || o.returnedAt < ops[culprit]!.returnedAt)
    )
      culprit = i
  })
  if (culprit === undefined) return 'no operation left unplaced'
  const c = ops[culprit]!
  const overlapping = ops
    .map((_, i) => i)
    .filter((i) => i !== culprit && ops[i]!.invokedAt <= c.returnedAt && ops[i]!.returnedAt >= c.invokedAt)
    .slice(0, 30)
  return [
    `the last ${Math.min(8, linearized.length)} operations placed, in order:`,
    ...linearized.slice(-8).map((i) => line(i, '*')),
    'could not place:',
    line(culprit, '!'),
    `overlapping it (${overlapping.length}${overlapping.length === 30 ? '+' : ''}; * placed):`,
    ...overlapping.map((i) => line(i, set.has(i) ? '*' : ' ')),
  ].join('\n')
}

const classify = classifier(['NO_NODE', 'BAD_VERSION', 'NODE_EXISTS'])

async function worker(first: Client, lane: number, prng: Prng, ctx: WorkloadContext): Promise<void> {
  let seq = 0
  let lastVersion = 0
  let zk = first
  while (performance.now() < ctx.deadline) {
    zk = await live(ctx, zk, { sessionTimeoutMs: 8000 })
    const key = `/chaos-reg-${prng.int(0, ctx.keys - 1)}`
    const r = prng.int(0, 99)
    const value = `c${lane}-${seq++}`
    const input: RegisterInput =
      r < 45
        ? { f: 'read' }
        : r < 75
          ? { f: 'write', value }
          : r < 93
            ? { f: 'cas', value, version: lastVersion }
            : { f: 'create', value }
    const got = await ctx.history.record(
      { workload: NAME, process: lane, f: input.f, key, value: input },
      () => perform(zk, key, input, ctx.reads),
      (err) => {
        const c = classify(err)
        return c.type === 'fail' ? { ...c, result: { ok: false, error: c.error } } : c
      },
      undefined,
      () => zk.server,
    )
    if (got.type === 'ok' && got.result?.ok) lastVersion = got.result.version
    if (got.type === 'info') await sleep(50)
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
