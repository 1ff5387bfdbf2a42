/**
 * DataTree: the replicated state — znodes with ZooKeeper's exact Stat
 * rules, the session table (and each session's write memory, the results
 * of its exactly-once writes: write-memory.ts), the ephemeral index,
 * container/TTL reap candidates, ACLs (interned), and an incrementally
 * maintained digest.
 *
 * Mutation is through absolute-valued primitives (createNode, deleteNode,
 * setData, setAcl, createSession, closeSession) that the Txn dispatcher
 * (server/txn/apply.ts; `apply`/`applyReplay` here) calls. In 'live' mode a primitive that does not fit
 * the tree is a programmer error (assert); in 'replay' mode it is skipped
 * with only its idempotent parent effects, so replaying the log suffix over
 * a fuzzy snapshot converges to the same tree and digest.
 *
 * Invariants:
 * - every live znode but '/' has its parent live, listed in its children;
 * - ephemerals have no children; ephemeral index == znodes of kind ephemeral;
 * - pzxid only grows; stored cversion only grows (int32, wrap-aware);
 * - digest == sum over znodes and sessions of their hashes (two u32 lanes);
 * - children are listed in JS default string order (UTF-16 code units).
 * Must not import anything but shared/, server/tree/ and server/txn/ (pure:
 * no clock, no I/O, no randomness, no async).
 */
import { type Acl, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE } from '../../shared/acl.js'
import { assert, fail } from '../../shared/assert.js'
import { type CreateMode, isEphemeralMode, isTtlMode } from '../../shared/opcodes.js'
import { baseName, parentPath } from '../../shared/paths.js'
import type { ZnodeData } from '../../shared/records.js'
import type { WireStat } from '../../shared/stat.js'
import { addScaling, type ScalingSet, ShardedMap } from '../core/sharded-map.js'
import { type ApplyResult, applyTxn, replayTxn } from '../txn/apply.js'
import type { Txn } from '../txn/txn.js'
import { AclCache } from './acl-cache.js'
import { formatLanes, Hasher } from './hash.js'
import { type ChildSlots, Kind, NodeStore } from './node-store.js'
import { ReapIndex } from './reap-index.js'
import {
  type NodeRecord,
  type NodeRecordOut,
  type NodeRecordView,
  SnapshotDecoder,
  SnapshotFormatError,
  writeSnapshot,
} from './snapshot.js'
import { SortedNames } from './sorted-names.js'
import type { ApplyMode, ChangeEvent, CreateNodeArgs, NodeKindName, NodeMeta } from './tree-types.js'
import { type Recalled, type RememberedWrite, type RememberLimits, WriteMemory } from './write-memory.js'
import { dataLength, fromBytes, fromRange, toBytes } from './znode-data.js'

const KIND_NAMES: readonly NodeKindName[] = ['persistent', 'ephemeral', 'container', 'ttl']

/** The one hasher of the tree's hashes (each is done before the next starts): none made per znode. */
const hasher = new Hasher()

const DATA_SEED = 0x64617461

/** ZooKeeper's paths that always exist and can never be deleted (DataTree.isSpecialPath). */
export const SPECIAL_PATHS: ReadonlySet<string> = new Set([
  '/',
  '/zookeeper',
  '/zookeeper/quota',
  '/zookeeper/config',
])

/** ZooKeeper's version increment: +1, skipping -1 after wraparound (ZOOKEEPER-4743). */
export function nextVersion(v: number): number {
  const n = (v + 1) | 0
  return n === -1 ? 0 : n
}

/** Whether int32 counter `a` is after `b`, allowing for signed wraparound. */
function isAfter(a: number, b: number): boolean {
  return ((a - b) | 0) > 0
}

function kindOfMode(mode: CreateMode): Kind {
  if (isEphemeralMode(mode)) return Kind.ephemeral
  if (mode === 'container') return Kind.container
  if (isTtlMode(mode)) return Kind.ttl
  return Kind.persistent
}

/** JS default string order, spelled out so no one swaps in localeCompare. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export interface SnapshotOptions {
  /** Chunk size target; a single larger record gets a chunk of its own. */
  chunkBytes?: number
}

/**
 * What one znode is taken to cost beyond its path and data, in estimating the
 * tree's size (the treeBytesMax quota): its slot's columns, its index entry,
 * its place among its parent's children, its hash. Measured: 236-350 bytes of
 * heap per 100-byte znode at 1M znodes, data included.
 */
export const ZNODE_OVERHEAD_BYTES = 256

/**
 * Children at which a parent gets an ordered index of them, kept from then
 * on (below it, a page sorts them: cheap). About 8 bytes a child.
 */
export const ORDERED_MIN = 256

/** The estimated size of one znode (see ZNODE_OVERHEAD_BYTES). */
export function znodeSizeEstimate(pathLength: number, dataLength: number): number {
  return ZNODE_OVERHEAD_BYTES + pathLength + dataLength
}

/** Parents DataTree.parentSlot remembers while linking a loaded tree. */
const RECENT_PARENTS_MAX = 4096

/** The linking walk's state (DataTree.isRooted): per slot, its verdict and parent; scratch. */
interface RootWalk {
  rooted: Uint8Array
  parents: Int32Array
  /** The unsettled ancestors of the slot being walked (reused). */
  chain: number[]
  /** Parent path -> slot, for the parents looked up lately (DataTree.parentSlot). */
  recent: Map<string, number>
  /** Per slot, how many rooted znodes it is the parent of. */
  children: Int32Array
}

