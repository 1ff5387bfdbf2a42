/**
 * Test harness: the server's own write path, TreeDb (server/state/tree-db.ts),
 * with the leader's bookkeeping around it as the request path does it
 * (server/request/write-router.ts): a write is prepped at the next zxid
 * against the Txns prepped but not yet applied (TreeDb.prep → encoded Txn);
 * a write prep refuses takes no zxid and is answered at once; a prepped Txn
 * is logged and later applied in zxid order (TreeDb.apply). Leader adds the
 * clock, cxids, the log of what it proposed, a change of leader
 * (dropOutstanding) and a restart from a snapshot.
 */

import { type ApplyOutcome, TreeDb } from '../../../server/state/tree-db.js'
import { DataTree } from '../../../server/tree/data-tree.js'
import type { ChangeEvent, TxnResult } from '../../../server/txn/apply.js'
import { decodeTxn } from '../../../server/txn/codec.js'
import { OutstandingChanges } from '../../../server/txn/outstanding-changes.js'
import type { PrepContext, PrepRequest } from '../../../server/txn/request.js'
import type { Txn } from '../../../server/txn/txn.js'
import type { Acl, Id } from '../../../shared/acl.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import type { ErrorCode } from '../../../shared/errors.js'
import type { CreateMode } from '../../../shared/opcodes.js'

export type { PrepRequest }

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

export interface PrepOptions {
  sessionId?: bigint
  authIds?: readonly Id[]
  superDigest?: string
  /** Advance the clock by this much before prepping (default 1 ms). */
  dtMs?: number
}

/** A Txn the leader proposed: its zxid and its encoded bytes, as the log holds it. */
export interface Proposal {
  zxid: number
  bytes: Uint8Array
  /** The PrepContext it was prepped with. */
  ctx: PrepContext
}

/** What prep gave: a proposal (it took the next zxid), or a refusal (it took none). */
export type Prepped = ({ ok: true } & Proposal) | { ok: false; err: ErrorCode; multi?: ErrorCode[] }

/** What the client hears: the applied Txn's result and changes, or prep's refusal as an error result. */
export interface Reply {
  /** The Txn's zxid; for a refusal, the last zxid applied (as the server's reply header). */
  zxid: number
  result: TxnResult
  events: ChangeEvent[]
}

/** A new epoch's first zxid minus one: where a new leader's zxids start. */
function nextEpoch(zxid: number): number {
  return (Math.floor(zxid / 2 ** 32) + 1) * 2 ** 32
}

export class Leader {
  db: TreeDb
  /** Every Txn proposed and not truncated away, in zxid order. */
  readonly log: Proposal[] = []
  /** Proposed, not yet applied, in zxid order. */
  pending: Proposal[] = []
  /** The last zxid proposed. */
  zxid: number
  timeMs: number
  cxid = 0

  /** Sessions in `sessions` (default: session 1, the default caller) are opened unless the tree has them. */
  constructor(
    tree = new DataTree(),
    o: { zxid?: number; timeMs?: number; sessions?: readonly bigint[] } = {},
  ) {
    this.db = new TreeDb(tree)
    this.zxid = o.zxid ?? Math.max(tree.lastZxid, 0x100000000)
    this.timeMs = o.timeMs ?? 1_700_000_000_000
    for (const id of o.sessions ?? [1n]) if (!tree.hasSession(id)) this.session(id)
  }

  get tree(): DataTree {
    return this.db.tree
  }

  /** The PrepContext of the next write. */
  nextCtx(o: PrepOptions = {}): PrepContext {
    this.timeMs += o.dtMs ?? 1
    return {
      zxid: this.zxid + 1,
      timeMs: this.timeMs,
      sessionId: o.sessionId ?? 1n,
      cxid: ++this.cxid,
      authIds: o.authIds ?? [],
      ...(o.superDigest === undefined ? {} : { superDigest: o.superDigest }),
    }
  }

  /** Preps one request at the next zxid, as the leader's prep stage does; nothing is applied yet. */
  prep(req: PrepRequest, o: PrepOptions = {}): Prepped {
    return this.prepWith(req, this.nextCtx(o))
  }

