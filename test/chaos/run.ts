/**
 * A Jepsen-style run: a real ensemble (Conclave: 3 or 5 voters, optionally
 * an observer; or Apache ZooKeeper for comparison), SDK clients running the
 * chosen workloads side by side for the whole run (registers, sequential
 * creates, ephemerals with session expiry, a fenced lock, a queue,
 * exactly-once creates: workloads/), and a nemesis injecting one fault at a
 * time from its list of kinds (nemesis.ts). Every operation's invocation
 * and completion is recorded (history.ts); after the run the nemesis heals
 * everything, each workload reads the end state it needs, and each
 * workload's checker gives its verdict. A run folder, when asked for, keeps
 * history.jsonl, report.txt (report.ts) and timeline.svg (timeline.ts).
 *
 * Bounded: the workloads stop at the deadline, every wait has a deadline,
 * and every process is stopped at the end (even on failure).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client } from '../../client/index.js'
import { Prng } from '../../server/core/prng.js'
import { withTimeout } from '../bench/load.js'
import { type ChaosCluster, conclaveCluster, zookeeperCluster } from './cluster.js'
import { type FaultEvent, History, historyToJsonLines } from './history.js'
import { checkMembership, MEMBERSHIP, MembershipNemesis } from './membership.js'
import { faultKinds, runNemesis } from './nemesis.js'
import { formatReport } from './report.js'
import { timelineSvg } from './timeline.js'
import { WORKLOADS, workloadsNamed } from './workloads/index.js'
import type { Verdict, WorkloadContext } from './workloads/workload.js'

export interface ChaosOptions {
  durationMs: number
  /** Voters (Conclave 3 or 5; ZooKeeper 1 or 3). */
  servers: number
  /** One observer besides the voters (Conclave only); clients connect to it too. */
  observer?: boolean
  /** One spare server outside the configuration, for reconfig-add-spare (Conclave only). */
  spare?: boolean
  /** Clients of the registers workload (the others run 2–3 each). */
  clients: number
  /** Registers: how many znodes. */
  keys: number
  /** Fault kinds by name (nemesis.ts); default every kind that applies. [] runs no faults. */
  faults?: readonly string[] | undefined
  /** Majority mode: faults may take a majority of the voters away. */
  majority?: boolean
  /** Workloads by name; default all. */
  workloads?: readonly string[] | undefined
  seed: number
  target?: 'conclave' | 'zookeeper'
  /** 'sync' (default): sync then read, which must be linearizable. 'plain': the read alone (the checker's proof). */
  reads?: 'sync' | 'plain'
  /** Where the history, report and timeline go; none if undefined. */
  outDir?: string
  log?: (line: string) => void
  /** Called once the cluster is up (tests reach into it, e.g. to crash a member). */
  onCluster?: (cluster: ChaosCluster) => void
}

export interface WorkloadCounts {
  ok: number
  fail: number
  info: number
}

export interface ChaosReport {
  target: string
  seed: number
  servers: number
  observer: boolean
  majority: boolean
  durationMs: number
  reads: 'sync' | 'plain'
  /** Each member's id and address (operations record the address they completed on). */
  members: { id: number; observer: boolean; connectString: string }[]
  workloads: Record<string, WorkloadCounts>
  operations: number
  faults: FaultEvent[]
  verdicts: Verdict[]
  /** false if any checker found an anomaly; 'unknown' if one could not decide. */
  valid: boolean | 'unknown'
  checkMs: number
}

/** How long the workloads and the nemesis may run past the deadline (their own waits are shorter) before the run is cut. */
const OVERRUN_MS = 120_000
/** After a server crashed, how long the run goes on (the others may record what followed) before it is cut. */
const CRASH_GRACE_MS = 5_000
/** How long a cut run waits for the nemesis to heal its current fault (a membership restore takes up to 60 s). */
const NEMESIS_HEAL_MS = 75_000

/** Why a run stopped before its workloads finished. */
interface RunCut {
  kind: 'crash' | 'overrun'
  reason: string
}

/**
 * Waits for the run's workloads and nemesis, or cuts the run: CRASH_GRACE_MS after
 * a member exited unasked (a quorum may be gone: the workloads would otherwise wait
 * out their own bounds), or at `latest`. Undefined when everything finished.
 */
