/**
 * NodeStore: the znodes' fields in columns (struct of arrays) indexed by a
 * slot number, instead of one JS object per znode. A JS object with eleven
 * numeric fields costs ~200 bytes once zxids and times (beyond the 31-bit
 * small-integer range) are boxed; here they are 8 bytes each in one
 * Float64Array, and the small counters 4 bytes each in one Int32Array.
 * Memory per znode is a product target (ZooKeeper's ~460 bytes for a
 * 100-byte znode), measured by measure-memory.ts.
 *
 * Invariants: a slot is either live (path !== undefined) or on the free
 * list, never both; freed slots are reused LIFO (deterministic); children
 * are held as a Set of slots only when non-empty (undefined otherwise).
 * Must not import anything but shared/ and server/tree/.
 */
import { assert } from '../../shared/assert.js'
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

/** What a znode is, beyond its stat: ZooKeeper encodes this in ephemeralOwner. */
export const Kind = { persistent: 0, ephemeral: 1, container: 2, ttl: 3 } as const
export type Kind = (typeof Kind)[keyof typeof Kind]

export class NodeStore {
  private cap = 0
  private f64 = new Float64Array(0)
  private i32 = new Int32Array(0)
  private readonly paths: (string | undefined)[] = []
  private readonly datas: StoredData[] = []
  private readonly kids: (Set<number> | undefined)[] = []
  private readonly free: number[] = []
  private live = 0

  constructor(initialCapacity = 1024) {
    this.grow(initialCapacity)
  }

  get size(): number {
    return this.live
  }

  /** Takes a slot for a new znode; every column is zeroed. */
  alloc(path: string, data: StoredData): number {
    let slot = this.free.pop()
    if (slot === undefined) {
      slot = this.paths.length
      if (slot >= this.cap) this.grow(this.cap * 2)
      this.paths.push(path)
      this.datas.push(data)
      this.kids.push(undefined)
    } else {
      this.paths[slot] = path
      this.datas[slot] = data
      this.kids[slot] = undefined
      this.f64.fill(0, slot * F_COLS, (slot + 1) * F_COLS)
      this.i32.fill(0, slot * I_COLS, (slot + 1) * I_COLS)
    }
    this.live++
    return slot
  }

  release(slot: number): void {
    assert(this.paths[slot] !== undefined, `slot ${slot} is not live`)
    this.paths[slot] = undefined
    this.datas[slot] = ''
    this.kids[slot] = undefined
    this.free.push(slot)
    this.live--
  }

  private grow(cap: number): void {
    const f64 = new Float64Array(cap * F_COLS)
    f64.set(this.f64)
    const i32 = new Int32Array(cap * I_COLS)
    i32.set(this.i32)
    this.f64 = f64
    this.i32 = i32
    this.cap = cap
  }

  /** Live slots in slot order (memory order: a walk of the whole tree touches it sequentially). */
  *liveSlots(): Generator<number> {
    for (let slot = 0; slot < this.paths.length; slot++) if (this.paths[slot] !== undefined) yield slot
  }

  path(slot: number): string {
    const p = this.paths[slot]
    assert(p !== undefined, `slot ${slot} is not live`)
    return p
  }

  data(slot: number): StoredData {
    return this.datas[slot]!
  }
  setData(slot: number, data: StoredData): void {
    this.datas[slot] = data
  }

  children(slot: number): Set<number> | undefined {
    return this.kids[slot]
  }
  numChildren(slot: number): number {
    return this.kids[slot]?.size ?? 0
  }
  addChild(slot: number, child: number): void {
    let set = this.kids[slot]
    if (set === undefined) this.kids[slot] = set = new Set()
    set.add(child)
  }
  removeChild(slot: number, child: number): void {
    const set = this.kids[slot]
    if (set === undefined) return
    set.delete(child)
    // Childless znodes are the majority: drop the empty Set to save its ~100 bytes.
    if (set.size === 0) this.kids[slot] = undefined
  }

