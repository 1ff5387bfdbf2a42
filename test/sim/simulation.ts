/**
 * runSimulation: one seed of the deterministic simulation of a whole
 * ensemble in one process. A safety phase injects faults (crashes with torn
 * writes, partitions, connection breaks, stalls, slow disks) under client
 * load; a liveness phase heals everything and restarts every server, after
 * which a write must be acknowledged within a bound. Half the seeds run the
 * KV state machine with the KV workload, half the real DataTree (TreeDb,
 * prepped by the leader) with the session/ephemeral/sequential tree
 * workload and the TreeChecker.
 *
 * Invariants: everything is derived from the seed (one Prng forked per
 * component) and the Scheduler; nothing reads real time; the same seed gives
 * the same trace, so a failure replays exactly (`--seed N` in cli.ts).
 */

import { Prng } from '../../server/core/prng.js'
import { configOfIds, type ServerId } from '../../server/zab/index.js'
import { AssertionError } from '../../shared/assert.js'
import { Checker, SimViolation } from './checker.js'
import { KvStateMachine } from './kv-state-machine.js'
import { MUTATIONS, type Mutation, mutantPeer, mutantStateMachine } from './mutations.js'
import { ReconfigChecker } from './reconfig-checker.js'
import { Scheduler } from './scheduler.js'
import { SimNetwork } from './sim-network.js'
import { SimNode } from './sim-node.js'
import { drawSwarm, type Swarm } from './swarm.js'
import { Trace } from './trace.js'
import { TreeChecker } from './tree-checker.js'
import { TreeStateMachine } from './tree-state-machine.js'
import { TreeWorkload } from './tree-workload.js'
import { type SimWorkload, Workload } from './workload.js'

export type { Mutation }

export interface SimOptions {
  seed: number
  /** A planted bug (mutations.ts) that one checker must catch. */
  mutation?: Mutation
  /** Overrides the swarm's choice (a mutation whose checker needs one state machine implies it). */
  stateMachine?: 'kv' | 'tree'
  safetyMs?: number
  livenessMsMax?: number
  traceLines?: number
  echo?: boolean
  /** Every server with localSessions on (server/session/local-sessions.ts). */
  localSessions?: boolean
}

export interface SimStats {
  events: number
  commits: number
  leaders: number
  writesIssued: number
  writesAcked: number
  syncsDone: number
  crashes: number
  partitions: number
  powerLosses: number
  pauses: number
  connBreaks: number
  stalls: number
  slowFsyncs: number
  tornCrashes: number
  lossyCrashes: number
  livenessMs: number
  diffs: number
  truncs: number
  snaps: number
  /** SNAPs whose snapshot was written while the leader kept applying (fuzzy). */
  fuzzySnaps: number
  /** DIFFs that reached back past the leader's in-memory log into durable history. */
  historyDiffs: number
  /** Tree seeds only (0 for KV). */
  sessions: number
  sessionCloses: number
  sessionExpiries: number
  ackedCreates: number
  sequentialCreates: number
  ephemeralsDeletedOnClose: number
  prepFailures: number
  /** Prep failures of a forwarded write that reached its server while an earlier write still waited. */
  failuresBehindWaiting: number
  /** Exactly-once clients (tree seeds): sessions moved to another server, writes sent again, */
  onceMoves: number
  onceResent: number
  /** replies to writes sent more than once, of which applied before they were sent again. */
  onceAnsweredAgain: number
  onceFromMemory: number
  /** Sessions moved right after they were created; resumes a server answered EXPIRED. */
  quickMoves: number
  resumesExpired: number
  /** Membership changes: proposed at a leader, refused there (in flight, no quorum synced), first committed. */
  reconfigsProposed: number
  reconfigsRefused: number
  reconfigsCommitted: number
  /** Committed ones that changed the voters. */
  votersChanged: number
  /** Watchers (tree seeds): events checked against the applied changes, resumes, compacted answers. */
  watchEvents: number
  watchResumes: number
  watchResyncs: number
}

export interface SimResult {
  seed: number
  ok: boolean
  violation: { invariant: string; detail: string } | undefined
  trace: string[]
  swarm: Swarm
  stats: SimStats
}

