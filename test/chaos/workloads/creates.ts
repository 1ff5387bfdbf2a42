/**
 * Two workloads of sequential creates under a few parents, each child named
 * `<token>-<sequence>` where the token (client and count) is unique, so the
 * final listing shows which creates took effect:
 *
 * - sequential (the SDK's exactly-once retries off, ZooKeeper's semantics:
 *   a create whose connection is lost is indeterminate): names unique per
 *   parent, and sequence numbers monotonic in creation order for creates
 *   that did not overlap in real time; every acknowledged create is in the
 *   final listing with the name it was given, nothing is there that was
 *   never sent, and no token is there twice.
 * - exactly-once (the SDK's default against Conclave: creates retried
 *   across failovers with the same xid, each applied once): the same
 *   checks, the point being the count — the children number at least the
 *   acknowledged creates and at most those plus the indeterminate ones, and
 *   no token appears twice (a create applied twice would).
 */
import { CreateMode } from '../../../client/index.js'
import { ensurePath } from '../../../recipes/znodes.js'
import type { ChaosEvent } from '../history.js'
import {
  classifier,
  live,
  retrying,
  sleep,
  type Verdict,
  type Workload,
  type WorkloadContext,
} from './workload.js'

const PARENTS = 2

function createsWorkload(name: 'sequential' | 'exactly-once', exactlyOnce: boolean): Workload {
  const parent = (i: number) => `/chaos-${name}-${i}`
  const classify = classifier(['NO_NODE', 'NODE_EXISTS'])
  return {
    name,
    async run(ctx) {
      await Promise.all(
        [0, 1].map(async (w) => {
          let zk = await ctx.connect({ exactlyOnce })
          const lane = ctx.lane()
          const prng = ctx.prng.fork(`${name}-${w}`)
          for (let i = 0; i < PARENTS; i++)
            await retrying(`create ${parent(i)}`, () => ensurePath(zk, parent(i)))
          let n = 0
          while (performance.now() < ctx.deadline) {
            zk = await live(ctx, zk, { exactlyOnce })
            const p = parent(prng.int(0, PARENTS - 1))
            const token = `c${lane}-${n++}`
            const got = await ctx.history.record(
              { workload: name, process: lane, f: 'create', key: p, value: token },
              () => zk.create(`${p}/${token}-`, '', { mode: CreateMode.persistentSequential }),
              classify,
              (path) => path.slice(p.length + 1),
            )
            if (got.type === 'info') await sleep(50)
          }
        }),
      )
    },
    async finish(ctx) {
      const zk = await ctx.connect({ exactlyOnce })
      const lane = ctx.lane()
      for (let i = 0; i < PARENTS; i++) {
        const p = parent(i)
        await retrying(`list ${p}`, async () => {
          await zk.sync(p)
          const invokedAt = ctx.history.now()
          const names = await zk.getChildren(p)
          ctx.history.add({
            workload: name,
            process: lane,
            f: 'list',
            key: p,
            type: 'ok',
            result: names,
            invokedAt,
            returnedAt: ctx.history.now(),
          })
        })
      }
    },
    check: (events) => checkCreates(name, events),
  }
}

export const sequential = createsWorkload('sequential', false)
export const exactlyOnce = createsWorkload('exactly-once', true)

const seqOf = (child: string) => Number(child.slice(child.lastIndexOf('-') + 1))
const tokenOf = (child: string) => child.slice(0, child.lastIndexOf('-'))

export function checkCreates(name: string, all: readonly ChaosEvent[]): Verdict {
  const events = all.filter((e) => e.workload === name)
  const problems: string[] = []
  const parents = new Set(events.map((e) => e.key!))
  let ok = 0
  let info = 0
  let children = 0
  let applied = 0
  for (const p of [...parents].sort()) {
    const creates = events.filter((e) => e.key === p && e.f === 'create')
    const acked = creates.filter((e) => e.type === 'ok')
    const unsure = creates.filter((e) => e.type === 'info')
    ok += acked.length
    info += unsure.length
    // Unique names.
    const byName = new Map<string, ChaosEvent>()
    for (const e of acked) {
      const child = e.result as string
      const other = byName.get(child)
      if (other !== undefined)
        problems.push(`${p}/${child} given to two creates (${other.value}, ${e.value})`)
      byName.set(child, e)
      if (tokenOf(child) !== e.value) problems.push(`${p}: create ${e.value} answered ${child}`)
    }
    // Monotonic for creates that did not overlap: sweep by invocation, with every create
    // that returned before it (sorted by return) folded into a running maximum.
    const byInvoke = [...acked].sort((a, b) => a.invokedAt - b.invokedAt)
    const byReturn = [...acked].sort((a, b) => a.returnedAt - b.returnedAt)
    let j = 0
    let max: ChaosEvent | undefined
    for (const b of byInvoke) {
      while (j < byReturn.length && byReturn[j]!.returnedAt < b.invokedAt) {
        const a = byReturn[j++]!
        if (max === undefined || seqOf(a.result as string) > seqOf(max.result as string)) max = a
      }
      if (max !== undefined && seqOf(max.result as string) >= seqOf(b.result as string))
        problems.push(
          `${p}: ${b.value} got ${b.result} at [${b.invokedAt.toFixed(0)}, ${b.returnedAt.toFixed(0)}] ms, after ${max.value} got ${max.result} at [${max.invokedAt.toFixed(0)}, ${max.returnedAt.toFixed(0)}] ms`,
        )
    }
    // The final listing.
    const list = events.find((e) => e.key === p && e.f === 'list' && e.type === 'ok')
    if (list === undefined) {
      problems.push(`${p}: no final listing (the ensemble never came back?)`)
      continue
    }
    const listed = list.result as string[]
    children += listed.length
    const sent = new Set(creates.map((e) => e.value as string))
    const tokens = new Map<string, string>()
    for (const child of listed) {
      const t = tokenOf(child)
      if (!sent.has(t)) problems.push(`${p}/${child}: a child no create was sent for`)
      const twice = tokens.get(t)
      if (twice !== undefined) problems.push(`${p}: create ${t} applied twice (${twice}, ${child})`)
      tokens.set(t, child)
    }
    const present = new Set(listed)
    for (const e of acked)
      if (!present.has(e.result as string)) problems.push(`${p}/${e.result}: acknowledged, then lost`)
    applied += unsure.filter((e) => tokens.has(e.value as string)).length
  }
  if (children < ok || children > ok + info)
    problems.push(`${children} children for ${ok} acknowledged and ${info} indeterminate creates`)
  return {
    workload: name,
    valid: problems.length > 0 ? false : ok === 0 ? 'unknown' : true,
    problems: (ok === 0 ? [...problems, 'no create was acknowledged: nothing checked'] : problems)
      .slice(0, 20)
      .concat(problems.length > 20 ? [`… ${problems.length - 20} more`] : []),
    summary: `${ok} acknowledged + ${info} indeterminate creates (${applied} of those applied) → ${children} children under ${parents.size} parents`,
  }
}

export type { WorkloadContext }
