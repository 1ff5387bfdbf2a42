/**
 * TreeDb: the replicated state, and its one name. It is the DataTree
 * (server/tree: the znodes, pure) with prep and its outstanding changes
 * (server/txn): reads, prepping a write into a Txn, applying a committed
 * Txn, sessions, reaping, snapshots — and its recovery from storage: the
 * newest valid snapshot, then the log replayed over it (idempotently: the
 * snapshot is fuzzy). The request path (server/request) and the simulation
 * program against this class; the tree's internals stay its own.
 */
import type { Logger } from 'pino'
import type { Acl, Id } from '../../shared/acl.js'
import { ErrorCode } from '../../shared/errors.js'
import { JuteWriter } from '../../shared/jute.js'
import type { ZnodeData } from '../../shared/records.js'
import type { WireStat } from '../../shared/stat.js'
import { formatZxid } from '../../shared/zxid.js'
import type { Recovery } from '../storage/index.js'
import { DataTree } from '../tree/data-tree.js'
import { SnapshotFormatError } from '../tree/snapshot.js'
import { checkAcl } from '../txn/acl.js'
import type { TxnResult } from '../txn/apply.js'
import { applyTxn, replayTxn } from '../txn/apply.js'
import { decodeTxn, encodeTxn } from '../txn/codec.js'
import { OutstandingChanges } from '../txn/outstanding-changes.js'
import { prepAndRecord } from '../txn/prepare.js'
import { PreppedTxns } from '../txn/prepped-txns.js'
import type { PrepContext, PrepRequest } from '../txn/request.js'
import { type Txn, withHeader } from '../txn/txn.js'
import type { WatchChange } from '../watch/watch-table.js'
import {
  type ConfigAt,
  decodeConfigEntry,
  isConfigEntry,
  type MemberConfig,
  parseConfigText,
} from '../zab/index.js'

export type { TxnResult }

/** ZooKeeper's node for the membership config. */
export const CONFIG_NODE = '/zookeeper/config'

const utf8 = new TextEncoder()

/** /zookeeper/config's data for `config` made by the entry at `zxid`: its lines, then `version=<hex>`. */
export function configNodeData(config: MemberConfig, zxid: number): Uint8Array {
  return utf8.encode(`${config.text}\nversion=${zxid.toString(16)}`)
}

/** The config /zookeeper/config's data describes (undefined when empty: none committed yet). */
export function memberConfigOf(data: Uint8Array | null): ConfigAt | undefined {
  if (data === null || data.length === 0) return undefined
  const text = new TextDecoder().decode(data)
  const v = /(?:^|\n)version=([0-9a-f]+)\s*$/.exec(text)
  if (!v) throw new Error('/zookeeper/config has no version line')
  return { zxid: Number.parseInt(v[1]!, 16), config: parseConfigText(text) }
}

/** A znode as a read sees it: each part is looked up when first asked for. */
export interface NodeView {
  readonly stat: WireStat
  readonly data: ZnodeData
  readonly acl: readonly Acl[]
}

/** A failed multi carries one code per op. */
export type PrepOutcome = { ok: true; txn: Uint8Array } | { ok: false; err: ErrorCode; multi?: ErrorCode[] }

/** What is known of a session's exactly-once write when it arrives (again) at the leader's prep. */
export type WriteRecall =
  /** Applied: its result, encoded (server/txn/result-codec.ts). */
  | { kind: 'remembered'; zxid: number; result: Uint8Array }
  /** Prepped and on its way: its result comes when `zxid` is applied. */
  | { kind: 'inFlight'; zxid: number }
  /** Acknowledged by the client, or evicted: it must not be prepped (OUTCOME_UNKNOWN). */
  | { kind: 'forgotten'; why: 'acknowledged' | 'evicted' }
  /** Never prepped (that the state knows of): prep it. */
  | { kind: 'unknown' }

export interface ApplyOutcome {
  sessionId: bigint
  cxid: number
  result: TxnResult
  /** Watch changes, in the order they happened. */
  changes: WatchChange[]
  /** Sessions this Txn created or closed. */
  sessionCreated?: { id: bigint; timeoutMs: number }
  sessionClosed?: bigint
  /** An exactly-once write, applied live: its result as remembered (encoded). */
  remembered?: Uint8Array
  /**
   * Replayed over a fuzzy snapshot that may already have held it (zxid at or
   * below the fuzzy end): `changes` are what the replay still changed, not
   * necessarily what the Txn did, so they are no history of it.
   */
  replayed?: true
}