/** A tree being rebuilt from a snapshot stream (DataTree.loader). */
export interface TreeLoader {
  /** The next piece of the stream: its whole records are stored now. */
  push(chunk: Uint8Array): void
  /**
   * The stream has ended: links, checks and hashes up to `budget` znodes
   * (default: all); returns the tree once it is complete, else undefined
   * (call again). Throws SnapshotFormatError if the stream was malformed.
   */
  finish(budget?: number): DataTree | undefined
}

export class DataTree {
  private readonly store = new NodeStore()
  /** Path → slot; sharded, so growing it at a million znodes does not stall the server. */
  private readonly index = new ShardedMap<string, number>()
  private readonly acls = new AclCache()
  /** Slot -> owner, for ephemeral znodes only. */
  private readonly owners = new ShardedMap<number, bigint>()
  /** Session -> its ephemerals' paths (a ShardedSet for a session with very many). */
  private readonly ephemeralIndex = new Map<bigint, ScalingSet<string>>()
  private readonly sessionTable = new Map<bigint, number>()
  /** Per session, the results of its last exactly-once writes (write-memory.ts). */
  private readonly writes = new WriteMemory()
  private readonly reap = new ReapIndex()
  private sumA = 0
  /** fromSnapshot only: place/link/drop leave the digest alone; it is computed once at the end. */
  private bulkLoading = false
  private sumB = 0
  private zxid = 0
  /** Σ znodeSizeEstimate over the live znodes. */
  private sizeBytes = 0
  /**
   * Parent slot -> its children's slots in name order, for every parent
   * that reached ORDERED_MIN children since this tree was made (built then,
   * from ORDERED_MIN names) or since it was loaded from a snapshot (built at
   * its first page); kept up to date by link and removeSubtree, dropped with
   * the parent. Derived from the tree (not in the digest or snapshots).
   */
  private readonly ordered = new Map<number, SortedNames<number>>()
  /** A slot's name: what the ordered indexes sort by. */
  private readonly nameOf = (slot: number): string => baseName(this.store.path(slot))

  /** A tree as a fresh ZooKeeper has it: '/', '/zookeeper', '/zookeeper/quota', '/zookeeper/config'. */
  constructor(bare = false) {
    if (bare) return
    const zero = { czxid: 0, mzxid: 0, pzxid: 0, ctime: 0, mtime: 0, version: 0, cversion: 0, aversion: 0 }
    const empty = new Uint8Array(0)
    const base = { data: empty, kind: Kind.persistent, owner: 0n, ttlMs: 0, ...zero }
    // ZooKeeper adds these without touching cversion, so a fresh '/' shows cversion -1.
    this.link(this.place({ ...base, path: '/', acl: OPEN_ACL_UNSAFE }))
    this.link(this.place({ ...base, path: '/zookeeper', acl: OPEN_ACL_UNSAFE }))
    this.link(this.place({ ...base, path: '/zookeeper/quota', acl: OPEN_ACL_UNSAFE }))
    // ZooKeeper sets this ACL with setACL(…, -1), which leaves aversion at -1 (ZOOKEEPER-2014).
    this.link(this.place({ ...base, path: '/zookeeper/config', acl: READ_ACL_UNSAFE, aversion: -1 }))
  }

  // ------------------------------------------------------------------ reads

  /** The zxid of the last Txn applied (or of the snapshot this tree was loaded from). */
  get lastZxid(): number {
    return this.zxid
  }

  /**
   * The tree's estimated size in bytes: per znode an overhead plus its path
   * and data (see ZNODE_OVERHEAD_BYTES), plus the sessions' write memories.
   */
  sizeEstimateBytes(): number {
    return this.sizeBytes + this.writes.bytes
  }

  nodeCount(): number {
    return this.index.size
  }

  exists(path: string): boolean {
    return this.index.has(path)
  }

  /** The Stat clients see (cversion = creates + deletes; ephemeralOwner 0 unless ephemeral). */
  stat(path: string): WireStat | undefined {
    const slot = this.index.get(path)
    return slot === undefined ? undefined : this.wireStat(slot)
  }

  /** Data and Stat. The bytes must not be mutated (large data is returned without a copy). */
  getData(path: string): { data: ZnodeData; stat: WireStat } | undefined {
    const slot = this.index.get(path)
    if (slot === undefined) return undefined
    return { data: toBytes(this.store.data(slot)), stat: this.wireStat(slot) }
  }

  /** Just the ACL (no Stat built): for permission checks on the read path. */
  aclOf(path: string): readonly Acl[] | undefined {
    const slot = this.index.get(path)
    return slot === undefined ? undefined : this.acls.get(this.store.aclRef(slot))
  }

  getAcl(path: string): { acl: readonly Acl[]; stat: WireStat } | undefined {
    const slot = this.index.get(path)
    if (slot === undefined) return undefined
    return { acl: this.acls.get(this.store.aclRef(slot)), stat: this.wireStat(slot) }
  }

  /** Child names, sorted in JS default string order; undefined if there is no such znode. */
  getChildren(path: string): string[] | undefined {
    const slot = this.index.get(path)
    if (slot === undefined) return undefined
    const kids = this.store.children(slot)
    if (kids === undefined) return []
    // A large parent's ordered index lists them in order already: no sort.
    const sorted = this.orderedIndex(slot, kids)
    if (sorted !== undefined) return sorted.toArray().map(this.nameOf)
    const names: string[] = []
    for (const k of kids) names.push(baseName(this.store.path(k)))
    return names.sort(compareNames)
  }

