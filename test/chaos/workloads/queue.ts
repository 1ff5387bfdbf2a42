/**
 * Queue (recipes/queue.ts): two producers put unique items, two consumers
 * take them; after the faults heal, the queue is drained. Checked: no item
 * taken twice, no item taken that was never put, and every acknowledged put
 * taken exactly once — an item missing at the end is a lost item unless an
 * indeterminate take (one whose outcome the consumer never learned) can
 * account for it.
 */
import { Queue } from '../../../recipes/queue.js'
import type { ChaosEvent } from '../history.js'
import { codeOf, INDETERMINATE, live, sleep, type Verdict, type Workload } from './workload.js'

const NAME = 'queue'
const PATH = '/chaos-queue'
const dec = new TextDecoder()

/** Recipe errors other than the ZooKeeper codes that leave the outcome unknown count as indeterminate too, named. */
const classify = (err: unknown) => ({
  type: 'info' as const,
  error: INDETERMINATE.has(codeOf(err)) ? codeOf(err) : `${codeOf(err)}: ${(err as Error).message}`,
})

export const queue: Workload = {
  name: NAME,
  async run(ctx) {
    const producers = [0, 1].map(async (w) => {
      let zk = await ctx.connect()
      let q = new Queue(zk, PATH)
      const lane = ctx.lane()
      let n = 0
      while (performance.now() < ctx.deadline) {
        const next = await live(ctx, zk)
        if (next !== zk) q = new Queue((zk = next), PATH)
        const item = `c${lane}-${n++}`
        const got = await ctx.history.record(
          { workload: NAME, process: lane, f: 'put', key: PATH, value: item },
          () => q.put(item),
          classify,
          () => item,
        )
        // Paced so two consumers keep up over a long run (the drain at the end is bounded).
        await sleep(got.type === 'info' ? 50 : ctx.prng.int(5, 30) + w)
      }
    })
    const consumers = [0, 1].map(async () => {
      let zk = await ctx.connect()
      let q = new Queue(zk, PATH)
      const lane = ctx.lane()
      while (performance.now() < ctx.deadline) {
        const next = await live(ctx, zk)
        if (next !== zk) q = new Queue((zk = next), PATH)
        const got = await ctx.history.record(
          { workload: NAME, process: lane, f: 'take', key: PATH },
          () => q.take({ timeoutMs: 500 }),
          classify,
          (item) => (item === null ? null : dec.decode(item)),
        )
        if (got.type === 'info') await sleep(50)
      }
    })
    await Promise.all([...producers, ...consumers])
  },
  async finish(ctx) {
    // Drain: take until the queue answers empty (bounded).
    const q = new Queue(await ctx.connect(), PATH)
    const lane = ctx.lane()
    const until = performance.now() + 120_000
    while (performance.now() < until) {
      const got = await ctx.history.record(
        { workload: NAME, process: lane, f: 'drain', key: PATH },
        () => q.take({ timeoutMs: 1000 }),
        classify,
        (item) => (item === null ? null : dec.decode(item)),
      )
      if (got.type === 'ok' && got.result === null) return
      if (got.type === 'info') await sleep(200)
    }
  },
  check: (events) => checkQueue(events),
}

export function checkQueue(all: readonly ChaosEvent[]): Verdict {
  const events = all.filter((e) => e.workload === NAME)
  const problems: string[] = []
  const put = new Set<string>()
  const acked = new Set<string>()
  for (const e of events)
    if (e.f === 'put' && e.type !== 'fail') {
      put.add(e.value as string)
      if (e.type === 'ok') acked.add(e.value as string)
    }
  const taken = new Map<string, number>()
  let takes = 0
  let unsureTakes = 0
  for (const e of events) {
    if (e.f !== 'take' && e.f !== 'drain') continue
    if (e.type === 'info') {
      unsureTakes++
      continue
    }
    if (e.type !== 'ok' || e.result === null || e.result === undefined) continue
    const item = e.result as string
    takes++
    taken.set(item, (taken.get(item) ?? 0) + 1)
    if (!put.has(item)) problems.push(`${item} taken but never put`)
  }
  const fmt = (e: ChaosEvent) =>
    `[${e.invokedAt.toFixed(0)}, ${Number.isFinite(e.returnedAt) ? e.returnedAt.toFixed(0) : '?'}] ms`
  for (const [item, n] of taken) {
    if (n === 1) continue
    const p = events.find((e) => e.f === 'put' && e.value === item)
    const t = events.filter(
      (e) => (e.f === 'take' || e.f === 'drain') && e.type === 'ok' && e.result === item,
    )
    const early = p !== undefined && t.some((e) => e.returnedAt < p.returnedAt)
    problems.push(
      `${item} taken ${n} times (${t.map(fmt).join(', ')}; its put ${p !== undefined ? fmt(p) : 'not recorded'}${early ? ': taken before its put returned, so the put made the item again' : ''})`,
    )
  }
  const lost = [...acked].filter((i) => !taken.has(i))
  const drained = events.some((e) => e.f === 'drain' && e.type === 'ok' && e.result === null)
  // An item not taken is lost only if the drain emptied the queue without finding it.
  const list = `${lost.slice(0, 10).join(', ')}${lost.length > 10 ? ' …' : ''}`
  if (drained && lost.length > unsureTakes)
    problems.push(
      `${lost.length} acknowledged items never taken (${unsureTakes} indeterminate takes could explain as many): ${list}`,
    )
  const undecided = drained
    ? []
    : [
        `the final drain gave up before the queue was empty: ${lost.length} acknowledged items not taken yet (${list})`,
      ]
  return {
    workload: NAME,
    valid: problems.length > 0 ? false : drained && takes > 0 ? true : 'unknown',
    problems: [...problems, ...undecided],
    summary: `${acked.size} acknowledged puts (+${put.size - acked.size} indeterminate), ${takes} items taken, ${unsureTakes} indeterminate takes, ${lost.length} acknowledged items not taken`,
  }
}
