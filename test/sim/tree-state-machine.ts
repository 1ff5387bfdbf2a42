/**
 * TreeStateMachine: the real replicated state — TreeDb (the DataTree with
 * prep and its outstanding changes) — behind the simulator's
 * SimStateMachine port. It decodes nothing itself: TreeDb.apply does. Each
 * simulated server's request path (server/request, run by sim-server.ts)
 * preps through `db` and applies committed entries through its Applier;
 * a SNAP (or a restart from a disk snapshot) replaces the tree with one
 * rebuilt from the chunks.
 *
 * This file is the only place the simulator touches the tree's API beyond
 * the TreeDb interface (server/state/tree-db.ts): building, snapshots, restore, replies.
 *
 * Invariants: entries are applied in strictly increasing zxid order, and a
 * Txn's own zxid (set by the leader's prep) is the zxid ZAB committed it at,
 * so `db.lastZxid === appliedZxid` after every apply and every restore.
 *
 * Mutations (to prove the tree checkers fail): `skipClose` makes every
 * server apply a closeSession as a no-op (its session and ephemerals stay,
 * and all servers agree); `divergentClose` does so on server 1 only, and
 * only while it is not leading: the leader applies every Txn first, so the
 * divergence shows as a digest that differs from the leader's (equal-digests),
 * never as the leader's own closed session left behind (ephemerals-closed).
 */

import { type RestoreJob, whenRestored } from '../../server/replicate/zab-driver.js'
import type { ApplyOutcome } from '../../server/state/tree-db.js'
import { TreeDb } from '../../server/state/tree-db.js'
import { decodeTxn, encodeTxn } from '../../server/txn/codec.js'
import { type ConfigAt, isConfigEntry, type LogEntry, type Snapshot } from '../../server/zab/index.js'
import { assert } from '../../shared/assert.js'
import type { SimStateMachine } from './kv-state-machine.js'

export type TreeMutation = 'none' | 'skipClose' | 'divergentClose'

/** What the client is told of a committed Txn. */
export interface TreeReply {
  err: string
  /** Per create in order (a multi has one per op; undefined where the op made nothing). */
  created: (string | undefined)[]
}

export function replyOf(out: ApplyOutcome): TreeReply {
  const r = out.result
  if (r.type === 'error') return { err: r.code, created: [] }
  if (r.type === 'create') return { err: 'OK', created: [r.path] }
  if (r.type === 'multi')
    return { err: 'OK', created: r.results.map((x) => (x.type === 'create' ? x.path : undefined)) }
  return { err: 'OK', created: [] }
}

/** The session a committed closeSession Txn closes, read from its bytes (independent of apply). */
export function closedSessionOf(data: Uint8Array): bigint | undefined {
  if (isConfigEntry(data)) return undefined
  const txn = decodeTxn(data)
  return txn.type === 'closeSession' ? txn.sessionId : undefined
}

export class TreeStateMachine implements SimStateMachine {
  db = TreeDb.empty()
  appliedZxid = 0
  /** Below this, the tree may be between states (rebuilt from a fuzzy snapshot): the db's own bound. */
  get fuzzyEndZxid(): number {
    return this.db.fuzzyEndZxid
  }
  /** The outcome of the last apply, for the workload and the checker. */
  lastOutcome: ApplyOutcome | undefined
  /**
   * How a committed Txn reaches the tree: straight into the TreeDb, or (on a
   * simulated server) through the server's own Applier, which also fires
   * watches, updates the session table and answers the client.
   */
  applyTxn: (zxid: number, data: Uint8Array) => ApplyOutcome = (zxid, data) => this.db.apply(zxid, data)

  constructor(
    private readonly serverId: number,
    private readonly chunkBytes: number,
    private readonly mutation: TreeMutation = 'none',
    /** Whether this server leads now (divergentClose spares a leader, so the leader's digest is the reference). */
    private readonly isLeading: () => boolean = () => false,
  ) {}

  apply(entry: LogEntry): void {
    assert(entry.zxid > this.appliedZxid, `apply out of order: ${entry.zxid} after ${this.appliedZxid}`)
    const skip =
      this.mutation === 'skipClose' ||
      (this.mutation === 'divergentClose' && this.serverId === 1 && !this.isLeading())
    const data = skip ? this.closeAsNoop(entry.data) : entry.data
    this.lastOutcome = this.applyTxn(entry.zxid, data)
    this.appliedZxid = entry.zxid
    assert(this.db.lastZxid === entry.zxid, `Txn zxid ${this.db.lastZxid} is not its log zxid ${entry.zxid}`)
  }

  /** Mutation: a closeSession becomes a Txn that changes nothing (an error Txn). */
  private closeAsNoop(data: Uint8Array): Uint8Array {
    if (isConfigEntry(data)) return data
    const txn = decodeTxn(data)
    if (txn.type !== 'closeSession') return data
    const { sessionId, cxid, zxid, timeMs } = txn
    return encodeTxn({ sessionId, cxid, zxid, timeMs, type: 'error', code: 'OK' })
  }

  /** A role change: Txns prepped under an earlier leadership will never be applied (node.ts onRole). */
  roleChanged(): void {
    this.db.dropOutstanding()
  }

  digest(): string {
    return this.db.digest()
  }

  snapshot(): Snapshot {
    const s = this.lazySnapshot()
    // Rebuilt from a fuzzy snapshot and not yet past its end: so is this one.
    const chunks = [...s.chunks]
    return this.fuzzyEndZxid > s.zxid
      ? { zxid: s.zxid, chunks, endZxid: this.fuzzyEndZxid }
      : { zxid: s.zxid, chunks }
  }

  /** Written as the chunks are pulled (SNAP streams do so over many events): fuzzy. */
  lazySnapshot(): { zxid: number; chunks: Generator<Uint8Array, void, void> } {
    // Small chunks, so records and SNAP re-chunking cut through them often.
    const s = this.db.tree.snapshot({ chunkBytes: this.chunkBytes })
    assert(s.zxid === this.appliedZxid, `snapshot at ${s.zxid}, applied ${this.appliedZxid}`)
    return s
  }

  /** The checker asks after every event; parsing /zookeeper/config again only when the tree changed. */
  private configMemo: { tree: object; zxid: number; config: ConfigAt | undefined } | undefined

  get config(): ConfigAt | undefined {
    // The tree changes only by an applied Txn (a new lastZxid) or a restore (a new tree).
    const m = this.configMemo
    if (m !== undefined && m.tree === this.db.tree && m.zxid === this.db.lastZxid) return m.config
    const config = this.db.memberConfig()
    this.configMemo = { tree: this.db.tree, zxid: this.db.lastZxid, config }
    return config
  }

  restore(s: Snapshot): void {
    const job = this.beginRestore(s.zxid)
    for (const c of s.chunks) job.push(c)
    while (!job.step(Number.POSITIVE_INFINITY, s.endZxid ?? s.zxid)) {}
  }

  /** The server's way (create-replicator.ts): TreeDb.beginReplace, chunks read as they come, then in steps. */
  beginRestore(zxid: number): RestoreJob {
    return whenRestored(this.db.beginReplace(zxid), () => {
      this.appliedZxid = zxid
      this.lastOutcome = undefined
    })
  }
}