/**
 * A node seen through the tree. Each part is looked up when first asked
 * for, once: an exists() builds only the Stat, a getData() reads the data
 * and its Stat together, a permission check reads only the ACL.
 */
class LiveNode implements NodeView {
  private full: { data: ZnodeData; stat: WireStat } | undefined
  private statOnly: WireStat | undefined

  constructor(
    private readonly tree: DataTree,
    private readonly path: string,
  ) {}
  get stat(): WireStat {
    if (this.full !== undefined) return this.full.stat
    this.statOnly ??= this.tree.stat(this.path)!
    return this.statOnly
  }
  get data(): ZnodeData {
    this.full ??= this.tree.getData(this.path)!
    return this.full.data
  }
  get acl(): readonly Acl[] {
    return this.tree.aclOf(this.path)!
  }
}

export class TreeDb {
  private changes: OutstandingChanges
  private readonly writer = new JuteWriter(1024)
  /** This server's own prepped Txns with their bytes: applied without decoding them again. */
  private readonly prepped = new PreppedTxns()
  /**
   * Entries up to this zxid may already be reflected in the tree (it was
   * rebuilt from a fuzzy snapshot, a SNAP or a stored one): they are
   * replayed idempotently, as recovery replays the log, not applied.
   */
  private fuzzyEnd = 0

  constructor(public tree: DataTree) {
    this.changes = new OutstandingChanges(tree)
  }

  get lastZxid(): number {
    return this.tree.lastZxid
  }

  digest(): string {
    return this.tree.digest()
  }

  get(path: string): NodeView | undefined {
    return this.tree.exists(path) ? new LiveNode(this.tree, path) : undefined
  }

  children(path: string): string[] | undefined {
    return this.tree.getChildren(path)
  }

  /** A page of a znode's children in order (DataTree.childrenPage). */
  childrenPage(
    path: string,
    after: string,
    maxCount: number,
    maxBytes: number,
  ): { names: string[]; more: boolean } | undefined {
    return this.tree.childrenPage(path, after, maxCount, maxBytes)
  }

  canAccess(acl: readonly Acl[], perm: number, authIds: readonly Id[]): boolean {
    return checkAcl(acl, perm, authIds)
  }

  ephemerals(sessionId: bigint): string[] {
    return this.tree.ephemerals(sessionId)
  }

  descendantCount(path: string): number {
    return this.tree.descendantCount(path) ?? 0
  }

  *sessions(): Iterable<{ id: bigint; timeoutMs: number }> {
    for (const s of this.tree.sessions()) yield { id: s.sessionId, timeoutMs: s.timeoutMs }
  }

  hasSession(id: bigint): boolean {
    return this.tree.hasSession(id)
  }

  /**
   * Turns a write into a Txn, seeing earlier prepped-but-unapplied Txns. An
   * exactly-once write (`ctx.remember`) of a live session that fails becomes
   * an error Txn as well: it is logged, so its result is remembered like any
   * other. (A session that has ended never comes back: its writes all fail
   * with SESSION_EXPIRED, and there is nothing to remember.)
   */
  prep(req: PrepRequest, ctx: PrepContext): PrepOutcome {
    if (ctx.remember !== undefined && !this.changes.hasSession(ctx.sessionId))
      ctx = { ...ctx, remember: undefined }
    const txn = prepAndRecord(req, this.changes, ctx)
    // A failed request is answered at once, in its session's order; it uses no zxid.
    if (txn.type === 'error' && ctx.remember === undefined)
      return { ok: false, err: txn.code, ...(txn.results ? { multi: txn.results } : {}) }
    return { ok: true, txn: this.encodePrepped(txn) }
  }

  private encodePrepped(txn: Txn): Uint8Array {
    const bytes = encodeTxn(txn, this.writer)
    this.prepped.keep(txn, bytes)
    return bytes
  }

  /** An exactly-once write refused before prep (e.g. the tree quota): an error Txn, logged and remembered. */
  prepRefusal(code: ErrorCode, ctx: PrepContext): Uint8Array {
    const txn = withHeader({ type: 'error', code }, ctx)
    this.changes.record(txn)
    return this.encodePrepped(txn)
  }

  /** What the applied state and the writes in flight know of the session's exactly-once write `xid`. */
  recallWrite(sessionId: bigint, xid: number): WriteRecall {
    const zxid = this.changes.writeInFlight(sessionId, xid)
    if (zxid !== undefined) return { kind: 'inFlight', zxid }
    return this.tree.recallWrite(sessionId, xid)
  }

