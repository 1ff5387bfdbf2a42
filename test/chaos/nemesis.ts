/**
 * The nemesis: a list of pluggable fault kinds, one injected at a time at
 * random (each healed before the next), recorded in the history with its
 * start and end. A kind says whether it applies to the cluster (partitions
 * need a fault hook; a bridge needs 3 voters) and whether it belongs to the
 * --majority mode (faults that take a majority away: the ensemble must stop
 * answering writes, and every checker must still pass). Adding a kind — a
 * membership change, say — is one entry in FAULT_KINDS.
 *
 * Partitions cut peer links through the ensemble helper's hook; a link is one
 * TCP connection, so a cut is symmetric; a one-way partition keeps the links
 * up and has the listener drop what the speaker sends (the fault hook's
 * `deafTo`). Disk stalls go through the server's storage
 * stall hook (server/storage/stall-hook.ts): the member's commits block as
 * if its fsync hung, until the heal. No clock fault (see docs/chaos.md).
 *
 * Membership kinds (Conclave, whose members run with reconfig enabled):
 * remove a voter, promote the observer, demote a voter, and a reconfig
 * immediately followed by a kill -9 or a partition of the leader or of a
 * member of the change. Each is healed by restoring the original membership
 * (membership.ts: retried within a bound), so the next fault meets the
 * static configuration again. By construction the ensemble keeps 3 voters
 * or more and keeps a quorum through the change and the crash after it:
 * a change that would leave fewer than 3 voters is a majority kind (only
 * with --majority). With a spare server (--spare: running outside the
 * configuration), it is added as a voter, and the heal removes it again.
 */
import type { Prng } from '../../server/core/prng.js'
import type { ChaosCluster } from './cluster.js'
import type { History } from './history.js'
import { MembershipNemesis } from './membership.js'
import { sleep } from './workloads/workload.js'

export interface Injected {
  readonly targets: readonly number[]
  readonly detail: string
  heal(): Promise<void>
}

/** What a kind may need besides the cluster: the membership nemesis (membership kinds), the mode. */
export interface NemesisContext {
  readonly membership?: MembershipNemesis | undefined
  /** --majority: faults may take a majority of the voters away. */
  readonly majority: boolean
}

export interface FaultKind {
  readonly name: string
  /** Only in --majority mode (the fault takes a majority of the voters away), on every cluster or on this one. */
  readonly majority?: boolean | ((cluster: ChaosCluster) => boolean)
  /** Changes the membership (needs ctx.membership). */
  readonly membership?: boolean
  /** Whether this cluster can take it. */
  applies(cluster: ChaosCluster): boolean
  inject(cluster: ChaosCluster, prng: Prng, ctx?: NemesisContext): Promise<Injected>
}

const isMajority = (k: FaultKind, c: ChaosCluster) =>
  typeof k.majority === 'function' ? k.majority(c) : k.majority === true

/** Voters that may be lost while a majority stays: 1 of 3, 2 of 5. */
const minority = (c: ChaosCluster) => Math.floor((c.voters.length - 1) / 2)

/** `count` voters, the current leader among them half the time. */
async function pickVoters(c: ChaosCluster, prng: Prng, count: number): Promise<number[]> {
  const picked = prng.shuffle([...c.voters]).slice(0, count)
  if (prng.chance(0.5)) {
    const leader = await c.leader()
    if (leader !== undefined && !picked.includes(leader)) picked[0] = leader
  }
  return picked
}

/** Any member (observers too), the leader half the time. */
async function pickOne(c: ChaosCluster, prng: Prng): Promise<number> {
  if (prng.chance(0.5)) {
    const leader = await c.leader()
    if (leader !== undefined) return leader
  }
  return prng.pick(c.members.map((m) => m.id))
}

function killing(ids: readonly number[], c: ChaosCluster): Promise<Injected> {
  return Promise.all(ids.map((id) => c.kill9(id))).then(() => ({
    targets: ids,
    detail: `kill -9 n${ids.join(',n')}`,
    heal: async () => {
      await Promise.all(ids.map((id) => c.start(id)))
    },
  }))
}

function pausing(ids: readonly number[], c: ChaosCluster): Injected {
  for (const id of ids) c.pause(id)
  return {
    targets: ids,
    detail: `SIGSTOP n${ids.join(',n')}`,
    heal: async () => {
      for (const id of ids) c.resume(id)
    },
  }
}

/** Cuts every link between the two sides (members in neither keep all their links); the targets are side `a`. */
function cutting(c: ChaosCluster, a: readonly number[], b: readonly number[], detail: string): Injected {
  const links: [number, number][] = []
  for (const x of a) for (const y of b) links.push([x, y])
  c.cut!(links)
  return {
    targets: a,
    detail,
    heal: async () => c.heal!(),
  }
}