  /**
   * A page of a znode's children in JS default string order: the names after
   * `after` ('' : from the first), at most `maxCount` of them and at most
   * `maxBytes` of them as the wire carries them (a 4-byte length and the
   * UTF-8 of each), but always at least one if any is left; `more` when
   * names are left after the page. Undefined if there is no such znode.
   * Cost: O(log n + page) for a parent with an ordered index (every parent
   * of ORDERED_MIN children or more, its index kept up to date at O(log n)
   * a create or delete; after a snapshot load, built at the parent's first
   * page: one sort of its names), else a sort of its (few) children.
   */
  childrenPage(
    path: string,
    after: string,
    maxCount: number,
    maxBytes: number,
  ): { names: string[]; more: boolean } | undefined {
    const slot = this.index.get(path)
    if (slot === undefined) return undefined
    const names: string[] = []
    let bytes = 0
    let more = false
    for (const name of this.orderedChildren(slot, after)) {
      const size = 4 + Buffer.byteLength(name, 'utf8')
      if (names.length >= maxCount || (names.length > 0 && bytes + size > maxBytes)) {
        more = true
        break
      }
      names.push(name)
      bytes += size
    }
    return { names, more }
  }

  /** Parents with an ordered index (for tests). */
  orderedParents(): number {
    return this.ordered.size
  }

  private *orderedChildren(slot: number, after: string): Generator<string, void, undefined> {
    const kids = this.store.children(slot)
    if (kids === undefined) return
    const sorted = this.orderedIndex(slot, kids)
    if (sorted === undefined) {
      const names: string[] = []
      for (const k of kids) {
        const name = this.nameOf(k)
        if (after === '' || after < name) names.push(name)
      }
      yield* names.sort(compareNames)
      return
    }
    for (const k of sorted.after(after)) yield this.nameOf(k)
  }

  /** A parent's ordered index; built now for a large parent loaded from a snapshot; undefined for a small one. */
  private orderedIndex(slot: number, kids: ChildSlots): SortedNames<number> | undefined {
    let sorted = this.ordered.get(slot)
    if (sorted === undefined && kids.size >= ORDERED_MIN) {
      sorted = SortedNames.of(kids, this.nameOf)
      this.ordered.set(slot, sorted)
    }
    return sorted
  }

  /** The internal view of a znode that prep reads (stored cversion, kind, owner, TTL, ACL). */
  nodeMeta(path: string): NodeMeta | undefined {
    const slot = this.index.get(path)
    if (slot === undefined) return undefined
    const s = this.store
    return {
      czxid: s.czxid(slot),
      mzxid: s.mzxid(slot),
      pzxid: s.pzxid(slot),
      ctime: s.ctime(slot),
      mtime: s.mtime(slot),
      version: s.version(slot),
      cversion: s.cversion(slot),
      aversion: s.aversion(slot),
      numChildren: s.numChildren(slot),
      dataLength: dataLength(s.data(slot)),
      kind: KIND_NAMES[s.kind(slot)]!,
      ephemeralOwner: this.owners.get(slot) ?? 0n,
      ttlMs: s.ttl(slot),
      acl: this.acls.get(s.aclRef(slot)),
    }
  }

  /** Number of znodes below `path` (ZooKeeper's getAllChildrenNumber); undefined if none. */
  descendantCount(path: string): number | undefined {
    const slot = this.index.get(path)
    if (slot === undefined) return undefined
    let count = 0
    const stack = [slot]
    while (stack.length > 0) {
      const kids = this.store.children(stack.pop()!)
      if (kids === undefined) continue
      count += kids.size
      for (const k of kids) stack.push(k)
    }
    return count
  }

  /** Every znode path, in an order fixed by the operations applied (for dumps and tests). */
  paths(): IterableIterator<string> {
    return this.index.keys()
  }

  hasSession(sessionId: bigint): boolean {
    return this.sessionTable.has(sessionId)
  }

  sessionTimeoutMs(sessionId: bigint): number | undefined {
    return this.sessionTable.get(sessionId)
  }

  /** The session table (id -> negotiated timeout), in creation order, for the session tracker. */
  sessions(): { sessionId: bigint; timeoutMs: number }[] {
    return [...this.sessionTable].map(([sessionId, timeoutMs]) => ({ sessionId, timeoutMs }))
  }

  /** A session's ephemeral znodes, sorted. */
  ephemerals(sessionId: bigint): string[] {
    const set = this.ephemeralIndex.get(sessionId)
    return set === undefined ? [] : [...set].sort(compareNames)
  }

  /** The tree digest: equal for equal trees (znodes, stats, data, ACLs, sessions, their write memories). */
  digest(): string {
    return formatLanes((this.sumA + this.writes.sumA) >>> 0, (this.sumB + this.writes.sumB) >>> 0)
  }

  /** What the session's write memory knows of its write `xid` (an exactly-once write re-sent). */
  recallWrite(sessionId: bigint, xid: number): Recalled {
    return this.writes.recall(sessionId, xid)
  }

