/**
 * Random workloads for the replicated state (TreeDb): abstract commands
 * (fast-check arbitraries) made concrete against the reference model's
 * current state (so deletes, setData and versions hit real nodes often), and
 * a driver that runs them through the server's own write path (TreeDb.prep →
 * encoded Txn at the next zxid; TreeDb.apply later, in zxid order; see
 * harness.ts) and through the model side by side: several writes are
 * prepped before they are applied, as a leader pipelines them; the leader
 * changes now and then (TreeDb.dropOutstanding, the Txns in flight committed
 * or truncated), and the tree is rebuilt from its own snapshot
 * (TreeDb.replaceTree).
 */
import fc from 'fast-check'
import type { ApplyOutcome } from '../../../server/state/tree-db.js'
import { DataTree } from '../../../server/tree/data-tree.js'
import type { MultiOpRequest, PrepContext } from '../../../server/txn/request.js'
import type { Acl, Id } from '../../../shared/acl.js'
import { OPEN_ACL_UNSAFE, READ_ACL_UNSAFE } from '../../../shared/acl.js'
import type { CreateMode } from '../../../shared/opcodes.js'
import { Leader, type Prepped, type PrepRequest, type Proposal } from './harness.js'
import { type Ctx, Model, type MResult } from './model.js'

export const ALICE: Id = { scheme: 'digest', id: 'alice:2bmR0t3Nh4Jd0Fh1Tz5XqNdnx1Y=' }
export const BOB: Id = { scheme: 'digest', id: 'bob:Hh7cWqK2vS0p3b5YgJ6Zr2mX8aA=' }
export const CLIENT_IP: Id = { scheme: 'ip', id: '10.1.2.3' }
export const AUTH_CHOICES: readonly (readonly Id[])[] = [[], [ALICE], [CLIENT_IP], [ALICE, CLIENT_IP], [BOB]]

export const ACL_CHOICES: readonly Acl[][] = [
  [...OPEN_ACL_UNSAFE],
  [
    { perms: 1, id: { scheme: 'world', id: 'anyone' } },
    { perms: 31, id: ALICE },
  ],
  [{ perms: 31, id: { scheme: 'auth', id: '' } }],
  [{ perms: 31, id: { scheme: 'ip', id: '10.0.0.0/8' } }],
  [
    { perms: 4 | 8, id: { scheme: 'world', id: 'anyone' } },
    { perms: 31, id: { scheme: 'ip', id: '10.1.2.3' } },
  ],
  [...READ_ACL_UNSAFE],
  [{ perms: 4 | 1 | 8, id: { scheme: 'world', id: 'anyone' } }],
  [{ perms: 31, id: { scheme: 'world', id: 'bob' } }], // invalid: INVALID_ACL
  [],
]

/** Fixed paths (some nested, some bad) besides whatever exists in the model. */
const UNIVERSE = [
  '/',
  '/a',
  '/a/b',
  '/a/b/c',
  '/c',
  '/c/d',
  '/q',
  '/q/x',
  '/e',
  '/e/f',
  '/zookeeper/quota',
  '/zookeeper/x',
]
const BAD_PATHS = ['a', '/a/', '/a//b', '/./x', '/a/..', '/x\u0001', '']

export type Version = 'any' | 'match' | 'wrong'
/** How a path is chosen at run time: `m` 0 a bad path, 1–4 a fixed one, else an existing node (or, for creates, a new child of one). */
export interface PathPick {
  n: number
  m: number
}

export type SubCmd =
  | {
      t: 'create'
      path: PathPick
      seqName: 'none' | 'empty' | 'item'
      flags: number
      /** natural: a TTL for the TTL modes, none for the others; else always/never one. */
      ttlGiven: 'natural' | 'always' | 'never' | 'minusOne'
      ttl: number
      data: number[] | null
      acl: number
    }
  | { t: 'delete'; path: PathPick; version: Version }
  | { t: 'setData'; path: PathPick; version: Version; data: number[] | null }
  | { t: 'check'; path: PathPick; version: Version }
  | { t: 'setACL'; path: PathPick; version: Version; acl: number }