/** `mutation` when it is one of `kinds` (the mutations one component plants), else undefined. */
function planted<const T extends Mutation>(mutation: Mutation, kinds: readonly T[]): T | undefined {
  return (kinds as readonly Mutation[]).includes(mutation) ? (mutation as T) : undefined
}

/** Faults injected in a run (everything but latency). */
export function faultCount(s: SimStats): number {
  return s.crashes + s.partitions + s.powerLosses + s.pauses + s.connBreaks + s.stalls + s.slowFsyncs
}

class Run {
  readonly sched = new Scheduler()
  readonly prng: Prng
  readonly swarm: Swarm
  readonly trace: Trace
  readonly nodes: SimNode[] = []
  readonly checker: Checker
  readonly tree: TreeChecker | undefined
  readonly reconfig: ReconfigChecker
  reconfigsProposed = 0
  reconfigsRefused = 0
  readonly net: SimNetwork
  readonly workload: SimWorkload
  safety = true
  /** Syncs by DIFF that read durable history older than the leader's in-memory log. */
  historyDiffs = 0
  partitions = 0
  powerLosses = 0
  pauses = 0
  private loops = 0

  constructor(readonly opts: SimOptions) {
    this.prng = new Prng(opts.seed)
    this.swarm = drawSwarm(this.prng.fork('swarm'))
    if (opts.stateMachine) this.swarm.stateMachine = opts.stateMachine
    // Its checker watches membership changes: make them happen, often.
    if (opts.mutation === 'oneConfigQuorum') {
      this.swarm.reconfigEveryMs = 200
      this.swarm.spares = 2
    }
    // Its checker watches joiners that serve before a reconfig names them: have some, and leave them out.
    if (opts.mutation === 'ownStaticConfig') {
      this.swarm.reconfigEveryMs = 0
      this.swarm.spares = 2
    }
    const mutation = opts.mutation ?? 'none'
    const needs = mutation === 'none' ? undefined : MUTATIONS[mutation].stateMachine
    if (needs) this.swarm.stateMachine = needs
    this.trace = new Trace(opts.traceLines ?? 200, () => this.sched.now, opts.echo ?? false)
    this.checker = new Checker(this.nodes, opts.mutation !== 'lyingDisk')
    const s = this.swarm
    this.tree =
      s.stateMachine === 'tree'
        ? new TreeChecker(this.nodes, (inv, detail) => this.checker.fail(inv, detail))
        : undefined
    this.net = new SimNetwork(
      this.sched,
      this.prng.fork('net'),
      {
        latencyMsMin: 1,
        latencyMsMax: s.latencyMsMax,
        stallProbability: s.stallProbability,
        stallMsMax: 400,
        breakProbability: s.breakProbability,
        detectMsMax: s.detectMsMax,
        reconnectMs: 20,
        tcpTimeoutMs: 1000,
        mutation: planted(mutation, ['corruptProposal', 'duplicateUpToDate', 'slowApp', 'noReconnect']),
      },
      {
        isUp: (n) => this.node(n).up,
        incarnation: (n) => this.node(n).incarnation,
        deliver: (to, from, bytes) => this.node(to).deliver(from, bytes),
        connected: (n, p, conn) => this.node(n).connected(p, conn),
        disconnected: (n, p) => this.node(n).disconnected(p),
        trace: (l) => this.trace.add(l),
      },
    )
    this.reconfig = new ReconfigChecker(
      this.nodes,
      configOfIds(this.initialVoters(), this.initialObservers()),
      (inv, detail) => this.checker.fail(inv, detail),
      opts.mutation !== 'lyingDisk',
    )
    this.buildNodes()
    this.workload = this.tree
      ? new TreeWorkload(
          this.nodes,
          this.checker,
          this.tree,
          this.prng.fork('clients'),
          {
            clients: s.clients,
            keys: s.keys,
            pipelineMax: s.pipelineMax,
            sessionTimeoutMs: s.sessionTimeoutMs,
            requestTimeoutMs: 3000,
            mutation: planted(mutation, ['requestedPath', 'lifoReplies']),
            localSessions: this.opts.localSessions === true,
          },
          () => this.sched.now,
          (line) => this.trace.add(line),
        )
      : new Workload(this.nodes, this.checker, this.prng.fork('clients'), s.keys, () => this.sched.now)
  }