  /** Results held in write memories: sessions with one, results over all of them, and their estimated bytes. */
  writeMemoryStats(): { sessions: number; results: number; bytes: number } {
    return { sessions: this.writes.sessionCount, results: this.writes.size, bytes: this.writes.bytes }
  }

  /** Container/TTL znodes eligible for removal at nowMs, earliest first. */
  reapable(nowMs: number, limit = 1000): string[] {
    return this.reap.due(nowMs, limit)
  }

  /** When the next container/TTL znode becomes eligible (0 = already), or undefined. */
  nextReapAtMs(): number | undefined {
    return this.reap.nextAtMs()
  }

  /** Distinct ACL lists held (ZooKeeper's aclCacheSize). */
  aclCacheSize(): number {
    return this.acls.size
  }

  private wireStat(slot: number): WireStat {
    const s = this.store
    const numChildren = s.numChildren(slot)
    return {
      czxid: s.czxid(slot),
      mzxid: s.mzxid(slot),
      ctime: s.ctime(slot),
      mtime: s.mtime(slot),
      version: s.version(slot),
      // DataNode.copyStat: creates*2 - live children = creates + deletes (int arithmetic).
      cversion: (Math.imul(s.cversion(slot), 2) - numChildren) | 0,
      aversion: s.aversion(slot),
      ephemeralOwner: this.owners.get(slot) ?? 0n,
      dataLength: dataLength(s.data(slot)),
      numChildren,
      pzxid: s.pzxid(slot),
    }
  }

  // -------------------------------------------------------------- mutations

  /** Applies a committed Txn (live): result for the reply, events for the watches. */
  apply(txn: Txn): ApplyResult {
    return applyTxn(this, txn)
  }

  /** Applies a logged Txn during recovery over a (fuzzy) snapshot: idempotent, lenient. */
  applyReplay(txn: Txn): ChangeEvent[] {
    return replayTxn(this, txn)
  }

  /** Starts a Txn: live zxids strictly increase; replay may revisit older ones. */
  beginTxn(zxid: number, mode: ApplyMode): void {
    if (!(Number.isSafeInteger(zxid) && zxid > 0)) fail(`bad zxid ${zxid}`)
    if (mode === 'live' && !(zxid > this.zxid)) fail(`live zxid ${zxid} not after ${this.zxid}`)
    if (zxid > this.zxid) this.zxid = zxid
  }

  /** Creates a znode; returns its Stat, or undefined when replay skipped it. */
  createNode(a: CreateNodeArgs, mode: ApplyMode, events: ChangeEvent[]): WireStat | undefined {
    const live = mode === 'live'
    const parentName = parentPath(a.path)
    const parent = this.index.get(parentName)
    if (parent === undefined) {
      if (live) fail(`create ${a.path}: no parent`)
      return undefined
    }
    if (live) {
      if (a.path === '/' || this.index.has(a.path)) fail(`create ${a.path}: exists`)
      if (this.store.kind(parent) === Kind.ephemeral) fail(`create ${a.path}: ephemeral parent`)
      if (a.parentCversion !== ((this.store.cversion(parent) + 1) | 0))
        fail(`create ${a.path}: parent cversion`)
    }
    this.bumpParent(parent, a.parentCversion, a.zxid)
    if (this.index.has(a.path)) return undefined
    const kind = kindOfMode(a.mode)
    const slot = this.place({
      path: a.path,
      data: a.data,
      acl: a.acl,
      kind,
      owner: kind === Kind.ephemeral ? a.sessionId : 0n,
      ttlMs: kind === Kind.ttl ? a.ttlMs : 0,
      czxid: a.zxid,
      mzxid: a.zxid,
      pzxid: a.zxid,
      ctime: a.timeMs,
      mtime: a.timeMs,
      version: 0,
      cversion: 0,
      aversion: 0,
    })
    this.link(slot)
    events.push({ type: 'created', path: a.path, zxid: a.zxid })
    events.push({ type: 'childrenChanged', path: parentName, zxid: a.zxid })
    return this.wireStat(slot)
  }

  /** The parent effects of a create: cversion and pzxid, only forward (idempotent in replay). */
  private bumpParent(parent: number, cversion: number, zxid: number): void {
    const s = this.store
    if (!isAfter(cversion, s.cversion(parent)) && zxid <= s.pzxid(parent)) return
    this.unhash(parent)
    if (isAfter(cversion, s.cversion(parent))) s.setCversion(parent, cversion)
    if (zxid > s.pzxid(parent)) s.setPzxid(parent, zxid)
    this.rehash(parent)
  }

  /** Deletes a znode; returns false when replay found nothing to delete. */
  deleteNode(path: string, zxid: number, mode: ApplyMode, events: ChangeEvent[]): boolean {
    const live = mode === 'live'
    if (SPECIAL_PATHS.has(path)) fail(`delete ${path}: special path`)
    const parentName = parentPath(path)
    const parent = this.index.get(parentName)
    if (parent === undefined) {
      if (live) fail(`delete ${path}: no parent`)
      return false
    }
    // Even when the child is already gone (fuzzy snapshot), its delete moved pzxid.
    this.bumpParent(parent, this.store.cversion(parent), zxid)
    const slot = this.index.get(path)
    if (slot === undefined) {
      if (live) fail(`delete ${path}: no node`)
      return false
    }
    if (live && this.store.numChildren(slot) !== 0) fail(`delete ${path}: has children`)
    this.removeSubtree(slot, zxid, events)
    this.updateReap(parent)
    events.push({ type: 'childrenChanged', path: parentName, zxid })
    return true
  }