async function endOfRun(
  run: Promise<unknown>,
  cluster: ChaosCluster,
  latest: number,
): Promise<RunCut | undefined> {
  let timer: NodeJS.Timeout | undefined
  let crashAt: number | undefined
  const watch = new Promise<RunCut>((resolve) => {
    const check = () => {
      const now = performance.now()
      const crashes = cluster.crashes()
      if (crashes.length > 0) {
        crashAt ??= now
        if (now - crashAt >= CRASH_GRACE_MS)
          return resolve({ kind: 'crash', reason: `${crashes.length} server(s) exited unasked` })
      }
      if (now >= latest)
        return resolve({
          kind: 'overrun',
          reason: `workloads or nemesis still running ${Math.round(OVERRUN_MS / 1000)} s after the deadline`,
        })
      timer = setTimeout(check, 250)
    }
    check()
  })
  try {
    return await Promise.race([run.then(() => undefined), watch])
  } finally {
    clearTimeout(timer)
  }
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => {})
  const prng = new Prng(opts.seed)
  const workloads = workloadsNamed(opts.workloads)
  const reads = opts.reads ?? 'sync'
  const cluster: ChaosCluster =
    opts.target === 'zookeeper'
      ? await zookeeperCluster(opts.servers === 1 ? 1 : 3)
      : await conclaveCluster(opts.servers, opts.observer ? 1 : 0, { spares: opts.spare ? 1 : 0 })
  const history = new History()
  const clients: Client[] = []
  let lanes = 0
  let membership: MembershipNemesis | undefined
  let cut: RunCut | undefined
  try {
    opts.onCluster?.(cluster)
    const kinds = faultKinds(cluster, opts.faults, opts.majority ?? false)
    // Membership kinds: the nemesis's reconfigs and config reads are one lane of the history.
    if (kinds.some((k) => k.membership)) membership = new MembershipNemesis(cluster, history, lanes++, log)
    log(`${cluster.name}: ${cluster.members.length} members; faults ${kinds.map((k) => k.name).join(', ')}`)
    // Moved to now when the run is cut short: every workload and the nemesis read it at each step.
    let deadline = performance.now() + opts.durationMs
    const contextFor = (name: string): WorkloadContext => ({
      cluster,
      history,
      prng: prng.fork(name),
      get deadline() {
        return deadline
      },
      clients: opts.clients,
      reads,
      keys: opts.keys,
      lane: () => lanes++,
      async connect(o = {}) {
        // Retried: the nemesis may have the one server asked for (or a quorum) down right now.
        const until = Math.max(deadline, performance.now()) + 30_000
        for (;;) {
          try {
            const zk = await Client.connect(o.connectString ?? cluster.connectString, {
              sessionTimeoutMs: o.sessionTimeoutMs ?? 8000,
              connectTimeoutMs: 5000,
              ...(o.exactlyOnce !== undefined ? { exactlyOnce: o.exactlyOnce } : {}),
            })
            clients.push(zk)
            return zk
          } catch (err) {
            if (performance.now() > until) throw err
            await new Promise((r) => setTimeout(r, 200))
          }
        }
      },
      log,
    })
    const contexts = workloads.map((w) => contextFor(w.name))
    const nemesis = runNemesis(cluster, prng.fork('nemesis'), kinds, () => deadline, history, log, {
      membership,
      majority: opts.majority ?? false,
    })
    const running = Promise.all(workloads.map((w, i) => w.run(contexts[i]!)))
    cut = await endOfRun(Promise.all([running, nemesis]), cluster, deadline + OVERRUN_MS)
    if (cut === undefined) {
      log(`workloads done: ${history.events.length} operations`)
      // Healed (the nemesis heals each fault before the next; the membership restored, or
      // restored now): the end-state reads, every member's config first.
      await membership?.finish()
      for (const [i, w] of workloads.entries()) await w.finish?.(contexts[i]!)
    } else {
      // No end-state reads: with a server gone they would wait out their own bounds for
      // nothing. The nemesis heals its fault (it restarts whom it killed) before the
      // cluster stops, so no process is left behind; the workloads end with their clients.
      log(`run cut short: ${cut.reason}`)
      deadline = performance.now()
      await withTimeout(nemesis, NEMESIS_HEAL_MS, 'the nemesis heal').catch(() => {})
      running.catch(() => {})
    }
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()))
    await cluster.stop()
  }
  // The history first: a check that is slow or fails never costs the run's record.
  if (opts.outDir !== undefined) {
    mkdirSync(opts.outDir, { recursive: true })
    writeFileSync(join(opts.outDir, 'history.jsonl'), historyToJsonLines(history.events, history.faults))
  }
  log(`checking ${history.events.length} operations`)
  const checkStart = performance.now()
  const crashes = cluster.crashes()
  const verdicts: Verdict[] = [
    ...workloads.map((w) => w.check(history.events)),
    ...(membership !== undefined ? [checkMembership(history.events)] : []),
    {
      workload: 'servers',
      valid: crashes.length === 0,
      problems: crashes,
      summary: `${crashes.length} server crashes (exits nobody asked for)`,
    },
    ...(cut !== undefined
      ? [
          {
            workload: 'run',
            // A crash is already the servers verdict's anomaly; a hang with every server up is not proof of one.
            valid: cut.kind === 'crash' ? (false as const) : ('unknown' as const),
            problems: [cut.reason],
            summary: `run cut short (${cut.kind}): no end-state reads; the checkers saw the history up to the cut`,
          },
        ]
      : []),
  ]
  const checkMs = Math.round(performance.now() - checkStart)
  const counts: Record<string, WorkloadCounts> = {}
  for (const w of workloads) counts[w.name] = { ok: 0, fail: 0, info: 0 }
  if (membership !== undefined) counts[MEMBERSHIP] = { ok: 0, fail: 0, info: 0 }
  for (const e of history.events) {
    const c = counts[e.workload]
    if (c !== undefined) c[e.type]++
  }
  const report: ChaosReport = {
    target: cluster.name,
    seed: opts.seed,
    servers: opts.servers,
    observer: opts.observer ?? false,
    majority: opts.majority ?? false,
    durationMs: opts.durationMs,
    reads,
    members: cluster.members.map((m) => ({ id: m.id, observer: m.observer, connectString: m.connectString })),
    workloads: counts,
    operations: history.events.length,
    faults: history.faults,
    verdicts,
    valid: verdicts.some((v) => v.valid === false)
      ? false
      : verdicts.some((v) => v.valid === 'unknown')
        ? 'unknown'
        : true,
    checkMs,
  }
  if (opts.outDir !== undefined) {
    writeFileSync(join(opts.outDir, 'report.txt'), formatReport(report))
    writeFileSync(join(opts.outDir, 'report.json'), JSON.stringify(report, null, 2))
    writeFileSync(
      join(opts.outDir, 'timeline.svg'),
      timelineSvg(
        history.events,
        history.faults,
        cluster.members.map((m) => m.id),
        opts.durationMs,
      ),
    )
  }
  return report
}

export { WORKLOADS }