  apply(zxid: number, bytes: Uint8Array): ApplyOutcome {
    if (isConfigEntry(bytes)) return this.applyConfig(zxid, bytes)
    const txn = this.prepped.take(zxid, bytes) ?? decodeTxn(bytes)
    if (zxid <= this.fuzzyEnd) return this.applyOverFuzzy(zxid, txn)
    const r = applyTxn(this.tree, txn)
    this.changes.applied(zxid)
    const out: ApplyOutcome = { sessionId: r.sessionId, cxid: r.cxid, result: r.result, changes: r.events }
    if (r.remembered !== undefined) out.remembered = r.remembered
    if (r.result.type === 'createSession')
      out.sessionCreated = { id: r.sessionId, timeoutMs: r.result.timeoutMs }
    if (r.result.type === 'closeSession') out.sessionClosed = r.sessionId
    return out
  }

  replay(zxid: number, bytes: Uint8Array): void {
    if (isConfigEntry(bytes)) {
      this.applyConfig(zxid, bytes)
      return
    }
    replayTxn(this.tree, decodeTxn(bytes))
  }

  /**
   * A membership config entry (server/zab/membership.ts): /zookeeper/config
   * becomes its text and `version=<zxid in hex>`, as ZooKeeper's does; its
   * watchers fire. Idempotent (a replay over a fuzzy snapshot that already
   * holds it changes nothing but lastZxid).
   */
  private applyConfig(zxid: number, bytes: Uint8Array): ApplyOutcome {
    const config = decodeConfigEntry(bytes)
    if (config === undefined) throw new Error('not a config entry')
    const data = configNodeData(config, zxid)
    const cur = this.tree.getData(CONFIG_NODE)
    const header = { sessionId: 0n, cxid: 0, zxid, timeMs: 0 }
    // Already there, or a later one is (a fuzzy snapshot caught it): the version must not move.
    const held = memberConfigOf(cur?.data ?? null)?.zxid ?? 0
    const same = held >= zxid
    const txn: Txn = same
      ? withHeader({ type: 'error', code: ErrorCode.OK }, header)
      : withHeader(
          { type: 'setData', path: CONFIG_NODE, data, version: (cur?.stat.version ?? -1) + 1 },
          header,
        )
    const r = zxid <= this.fuzzyEnd ? undefined : applyTxn(this.tree, txn)
    const changes = r === undefined ? replayTxn(this.tree, txn) : r.events
    this.changes.applied(zxid)
    const out: ApplyOutcome = {
      sessionId: 0n,
      cxid: 0,
      result: r?.result ?? { type: 'error', code: ErrorCode.OK },
      changes,
    }
    if (r === undefined) out.replayed = true
    return out
  }

  /** The membership config the tree holds (/zookeeper/config), undefined while it holds none. */
  memberConfig(): ConfigAt | undefined {
    return memberConfigOf(this.tree.getData(CONFIG_NODE)?.data ?? null)
  }

  /**
   * An entry the fuzzy snapshot may have caught: replayed (what no longer
   * fits is skipped). Nobody waits for its reply (the server was not serving
   * while it caught up), so the outcome carries no result, only the changes
   * and the session bookkeeping.
   */
  private applyOverFuzzy(zxid: number, txn: Txn): ApplyOutcome {
    const changes = replayTxn(this.tree, txn)
    this.changes.applied(zxid)
    const out: ApplyOutcome = {
      sessionId: txn.sessionId,
      cxid: 0,
      result: { type: 'error', code: ErrorCode.OK },
      changes,
      replayed: true,
    }
    if (txn.type === 'createSession') out.sessionCreated = { id: txn.sessionId, timeoutMs: txn.timeoutMs }
    if (txn.type === 'closeSession') out.sessionClosed = txn.sessionId
    return out
  }

  /**
   * The highest zxid whose effects the tree may hold: the last one applied,
   * or, until it has been replayed past, the end of the fuzzy snapshot it was
   * rebuilt from. A snapshot taken from this tree may reflect up to here.
   */
  get reflectsThrough(): number {
    return Math.max(this.lastZxid, this.fuzzyEnd)
  }

  /** Entries up to here are replayed, not applied (0 when the tree never came from a fuzzy snapshot). */
  get fuzzyEndZxid(): number {
    return this.fuzzyEnd
  }

