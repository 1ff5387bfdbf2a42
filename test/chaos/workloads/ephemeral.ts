/**
 * Ephemerals with session expiry: one at a time, a separate client process
 * (../ephemeral-holder.ts) creates an ephemeral znode and holds its session;
 * after a while the harness kills it (-9), so the session ends and expires
 * on the servers after its timeout. Meanwhile readers pinned one to each
 * server (`sync` + `exists`, or `exists` alone with --reads plain) watch
 * the nodes, and after the kill a watcher polls until it sees the node gone.
 *
 * Checked, per node: never gone before its session ended (a read that ran
 * entirely between the create's acknowledgement and the kill saw it); gone
 * everywhere once its expiry was observed (no read invoked after some read
 * returned "gone" sees it again — with plain reads, per reader only: a
 * lagging server may lag); and gone at the end. A session that expired
 * while its holder still ran (the nemesis cut it off) is checked only for
 * the last two: when exactly it ended is not known.
 */
import { spawn } from 'node:child_process'
import type { Client } from '../../../client/index.js'
import { ensurePath } from '../../../recipes/znodes.js'
import type { ChaosEvent } from '../history.js'
import {
  chaosScript,
  classifier,
  live,
  retrying,
  sleep,
  type Verdict,
  type Workload,
  type WorkloadContext,
} from './workload.js'

const NAME = 'ephemeral'
const PARENT = '/chaos-ephemeral'
const SESSION_TIMEOUT_MS = 2000
const HOLDER = chaosScript('ephemeral-holder')

/** No definite failures: an indeterminate code is info, anything else a harness bug. */
const classify = classifier([])

async function exists(zk: Client, path: string, reads: 'sync' | 'plain'): Promise<boolean> {
  if (reads === 'sync') await zk.sync(path)
  return (await zk.exists(path)) !== null
}

/** Paths whose node may still be there (readers look at these). */
type Live = Set<string>

export const ephemeral: Workload = {
  name: NAME,
  async run(ctx) {
    const setup = await ctx.connect()
    await retrying(`create ${PARENT}`, () => ensurePath(setup, PARENT))
    const watched: Live = new Set()
    const readers = ctx.cluster.members.map(async (m) => {
      let zk = await ctx.connect({ connectString: m.connectString })
      const lane = ctx.lane()
      const prng = ctx.prng.fork(`reader-${m.id}`)
      while (performance.now() < ctx.deadline) {
        const paths = [...watched]
        if (paths.length === 0) {
          await sleep(20)
          continue
        }
        const path = prng.pick(paths)
        zk = await live(ctx, zk, { connectString: m.connectString })
        const got = await ctx.history.record(
          { workload: NAME, process: lane, f: 'read', key: path, value: ctx.reads },
          () => exists(zk, path, ctx.reads),
          classify,
          undefined,
          () => zk.server,
        )
        await sleep(got.type === 'info' ? 100 : 10)
      }
    })
    const holders = [0, 1].map((w) => holderLoop(ctx, w, watched))
    await Promise.all([...readers, ...holders])
  },
  async finish(ctx) {
    // Every node is gone at the end (each session ended at least one timeout ago, or will have soon).
    const zk = await ctx.connect()
    const lane = ctx.lane()
    const paths = [
      ...new Set(
        ctx.history.events.filter((e) => e.workload === NAME && e.f === 'create').map((e) => e.key!),
      ),
    ]
    const until = performance.now() + 4 * SESSION_TIMEOUT_MS + 20_000
    for (const path of paths) {
      for (;;) {
        const got = await ctx.history.record(
          { workload: NAME, process: lane, f: 'final', key: path },
          () => exists(zk, path, 'sync'),
          classify,
        )
        if ((got.type === 'ok' && got.result === false) || performance.now() > until) break
        await sleep(200)
      }
    }
  },
  check: (events) => checkEphemerals(events),
}