function stalling(ids: readonly number[], c: ChaosCluster): Injected {
  for (const id of ids) c.stallDisk!(id, true)
  return {
    targets: ids,
    detail: `disk stalled n${ids.join(',n')}`,
    heal: async () => {
      for (const id of ids) c.stallDisk!(id, false)
    },
  }
}

const canCut = (c: ChaosCluster) => c.cut !== undefined
const canDeafen = (c: ChaosCluster) => c.deafen !== undefined
const canStall = (c: ChaosCluster) => c.stallDisk !== undefined
const names = (ids: readonly number[]) => ids.map((i) => `n${i}`).join(',')

const canReconfig = (c: ChaosCluster) => c.reconfig !== undefined
/** Removing or demoting one voter leaves fewer than 3: only with --majority. */
const lastThree = (c: ChaosCluster) => c.voters.length - 1 < 3
const observers = (c: ChaosCluster) => c.members.filter((m) => m.observer).map((m) => m.id)

function membershipOf(ctx: NemesisContext | undefined): MembershipNemesis {
  if (ctx?.membership === undefined) throw new Error('a membership fault needs the membership nemesis')
  return ctx.membership
}

/** One membership change: what to ask, the members it is about, in words. */
interface Change {
  readonly opts: { joining?: string; leaving?: string; newMembers?: string[] }
  readonly members: readonly number[]
  readonly what: string
}

async function removeVoter(c: ChaosCluster, p: Prng): Promise<Change> {
  const [v] = await pickVoters(c, p, 1)
  return { opts: { leaving: String(v) }, members: [v!], what: `remove voter n${v}` }
}

function promoteObserver(c: ChaosCluster, p: Prng): Change {
  const o = p.pick(observers(c))
  return {
    opts: { joining: c.reconfig!.line(o, 'participant') },
    members: [o],
    what: `promote observer n${o}`,
  }
}

async function demoteVoter(c: ChaosCluster, p: Prng): Promise<Change> {
  const [v] = await pickVoters(c, p, 1)
  return { opts: { joining: c.reconfig!.line(v!, 'observer') }, members: [v!], what: `demote voter n${v}` }
}

function addSpare(c: ChaosCluster, p: Prng): Change {
  const s = p.pick([...c.spares])
  return {
    opts: { joining: c.reconfig!.line(s, 'participant') },
    members: [s],
    what: `add spare n${s} as a voter`,
  }
}

/** The same membership written again: a new config version, nobody's role changed (3 voters, no observer, no --majority). */
function rewrite(c: ChaosCluster, m: MembershipNemesis, p: Prng): Change {
  return {
    opts: { newMembers: m.original.split('\n') },
    members: [p.pick(c.members.map((x) => x.id))],
    what: 'rewrite the same membership',
  }
}

/** One member down until healed: kill -9, or (where the cluster can) cut off from every peer, or SIGSTOP if asked. */
async function takeDown(
  c: ChaosCluster,
  p: Prng,
  id: number,
  orPause = false,
): Promise<{ undo: Injected; what: string }> {
  const ways = ['kill -9', ...(canCut(c) ? ['partition'] : []), ...(orPause ? ['SIGSTOP'] : [])]
  const what = p.pick(ways)
  if (what === 'kill -9') return { undo: await killing([id], c), what }
  if (what === 'SIGSTOP') return { undo: pausing([id], c), what }
  const rest = c.members.map((x) => x.id).filter((x) => x !== id)
  return { undo: cutting(c, [id], rest, `n${id} | ${names(rest)}`), what }
}

/**
 * A membership fault: `change`, held, healed by restoring the original membership. Half the
 * time one member (any, the leader among them) goes down under the changed membership too —
 * killed, paused or cut off — until the heal: outside --majority the change left 4 voters or
 * more (or, refused, the original 3 or 5), so a quorum stays.
 */
async function changing(c: ChaosCluster, m: MembershipNemesis, change: Change, p: Prng): Promise<Injected> {
  const r = await m.change(change.opts, 'fault')
  const during = p.fork('during')
  let down: { undo: Injected; what: string } | undefined
  let victim: number | undefined
  if (during.chance(0.5)) {
    victim = (during.chance(0.5) ? await c.leader() : undefined) ?? during.pick(c.members.map((x) => x.id))
    down = await takeDown(c, during, victim, true)
  }
  return {
    targets: [...new Set([...change.members, ...(victim !== undefined ? [victim] : [])])],
    detail: `${change.what} (${MembershipNemesis.describe(r)})${down ? `, then ${down.what} n${victim}` : ''}`,
    heal: async () => {
      await down?.undo.heal()
      await m.restore()
    },
  }
}