  /** The tree may reflect entries up to `zxid` (a fuzzy snapshot): replay them instead of applying. */
  replayThrough(zxid: number): void {
    this.fuzzyEnd = Math.max(this.fuzzyEnd, zxid)
  }

  dropOutstanding(): void {
    this.changes.clear()
    this.prepped.clear()
  }

  reapable(nowMs: number): string[] {
    return this.tree.reapable(nowMs)
  }

  nextReapAtMs(): number | undefined {
    return this.tree.nextReapAtMs()
  }

  snapshot(opts: { chunkBytes?: number } = {}): { zxid: number; chunks: Generator<Uint8Array, void, void> } {
    return this.tree.snapshot(opts)
  }

  nodeCount(): number {
    return this.tree.nodeCount()
  }

  sizeEstimateBytes(): number {
    return this.tree.sizeEstimateBytes()
  }

  /** The exactly-once write memories: sessions with one, results held, their estimated bytes. */
  writeMemoryStats(): { sessions: number; results: number; bytes: number } {
    return this.tree.writeMemoryStats()
  }

  /** Replaces the whole tree (a SNAP from the leader), which may reflect entries up to `fuzzyEndZxid`. */
  replaceTree(tree: DataTree, fuzzyEndZxid = 0): void {
    this.tree = tree
    this.changes = new OutstandingChanges(tree)
    this.fuzzyEnd = fuzzyEndZxid
  }

  /**
   * Replaces the whole tree with a snapshot's (a SNAP from the leader) as
   * it arrives, for a caller that runs the work between other work
   * (ZabDriver's RestoreJob): `push` reads one chunk's records into the new
   * tree at once (so no chunk is kept: a SNAP is never held whole), then
   * each `step` links and hashes `budget` znodes of it (DataTree.loader).
   * This TreeDb keeps its tree, unchanged, until the step that returns true
   * puts the new one in place (with `fuzzyEndZxid` as replaceTree's).
   * `push` and `step` throw SnapshotFormatError on a malformed snapshot.
   */
  beginReplace(zxid: number): {
    push(chunk: Uint8Array): void
    step(budget: number, fuzzyEndZxid: number): boolean
  } {
    const loader = DataTree.loader()
    return {
      push: (chunk) => loader.push(chunk),
      step: (budget, fuzzyEndZxid) => {
        const tree = loader.finish(budget)
        if (tree === undefined) return false
        if (tree.lastZxid !== zxid)
          throw new SnapshotFormatError(
            `snapshot holds zxid ${formatZxid(tree.lastZxid)}, SNAP said ${formatZxid(zxid)}`,
          )
        this.replaceTree(tree, fuzzyEndZxid)
        return true
      },
    }
  }

  /** An empty tree (a new server). */
  static empty(): TreeDb {
    return new TreeDb(new DataTree())
  }

  /** A tree from snapshot chunks (in order; chunk boundaries need not fall between records). */
  static fromSnapshot(chunks: Iterable<Uint8Array>): DataTree {
    return DataTree.fromSnapshot(chunks)
  }
}

/**
 * Rebuilds the tree from storage: the newest valid snapshot, then the log
 * after it, up to `replayThroughZxid` (everything in standalone mode; in an
 * ensemble only what is known committed — the rest waits for the leader).
 * Returns the entries not replayed, for ZAB.
 */
export function recoverDb(
  recovery: Recovery,
  logger: Logger,
  replayThroughZxid = Number.POSITIVE_INFINITY,
): { db: TreeDb; rest: { zxid: number; data: Uint8Array }[] } {
  const snap = recovery.snapshot
  const db = new TreeDb(snap === undefined ? new DataTree() : DataTree.fromSnapshot(snap.chunks()))
  // A learner's snapshot from a SNAP can reach further than its log (the entries it
  // may reflect arrive after it): whatever of them the leader sends later is replayed too.
  if (snap !== undefined) db.replayThrough(snap.zxidEnd)
  const rest: { zxid: number; data: Uint8Array }[] = []
  let replayed = 0
  for (const e of recovery.logEntries()) {
    if (e.zxid <= replayThroughZxid) {
      db.replay(e.zxid, e.data)
      replayed++
    } else rest.push(e)
  }
  logger.info(
    { replayed, pending: rest.length, zxid: formatZxid(db.lastZxid), digest: db.digest() },
    'tree rebuilt',
  )
  return { db, rest }
}
