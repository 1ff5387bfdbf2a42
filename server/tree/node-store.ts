/**
 * NodeStore: the znodes' fields in columns (struct of arrays) indexed by a
 * slot number, instead of one JS object per znode. A JS object with eleven
 * numeric fields costs ~200 bytes once zxids and times (beyond the 31-bit
 * small-integer range) are boxed; here they are 8 bytes each in one
 * Float64Array, and the small counters 4 bytes each in one Int32Array.
 * Memory per znode is a product target (ZooKeeper's ~460 bytes for a
 * 100-byte znode), measured by test/bench/measure-memory.ts.
 *
 * Growth: the columns are pages of PAGE_SLOTS slots (the first page grows
 * by doubling up to that size, so a small tree stays small). Growing one
 * array of everything by doubling copied it all inside a single create:
 * 424 ms at 1,048,576 znodes and 777 ms at 2,097,152 on this machine, on
 * every server at the same create; a new page costs a fraction of that.
 *
 * Invariants: a slot is either live (path !== undefined) or on the free
 * list, never both; freed slots are reused LIFO (deterministic); slots are
 * handed out in order, so slot s is entry s & PAGE_MASK of page
 * s >>> PAGE_BITS; children are held as a Set of slots only when non-empty
 * (undefined otherwise), a ShardedSet once large (addScaling).
 * Must not import anything but shared/, server/core/ and server/tree/.
 */
import { assert, fail } from '../../shared/assert.js'
import { addScaling, type ScalingSet, SHARD_AT, ShardedSet } from '../core/sharded-map.js'
import type { StoredData } from './znode-data.js'

/** Float64 columns per slot. */
const F_CZXID = 0
const F_MZXID = 1
const F_PZXID = 2
const F_CTIME = 3
const F_MTIME = 4
const F_TTL = 5
const F_COLS = 6

/** Int32 columns per slot. */
const I_VERSION = 0
const I_CVERSION = 1
const I_AVERSION = 2
const I_ACL = 3
const I_KIND = 4
const I_DATA_HASH_A = 5
const I_DATA_HASH_B = 6
const I_NODE_HASH_A = 7
const I_NODE_HASH_B = 8
const I_COLS = 9

const PAGE_BITS = 16
/** Slots per page: a full page's typed columns are 5.2 MiB. */
export const PAGE_SLOTS = 1 << PAGE_BITS
const PAGE_MASK = PAGE_SLOTS - 1

/** What a znode is, beyond its stat: ZooKeeper encodes this in ephemeralOwner. */
export const Kind = { persistent: 0, ephemeral: 1, container: 2, ttl: 3 } as const
export type Kind = (typeof Kind)[keyof typeof Kind]

/** A znode's children (slots). */
export type ChildSlots = ScalingSet<number>

export class NodeStore {
  /** Capacity of page 0 (later pages are always full size). */
  private firstCap = 0
  private readonly f64: Float64Array[] = [new Float64Array(0)]
  private readonly i32: Int32Array[] = [new Int32Array(0)]
  private readonly paths: (string | undefined)[][] = [[]]
  private readonly datas: StoredData[][] = [[]]
  private readonly kids: (ChildSlots | undefined)[][] = [[]]
  private readonly free: number[] = []
  /** Slots ever handed out (the next new slot). */
  private next = 0
  private live = 0

  constructor(initialCapacity = 1024) {
    this.growFirstPage(Math.min(Math.max(initialCapacity, 1), PAGE_SLOTS))
  }

  get size(): number {
    return this.live
  }