  node(id: ServerId): SimNode {
    return this.nodes[id - 1]!
  }

  /** Whether server `id` leads now (false while it is being built). */
  private leading(id: ServerId): boolean {
    return this.nodes[id - 1]?.peer?.status().role === 'LEADING'
  }

  private initialVoters(): number[] {
    return Array.from({ length: this.swarm.voters }, (_, i) => i + 1)
  }

  private initialObservers(): number[] {
    return Array.from({ length: this.swarm.observers }, (_, i) => this.swarm.voters + i + 1)
  }

  private buildNodes(): void {
    const s = this.swarm
    const mutation = this.opts.mutation ?? 'none'
    const voters = this.initialVoters()
    const observers = this.initialObservers()
    // Spares start outside the config (joiners): they sync as non-voting learners until a reconfig
    // names them. Each starts, as an operator adds a server, with a static config that names it
    // too: it takes its leader's with the sync (config-agreement).
    const isSpare = (id: number) => id > s.voters + s.observers
    const spares = Array.from({ length: s.spares }, (_, i) => s.voters + s.observers + i + 1)
    const skew = this.prng.fork('skew')
    for (const id of [...voters, ...observers, ...spares]) {
      const isVoter = id <= s.voters
      const cfg = {
        id,
        // The noQuorum mutation: every server believes it is alone.
        voters: mutation === 'noQuorum' ? (isVoter ? [id] : [1]) : isSpare(id) ? [...voters, id] : voters,
        observers: mutation === 'noQuorum' ? (isVoter ? [] : [id]) : observers,
        tickMs: Math.max(1, Math.round(s.tickMs * (1 + s.tickSkew * (2 * skew.float() - 1)))),
        initLimitTicks: s.initLimitTicks,
        syncLimitTicks: s.syncLimitTicks,
        commitLogCount: s.commitLogCount,
        historyDiff: s.historyDiff,
        snapChunkBytesMax: s.snapChunkBytesMax,
        snapshotChunkBytes: s.snapshotChunkBytes,
        disk: {
          fsyncMsMin: 0,
          fsyncMsMax: 3,
          slowProbability: s.fsyncSlowProbability,
          slowMsMax: s.fsyncSlowMsMax,
          lying: mutation === 'lyingDisk',
          metaFirst: mutation === 'metaFirst',
          reorder: mutation === 'reorderingDisk',
        },
        sendBeforeDurable: mutation === 'sendBeforeDurable',
        makePeer: mutantPeer(mutation),
        serverMutation: planted(mutation, [
          'applyOnPropose',
          'reuseSequence',
          'amnesicHistory',
          'localResumeSync',
        ]),
        serve: s.stateMachine === 'tree',
        localSessions: this.opts.localSessions === true,
        clientLatencyMsMax: s.latencyMsMax,
        makeStateMachine: () =>
          mutantStateMachine(mutation, id, s.snapshotChunkBytes, () => this.leading(id)) ??
          (s.stateMachine === 'tree'
            ? new TreeStateMachine(id, s.snapshotChunkBytes)
            : new KvStateMachine(s.snapshotChunkBytes)),
      }
      this.nodes.push(new SimNode(cfg, this.sched, this.net, this.observer(), this.prng.fork(`node-${id}`)))
    }
  }

  private observer(): ConstructorParameters<typeof SimNode>[3] {
    return {
      output: (node, out) => {
        if (out.role) {
          this.checker.onRole(node, out.role)
          this.workload.onRole?.(node, out.role)
        }
      },
      sending: (node, env) => this.checker.onSend(node, env),
      committed: (node, zxid, data, prev) => {
        this.checker.onCommit(node, zxid, data, prev)
        this.reconfig.onCommit(node, zxid, data)
        this.tree?.onCommit(node, zxid, data)
        this.workload.onCommitted(node, zxid, data)
      },
      restored: (node, zxid) => this.onRestored(node, zxid),
      app: (node, from, payload) => this.workload.onApp(node, from, payload),
      syncDone: (node, requestId) => this.workload.onSyncDone(node, requestId),
      violation: (what, invariant) => this.checker.fail(invariant ?? 'disk', what),
      trace: (line) => {
        if (line.includes('from durable history)')) this.historyDiffs++
        this.trace.add(line)
      },
    }
  }