export type Cmd = (
  | SubCmd
  | { t: 'multi'; ops: SubCmd[] }
  | { t: 'createSession'; id: number; timeout: number }
  | { t: 'closeSession'; id: number }
  | { t: 'reap'; n: number }
  | { t: 'apply'; count: number }
  /** A change of leader: the Txns prepped but not applied were committed by the next one, or truncated. */
  | { t: 'leaderChange'; committed: boolean }
  /** Everything applied, the tree is rebuilt from its own snapshot (in chunks of `chunk` bytes). */
  | { t: 'restart'; chunk: number }
) & { dt: number; session: number; auth: number }

const pathPick = fc.record({ n: fc.nat(10_000), m: fc.nat(24) })
const fixedPathPick = fc.record({ n: fc.nat(10_000), m: fc.integer({ min: 1, max: 24 }) })
const version = fc.constantFrom<Version>('any', 'match', 'match', 'wrong')
// Sometimes null: no data, which the tree keeps distinct from empty bytes; now and then
// a larger value (so snapshot records cross chunk boundaries).
const data = fc.option(
  fc.oneof(
    { weight: 12, arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 6 }) },
    { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 200 }) },
  ),
  { nil: null, freq: 6 },
)

const createCmd = fc.record({
  t: fc.constant('create' as const),
  path: pathPick,
  seqName: fc.constantFrom('none' as const, 'none' as const, 'empty' as const, 'item' as const),
  flags: fc.oneof(
    { weight: 20, arbitrary: fc.integer({ min: 0, max: 6 }) },
    { weight: 1, arbitrary: fc.constant(9) },
  ),
  ttlGiven: fc.oneof(
    { weight: 12, arbitrary: fc.constant('natural' as const) },
    { weight: 1, arbitrary: fc.constantFrom('always' as const, 'never' as const, 'minusOne' as const) },
  ),
  ttl: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 1, max: 6000 }) },
    { weight: 1, arbitrary: fc.constantFrom(0, -5, 2 ** 40 - 1, 2 ** 40) },
  ),
  data,
  acl: fc.oneof(
    { weight: 10, arbitrary: fc.constant(0) },
    { weight: 4, arbitrary: fc.nat(ACL_CHOICES.length - 1) },
  ),
})

const subCmd: fc.Arbitrary<SubCmd> = fc.oneof(
  { weight: 5, arbitrary: createCmd },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('delete' as const), path: pathPick, version }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('setData' as const), path: pathPick, version, data }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('check' as const), path: fixedPathPick, version }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('setACL' as const),
      path: pathPick,
      version,
      acl: fc.nat(ACL_CHOICES.length - 1),
    }),
  },
)

const common = {
  dt: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 50 }) },
    { weight: 1, arbitrary: fc.nat(4000) },
  ),
  session: fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: 1, max: 3 }) },
    { weight: 1, arbitrary: fc.constant(0) },
  ),
  auth: fc.oneof(
    { weight: 6, arbitrary: fc.constant(0) },
    { weight: 4, arbitrary: fc.nat(AUTH_CHOICES.length - 1) },
  ),
}

function commandArb(restarts: boolean): fc.Arbitrary<Cmd> {
  const cmds: fc.WeightedArbitrary<Cmd>[] = [
    { weight: 12, arbitrary: subCmd.chain((c) => fc.record(common).map((x) => ({ ...c, ...x }))) },
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant('multi' as const),
        ops: fc.array(subCmd, { maxLength: 4 }),
        ...common,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant('createSession' as const),
        id: fc.integer({ min: 1, max: 3 }),
        timeout: fc.integer({ min: 2000, max: 40000 }),
        ...common,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant('closeSession' as const),
        id: fc.integer({ min: 1, max: 3 }),
        ...common,
      }),
    },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('reap' as const), n: fc.nat(1000), ...common }) },
    { weight: 5, arbitrary: fc.record({ t: fc.constant('apply' as const), count: fc.nat(6), ...common }) },
    {
      weight: 1,
      arbitrary: fc.record({ t: fc.constant('leaderChange' as const), committed: fc.boolean(), ...common }),
    },
  ]
  if (restarts)
    cmds.push({
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant('restart' as const),
        chunk: fc.integer({ min: 1, max: 600 }),
        ...common,
      }),
    })
  return fc.oneof(...cmds)
}

export const cmdArb: fc.Arbitrary<Cmd> = commandArb(true)
const cmdArbNoRestart: fc.Arbitrary<Cmd> = commandArb(false)

/** Sessions 1–3 open first (every write needs a live session), then random commands. */
const PRELUDE: Cmd[] = [1, 2, 3].map((id) => ({
  t: 'createSession' as const,
  id,
  timeout: 10_000,
  dt: 0,
  session: 0,
  auth: 0,
}))