  /** Takes a slot for a new znode; every column is zeroed. */
  alloc(path: string, data: StoredData): number {
    let slot = this.free.pop()
    if (slot === undefined) {
      slot = this.next++
      const page = slot >>> PAGE_BITS
      if (page === 0) {
        if (slot >= this.firstCap) this.growFirstPage(this.firstCap * 2)
      } else if ((slot & PAGE_MASK) === 0) {
        // Sized once: grown by push, each array would end up with up to half a page unused.
        this.f64.push(new Float64Array(PAGE_SLOTS * F_COLS))
        this.i32.push(new Int32Array(PAGE_SLOTS * I_COLS))
        this.paths.push(new Array(PAGE_SLOTS))
        this.datas.push(new Array(PAGE_SLOTS))
        this.kids.push(new Array(PAGE_SLOTS))
      }
      // Slots are handed out in order: page 0's arrays grow by one at their end.
      const at = slot & PAGE_MASK
      this.paths[page]![at] = path
      this.datas[page]![at] = data
      this.kids[page]![at] = undefined
    } else {
      const page = slot >>> PAGE_BITS
      const at = slot & PAGE_MASK
      this.paths[page]![at] = path
      this.datas[page]![at] = data
      this.kids[page]![at] = undefined
      this.f64[page]!.fill(0, at * F_COLS, (at + 1) * F_COLS)
      this.i32[page]!.fill(0, at * I_COLS, (at + 1) * I_COLS)
    }
    this.live++
    return slot
  }

  release(slot: number): void {
    const page = slot >>> PAGE_BITS
    const at = slot & PAGE_MASK
    if (this.paths[page]?.[at] === undefined) fail(`slot ${slot} is not live`)
    this.paths[page]![at] = undefined
    this.datas[page]![at] = ''
    this.kids[page]![at] = undefined
    this.free.push(slot)
    this.live--
  }

  private growFirstPage(cap: number): void {
    assert(cap <= PAGE_SLOTS, 'page 0 grows to PAGE_SLOTS at most')
    const f64 = new Float64Array(cap * F_COLS)
    f64.set(this.f64[0]!)
    const i32 = new Int32Array(cap * I_COLS)
    i32.set(this.i32[0]!)
    this.f64[0] = f64
    this.i32[0] = i32
    this.firstCap = cap
  }

  /** One past the highest slot ever handed out: every slot is below it. */
  slotCapacity(): number {
    return this.next
  }

  /** Whether `slot` holds a znode (below slotCapacity). */
  isLive(slot: number): boolean {
    return this.paths[slot >>> PAGE_BITS]![slot & PAGE_MASK] !== undefined
  }

  /** Live slots in slot order (memory order: a walk of the whole tree touches it sequentially). */
  *liveSlots(): Generator<number> {
    for (let slot = 0; slot < this.next; slot++)
      if (this.paths[slot >>> PAGE_BITS]![slot & PAGE_MASK] !== undefined) yield slot
  }

  path(slot: number): string {
    const p = this.paths[slot >>> PAGE_BITS]?.[slot & PAGE_MASK]
    if (p === undefined) fail(`slot ${slot} is not live`)
    return p
  }

  data(slot: number): StoredData {
    return this.datas[slot >>> PAGE_BITS]![slot & PAGE_MASK] as StoredData
  }
  setData(slot: number, data: StoredData): void {
    this.datas[slot >>> PAGE_BITS]![slot & PAGE_MASK] = data
  }

  children(slot: number): ChildSlots | undefined {
    return this.kids[slot >>> PAGE_BITS]![slot & PAGE_MASK]
  }
  numChildren(slot: number): number {
    return this.children(slot)?.size ?? 0
  }
  addChild(slot: number, child: number): void {
    const page = this.kids[slot >>> PAGE_BITS]!
    const at = slot & PAGE_MASK
    page[at] = addScaling(page[at] ?? new Set<number>(), child)
  }

  /**
   * A parent about to be given `count` children at once (a snapshot being
   * loaded): with more than SHARD_AT it starts as the ShardedSet addScaling
   * would turn its Set into at the next child, instead of a Set of SHARD_AT
   * slots copied into one. The same set either way (members, and the order
   * each shard holds them in).
   */
  expectChildren(slot: number, count: number): void {
    const page = this.kids[slot >>> PAGE_BITS]!
    const at = slot & PAGE_MASK
    if (count > SHARD_AT && page[at] === undefined) page[at] = new ShardedSet<number>()
  }