export const FAULT_KINDS: FaultKind[] = [
  { name: 'kill', applies: () => true, inject: async (c, p) => killing([await pickOne(c, p)], c) },
  { name: 'pause', applies: () => true, inject: async (c, p) => pausing([await pickOne(c, p)], c) },
  {
    name: 'kill-minority',
    applies: (c) => minority(c) >= 2,
    inject: async (c, p) => killing(await pickVoters(c, p, minority(c)), c),
  },
  {
    name: 'pause-minority',
    applies: (c) => minority(c) >= 2,
    inject: async (c, p) => pausing(await pickVoters(c, p, minority(c)), c),
  },
  {
    name: 'kill-majority',
    majority: true,
    applies: () => true,
    inject: async (c, p) => killing(await pickVoters(c, p, minority(c) + 1), c),
  },
  {
    name: 'pause-majority',
    majority: true,
    applies: () => true,
    inject: async (c, p) => pausing(await pickVoters(c, p, minority(c) + 1), c),
  },
  {
    // One member's disk (the leader's half the time) stands still: its commits wait, its ACKs stop.
    name: 'disk-stall',
    applies: canStall,
    inject: async (c, p) => stalling([await pickOne(c, p)], c),
  },
  {
    name: 'disk-stall-minority',
    applies: (c) => canStall(c) && minority(c) >= 2,
    inject: async (c, p) => stalling(await pickVoters(c, p, minority(c)), c),
  },
  {
    // One member (the leader half the time) cut off from every peer.
    name: 'partition',
    applies: canCut,
    async inject(c, p) {
      const id = await pickOne(c, p)
      const rest = c.members.map((m) => m.id).filter((x) => x !== id)
      return cutting(c, [id], rest, `n${id} | ${names(rest)}`)
    },
  },
  {
    // The leader cut off from every peer (a deposed leader that still has its clients).
    name: 'partition-leader',
    applies: canCut,
    async inject(c, p) {
      const id = (await c.leader()) ?? p.pick([...c.voters])
      const rest = c.members.map((m) => m.id).filter((x) => x !== id)
      return cutting(c, [id], rest, `leader n${id} | ${names(rest)}`)
    },
  },
  {
    // One-way: one member (the leader half the time) hears nobody while every peer still hears
    // it, or nobody hears it while it hears everyone (a deposed leader that still gets ACKs).
    name: 'partition-one-way',
    applies: canDeafen,
    async inject(c, p) {
      const id = await pickOne(c, p)
      const rest = c.members.map((m) => m.id).filter((x) => x !== id)
      const deafOne = p.chance(0.5)
      c.deafen!(rest.map((r): [number, number] => (deafOne ? [r, id] : [id, r])))
      return {
        targets: [id],
        detail: deafOne
          ? `n${id} hears nobody (${names(rest)} hear it)`
          : `nobody hears n${id} (it hears ${names(rest)})`,
        heal: async () => c.heal!(),
      }
    },
  },
  {
    // A minority of the voters (and the observer, on either side) against the majority.
    name: 'partition-halves',
    applies: (c) => canCut(c) && c.members.length >= 3,
    async inject(c, p) {
      const voters = p.shuffle([...c.voters])
      const small = voters.slice(0, Math.max(1, minority(c)))
      const big = voters.slice(small.length)
      for (const m of c.members) if (m.observer) (p.chance(0.5) ? small : big).push(m.id)
      return cutting(c, small, big, `${names(small)} | ${names(big)}`)
    },
  },
  {
    // Two sides that cannot see each other, and one member that sees both (with 5 voters,
    // each side plus the bridge is a majority).
    name: 'partition-bridge',
    applies: (c) => canCut(c) && c.voters.length >= 3,
    async inject(c, p) {
      const voters = p.shuffle([...c.voters])
      const bridge = voters.pop()!
      const left = voters.slice(0, Math.floor(voters.length / 2))
      const right = voters.slice(left.length)
      for (const m of c.members) if (m.observer) (p.chance(0.5) ? left : right).push(m.id)
      return cutting(c, left, right, `${names(left)} | ${names(right)}, bridge n${bridge}`)
    },
  },
  {
    // A voter (the leader half the time) leaves the configuration; it keeps running, outside it.
    name: 'reconfig-remove',
    membership: true,
    majority: lastThree,
    applies: canReconfig,
    inject: async (c, p, ctx) => changing(c, membershipOf(ctx), await removeVoter(c, p), p),
  },
  {
    name: 'reconfig-promote',
    membership: true,
    applies: (c) => canReconfig(c) && observers(c).length > 0,
    inject: async (c, p, ctx) => changing(c, membershipOf(ctx), promoteObserver(c, p), p),
  },
  {
    // A voter (the leader half the time) becomes an observer.
    name: 'reconfig-demote',
    membership: true,
    majority: lastThree,
    applies: canReconfig,
    inject: async (c, p, ctx) => changing(c, membershipOf(ctx), await demoteVoter(c, p), p),
  },
  {
    // A reconfig, and while it is in flight a kill -9 or a partition of the leader or of a
    // member of the change. The change is one the cluster may take in this mode (the same
    // membership rewritten when no other is); the ensemble keeps a quorum through both.
    name: 'reconfig-crash',
    membership: true,
    applies: canReconfig,
    async inject(c, p, ctx) {
      const m = membershipOf(ctx)
      const kinds: (() => Promise<Change> | Change)[] = []
      if (!lastThree(c) || ctx?.majority)
        kinds.push(
          () => removeVoter(c, p),
          () => demoteVoter(c, p),
        )
      if (observers(c).length > 0) kinds.push(() => promoteObserver(c, p))
      if (c.spares.length > 0) kinds.push(() => addSpare(c, p))
      const change = await (kinds.length > 0 ? p.pick(kinds)() : rewrite(c, m, p))
      const leader = await c.leader()
      const pending = m.change(change.opts, 'fault')
      await sleep(p.int(0, 40))
      const victim = leader !== undefined && p.chance(0.5) ? leader : p.pick([...change.members])
      const { undo, what } = await takeDown(c, p, victim)
      const r = await pending
      return {
        targets: [...new Set([...change.members, victim])],
        detail: `${change.what} (${MembershipNemesis.describe(r)}), then ${what} ${victim === leader ? 'leader ' : ''}n${victim}`,
        heal: async () => {
          await undo.heal()
          await m.restore()
        },
      }
    },
  },
  {
    // A spare server (running, outside the configuration: --spare) added as a voter; the heal
    // removes it again.
    name: 'reconfig-add-spare',
    membership: true,
    applies: (c) => canReconfig(c) && c.spares.length > 0,
    inject: async (c, p, ctx) => changing(c, membershipOf(ctx), addSpare(c, p), p),
  },
]