/** `restarts: false` for tests that hold on to the tree object (a restart replaces it). */
export const cmdsArb = (maxLength = 120, o: { restarts?: boolean } = {}): fc.Arbitrary<Cmd[]> =>
  fc
    .array(o.restarts === false ? cmdArbNoRestart : cmdArb, { minLength: 1, maxLength, size: 'max' })
    .map((cmds) => [...PRELUDE, ...cmds])

/** numRuns scaled by CONCLAVE_PROPERTY_RUNS (a multiplier, for soaking: `CONCLAVE_PROPERTY_RUNS=20 npx vitest run test/unit/state`). */
export function runs(n: number): number {
  return Math.max(1, Math.round(n * Number(process.env.CONCLAVE_PROPERTY_RUNS ?? 1)))
}

// ------------------------------------------------------------ concretizing

const NAMES = ['a', 'b', 'c', 'x', 'y']

function pickPath(model: Model, p: PathPick, forCreate = false): string {
  if (p.m === 0) return BAD_PATHS[p.n % BAD_PATHS.length]!
  if (p.m <= 4) return UNIVERSE[p.n % UNIVERSE.length]!
  const existing = [...model.nodes.keys()].filter((x) => !x.startsWith('/zookeeper')).sort()
  if (!forCreate) return existing[p.n % existing.length]!
  const parent = existing[Math.floor(p.n / NAMES.length) % existing.length]!
  return `${parent === '/' ? '' : parent}/${NAMES[p.n % NAMES.length]}`
}

function versionOf(v: Version, actual: number | undefined): number {
  if (v === 'any') return -1
  if (v === 'match') return actual ?? 0
  return (actual ?? 0) + 1
}

const TTL_FLAGS = new Set([5, 6])

const MODES: CreateMode[] = [
  'persistent',
  'ephemeral',
  'persistentSequential',
  'ephemeralSequential',
  'container',
  'persistentWithTtl',
  'persistentSequentialWithTtl',
]

export function concretize(model: Model, c: SubCmd): MultiOpRequest | PrepRequest {
  switch (c.t) {
    case 'create': {
      let path = pickPath(model, c.path, c.seqName === 'none')
      if (c.seqName !== 'none' && c.path.m > 0)
        path = `${path === '/' ? '' : path}/${c.seqName === 'item' ? 'item-' : ''}`
      const ttlMs =
        c.ttlGiven === 'always' || (c.ttlGiven === 'natural' && TTL_FLAGS.has(c.flags))
          ? c.ttl
          : c.ttlGiven === 'minusOne'
            ? -1
            : undefined
      return {
        type: 'create',
        path,
        data: c.data === null ? null : Uint8Array.from(c.data),
        acl: ACL_CHOICES[c.acl]!.map((a) => ({ perms: a.perms, id: { ...a.id } })),
        mode: MODES[c.flags] ?? ('bogus' as CreateMode),
        ...(ttlMs === undefined ? {} : { ttlMs }),
      }
    }
    case 'delete': {
      const path = pickPath(model, c.path)
      return { type: 'delete', path, version: versionOf(c.version, model.nodes.get(path)?.version) }
    }
    case 'setData': {
      const path = pickPath(model, c.path)
      return {
        type: 'setData',
        path,
        data: c.data === null ? null : Uint8Array.from(c.data),
        version: versionOf(c.version, model.nodes.get(path)?.version),
      }
    }
    case 'check': {
      const path = pickPath(model, c.path)
      return { type: 'check', path, version: versionOf(c.version, model.nodes.get(path)?.version) }
    }
    case 'setACL': {
      const path = pickPath(model, c.path)
      return {
        type: 'setACL',
        path,
        acl: ACL_CHOICES[c.acl]!.map((a) => ({ perms: a.perms, id: { ...a.id } })),
        version: versionOf(c.version, model.nodes.get(path)?.aversion),
      }
    }
  }
}

// ------------------------------------------------------------ driving

/** A proposal not yet applied, with the request and what the model says applying it must give. */
export interface Pending extends Proposal {
  req: PrepRequest
  expected: MResult
}

export interface PrepStep {
  req: PrepRequest
  ctx: PrepContext
  /** What TreeDb.prep gave. */
  out: Prepped
}

/**
 * Runs commands on TreeDb (through Leader) and on the model side by side;
 * the callbacks compare (each prep, each apply).
 */