/** One holder process after another: spawn, create, hold, kill -9, then watch the node go. */
async function holderLoop(ctx: WorkloadContext, w: number, watched: Live): Promise<void> {
  const h = ctx.history
  const lane = ctx.lane()
  let watcher = await ctx.connect()
  const prng = ctx.prng.fork(`holder-${w}`)
  let n = 0
  while (performance.now() < ctx.deadline - 2 * SESSION_TIMEOUT_MS) {
    const path = `${PARENT}/e-${lane}-${n++}`
    const child = spawn(
      process.execPath,
      [HOLDER, ctx.cluster.connectString, path, String(SESSION_TIMEOUT_MS)],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    )
    let expiredAt: number | undefined
    const invokedAt = h.now()
    watched.add(path)
    const created = await new Promise<'created' | string>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), 20_000)
      let buf = ''
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString()
        for (;;) {
          const nl = buf.indexOf('\n')
          if (nl < 0) break
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          if (line.startsWith('created')) {
            clearTimeout(timer)
            resolve('created')
          } else if (line === 'expired') expiredAt ??= h.now()
          else if (line.startsWith('error')) {
            clearTimeout(timer)
            resolve(line)
          }
        }
      })
      child.once('exit', () => {
        clearTimeout(timer)
        resolve('exited')
      })
    })
    if (created === 'created')
      h.add({
        workload: NAME,
        process: lane,
        f: 'create',
        key: path,
        type: 'ok',
        invokedAt,
        returnedAt: h.now(),
      })
    else
      h.add({
        workload: NAME,
        process: lane,
        f: 'create',
        key: path,
        type: 'info',
        error: created,
        invokedAt,
        returnedAt: Number.POSITIVE_INFINITY,
      })
    if (created === 'created') await sleep(prng.int(500, 2500))
    const endAt = h.now()
    child.kill('SIGKILL')
    await new Promise<void>((r) =>
      child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()),
    )
    h.add({
      workload: NAME,
      process: lane,
      f: 'end',
      key: path,
      value: expiredAt !== undefined ? 'expired' : 'killed',
      type: 'ok',
      invokedAt: expiredAt ?? endAt,
      returnedAt: expiredAt ?? endAt,
    })
    // Watch it go (bounded), then leave it to the readers a little longer.
    const until = performance.now() + 3 * SESSION_TIMEOUT_MS + 10_000
    while (performance.now() < until && performance.now() < ctx.deadline) {
      watcher = await live(ctx, watcher)
      const got = await h.record(
        { workload: NAME, process: lane, f: 'read', key: path, value: ctx.reads },
        () => exists(watcher, path, ctx.reads),
        classify,
      )
      if (got.type === 'ok' && got.result === false) break
      await sleep(got.type === 'info' ? 100 : 50)
    }
    setTimeout(() => watched.delete(path), 1000).unref()
  }
}

export function checkEphemerals(all: readonly ChaosEvent[]): Verdict {
  const events = all.filter((e) => e.workload === NAME)
  const reads = events.some((e) => e.f === 'read' && e.value === 'plain') ? 'plain' : 'sync'
  const problems: string[] = []
  const byPath = new Map<string, ChaosEvent[]>()
  for (const e of events) {
    let l = byPath.get(e.key!)
    if (l === undefined) byPath.set(e.key!, (l = []))
    l.push(e)
  }
  let checked = 0
  let expiredAlive = 0
  let readsChecked = 0
  for (const [path, list] of byPath) {
    const create = list.find((e) => e.f === 'create')
    const end = list.find((e) => e.f === 'end')
    if (create === undefined || create.type !== 'ok' || end === undefined) continue
    checked++
    if (end.value === 'expired') expiredAlive++
    const readsOk = list.filter((e) => (e.f === 'read' || e.f === 'final') && e.type === 'ok')
    readsChecked += readsOk.length
    const fmt = (e: ChaosEvent) =>
      `c${e.process} [${e.invokedAt.toFixed(0)}, ${e.returnedAt.toFixed(0)}] ms${e.server !== undefined ? ` on ${e.server}` : ''}`
    // Never gone before the session ended.
    if (end.value === 'killed')
      for (const r of readsOk)
        if (r.result === false && r.invokedAt >= create.returnedAt && r.returnedAt <= end.invokedAt) {
          // Seen again later: the node was there all along, and this read was stale.
          const stale = readsOk.some((x) => x.result === true && x.invokedAt > r.returnedAt)
          problems.push(
            `${path}: read ${fmt(r)} found it gone; its session lived until ${end.invokedAt.toFixed(0)} ms${stale ? ' and later reads found it (a stale read)' : ''}`,
          )
        }
    // Gone everywhere once a read saw it gone.
    const gone = readsOk.filter((r) => r.result === false && r.invokedAt >= create.returnedAt)
    if (reads === 'sync') {
      const first = gone.reduce<ChaosEvent | undefined>(
        (m, r) => (m === undefined || r.returnedAt < m.returnedAt ? r : m),
        undefined,
      )
      if (first !== undefined)
        for (const r of readsOk)
          if (r.result === true && r.invokedAt > first.returnedAt)
            problems.push(`${path}: read ${fmt(r)} found it again after read ${fmt(first)} found it gone`)
    } else {
      for (const r of readsOk) {
        const before = gone.find((g) => g.process === r.process && g.returnedAt < r.invokedAt)
        if (r.result === true && before !== undefined)
          problems.push(
            `${path}: reader c${r.process} found it at ${fmt(r)} after finding it gone at ${fmt(before)}`,
          )
      }
    }
    const final = list.filter((e) => e.f === 'final' && e.type === 'ok').at(-1)
    if (final === undefined) problems.push(`${path}: no final read`)
    else if (final.result !== false)
      problems.push(`${path}: still there at the end, its session ended at ${end.invokedAt.toFixed(0)} ms`)
  }
  if (checked === 0) problems.push('no ephemeral was ever created: nothing checked')
  return {
    workload: NAME,
    valid: problems.length === 0 ? true : checked === 0 && problems.length === 1 ? 'unknown' : false,
    problems: problems.slice(0, 20).concat(problems.length > 20 ? [`… ${problems.length - 20} more`] : []),
    summary: `${checked} ephemerals (${expiredAlive} expired while their holder ran), ${readsChecked} reads checked (reads ${reads})`,
  }
}
