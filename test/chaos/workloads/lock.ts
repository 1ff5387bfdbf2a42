/**
 * A lock with fencing tokens (recipes/lock.ts, recipes/fenced-resource.ts):
 * three clients contend for one lock; a holder makes a few protected writes
 * to a resource guarded by a FencedResource (the check a real store makes
 * atomically with its write), each recorded with its token and whether the
 * fence accepted it, then releases. A holder's grant ends at its release or
 * when the recipe reports the lock lost (session expired or suspect).
 *
 * Checked: the accepted protected writes are in token order (never an older
 * token after a newer one); no two grants share a token; and whenever two
 * grants overlapped in real time (the older holder not yet told it lost the
 * lock), the later one carries the higher token — so the fence rejects the
 * older holder's writes. Overlaps are counted: they are what fencing is for.
 */
import { FencedResource, StaleTokenError } from '../../../recipes/fenced-resource.js'
import { Lock } from '../../../recipes/lock.js'
import type { ChaosEvent } from '../history.js'
import { codeOf, sleep, type Verdict, type Workload } from './workload.js'

const NAME = 'lock'
const PATH = '/chaos-lock'
const RESOURCE = 'resource'

export const lock: Workload = {
  name: NAME,
  async run(ctx) {
    const guard = new FencedResource()
    const h = ctx.history
    await Promise.all(
      [0, 1, 2].map(async (w) => {
        const zk = await ctx.connect({ sessionTimeoutMs: 4000 })
        const lane = ctx.lane()
        const prng = ctx.prng.fork(`lock-${w}`)
        const l = new Lock(zk, PATH)
        let n = 0
        while (performance.now() < ctx.deadline) {
          const invokedAt = h.now()
          let grant: Awaited<ReturnType<Lock['acquire']>>
          try {
            grant = await l.acquire({ timeoutMs: 3000 })
          } catch (err) {
            h.add({
              workload: NAME,
              process: lane,
              f: 'acquire',
              key: PATH,
              type: 'info',
              error: `${codeOf(err)}: ${(err as Error).message}`.slice(0, 200),
              invokedAt,
              returnedAt: Number.POSITIVE_INFINITY,
            })
            await sleep(100)
            continue
          }
          const token = grant.fencingToken
          h.add({
            workload: NAME,
            process: lane,
            f: 'acquire',
            key: PATH,
            type: 'ok',
            result: token,
            invokedAt,
            returnedAt: h.now(),
          })
          let lostAt: number | undefined
          const onLost = () => {
            lostAt = h.now()
          }
          grant.signal.addEventListener('abort', onLost, { once: true })
          for (let i = 0; i < 3 && lostAt === undefined; i++) {
            const at = h.now()
            const value = `c${lane}-${n++}`
            try {
              guard.run(RESOURCE, token, () => value)
              h.add({
                workload: NAME,
                process: lane,
                f: 'write',
                key: RESOURCE,
                value: { token, value },
                type: 'ok',
                invokedAt: at,
                returnedAt: at,
              })
            } catch (err) {
              if (!(err instanceof StaleTokenError)) throw err
              h.add({
                workload: NAME,
                process: lane,
                f: 'write',
                key: RESOURCE,
                value: { token, value },
                type: 'fail',
                error: err.code,
                invokedAt: at,
                returnedAt: at,
              })
            }
            await sleep(prng.int(10, 80))
          }
          const releaseAt = h.now()
          if (lostAt !== undefined)
            h.add({
              workload: NAME,
              process: lane,
              f: 'lost',
              key: PATH,
              value: token,
              type: 'ok',
              invokedAt: lostAt,
              returnedAt: lostAt,
            })
          grant.signal.removeEventListener('abort', onLost)
          await h.record(
            { workload: NAME, process: lane, f: 'release', key: PATH, value: token },
            () => l.release(),
            (err) => ({ type: 'info', error: `${codeOf(err)}` }),
            () => releaseAt,
          )
          await sleep(prng.int(0, 50))
        }
      }),
    )
  },
  check: (events) => checkLock(events),
}

interface Grant {
  readonly process: number
  readonly token: number
  readonly from: number
  readonly to: number
}

export function checkLock(all: readonly ChaosEvent[]): Verdict {
  const events = all.filter((e) => e.workload === NAME)
  const problems: string[] = []
  // Grants: from the acquire's return to the release's invocation or the lost report.
  const grants: Grant[] = []
  const byProcess = new Map<number, ChaosEvent[]>()
  for (const e of events) {
    let l = byProcess.get(e.process)
    if (l === undefined) byProcess.set(e.process, (l = []))
    l.push(e)
  }
  for (const [process, list] of byProcess) {
    let open: { token: number; from: number } | undefined
    let end = Number.POSITIVE_INFINITY
    const close = () => {
      if (open !== undefined) grants.push({ process, token: open.token, from: open.from, to: end })
      open = undefined
      end = Number.POSITIVE_INFINITY
    }
    for (const e of list) {
      if (e.f === 'acquire' && e.type === 'ok') {
        close()
        open = { token: e.result as number, from: e.returnedAt }
      } else if (e.f === 'lost') end = Math.min(end, e.invokedAt)
      else if (e.f === 'release') {
        end = Math.min(end, e.invokedAt)
        close()
      }
    }
    close()
  }
  const tokens = new Map<number, Grant>()
  for (const g of grants) {
    const other = tokens.get(g.token)
    if (other !== undefined)
      problems.push(`token ${g.token} granted twice (c${other.process}, c${g.process})`)
    tokens.set(g.token, g)
  }
  grants.sort((a, b) => a.from - b.from)
  let overlaps = 0
  for (let i = 0; i < grants.length; i++)
    for (let j = i + 1; j < grants.length && grants[j]!.from < grants[i]!.to; j++) {
      overlaps++
      const [a, b] = [grants[i]!, grants[j]!]
      if (b.token <= a.token)
        problems.push(
          `c${b.process} was granted token ${b.token} at ${b.from.toFixed(0)} ms while c${a.process} held token ${a.token} (${a.from.toFixed(0)}–${a.to.toFixed(0)} ms): the fence cannot reject the older holder`,
        )
    }
  const writes = events.filter((e) => e.f === 'write')
  const accepted = writes.filter((e) => e.type === 'ok').sort((a, b) => a.invokedAt - b.invokedAt)
  let highest = Number.NEGATIVE_INFINITY
  for (const w of accepted) {
    const t = (w.value as { token: number }).token
    if (t < highest)
      problems.push(`write with token ${t} accepted at ${w.invokedAt.toFixed(0)} ms after token ${highest}`)
    highest = Math.max(highest, t)
  }
  return {
    workload: NAME,
    valid: problems.length > 0 ? false : grants.length === 0 ? 'unknown' : true,
    problems: grants.length === 0 ? [...problems, 'no grant: nothing checked'] : problems,
    summary: `${grants.length} grants, ${overlaps} overlapping in real time, ${accepted.length} protected writes accepted, ${writes.length - accepted.length} rejected as stale`,
  }
}