  /**
   * Removes a znode and (replay only) whatever is below it: over a fuzzy
   * snapshot a delete can meet a later incarnation of the znode whose
   * children were all created after this delete, so their creates follow
   * in the log and rebuild them.
   */
  private removeSubtree(slot: number, zxid: number, events: ChangeEvent[]): void {
    const kids = this.store.children(slot)
    if (kids !== undefined) for (const k of [...kids]) this.removeSubtree(k, zxid, events)
    const path = this.store.path(slot)
    const parent = this.index.get(parentPath(path))!
    this.unhash(parent)
    this.store.removeChild(parent, slot)
    this.rehash(parent)
    this.ordered.get(parent)?.delete(slot)
    this.reap.delete(path)
    this.dropUnlinked(slot)
    events.push({ type: 'deleted', path, zxid })
  }

  /** Sets data and the absolute new version; returns the Stat, or undefined when replay skipped it. */
  setData(
    path: string,
    data: ZnodeData,
    version: number,
    at: { zxid: number; timeMs: number },
    mode: ApplyMode,
    events: ChangeEvent[],
  ): WireStat | undefined {
    const slot = this.index.get(path)
    if (slot === undefined) {
      if (mode === 'live') fail(`setData ${path}: no node`)
      return undefined
    }
    const s = this.store
    if (mode === 'live' && version !== nextVersion(s.version(slot))) fail(`setData ${path}: version`)
    this.unhash(slot)
    this.sizeBytes += (data?.length ?? 0) - dataLength(s.data(slot))
    s.setData(slot, fromBytes(data))
    const h = dataHash(data)
    s.setDataHash(slot, h.finishA(), h.finishB())
    s.setVersion(slot, version)
    s.setModified(slot, at.zxid, at.timeMs)
    this.rehash(slot)
    this.updateReap(slot)
    events.push({ type: 'dataChanged', path, zxid: at.zxid })
    return this.wireStat(slot)
  }

  /** Sets the ACL and the absolute new aversion (no watch fires, as in ZooKeeper). */
  setAcl(path: string, acl: readonly Acl[], aversion: number, mode: ApplyMode): WireStat | undefined {
    const slot = this.index.get(path)
    if (slot === undefined) {
      if (mode === 'live') fail(`setACL ${path}: no node`)
      return undefined
    }
    const s = this.store
    if (mode === 'live' && aversion !== nextVersion(s.aversion(slot))) fail(`setACL ${path}: aversion`)
    this.unhash(slot)
    const ref = this.acls.intern(acl)
    this.acls.release(s.aclRef(slot))
    s.setAclRef(slot, ref)
    s.setAversion(slot, aversion)
    this.rehash(slot)
    return this.wireStat(slot)
  }

  /**
   * Remembers an exactly-once write's result in its session's write memory.
   * False if the session is gone (its memory went with it; the write, prepped
   * after its session ended, failed with SESSION_EXPIRED and changed nothing).
   */
  rememberWrite(sessionId: bigint, write: RememberedWrite, spec: RememberLimits, mode: ApplyMode): boolean {
    if (!this.sessionTable.has(sessionId)) return false
    this.writes.remember(sessionId, write, spec, mode)
    return true
  }

  createSession(sessionId: bigint, timeoutMs: number, mode: ApplyMode): void {
    if (!(Number.isSafeInteger(timeoutMs) && timeoutMs > 0)) fail(`bad session timeout ${timeoutMs}`)
    const old = this.sessionTable.get(sessionId)
    if (mode === 'live' && old !== undefined) fail(`session ${sessionId} exists`)
    if (old !== undefined) this.hashSession(sessionId, old, -1)
    this.sessionTable.set(sessionId, timeoutMs)
    this.hashSession(sessionId, timeoutMs, 1)
  }

  /**
   * Ends a session: deletes the listed ephemerals (prep's list, sorted) and
   * forgets the session. Closing an unknown session is a no-op, as in
   * ZooKeeper. Returns the paths deleted.
   */
  closeSession(
    sessionId: bigint,
    paths: readonly string[],
    zxid: number,
    mode: ApplyMode,
    events: ChangeEvent[],
  ): string[] {
    const live = mode === 'live'
    const deleted: string[] = []
    for (const path of paths) {
      const slot = this.index.get(path)
      const owned = slot !== undefined && this.owners.get(slot) === sessionId
      if (live && !owned) fail(`closeSession ${sessionId}: ${path} is not its ephemeral`)
      // Replay over a fuzzy snapshot may meet a later incarnation of the path
      // (re-created after this close): delete it anyway, as a replayed delete
      // does; the later create in the log rebuilds it with its own history.
      if (owned || (!live && slot !== undefined)) {
        if (this.deleteNode(path, zxid, mode, events)) deleted.push(path)
        continue
      }
      // Replay over a fuzzy snapshot: the znode is already gone, but this
      // delete still moved its parent's pzxid.
      const parent = this.index.get(parentPath(path))
      if (parent !== undefined) this.bumpParent(parent, this.store.cversion(parent), zxid)
    }
    // Replay only: ephemerals the list missed still die with their session.
    const rest = this.ephemerals(sessionId)
    if (live && rest.length !== 0) fail(`closeSession ${sessionId}: ephemerals left: ${rest.join(',')}`)
    for (const path of rest) if (this.deleteNode(path, zxid, mode, events)) deleted.push(path)
    const old = this.sessionTable.get(sessionId)
    if (old !== undefined) {
      this.hashSession(sessionId, old, -1)
      this.sessionTable.delete(sessionId)
    }
    this.writes.drop(sessionId)
    return deleted
  }

