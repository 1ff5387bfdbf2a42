/**
 * A lock with fencing tokens (recipes/lock.ts, recipes/fenced-resource.ts):
 * three client processes (../lock-holder.ts) contend for one lock; a holder
 * makes a few protected writes, which the harness checks against a
 * FencedResource as they arrive (the check a real store makes atomically
 * with its write), each recorded with its token and whether the fence
 * accepted it, then releases. Every few seconds the harness freezes a
 * holder (SIGSTOP) past its session's expiry — mostly one that holds the
 * lock — so another is granted it while the frozen one still believes it
 * holds. A grant ends at its release or when the recipe reports the lock
 * lost (session expired or suspect).
 *
 * Checked: the accepted protected writes are in token order (never an older
 * token after a newer one); no two grants share a token; and whenever two
 * grants overlapped in real time (the older holder not yet told it lost the
 * lock), the later one carries the higher token — so the fence rejects the
 * older holder's writes. Overlaps are counted: they are what fencing is for.
 */
import { spawn } from 'node:child_process'
import { FencedResource, StaleTokenError } from '../../../recipes/fenced-resource.js'
import type { ChaosEvent } from '../history.js'
import { chaosScript, sleep, type Verdict, type Workload } from './workload.js'

const NAME = 'lock'
const PATH = '/chaos-lock'
const RESOURCE = 'resource'

/** The holders' session timeout; a client pause is longer, so the paused holder's session expires. */
const SESSION_TIMEOUT_MS = 2000

export const lock: Workload = {
  name: NAME,
  async run(ctx) {
    const guard = new FencedResource()
    const h = ctx.history
    const script = chaosScript('lock-holder')
    const holders = [0, 1, 2].map((w) => {
      const lane = ctx.lane()
      const child = spawn(
        process.execPath,
        [script, ctx.cluster.connectString, PATH, String(SESSION_TIMEOUT_MS)],
        {
          stdio: ['ignore', 'pipe', 'ignore'],
        },
      )
      let acquiringAt = 0
      let releasingAt = 0
      let holding = false
      const add = (e: Omit<ChaosEvent, 'workload' | 'process' | 'key'> & { key?: string }) =>
        h.add({ workload: NAME, process: lane, key: PATH, ...e })
      const onLine = (line: string) => {
        const [what, a = '', b = ''] = line.split(' ')
        const now = h.now()
        const token = Number(a)
        switch (what) {
          case 'acquiring':
            acquiringAt = now
            break
          case 'acquired':
            holding = true
            add({ f: 'acquire', type: 'ok', result: token, invokedAt: acquiringAt, returnedAt: now })
            break
          case 'acquire-failed':
            add({
              f: 'acquire',
              type: 'info',
              error: a,
              invokedAt: acquiringAt,
              returnedAt: Number.POSITIVE_INFINITY,
            })
            break
          case 'write':
            // The store's side of fencing: the check happens as the write arrives.
            try {
              guard.run(RESOURCE, token, () => b)
              add({
                f: 'write',
                key: RESOURCE,
                value: { token, value: b },
                type: 'ok',
                invokedAt: now,
                returnedAt: now,
              })
            } catch (err) {
              if (!(err instanceof StaleTokenError)) throw err
              add({
                f: 'write',
                key: RESOURCE,
                value: { token, value: b },
                type: 'fail',
                error: err.code,
                invokedAt: now,
                returnedAt: now,
              })
            }
            break
          case 'lost':
            add({ f: 'lost', value: token, type: 'ok', invokedAt: now, returnedAt: now })
            break
          case 'releasing':
            releasingAt = now
            holding = false
            break
          case 'released':
            add({
              f: 'release',
              value: token,
              type: 'ok',
              result: releasingAt,
              invokedAt: releasingAt,
              returnedAt: now,
            })
            break
          case 'release-failed':
            add({
              f: 'release',
              type: 'info',
              error: a,
              invokedAt: releasingAt,
              returnedAt: Number.POSITIVE_INFINITY,
            })
            break
          default:
            ctx.log(`lock holder c${lane}: ${line}`)
        }
      }
      let buf = ''
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString()
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          onLine(buf.slice(0, nl))
          buf = buf.slice(nl + 1)
        }
      })
      const exited = new Promise<void>((r) => child.once('exit', () => r()))
      return { lane, child, exited, holding: () => holding, w }
    })
    // Now and then a holder freezes (SIGSTOP, a GC pause of the Jepsen papers) past its
    // session's expiry, mostly while it holds the lock; it wakes still believing it does.
    const prng = ctx.prng.fork('lock-pauses')
    try {
      while (performance.now() < ctx.deadline - 6000) {
        await sleep(prng.int(2000, 5000))
        const holding = holders.filter((x) => x.holding())
        const victim = holding.length > 0 && prng.chance(0.8) ? prng.pick(holding) : prng.pick(holders)
        const ms = prng.int(SESSION_TIMEOUT_MS + 500, SESSION_TIMEOUT_MS + 2000)
        const at = h.now()
        victim.child.kill('SIGSTOP')
        await sleep(ms)
        victim.child.kill('SIGCONT')
        h.add({
          workload: NAME,
          process: victim.lane,
          f: 'client-pause',
          value: ms,
          type: 'ok',
          invokedAt: at,
          returnedAt: h.now(),
        })
      }
      while (performance.now() < ctx.deadline) await sleep(100)
    } finally {
      for (const x of holders) {
        x.child.kill('SIGCONT')
        x.child.kill('SIGKILL')
      }
      await Promise.all(holders.map((x) => x.exited))
    }
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