  czxid(s: number): number {
    return this.f64[s * F_COLS + F_CZXID]!
  }
  mzxid(s: number): number {
    return this.f64[s * F_COLS + F_MZXID]!
  }
  pzxid(s: number): number {
    return this.f64[s * F_COLS + F_PZXID]!
  }
  ctime(s: number): number {
    return this.f64[s * F_COLS + F_CTIME]!
  }
  mtime(s: number): number {
    return this.f64[s * F_COLS + F_MTIME]!
  }
  ttl(s: number): number {
    return this.f64[s * F_COLS + F_TTL]!
  }
  setCreated(s: number, zxid: number, timeMs: number): void {
    const b = s * F_COLS
    this.f64[b + F_CZXID] = zxid
    this.f64[b + F_MZXID] = zxid
    this.f64[b + F_PZXID] = zxid
    this.f64[b + F_CTIME] = timeMs
    this.f64[b + F_MTIME] = timeMs
  }
  setTimes(
    s: number,
    t: { czxid: number; mzxid: number; pzxid: number; ctime: number; mtime: number },
  ): void {
    const b = s * F_COLS
    this.f64[b + F_CZXID] = t.czxid
    this.f64[b + F_MZXID] = t.mzxid
    this.f64[b + F_PZXID] = t.pzxid
    this.f64[b + F_CTIME] = t.ctime
    this.f64[b + F_MTIME] = t.mtime
  }
  setModified(s: number, zxid: number, timeMs: number): void {
    this.f64[s * F_COLS + F_MZXID] = zxid
    this.f64[s * F_COLS + F_MTIME] = timeMs
  }
  setPzxid(s: number, zxid: number): void {
    this.f64[s * F_COLS + F_PZXID] = zxid
  }
  setTtl(s: number, ttlMs: number): void {
    this.f64[s * F_COLS + F_TTL] = ttlMs
  }

  version(s: number): number {
    return this.i32[s * I_COLS + I_VERSION]!
  }
  cversion(s: number): number {
    return this.i32[s * I_COLS + I_CVERSION]!
  }
  aversion(s: number): number {
    return this.i32[s * I_COLS + I_AVERSION]!
  }
  aclRef(s: number): number {
    return this.i32[s * I_COLS + I_ACL]!
  }
  kind(s: number): Kind {
    return this.i32[s * I_COLS + I_KIND]! as Kind
  }
  setVersion(s: number, v: number): void {
    this.i32[s * I_COLS + I_VERSION] = v
  }
  setCversion(s: number, v: number): void {
    this.i32[s * I_COLS + I_CVERSION] = v
  }
  setAversion(s: number, v: number): void {
    this.i32[s * I_COLS + I_AVERSION] = v
  }
  setAclRef(s: number, ref: number): void {
    this.i32[s * I_COLS + I_ACL] = ref
  }
  setKind(s: number, k: Kind): void {
    this.i32[s * I_COLS + I_KIND] = k
  }

  dataHashA(s: number): number {
    return this.i32[s * I_COLS + I_DATA_HASH_A]! >>> 0
  }
  dataHashB(s: number): number {
    return this.i32[s * I_COLS + I_DATA_HASH_B]! >>> 0
  }
  setDataHash(s: number, a: number, b: number): void {
    this.i32[s * I_COLS + I_DATA_HASH_A] = a
    this.i32[s * I_COLS + I_DATA_HASH_B] = b
  }
  nodeHashA(s: number): number {
    return this.i32[s * I_COLS + I_NODE_HASH_A]! >>> 0
  }
  nodeHashB(s: number): number {
    return this.i32[s * I_COLS + I_NODE_HASH_B]! >>> 0
  }
  setNodeHash(s: number, a: number, b: number): void {
    this.i32[s * I_COLS + I_NODE_HASH_A] = a
    this.i32[s * I_COLS + I_NODE_HASH_B] = b
  }
}