export class Driver extends Leader {
  model = new Model()
  /** Requests whose Txn applied with a result that is not an error. */
  succeeded = 0
  private readonly expected = new Map<number, { req: PrepRequest; expected: MResult }>()
  /**
   * The model as it was when the leader was last idle (nothing pending) and
   * a write was prepped, and the requests applied since: together, the model
   * of the applied tree, to go back to when the proposals in flight are truncated.
   */
  private checkpoint: { model: Model; applied: { req: PrepRequest; ctx: Ctx }[] } | undefined

  constructor(
    readonly onPrep: (step: PrepStep, expected: MResult) => void = () => {},
    readonly onApply: (p: Pending, out: ApplyOutcome) => void = () => {},
    tree = new DataTree(),
  ) {
    super(tree, { zxid: tree.lastZxid, timeMs: 1_700_000_000_000, sessions: [] })
  }

  request(c: Cmd): PrepRequest {
    switch (c.t) {
      case 'multi':
        return { type: 'multi', ops: c.ops.map((o) => concretize(this.model, o) as MultiOpRequest) }
      case 'createSession':
        return { type: 'createSession', timeoutMs: c.timeout }
      case 'closeSession':
        return { type: 'closeSession' }
      case 'reap': {
        // Mostly what the applied tree says is reapable (as the server asks), else anything.
        const ready = this.tree.reapable(this.timeMs)
        if (ready.length > 0 && c.n % 4 !== 0) return { type: 'reap', path: ready[c.n % ready.length]! }
        const all = [...this.model.nodes.keys()].filter((p) => c.n % 7 === 0 || !p.startsWith('/zookeeper'))
        return { type: 'reap', path: all.sort()[c.n % all.length]! }
      }
      case 'apply':
      case 'leaderChange':
      case 'restart':
        throw new Error(`${c.t} is not a request`)
      default:
        return concretize(this.model, c)
    }
  }

  /** Runs one command. */
  step(c: Cmd): void {
    this.timeMs += c.dt
    switch (c.t) {
      case 'apply':
        this.applySome(c.count === 0 ? this.pending.length : c.count)
        return
      case 'leaderChange':
        this.changeLeader(c.committed)
        return
      case 'restart':
        this.restart(c.chunk)
        return
    }
    const server = c.t === 'createSession' || c.t === 'closeSession' || c.t === 'reap'
    const ctx = this.nextCtx({
      dtMs: 0,
      sessionId:
        c.t === 'createSession' || c.t === 'closeSession'
          ? BigInt(c.id)
          : c.t === 'reap'
            ? 0n
            : BigInt(c.session),
      authIds: server ? [] : AUTH_CHOICES[c.auth]!,
    })
    this.prepOne(this.request(c), ctx)
  }

  /** Preps on TreeDb and executes on the model; a refused request takes no zxid (nor changes the model). */
  prepOne(req: PrepRequest, ctx: PrepContext): Prepped {
    const before = this.pending.length === 0 ? this.model.clone() : undefined
    const out = this.prepWith(req, ctx)
    const expected = this.model.exec(req, ctx)
    this.onPrep({ req, ctx, out }, expected)
    if (out.ok) {
      if (before !== undefined) this.checkpoint = { model: before, applied: [] }
      this.expected.set(out.zxid, { req, expected })
    }
    return out
  }

  override applyNext(): { p: Proposal; out: ApplyOutcome } {
    const r = super.applyNext()
    const e = this.expected.get(r.p.zxid)!
    this.expected.delete(r.p.zxid)
    this.checkpoint?.applied.push({ req: e.req, ctx: r.p.ctx })
    if (r.out.result.type !== 'error') this.succeeded++
    this.onApply({ ...r.p, ...e }, r.out)
    return r
  }

  applySome(count: number): void {
    for (let i = 0; i < count && this.pending.length > 0; i++) this.applyNext()
  }

  /** A change of leader; when the Txns in flight are truncated, the model goes back to the applied tree's state. */
  changeLeader(committed: boolean): void {
    if (!committed && this.pending.length > 0) {
      const m = this.checkpoint!.model.clone()
      for (const a of this.checkpoint!.applied) m.exec(a.req, a.ctx)
      this.model = m
      for (const p of this.pending) this.expected.delete(p.zxid)
    }
    this.checkpoint = undefined
    this.leaderChange(committed)
  }
}