  private onRestored(node: SimNode, zxid: number): void {
    this.checker.onRestore(node, zxid)
    this.tree?.onRestore(node, zxid)
  }

  afterEvent(): void {
    this.checker.afterEvent()
    this.tree?.afterEvent()
  }

  /** Schedules `fn` again and again at exponential-ish intervals while the safety phase lasts. */
  private every(meanMs: number, fn: () => void, always = false): void {
    if (meanMs <= 0) return
    const p = this.prng.fork(`every-${this.loops++}`)
    const loop = () => {
      if (!always && !this.safety) return
      fn()
      this.sched.after(p.int(1, 2 * meanMs), loop)
    }
    this.sched.after(p.int(1, 2 * meanMs), loop)
  }

  scheduleFaults(): void {
    const s = this.swarm
    const p = this.prng.fork('faults')
    this.every(s.crashEveryMs, () => {
      // Leaders half the time: their crashes leave uncommitted proposals behind (TRUNC).
      const leaders = this.nodes.filter((n) => n.up && n.peer.status().role === 'LEADING')
      const n = leaders.length > 0 && p.chance(0.5) ? p.pick(leaders) : p.pick(this.nodes)
      if (!n.up) return
      const crash = () => {
        if (!n.up) return
        n.crash()
        this.net.nodeDown(n.id)
        this.sched.after(p.int(1, s.downMsMax), () => this.restart(n))
      }
      // Half the time, crash just after a write is submitted, before its fsync.
      if (p.chance(0.5)) n.armCrash(crash)
      else crash()
    })
    this.every(s.powerLossEveryMs, () => this.powerLoss(p))
    this.every(s.pauseEveryMs, () => {
      this.pauses++
      p.pick(this.nodes).pause(p.int(1, s.pauseMsMax))
    })
    this.every(s.partitionEveryMs, () => this.partition(p))
    this.every(s.reconfigEveryMs, () => this.reconfigure(p))
    this.every(s.appSnapshotEveryMs, () => p.pick(this.nodes).takeAppSnapshot(), true)
    this.every(s.writeEveryMs, () => this.workload.issueWrite(), true)
    if (s.stateMachine === 'kv') this.every(s.syncEveryMs, () => this.workload.issueSync(), true)
  }

  /**
   * A membership change at the leader: add a server (a spare, an observer
   * promoted), remove a voter, demote one to observer, or replace the whole
   * voter set with a random one (possibly disjoint from the old). Sometimes
   * the leader crashes, or the network splits, right after (in the middle of
   * the change).
   */
  private reconfigure(p: Prng): void {
    const leader = this.nodes.find((n) => n.up && !n.paused && n.peer.status().role === 'LEADING')
    if (leader === undefined || !leader.peer.status().serving) return
    const view = leader.peer.membership.latest.config
    const ids = this.nodes.map((n) => n.id)
    let voters = [...view.voters]
    let observers = [...view.observers]
    const kind = p.pick(['add', 'remove', 'demote', 'replace', 'replace'] as const)
    const outside = ids.filter((id) => !voters.includes(id))
    if (kind === 'add' && outside.length > 0) {
      const id = p.pick(outside)
      voters.push(id)
      observers = observers.filter((o) => o !== id)
    } else if ((kind === 'remove' || kind === 'demote') && voters.length > 1) {
      const id = p.pick(voters)
      voters = voters.filter((v) => v !== id)
      if (kind === 'demote') observers.push(id)
    } else {
      const shuffled = p.shuffle([...ids])
      voters = shuffled.slice(0, p.int(1, Math.min(7, ids.length)))
      observers = shuffled.slice(voters.length).filter(() => p.chance(0.3))
    }
    const config = configOfIds(voters, observers)
    const r = leader.reconfig(config)
    this.reconfigsProposed++
    this.trace.add(
      `reconfig at n${leader.id}: voters [${config.voters}] observers [${config.observers}] -> ${r?.ok ? `0x${r.zxid.toString(16)}` : r?.reason}`,
    )
    if (!r?.ok) {
      this.reconfigsRefused++
      return
    }
    // In the middle of it: the leader dies, or the network splits, before the change commits.
    const crashLeader = p.chance(0.2)
    if (crashLeader) {
      this.sched.after(p.int(0, 30), () => {
        if (!leader.up || !this.safety) return
        leader.crash()
        this.net.nodeDown(leader.id)
        this.sched.after(p.int(1, this.swarm.downMsMax), () => this.restart(leader))
      })
      return
    }
    if (p.chance(0.2)) this.sched.after(p.int(0, 30), () => this.safety && this.partition(p))
  }