export const FAULT_NAMES = FAULT_KINDS.map((k) => k.name)

/** Throws on a name that is no fault kind, or a majority kind outside majority mode (on this cluster, if given). */
export function checkFaultNames(
  named: readonly string[] | undefined,
  majorityMode: boolean,
  cluster?: ChaosCluster,
): void {
  for (const n of named ?? []) {
    const k = FAULT_KINDS.find((x) => x.name === n)
    if (k === undefined) throw new Error(`unknown fault ${n} (${FAULT_NAMES.join(', ')})`)
    const majority = cluster !== undefined ? isMajority(k, cluster) : k.majority === true
    if (majority && !majorityMode)
      throw new Error(
        `fault ${n} takes a majority away${cluster !== undefined ? ` with ${cluster.voters.length} voters` : ''}: only with --majority`,
      )
  }
}

/** The kinds a run uses: those named (default: every kind that applies; the majority kinds only in majority mode). */
export function faultKinds(
  cluster: ChaosCluster,
  named: readonly string[] | undefined,
  majorityMode: boolean,
): FaultKind[] {
  checkFaultNames(named, majorityMode, cluster)
  return FAULT_KINDS.filter(
    (k) =>
      (named === undefined ? !isMajority(k, cluster) || majorityMode : named.includes(k.name)) &&
      k.applies(cluster),
  )
}

/**
 * Faults until `deadline() - quietMs` (the quiet end lets the ensemble settle
 * before the final reads). The deadline is read again at every step: a run
 * cut short (run.ts) moves it to now, and the nemesis heals its fault and ends.
 */
export async function runNemesis(
  cluster: ChaosCluster,
  prng: Prng,
  kinds: readonly FaultKind[],
  deadline: () => number,
  history: History,
  log: (line: string) => void,
  ctx: NemesisContext = { majority: false },
  quietMs = 2000,
): Promise<void> {
  let count = 0
  while (performance.now() < deadline() - quietMs && kinds.length > 0) {
    await sleep(prng.int(500, 1500))
    if (performance.now() > deadline() - quietMs) break
    // A membership that could not be restored is no base for another change.
    const now = ctx.membership?.restored === false ? kinds.filter((k) => !k.membership) : kinds
    if (now.length === 0) break
    const kind = prng.pick([...now])
    const holdMs = prng.int(500, 2500)
    const leader = await cluster.leader()
    const startAt = history.now()
    // Forked by the fault's number, not its time: a seed picks the same targets again.
    const f = await kind.inject(cluster, prng.fork(`${kind.name}-${count++}`), ctx)
    log(`nemesis: ${kind.name} ${f.detail} for ${holdMs} ms (leader n${leader ?? '?'})`)
    await sleep(holdMs)
    await f.heal()
    history.fault({
      kind: kind.name,
      targets: f.targets,
      detail: f.detail,
      leader,
      startAt,
      endAt: history.now(),
    })
  }
  while (performance.now() < deadline()) await sleep(100)
}