  removeChild(slot: number, child: number): void {
    const page = this.kids[slot >>> PAGE_BITS]!
    const at = slot & PAGE_MASK
    const set = page[at]
    if (set === undefined) return
    set.delete(child)
    // Childless znodes are the majority: drop the empty Set to save its ~100 bytes.
    if (set.size === 0) page[at] = undefined
  }

  /** Float64 column `col` of slot s. */
  private f(s: number, col: number): number {
    return this.f64[s >>> PAGE_BITS]![(s & PAGE_MASK) * F_COLS + col]!
  }
  private setF(s: number, col: number, v: number): void {
    this.f64[s >>> PAGE_BITS]![(s & PAGE_MASK) * F_COLS + col] = v
  }
  /** Int32 column `col` of slot s. */
  private i(s: number, col: number): number {
    return this.i32[s >>> PAGE_BITS]![(s & PAGE_MASK) * I_COLS + col]!
  }
  private setI(s: number, col: number, v: number): void {
    this.i32[s >>> PAGE_BITS]![(s & PAGE_MASK) * I_COLS + col] = v
  }

  czxid(s: number): number {
    return this.f(s, F_CZXID)
  }
  mzxid(s: number): number {
    return this.f(s, F_MZXID)
  }
  pzxid(s: number): number {
    return this.f(s, F_PZXID)
  }
  ctime(s: number): number {
    return this.f(s, F_CTIME)
  }
  mtime(s: number): number {
    return this.f(s, F_MTIME)
  }
  ttl(s: number): number {
    return this.f(s, F_TTL)
  }
  setTimes(
    s: number,
    t: { czxid: number; mzxid: number; pzxid: number; ctime: number; mtime: number },
  ): void {
    const page = this.f64[s >>> PAGE_BITS]!
    const b = (s & PAGE_MASK) * F_COLS
    page[b + F_CZXID] = t.czxid
    page[b + F_MZXID] = t.mzxid
    page[b + F_PZXID] = t.pzxid
    page[b + F_CTIME] = t.ctime
    page[b + F_MTIME] = t.mtime
  }
  setModified(s: number, zxid: number, timeMs: number): void {
    this.setF(s, F_MZXID, zxid)
    this.setF(s, F_MTIME, timeMs)
  }
  setPzxid(s: number, zxid: number): void {
    this.setF(s, F_PZXID, zxid)
  }
  setTtl(s: number, ttlMs: number): void {
    this.setF(s, F_TTL, ttlMs)
  }

  version(s: number): number {
    return this.i(s, I_VERSION)
  }
  cversion(s: number): number {
    return this.i(s, I_CVERSION)
  }
  aversion(s: number): number {
    return this.i(s, I_AVERSION)
  }
  aclRef(s: number): number {
    return this.i(s, I_ACL)
  }
  kind(s: number): Kind {
    return this.i(s, I_KIND) as Kind
  }
  setVersion(s: number, v: number): void {
    this.setI(s, I_VERSION, v)
  }
  setCversion(s: number, v: number): void {
    this.setI(s, I_CVERSION, v)
  }
  setAversion(s: number, v: number): void {
    this.setI(s, I_AVERSION, v)
  }
  setAclRef(s: number, ref: number): void {
    this.setI(s, I_ACL, ref)
  }
  setKind(s: number, k: Kind): void {
    this.setI(s, I_KIND, k)
  }

  dataHashA(s: number): number {
    return this.i(s, I_DATA_HASH_A) >>> 0
  }
  dataHashB(s: number): number {
    return this.i(s, I_DATA_HASH_B) >>> 0
  }
  setDataHash(s: number, a: number, b: number): void {
    this.setI(s, I_DATA_HASH_A, a)
    this.setI(s, I_DATA_HASH_B, b)
  }
  nodeHashA(s: number): number {
    return this.i(s, I_NODE_HASH_A) >>> 0
  }
  nodeHashB(s: number): number {
    return this.i(s, I_NODE_HASH_B) >>> 0
  }
  setNodeHash(s: number, a: number, b: number): void {
    this.setI(s, I_NODE_HASH_A, a)
    this.setI(s, I_NODE_HASH_B, b)
  }
}