  /** A rack loses power: a majority (or everyone) crashes at the same instant. */
  private powerLoss(p: Prng): void {
    const all = p.shuffle([...this.nodes])
    const count = p.chance(0.5) ? all.length : Math.floor(all.length / 2) + 1
    this.trace.add(
      `power loss: ${all
        .slice(0, count)
        .map((n) => `n${n.id}`)
        .join(' ')}`,
    )
    this.powerLosses++
    const downMs = p.int(1, this.swarm.downMsMax)
    for (const n of all.slice(0, count)) {
      if (!n.up) continue
      n.crash()
      this.net.nodeDown(n.id)
      this.sched.after(downMs + p.int(0, 50), () => this.restart(n))
    }
  }

  private restart(n: SimNode): void {
    if (n.up) return
    n.restart()
    if (n.disk.snapshot) this.onRestored(n, n.disk.snapshot.zxid)
    this.net.nodeUp(n.id)
  }

  private partition(p: Prng): void {
    const ids = this.nodes.map((n) => n.id)
    const kind = p.pick(['isolate', 'split', 'asymmetric', 'pairs'] as const)
    const pairs: [number, number][] = []
    const shuffled = p.shuffle([...ids])
    const cut = kind === 'isolate' || kind === 'asymmetric' ? 1 : p.int(1, ids.length - 1)
    const left = new Set(shuffled.slice(0, cut))
    for (const a of ids) {
      for (const b of ids) {
        if (a === b) continue
        if (kind === 'pairs' ? p.chance(0.3) : left.has(a) !== left.has(b)) {
          // Asymmetric: only messages out of the isolated side are blocked.
          if (kind !== 'asymmetric' || left.has(a)) pairs.push([a, b])
        }
      }
    }
    this.partitions++
    this.trace.add(`net: partition ${kind} ${pairs.map(([a, b]) => `${a}>${b}`).join(' ')}`)
    this.net.block(pairs)
    this.sched.after(p.int(50, this.swarm.partitionMsMax), () => {
      if (!this.safety) return
      this.trace.add('net: heal')
      this.net.healAll()
    })
  }

  startLiveness(): void {
    this.safety = false
    this.trace.add('--- liveness phase: heal all, restart all ---')
    this.net.healAll()
    for (const n of this.nodes) this.restart(n)
  }
}

function emptyStats(): SimStats {
  return {
    events: 0,
    commits: 0,
    leaders: 0,
    writesIssued: 0,
    writesAcked: 0,
    syncsDone: 0,
    crashes: 0,
    partitions: 0,
    powerLosses: 0,
    pauses: 0,
    connBreaks: 0,
    stalls: 0,
    slowFsyncs: 0,
    tornCrashes: 0,
    lossyCrashes: 0,
    livenessMs: 0,
    diffs: 0,
    truncs: 0,
    snaps: 0,
    fuzzySnaps: 0,
    historyDiffs: 0,
    sessions: 0,
    sessionCloses: 0,
    sessionExpiries: 0,
    ackedCreates: 0,
    sequentialCreates: 0,
    ephemeralsDeletedOnClose: 0,
    prepFailures: 0,
    failuresBehindWaiting: 0,
    onceMoves: 0,
    onceResent: 0,
    onceAnsweredAgain: 0,
    onceFromMemory: 0,
    quickMoves: 0,
    resumesExpired: 0,
    reconfigsProposed: 0,
    reconfigsRefused: 0,
    reconfigsCommitted: 0,
    votersChanged: 0,
    watchEvents: 0,
    watchResumes: 0,
    watchResyncs: 0,
  }
}