  // -------------------------------------------------------- internal upkeep

  /** Stores a znode (not yet linked to its parent). */
  private place(r: NodeRecord): number {
    if (this.index.has(r.path)) fail(`place ${r.path}: exists`)
    const slot = this.store.alloc(r.path, fromBytes(r.data))
    this.index.set(r.path, slot)
    const h = dataHash(r.data)
    this.fill(slot, r, h.finishA(), h.finishB())
    if (!this.bulkLoading) this.rehash(slot)
    return slot
  }

  /**
   * A snapshot's znode record, read in place (bulk loading): stored, its
   * index entry left to `bulk` (set all at once after the stream, see loader()).
   */
  private load(v: NodeRecordView, bulk: { add(key: string, value: number): void }): void {
    const slot = this.store.alloc(v.path, fromRange(v.bytes, v.dataAt, v.dataLength))
    bulk.add(v.path, slot)
    const h = hasher.reset(DATA_SEED)
    if (v.dataLength === -1) h.word(-1)
    else h.bytes(v.bytes, v.dataAt, v.dataAt + v.dataLength)
    this.fill(slot, v, h.finishA(), h.finishB())
  }

  /**
   * After a bulk load that met some paths more than once (a fuzzy snapshot
   * may hold a znode twice): the index holds each path's last record; `slot`
   * is dropped if it is an earlier one.
   */
  private dropSuperseded(slot: number): void {
    const last = this.index.get(this.store.path(slot))!
    if (last !== slot) this.dropUnlinked(slot, last)
  }

  /** A stored znode's columns and side indexes, from its record (its data stored, and hashed to `dataHashA/B`). */
  private fill(slot: number, r: Omit<NodeRecord, 'data'>, dataHashA: number, dataHashB: number): void {
    const s = this.store
    this.sizeBytes += znodeSizeEstimate(r.path.length, dataLength(s.data(slot)))
    s.setDataHash(slot, dataHashA, dataHashB)
    s.setTimes(slot, r)
    s.setVersion(slot, r.version)
    s.setCversion(slot, r.cversion)
    s.setAversion(slot, r.aversion)
    s.setKind(slot, r.kind)
    s.setTtl(slot, r.ttlMs)
    s.setAclRef(slot, this.acls.intern(r.acl))
    if (r.kind === Kind.ephemeral) {
      this.owners.set(slot, r.owner)
      const set = this.ephemeralIndex.get(r.owner)
      const grown = addScaling(set ?? new Set<string>(), r.path)
      if (grown !== set) this.ephemeralIndex.set(r.owner, grown)
    }
  }

  /** Adds a placed znode to its parent's children and updates reap candidacy. */
  private link(slot: number, knownParent?: number): void {
    const path = this.store.path(slot)
    if (path !== '/') {
      const parent = knownParent ?? this.index.get(parentPath(path))
      if (parent === undefined) fail(`link ${path}: no parent`)
      if (this.bulkLoading) this.store.addChild(parent, slot)
      else {
        this.unhash(parent)
        this.store.addChild(parent, slot)
        this.rehash(parent)
        this.indexChild(parent, slot)
      }
      this.updateReap(parent)
    }
    this.updateReap(slot)
  }

  /** Keeps a parent's ordered index: the new child added, or the index built as the parent reaches ORDERED_MIN. */
  private indexChild(parent: number, slot: number): void {
    const sorted = this.ordered.get(parent)
    if (sorted !== undefined) sorted.add(slot)
    else if (this.store.numChildren(parent) === ORDERED_MIN)
      this.ordered.set(parent, SortedNames.of(this.store.children(parent)!, this.nameOf))
  }

  /** Container: candidate once it had a child and has none. TTL: once childless, at mtime + ttl + 1. */
  private updateReap(slot: number): void {
    const s = this.store
    const kind = s.kind(slot)
    if (kind !== Kind.container && kind !== Kind.ttl) return
    const path = s.path(slot)
    const childless = s.numChildren(slot) === 0
    if (kind === Kind.container && childless && s.cversion(slot) !== 0) this.reap.set(path, 0)
    else if (kind === Kind.ttl && childless) this.reap.set(path, s.mtime(slot) + s.ttl(slot) + 1)
    else this.reap.delete(path)
  }

  private unhash(slot: number): void {
    this.sumA = (this.sumA - this.store.nodeHashA(slot)) >>> 0
    this.sumB = (this.sumB - this.store.nodeHashB(slot)) >>> 0
  }

  /** Recomputes a znode's hash from its fields and adds it to the digest (after unhash, or when new). */
  private rehash(slot: number): void {
    const s = this.store
    const ref = s.aclRef(slot)
    const h = hasher
      .reset(0x6e6f6465)
      .str(s.path(slot))
      .word(s.dataHashA(slot))
      .word(s.dataHashB(slot))
      .word(dataLength(s.data(slot)))
      .num(s.czxid(slot))
      .num(s.mzxid(slot))
      .num(s.pzxid(slot))
      .num(s.ctime(slot))
      .num(s.mtime(slot))
      .word(s.version(slot))
      .word(s.cversion(slot))
      .word(s.aversion(slot))
      .word(s.numChildren(slot))
      .word(s.kind(slot))
      .big(s.kind(slot) === Kind.ephemeral ? (this.owners.get(slot) ?? 0n) : 0n)
      .num(s.ttl(slot))
      .word(this.acls.hashA(ref))
      .word(this.acls.hashB(ref))
    const a = h.finishA()
    const b = h.finishB()
    s.setNodeHash(slot, a, b)
    this.sumA = (this.sumA + a) >>> 0
    this.sumB = (this.sumB + b) >>> 0
  }

