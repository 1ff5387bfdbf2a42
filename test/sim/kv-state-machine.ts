/**
 * KvStateMachine: the simulator's replicated application. A map of keys to
 * (value, zxid) plus a running digest (a hash chain over every applied
 * entry), so two servers at the same applied zxid must have the same
 * digest. It implements SimStateMachine, the small port through which the
 * simulator drives a replicated application (TreeStateMachine plugs the
 * real DataTree in through it).
 *
 * Entry data is the text `w:<writeId>:<key>:<value>`.
 *
 * Invariants: entries are applied in strictly increasing zxid order;
 * restore() replaces the whole state, digest included.
 */

import type { RestoreJob } from '../../server/replicate/zab-driver.js'
import { type ConfigAt, decodeConfigEntry, type LogEntry, type Snapshot } from '../../server/zab/index.js'
import { assert } from '../../shared/assert.js'

/** The port a replicated state machine offers the simulator. */
export interface SimStateMachine {
  readonly appliedZxid: number
  apply(entry: LogEntry): void
  digest(): string
  /** The whole state at appliedZxid, in chunks. */
  snapshot(): Snapshot
  /**
   * Optional: a snapshot for SNAP whose chunks are written lazily, as they are
   * pulled, while entries keep being applied (fuzzy; see SnapshotSource).
   */
  lazySnapshot?(): { zxid: number; chunks: Iterable<Uint8Array> }
  /** Entries below this zxid may already be reflected (after a fuzzy restore): no digest is exact there. */
  readonly fuzzyEndZxid?: number
  restore(s: Snapshot): void
  /**
   * Optional: restore from a SNAP as its chunks arrive, then in steps
   * (ZabDriver's RestoreJob): the state stays as it was until the step that
   * returns true replaces it.
   */
  beginRestore?(zxid: number): RestoreJob
  /** The server's role, epoch, leader or serving state changed (optional). */
  roleChanged?(): void
  /** The membership config the state holds (the last config entry applied; undefined: none). */
  readonly config: ConfigAt | undefined
}

export interface WriteData {
  writeId: number
  key: string
  value: string
}

const enc = new TextEncoder()
const dec = new TextDecoder()

export function encodeWrite(w: WriteData): Uint8Array {
  return enc.encode(`w:${w.writeId}:${w.key}:${w.value}`)
}

export function decodeWrite(data: Uint8Array): WriteData | undefined {
  const m = /^w:(\d+):([^:]*):(.*)$/.exec(dec.decode(data))
  if (!m) return undefined
  return { writeId: Number(m[1]), key: m[2]!, value: m[3]! }
}

function mix(h: number, x: number): number {
  h ^= x
  return Math.imul(h, 0x01000193) >>> 0
}

export class KvStateMachine implements SimStateMachine {
  appliedZxid = 0
  private h1 = 0x811c9dc5
  private h2 = 0x2545f491
  private readonly map = new Map<string, { value: string; zxid: number }>()
  /** The last config entry applied (ZooKeeper keeps it in /zookeeper/config; snapshots carry it). */
  config: ConfigAt | undefined

  constructor(private readonly chunkBytes = 48) {}

  apply(entry: LogEntry): void {
    assert(entry.zxid > this.appliedZxid, `apply out of order: ${entry.zxid} after ${this.appliedZxid}`)
    this.appliedZxid = entry.zxid
    const config = decodeConfigEntry(entry.data)
    if (config !== undefined) this.config = { zxid: entry.zxid, config }
    const w = config === undefined ? decodeWrite(entry.data) : undefined
    if (w) this.map.set(w.key, { value: w.value, zxid: entry.zxid })
    this.h1 = mix(this.h1, entry.zxid % 2 ** 32)
    this.h2 = mix(this.h2, Math.floor(entry.zxid / 2 ** 32))
    for (const b of entry.data) {
      this.h1 = mix(this.h1, b)
      this.h2 = mix(this.h2, b ^ 0x5a)
    }
  }

  digest(): string {
    return `${this.h1.toString(16)}.${this.h2.toString(16)}`
  }

  read(key: string): { value: string; zxid: number } | undefined {
    return this.map.get(key)
  }

  snapshot(): Snapshot {
    const text = JSON.stringify({
      z: this.appliedZxid,
      h: [this.h1, this.h2],
      m: [...this.map],
      c: this.config,
    })
    const bytes = enc.encode(text)
    const chunks: Uint8Array[] = []
    for (let off = 0; off < bytes.length; off += this.chunkBytes)
      chunks.push(bytes.slice(off, off + this.chunkBytes))
    return { zxid: this.appliedZxid, chunks }
  }

  restore(s: Snapshot): void {
    const total = s.chunks.reduce((n, c) => n + c.length, 0)
    const bytes = new Uint8Array(total)
    let off = 0
    for (const c of s.chunks) {
      bytes.set(c, off)
      off += c.length
    }
    const parsed = JSON.parse(dec.decode(bytes)) as {
      z: number
      h: [number, number]
      m: [string, { value: string; zxid: number }][]
      c?: ConfigAt
    }
    assert(parsed.z === s.zxid, 'snapshot zxid does not match its content')
    this.appliedZxid = parsed.z
    this.h1 = parsed.h[0]
    this.h2 = parsed.h[1]
    this.map.clear()
    for (const [k, v] of parsed.m) this.map.set(k, v)
    this.config = parsed.c
  }
}