function collectStats(run: Run, livenessMs: number): SimStats {
  const s = emptyStats()
  s.events = run.sched.executed
  s.commits = run.checker.committedCount
  s.leaders = run.checker.establishedLeaders
  s.writesIssued = run.workload.writesIssued
  s.writesAcked = run.workload.writesAcked
  s.syncsDone = run.workload.syncsDone
  s.partitions = run.partitions
  s.powerLosses = run.powerLosses
  s.pauses = run.pauses
  s.connBreaks = run.net.breaks
  s.stalls = run.net.stalls
  for (const n of run.nodes) {
    s.crashes += n.crashes
    s.slowFsyncs += n.disk.slowFsyncs
    s.tornCrashes += n.disk.tornCrashes
    s.lossyCrashes += n.disk.lossyCrashes
  }
  s.livenessMs = livenessMs
  s.reconfigsProposed = run.reconfigsProposed
  s.reconfigsRefused = run.reconfigsRefused
  s.reconfigsCommitted = run.reconfig.committed
  s.votersChanged = run.reconfig.votersChanged
  s.diffs = run.checker.syncKinds.DIFF
  s.truncs = run.checker.syncKinds.TRUNC
  s.snaps = run.checker.syncKinds.SNAP
  s.fuzzySnaps = run.checker.fuzzySnaps
  s.historyDiffs = run.historyDiffs
  if (run.tree && run.workload instanceof TreeWorkload) {
    const w = run.workload.stats
    s.sessions = w.sessions
    s.sessionCloses = w.closes
    s.sessionExpiries = w.expiries
    s.prepFailures = w.prepFailures
    s.failuresBehindWaiting = w.failuresBehindWaiting
    s.onceMoves = w.moves
    s.onceResent = w.resent
    s.onceAnsweredAgain = run.workload.once.stats.answeredAgain
    s.onceFromMemory = run.workload.once.stats.fromMemory
    s.watchEvents = run.workload.watchers.stats.watchEvents
    s.watchResumes = run.workload.watchers.stats.watchResumes
    s.watchResyncs = run.workload.watchers.stats.watchResyncs
    s.quickMoves = w.quickMoves
    s.resumesExpired = run.workload.resumes.refusals
    s.ackedCreates = run.tree.ackedCreates
    s.sequentialCreates = run.tree.sequentialCreates
    s.ephemeralsDeletedOnClose = run.tree.ephemeralsDeletedOnClose
  }
  return s
}

export function runSimulation(opts: SimOptions): SimResult {
  const run = new Run(opts)
  const safetyMs = opts.safetyMs ?? 6000
  const livenessMsMax = opts.livenessMsMax ?? 20_000
  let violation: SimResult['violation']
  let livenessMs = 0
  const checkAfterEvent = () => {
    run.afterEvent()
    return false
  }
  try {
    run.net.start(run.nodes.map((n) => n.id))
    run.scheduleFaults()
    run.sched.runUntil(safetyMs, checkAfterEvent)
    run.startLiveness()
    const ackedBefore = run.workload.writesAcked
    const start = run.sched.now
    run.sched.runUntil(start + livenessMsMax, () => {
      run.afterEvent()
      return run.workload.writesAcked > ackedBefore
    })
    livenessMs = run.sched.now - start
    if (run.workload.writesAcked === ackedBefore) {
      run.checker.fail('liveness', `no write acknowledged within ${livenessMsMax} ms of healing`)
    }
  } catch (e) {
    if (e instanceof SimViolation) violation = { invariant: e.invariant, detail: e.detail }
    else if (e instanceof AssertionError) violation = { invariant: 'assertion', detail: e.message }
    // Product code threw (a decode error, a TypeError): fail-stop, and a failure of this seed.
    else if (e instanceof Error) violation = { invariant: 'exception', detail: `${e.name}: ${e.message}` }
    else throw e
  }
  return {
    seed: opts.seed,
    ok: violation === undefined,
    violation,
    trace: run.trace.tail(),
    swarm: run.swarm,
    stats: collectStats(run, livenessMs),
  }
}

export function formatFailure(r: SimResult): string {
  const v = r.violation
  return [
    `SIMULATION FAILED seed=${r.seed} (0x${r.seed.toString(16)})`,
    `invariant: ${v?.invariant}: ${v?.detail}`,
    `swarm: ${JSON.stringify(r.swarm)}`,
    `stats: ${JSON.stringify(r.stats)}`,
    `replay: npm run build && node dist/test/sim/cli.js --seed ${r.seed}`,
    '--- last trace lines ---',
    ...r.trace,
  ].join('\n')
}