  private hashSession(sessionId: bigint, timeoutMs: number, sign: 1 | -1): void {
    const h = new Hasher(0x73657373).big(sessionId).num(timeoutMs)
    this.sumA = (this.sumA + sign * h.finishA()) >>> 0
    this.sumB = (this.sumB + sign * h.finishB()) >>> 0
  }

  // --------------------------------------------------------------- snapshot

  private record(slot: number): NodeRecordOut {
    const s = this.store
    return {
      path: s.path(slot),
      data: s.data(slot),
      acl: this.acls.get(s.aclRef(slot)),
      kind: s.kind(slot),
      owner: this.owners.get(slot) ?? 0n,
      ttlMs: s.ttl(slot),
      czxid: s.czxid(slot),
      mzxid: s.mzxid(slot),
      pzxid: s.pzxid(slot),
      ctime: s.ctime(slot),
      mtime: s.mtime(slot),
      version: s.version(slot),
      cversion: s.cversion(slot),
      aversion: s.aversion(slot),
    }
  }

  /**
   * A fuzzy snapshot: chunks produced lazily, one per `next()`, while the
   * caller keeps applying Txns in between. Recovery = fromSnapshot + replay
   * of the log from `zxid + 1` (replay is idempotent over what the chunks
   * already caught). Map iteration is live: znodes added meanwhile are
   * visited, removed ones skipped, re-added ones visited again (the reader
   * keeps the last record for a path).
   */
  snapshot(opts: SnapshotOptions = {}): { zxid: number; chunks: Generator<Uint8Array, void, void> } {
    const zxid = this.zxid
    const self = this
    // In slot order, not the index's (hash) order: records are read from the store's columns,
    // and walking them in memory order takes a 1M-znode snapshot 2.7-3.5 s, in hash order 4.2-5.1 s.
    // A slot freed and reused meanwhile may be seen or missed: the snapshot is fuzzy, and the
    // log from its start is replayed over it.
    function* nodes(): Generator<NodeRecordOut> {
      for (const slot of self.store.liveSlots()) yield self.record(slot)
    }
    // Write memories last: a record read after every znode is never older than them, so a
    // write it lacks is replayed over znodes that already reflect everything before it.
    const writes = this.writes.records()
    return {
      zxid,
      chunks: writeSnapshot(zxid, this.sessionTable.entries(), nodes(), opts.chunkBytes, writes),
    }
  }

  /** Rebuilds a tree (sessions included) from snapshot chunks. Throws SnapshotFormatError on bad input. */
  static fromSnapshot(chunks: Iterable<Uint8Array>): DataTree {
    const loader = DataTree.loader()
    for (const c of chunks) loader.push(c)
    for (;;) {
      const tree = loader.finish()
      if (tree !== undefined) return tree
    }
  }