  prepWith(req: PrepRequest, ctx: PrepContext): Prepped {
    const out = this.db.prep(req, ctx)
    if (!out.ok) return out
    this.zxid = ctx.zxid
    const p: Proposal = { zxid: ctx.zxid, bytes: out.txn, ctx }
    this.log.push(p)
    this.pending.push(p)
    return { ok: true, ...p }
  }

  /** Applies the oldest proposal not yet applied (commit order = zxid order). */
  applyNext(): { p: Proposal; out: ApplyOutcome } {
    const p = this.pending.shift()!
    return { p, out: this.db.apply(p.zxid, p.bytes) }
  }

  applyAll(): ApplyOutcome[] {
    const outs: ApplyOutcome[] = []
    while (this.pending.length > 0) outs.push(this.applyNext().out)
    return outs
  }

  /** Preps, then applies everything prepped so far; the reply to this request. */
  run(req: PrepRequest, o: PrepOptions = {}): Reply {
    const p = this.prep(req, o)
    let mine: ApplyOutcome | undefined
    while (this.pending.length > 0) {
      const { p: q, out } = this.applyNext()
      if (p.ok && q.zxid === p.zxid) mine = out
    }
    if (!p.ok) {
      const result: TxnResult =
        p.multi === undefined
          ? { type: 'error', code: p.err }
          : { type: 'error', code: p.err, results: p.multi }
      return { zxid: this.db.lastZxid, result, events: [] }
    }
    return { zxid: p.zxid, result: mine!.result, events: mine!.changes as ChangeEvent[] }
  }

  /**
   * A change of leader: the outstanding changes go (TreeDb.dropOutstanding).
   * The proposals not yet applied were either committed by the next leader
   * (applied now, `committed`) or never were (truncated: gone from the log).
   * The next zxid starts a new epoch. Returns the proposals applied now.
   */
  leaderChange(committed: boolean): { p: Proposal; out: ApplyOutcome }[] {
    this.db.dropOutstanding()
    const applied: { p: Proposal; out: ApplyOutcome }[] = []
    if (committed) while (this.pending.length > 0) applied.push(this.applyNext())
    else {
      this.log.splice(this.log.length - this.pending.length)
      this.pending = []
    }
    this.zxid = nextEpoch(this.zxid)
    return applied
  }

  /** Everything applied, the tree is rebuilt from its own snapshot, as a SNAP (TreeDb.replaceTree) does. */
  restart(chunkBytes?: number): void {
    this.applyAll()
    const snap = this.db.snapshot(chunkBytes === undefined ? {} : { chunkBytes })
    this.db.replaceTree(TreeDb.fromSnapshot(snap.chunks), snap.zxid)
  }

  /**
   * Entries in TreeDb's outstanding changes. TreeDb keeps them private; the
   * tests read the count to check that once everything prepped is applied,
   * nothing is left (the overlay does not grow without bound).
   */
  overlaySize(): number {
    const changes = (this.db as unknown as { changes: unknown }).changes
    if (!(changes instanceof OutstandingChanges))
      throw new Error('TreeDb no longer keeps its overlay in `changes`')
    return changes.size
  }

  /** The logged Txns, decoded. */
  txns(): Txn[] {
    return this.log.map((p) => decodeTxn(p.bytes))
  }

  session(id: bigint, timeoutMs = 10_000): Reply {
    return this.run({ type: 'createSession', timeoutMs }, { sessionId: id })
  }

  create(
    path: string,
    data = '',
    mode: CreateMode = 'persistent',
    o: PrepOptions & { acl?: readonly Acl[]; ttlMs?: number } = {},
  ): Reply {
    const req: PrepRequest = { type: 'create', path, data: enc(data), acl: o.acl ?? OPEN_ACL_UNSAFE, mode }
    if (o.ttlMs !== undefined) req.ttlMs = o.ttlMs
    return this.run(req, o)
  }

  /** The created path, or the error code. */
  createdPath(res: Reply): string {
    if (res.result.type === 'create') return res.result.path
    if (res.result.type === 'error') return res.result.code
    throw new Error(`unexpected result ${res.result.type}`)
  }
}

export function errorCode(res: Reply): string | undefined {
  return res.result.type === 'error' ? res.result.code : undefined
}
