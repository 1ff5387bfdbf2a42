/**
 * The simulation suite: many seeds of swarm-chosen scenarios (3/5/7 voters,
 * some with observers; crashes with torn writes, power losses, partitions,
 * connection breaks, stalls, pauses, clock skew, slow disks), each with a
 * safety and a liveness phase, half of them over the KV state machine and
 * half over the real DataTree (prep on the leader, sessions, ephemerals,
 * sequential nodes, multis); exact replay of a seed; and mutations
 * (mutations.ts) that prove each checker fails when the system is wrong, and
 * that it is that checker, and no other, that catches its bug.
 */
import { describe, expect, it } from 'vitest'
import { MUTATIONS } from './mutations.js'
import { faultCount, formatFailure, type Mutation, runSimulation, type SimResult } from './simulation.js'

const SEEDS = Number(process.env.SIM_SEEDS ?? 400)
const FIRST_SEED = Number(process.env.SIM_FIRST_SEED ?? 1)

function firstFailure(mutation: Mutation, maxSeeds: number): SimResult | undefined {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const r = runSimulation({ seed, mutation })
    if (!r.ok) return r
  }
  return undefined
}

describe('simulation', () => {
  it(`keeps every invariant over ${SEEDS} seeds`, { timeout: 300_000 }, async () => {
    const started = performance.now()
    const failures: string[] = []
    let faults = 0
    const shapes = new Set<string>()
    const totals = { commits: 0, leaders: 0, truncs: 0, snaps: 0, historyDiffs: 0, syncs: 0, tornCrashes: 0 }
    const tree = {
      seeds: 0,
      snaps: 0,
      // SNAPs of a tree written while the leader kept applying: the learner replays over them.
      fuzzySnaps: 0,
      sessions: 0,
      sessionCloses: 0,
      sessionExpiries: 0,
      ackedCreates: 0,
      sequentialCreates: 0,
      ephemeralsDeletedOnClose: 0,
      // Exactly-once clients moved their sessions and sent unanswered writes again; some of those
      // had been applied already, and were answered from the write memory.
      onceResent: 0,
      onceFromMemory: 0,
      // Watchers resumed their watch on '/' and got every applied change once, in order; some
      // were away longer than the servers' history and were told to resync.
      watchEvents: 0,
      watchResumes: 0,
      watchResyncs: 0,
    }
    for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
      // Seeds run synchronously: yield now and then, so that vitest's worker can answer its
      // runner (a call unanswered for 60 s fails the run, and 400 seeds take longer on a busy machine).
      if (seed % 10 === 0) await new Promise((resolve) => setImmediate(resolve))
      const r = runSimulation({ seed })
      if (!r.ok) failures.push(formatFailure(r))
      faults += faultCount(r.stats)
      shapes.add(`${r.swarm.voters}+${r.swarm.observers}`)
      totals.commits += r.stats.commits
      totals.leaders += r.stats.leaders
      totals.truncs += r.stats.truncs
      totals.snaps += r.stats.snaps
      totals.historyDiffs += r.stats.historyDiffs
      totals.syncs += r.stats.syncsDone
      totals.tornCrashes += r.stats.tornCrashes
      if (r.swarm.stateMachine === 'tree') {
        tree.seeds++
        tree.snaps += r.stats.snaps
        tree.fuzzySnaps += r.stats.fuzzySnaps
        tree.sessions += r.stats.sessions
        tree.sessionCloses += r.stats.sessionCloses
        tree.sessionExpiries += r.stats.sessionExpiries
        tree.ackedCreates += r.stats.ackedCreates
        tree.sequentialCreates += r.stats.sequentialCreates
        tree.ephemeralsDeletedOnClose += r.stats.ephemeralsDeletedOnClose
        tree.onceResent += r.stats.onceResent
        tree.onceFromMemory += r.stats.onceFromMemory
        tree.watchEvents += r.stats.watchEvents
        tree.watchResumes += r.stats.watchResumes
        tree.watchResyncs += r.stats.watchResyncs
      }
    }
    const ms = Math.round(performance.now() - started)
    console.log(`${SEEDS} seeds in ${ms} ms, ${faults} faults injected, ${JSON.stringify(totals)}`)
    console.log(`tree seeds: ${JSON.stringify(tree)}`)
    expect(failures.slice(0, 1)).toEqual([])
    // The swarm covers every ensemble shape and the interesting sync paths.
    for (const shape of ['3+0', '5+0', '7+0']) expect(shapes).toContain(shape)
    expect([...shapes].some((s) => !s.endsWith('+0'))).toBe(true)
    expect(totals.truncs).toBeGreaterThan(0)
    expect(totals.snaps).toBeGreaterThan(0)
    expect(totals.historyDiffs).toBeGreaterThan(0)
    expect(faults).toBeGreaterThan(SEEDS * 10)
    // Both state machines run, and the tree seeds reach every path the tree checkers watch.
    expect(tree.seeds).toBeGreaterThan(SEEDS / 4)
    expect(SEEDS - tree.seeds).toBeGreaterThan(SEEDS / 4)
    for (const [k, v] of Object.entries(tree)) expect(v, k).toBeGreaterThan(0)
  })

  it('keeps every invariant on seeds that once failed', () => {
    // 105361: a leader rebuilt from a fuzzy SNAP (not yet replayed past its end) SNAPped a
    // follower with the end it had applied, not the end its tree could reflect. It reproduced
    // under the simulator's own copy of the driver; the shared driver draws its stream slices
    // differently, so 100010 and 100177 (several fuzzy SNAPs each under it) keep that path covered.
    let fuzzy = 0
    for (const seed of [105361, 100010, 100177]) {
      const r = runSimulation({ seed })
      expect(r.ok ? '' : formatFailure(r)).toBe('')
      fuzzy += r.stats.fuzzySnaps
    }
    expect(fuzzy).toBeGreaterThanOrEqual(5)
  })

  it('keeps every invariant with local sessions on every server (no Txn to open or close a session)', {
    timeout: 120_000,
  }, () => {
    // Seed 4 once failed: a local session's upgrade (its createSession behind a slow fsync) was
    // expired on its server, and its client resumed the session the commit then made elsewhere.
    const failures: string[] = []
    let sessions = 0
    for (let seed = 1; seed <= 40; seed++) {
      const r = runSimulation({ seed, localSessions: true })
      if (!r.ok) failures.push(formatFailure(r))
      sessions += r.stats.sessions
    }
    expect(failures).toEqual([])
    expect(sessions).toBeGreaterThan(100)
  })

  it('replays a seed exactly, over either state machine', () => {
    for (const stateMachine of ['kv', 'tree'] as const) {
      const a = runSimulation({ seed: 0x1f, stateMachine })
      const b = runSimulation({ seed: 0x1f, stateMachine })
      expect(b.stats).toEqual(a.stats)
      expect(b.trace).toEqual(a.trace)
    }
  })

  it('catches messages sent before what they vouch for is durable', () => {
    const r = firstFailure('sendBeforeDurable', 5)
    expect(r?.violation?.invariant).toBe('durable-before-ack')
  })

  it('catches a quorum that is not a majority (two leaders in one epoch)', () => {
    const r = firstFailure('noQuorum', 5)
    expect(r?.violation?.invariant).toBe('one-leader-per-epoch')
  })

  it('catches a closeSession that leaves its session and ephemerals behind on every server', () => {
    const r = firstFailure('skipClose', 5)
    expect(r?.violation?.invariant).toBe('ephemerals-closed')
  })

  it('catches one server that skips closeSession (its tree diverges)', () => {
    // Only while it follows: the leader applies first, so its digest is the reference.
    const r = firstFailure('divergentClose', 5)
    expect(r?.violation?.invariant).toBe('equal-digests')
  })

  it('catches a disk that acknowledges fsync before it happens (lost writes)', { timeout: 120_000 }, () => {
    // The disk-level checks are off for this one: the end-to-end check must see the loss.
    const r = firstFailure('lyingDisk', 50)
    expect(r?.violation?.invariant).toBe('acked-write-lost')
  })

  it('catches currentEpoch made durable ahead of the history it vouches for (ZOOKEEPER-4646)', () => {
    // The disk writes the epochs ahead of the log writes queued before them. The same
    // checker caught a planted bug in the production driver (server/replicate/zab-driver.ts):
    // issuing persist batches while a SNAP install still waited for the storage to drain
    // (300 seeds: 87 failed, on epoch-after-history and durable-before-ack).
    const r = firstFailure('metaFirst', 5)
    expect(r?.violation?.invariant).toBe('epoch-after-history')
  })

  // One mutation per invariant name the checkers can raise (mutations.ts has the table), so no
  // name is left unproven. Parts of two names are not proven on their own:
  //  - 'disk' is proven by its log-order check. Its epoch checks (a durable epoch going back,
  //    currentEpoch above acceptedEpoch) would need the same kind of bug on two epoch writes;
  //    its snapshot checks (a chunk or an end with no snapshot begun), and the driver's fatal
  //    storage errors that sim-node also reports as 'disk', watch how the driver uses the
  //    storage port: no bug of the disk model reaches them (SimDisk never fails a write), only
  //    a change to server/replicate/zab-driver.ts.
  //  - 'session-fifo' is proven on the order of replies; its other checks (a reply's zxid going
  //    back, a session's Txns committed out of cxid order) watch the server's request path
  //    (server/request), which only a change under server/ breaks.
  // 'assertion' and 'exception' are not checkers: they report the product's own self-checks,
  // and its throws, as failures of the seed.
  it('has one mutation per invariant', () => {
    const catches = Object.values(MUTATIONS).map((m) => m.catches)
    expect(new Set(catches).size).toBe(catches.length)
  })

  it('catches a leader that commits a reconfig on the new quorum alone (not the old one too)', () => {
    const r = firstFailure('oneConfigQuorum', 5)
    expect(r?.violation?.invariant).toBe('reconfig-quorums')
  })

  it("catches a joiner that keeps its own static config instead of its leader's (issue 19)", () => {
    const r = firstFailure('ownStaticConfig', 5)
    expect(r?.violation?.invariant).toBe('config-agreement')
  })

  it('changes membership under faults: reconfigs commit, and voters change, over a few seeds', () => {
    let committed = 0
    let votersChanged = 0
    for (let seed = 1; seed <= 20; seed++) {
      const r = runSimulation({ seed })
      expect(r.violation).toBeUndefined()
      committed += r.stats.reconfigsCommitted
      votersChanged += r.stats.votersChanged
    }
    expect(committed).toBeGreaterThan(20)
    expect(votersChanged).toBeGreaterThan(20)
  })

  it('catches a peer that keeps its acceptedEpoch only on disk (epochs out of order in memory)', () => {
    const r = firstFailure('forgetfulEpoch', 3)
    expect(r?.violation?.invariant).toBe('epochs')
  })

  it('catches an in-memory log that forgets its base when empty (commit beyond the log)', () => {
    const r = firstFailure('baseBlindLog', 3)
    expect(r?.violation?.invariant).toBe('commit-in-log')
  })

  it('catches a network that delivers a message twice (a protocol error between correct servers)', () => {
    const r = firstFailure('duplicateUpToDate', 3)
    expect(r?.violation?.invariant).toBe('protocol')
  })

  it('catches a restore that keeps the old applied zxid (applied != committed)', () => {
    const r = firstFailure('staleAppliedRestore', 3)
    // The install reads the chunks not read yet first, so it switches in a later event, which
    // delivers the commits that waited for it: the first follows the stale applied zxid
    // ("committed 0x20000003e right after 0x10000003f"), before the after-event apply check.
    expect(r?.violation?.invariant).toBe('prefix-agreement')
    expect(r?.violation?.detail).toMatch(/right after/)
  })

  it('catches a network that corrupts a proposal (a follower commits other data)', () => {
    const r = firstFailure('corruptProposal', 3)
    expect(r?.violation?.invariant).toBe('prefix-agreement')
  })

  it("catches a sync a learner answers without the leader's round trip (a stale read)", () => {
    const r = firstFailure('localSync', 3)
    expect(r?.violation?.invariant).toBe('sync-read')
  })

  it('catches a disk that reorders the entries of a group commit', () => {
    const r = firstFailure('reorderingDisk', 3)
    expect(r?.violation?.invariant).toBe('disk')
  })

  it('catches APP messages that are not FIFO with the ZAB stream (a reply after its COMMIT)', () => {
    const r = firstFailure('slowApp', 3)
    expect(r?.violation?.invariant).toBe('app-fifo')
  })

  it('catches connections that never come back (no write after healing)', () => {
    const r = firstFailure('noReconnect', 3)
    expect(r?.violation?.invariant).toBe('liveness')
  })

  it('catches a leader that reuses the sequence number of a deleted node', () => {
    const r = firstFailure('reuseSequence', 6)
    expect(r?.violation?.invariant).toBe('sequence-unique')
  })

  it("catches a tree that loses the high bits of an ephemeral's owner", () => {
    const r = firstFailure('truncatedOwner', 3)
    expect(r?.violation?.invariant).toBe('ephemeral-owner-live')
  })

  it('catches an ephemeral index that leaves out an ephemeral', () => {
    const r = firstFailure('lossyIndex', 3)
    expect(r?.violation?.invariant).toBe('ephemeral-index')
  })

  it('catches an ephemeral index read in insertion order (a restored server disagrees)', () => {
    const r = firstFailure('unsortedIndex', 6)
    expect(r?.violation?.invariant).toBe('ephemerals-agree')
  })

  it('catches a leader that applies a Txn before it commits', () => {
    const r = firstFailure('applyOnPropose', 3)
    expect(r?.violation?.invariant).toBe('tree-apply')
  })

  it('catches a client that names a sequential node by the path it asked for', () => {
    const r = firstFailure('requestedPath', 3)
    expect(r?.violation?.invariant).toBe('acked-create-lost')
  })

  it('catches a client that handles pipelined replies out of order', () => {
    const r = firstFailure('lifoReplies', 6)
    expect(r?.violation?.invariant).toBe('session-fifo')
  })

  it('catches a write memory that keeps nothing (a re-sent exactly-once write applied twice)', () => {
    const r = firstFailure('amnesicWrites', 6)
    expect(r?.violation?.invariant).toBe('once-applied-twice')
  })

  it('catches a write memory that answers a re-sent write with another write of its session', () => {
    const r = firstFailure('offByOneRecall', 20)
    expect(r?.violation?.invariant).toBe('once-result')
  })

  it('catches a server that decides a resume from its own stale state: a live session told it expired, a closed one resumed', () => {
    // The planted bug breaks both directions; each seed stops at the first violation it meets.
    const caught = new Set<string>()
    for (let seed = 1; seed <= 40 && caught.size < 2; seed++) {
      const r = runSimulation({ seed, mutation: 'localResumeSync' })
      if (!r.ok) caught.add(r.violation!.invariant)
    }
    expect([...caught].sort()).toEqual(['resume-closed', 'resume-live'])
  })

  it('catches a write memory that keeps one result per session (a re-sent write forgotten)', () => {
    const r = firstFailure('oneResultMemory', 12)
    expect(r?.violation?.invariant).toBe('once-forgotten')
  })

  // A rare bug to meet (a resume older than a history that dropped its start): seed 52 is the
  // first to show it since the workload moves sessions to lagging servers (seed 5 before).
  // Rare per seed (about 1 in 30): before joiners started naming themselves (and serving) it first
  // tripped on seed 46, since then on seed 115; the budget is seeds, the first failure ends it.
  it('catches a watch history that forgets it dropped its oldest changes (a resume replayed with a hole)', {
    timeout: 420_000,
  }, () => {
    const r = firstFailure('amnesicHistory', 160)
    expect(r?.violation?.invariant).toBe('watch-resume')
  })
})