  /**
   * A tree rebuilt from a snapshot stream a piece at a time, so that a large
   * one (a SNAP, a recovery) is never held whole and the work can be cut
   * into slices: each pushed chunk's records are stored as it comes (chunk
   * boundaries may fall anywhere), then `finish` links, checks and hashes
   * the znodes, `budget` of them per call. The tree is returned only once
   * complete; until then nothing else sees it. Throws SnapshotFormatError
   * on bad input (from push or finish); the loader is then of no more use.
   */
  static loader(): TreeLoader {
    const tree = new DataTree(true)
    // Znode hashes are added once, after linking (numChildren is part of a
    // node's hash): hashing each parent again per child cost ~2 hashes per znode.
    tree.bulkLoading = true
    const bulk = tree.index.bulk()
    const decoder = new SnapshotDecoder({
      session: (id, timeoutMs) => tree.createSession(id, timeoutMs, 'replay'),
      nodeView: (v) => tree.load(v, bulk),
      writes: (r) => tree.writes.load(r),
    })
    const s = tree.store
    let phase: 'reading' | 'indexing' | 'superseded' | 'rooting' | 'linking' | 'hashing' | 'done' = 'reading'
    let zxid = 0
    let cursor = 0
    // A fuzzy snapshot can hold a node whose parent was deleted while it was
    // written; the log replayed after it removes such a node too, so skip it.
    // Whether a slot's ancestors all exist is decided once per slot and
    // remembered (one parent lookup per znode instead of one per ancestor);
    // orphans are dropped after the walk, so a verdict never changes under it.
    let walk: RootWalk | undefined
    const orphans: number[] = []
    const finish = (budget: number): DataTree | undefined => {
      if (phase === 'reading') {
        zxid = decoder.end()
        phase = 'indexing'
      }
      const end = s.slotCapacity()
      /** Visits the live slots from `cursor` on, one unit of `budget` each; true once past the last. */
      const sweep = (visit: (slot: number) => void): boolean => {
        for (; cursor < end && budget > 0; cursor++) {
          if (!s.isLive(cursor)) continue
          budget--
          visit(cursor)
        }
        if (cursor < end) return false
        cursor = 0
        return true
      }
      if (phase === 'indexing') {
        const twice = bulk.finish(budget)
        // Every slot is checked against the index only when some path came twice (rare).
        if (twice !== undefined) phase = twice > 0 ? 'superseded' : 'rooting'
        // This step's budget went into the index.
        return undefined
      }
      if (phase === 'superseded') {
        if (!sweep((slot) => tree.dropSuperseded(slot))) return undefined
        phase = 'rooting'
      }
      if (walk === undefined) {
        if (!tree.index.has('/')) throw new SnapshotFormatError('snapshot has no root')
        walk = {
          rooted: new Uint8Array(end),
          parents: new Int32Array(end),
          chain: [],
          recent: new Map(),
          children: new Int32Array(end),
        }
      }
      const { rooted, parents, children } = walk
      // Parents and children counted first: a parent of very many children gets its
      // final kind of set at once (NodeStore.expectChildren). Loading 1M znodes under
      // 100 parents, a Set of 8,192 copied into a ShardedSet per parent was 0.8M adds more.
      if (phase === 'rooting') {
        const done = sweep((slot) => {
          if (!tree.isRooted(slot, walk!)) orphans.push(slot)
          else if (parents[slot]! >= 0) children[parents[slot]!]!++
        })
        if (!done) return undefined
        for (let slot = 0; slot < end; slot++)
          if (children[slot]! > 0) s.expectChildren(slot, children[slot]!)
        phase = 'linking'
      }
      if (phase === 'linking') {
        const linked = sweep((slot) => {
          if (rooted[slot] === 1) tree.link(slot, parents[slot]! < 0 ? undefined : parents[slot])
        })
        if (!linked) return undefined
        for (const slot of orphans) tree.dropUnlinked(slot)
        tree.bulkLoading = false
        phase = 'hashing'
      }
      if (phase === 'hashing') {
        if (!sweep((slot) => tree.rehash(slot))) return undefined
        tree.zxid = zxid
        phase = 'done'
      }
      return tree
    }
    return {
      push: (chunk) => {
        assert(phase === 'reading', 'snapshot chunk after the stream ended')
        decoder.push(chunk)
      },
      finish: (budget = Number.POSITIVE_INFINITY) => finish(budget),
    }
  }

  /**
   * fromSnapshot only: whether every ancestor of `slot` is in the tree,
   * memoised in `walk.rooted` (0 unknown, 1 yes, 2 no) with the parent's
   * slot in `walk.parents` (-1 for the root). Iterative: a chain of unknown
   * ancestors is walked up once and then settled top-down.
   */
  private isRooted(slot: number, walk: RootWalk): boolean {
    const { rooted, parents, chain } = walk
    chain.length = 0
    let s = slot
    let verdict: boolean
    for (;;) {
      const known = rooted[s]
      if (known !== 0) {
        verdict = known === 1
        break
      }
      const path = this.store.path(s)
      if (path === '/') {
        parents[s] = -1
        rooted[s] = 1
        verdict = true
        break
      }
      chain.push(s)
      const parent = this.parentSlot(parentPath(path), walk.recent)
      if (parent === undefined) {
        verdict = false
        break
      }
      parents[s] = parent
      s = parent
    }
    for (const c of chain) rooted[c] = verdict ? 1 : 2
    return verdict
  }

  /**
   * The slot of `path` (a parent), through `recent`, the parents looked up
   * lately: siblings are many and parents few, and a lookup in a small Map
   * (in cache) cost less than one in the index of every znode. Cleared when
   * full, so it stays small whatever the tree's shape.
   */
  private parentSlot(path: string, recent: Map<string, number>): number | undefined {
    const hit = recent.get(path)
    if (hit !== undefined) return hit
    const slot = this.index.get(path)
    if (slot === undefined) return undefined
    if (recent.size >= RECENT_PARENTS_MAX) recent.clear()
    recent.set(path, slot)
    return slot
  }

  /**
   * Drops a znode no parent lists (unlinked by a delete, an orphan in a
   * fuzzy snapshot, or with `supersededBy` a record of the same path that an
   * index entry `supersededBy` replaced: the path and, for the same owner,
   * its ephemeral listing stay).
   */
  private dropUnlinked(slot: number, supersededBy?: number): void {
    const path = this.store.path(slot)
    this.sizeBytes -= znodeSizeEstimate(path.length, dataLength(this.store.data(slot)))
    if (!this.bulkLoading) this.unhash(slot)
    if (supersededBy === undefined) this.index.delete(path)
    const owner = this.owners.get(slot)
    if (owner !== undefined) {
      this.owners.delete(slot)
      if (supersededBy === undefined || this.owners.get(supersededBy) !== owner) {
        const set = this.ephemeralIndex.get(owner)!
        set.delete(path)
        if (set.size === 0) this.ephemeralIndex.delete(owner)
      }
    }
    this.acls.release(this.store.aclRef(slot))
    this.ordered.delete(slot)
    this.store.release(slot)
  }
}

/** A znode's data hash: its bytes, or for null data a length word of -1 (as jute writes null), which no bytes give. */
function dataHash(data: ZnodeData): Hasher {
  const h = hasher.reset(DATA_SEED)
  return data === null ? h.word(-1) : h.bytes(data)
}
