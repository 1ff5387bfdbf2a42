/**
 * Test harness: a leader's write path in miniature — prep against the
 * outstanding changes, stamp zxids and times, apply (live), trim — plus a
 * full structural dump of a tree for comparisons.
 */

import { DataTree, ZNODE_OVERHEAD_BYTES } from '../../../server/tree/data-tree.js'
import type { ApplyResult } from '../../../server/txn/apply.js'
import { OutstandingChanges } from '../../../server/txn/outstanding-changes.js'
import { prepAndRecord } from '../../../server/txn/prepare.js'
import type { PrepRequest } from '../../../server/txn/request.js'
import type { Txn } from '../../../server/txn/txn.js'
import type { Acl, Id } from '../../../shared/acl.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import type { CreateMode } from '../../../shared/opcodes.js'
import type { WireStat } from '../../../shared/stat.js'

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

export interface PrepOptions {
  sessionId?: bigint
  authIds?: readonly Id[]
  superDigest?: string
  /** Advance the clock by this much before prepping (default 1 ms). */
  dtMs?: number
}

export class Leader {
  readonly tree: DataTree
  readonly changes: OutstandingChanges
  readonly log: Txn[] = []
  zxid: number
  timeMs: number

  constructor(tree = new DataTree(), startZxid = 0x100000000, startTimeMs = 1_700_000_000_000) {
    this.tree = tree
    this.changes = new OutstandingChanges(tree)
    this.zxid = startZxid
    this.timeMs = startTimeMs
    // Session 1 is the default caller; prep refuses writes from unknown sessions.
    if (!tree.hasSession(1n)) this.session(1n)
  }

  /** Preps (and records) one request, as the leader's prep stage does; nothing is applied yet. */
  prep(req: PrepRequest, o: PrepOptions = {}): Txn {
    this.zxid++
    this.timeMs += o.dtMs ?? 1
    const ctx = {
      zxid: this.zxid,
      timeMs: this.timeMs,
      sessionId: o.sessionId ?? 1n,
      cxid: this.zxid % 1000,
      authIds: o.authIds ?? [],
      ...(o.superDigest === undefined ? {} : { superDigest: o.superDigest }),
    }
    const txn = prepAndRecord(req, this.changes, ctx)
    this.log.push(txn)
    return txn
  }

  /** Applies a prepped Txn (commit order = prep order) and trims the outstanding changes. */
  commit(txn: Txn): ApplyResult {
    const res = this.tree.apply(txn)
    this.changes.applied(txn.zxid)
    return res
  }

  run(req: PrepRequest, o: PrepOptions = {}): ApplyResult {
    return this.commit(this.prep(req, o))
  }

  session(id: bigint, timeoutMs = 10_000): ApplyResult {
    return this.run({ type: 'createSession', timeoutMs }, { sessionId: id })
  }

  create(
    path: string,
    data = '',
    mode: CreateMode = 'persistent',
    o: PrepOptions & { acl?: readonly Acl[]; ttlMs?: number } = {},
  ): ApplyResult {
    const req: PrepRequest = { type: 'create', path, data: enc(data), acl: o.acl ?? OPEN_ACL_UNSAFE, mode }
    if (o.ttlMs !== undefined) req.ttlMs = o.ttlMs
    return this.run(req, o)
  }

  /** The created path, or the error code. */
  createdPath(res: ApplyResult): string {
    if (res.result.type === 'create') return res.result.path
    if (res.result.type === 'error') return res.result.code
    throw new Error(`unexpected result ${res.result.type}`)
  }
}

export function errorCode(res: ApplyResult): string | undefined {
  return res.result.type === 'error' ? res.result.code : undefined
}

export interface NodeDump {
  stat: WireStat
  /** Hex, or null for null data. */
  data: string | null
  acl: readonly Acl[]
  children: string[]
}

/** Everything a client could observe of a tree, plus sessions and ephemerals. */
export function dumpTree(tree: DataTree): {
  nodes: Record<string, NodeDump>
  sessions: { sessionId: bigint; timeoutMs: number }[]
  ephemerals: Record<string, string[]>
} {
  const nodes: Record<string, NodeDump> = {}
  for (const path of [...tree.paths()].sort()) {
    const d = tree.getData(path)!
    nodes[path] = {
      stat: d.stat,
      data: d.data === null ? null : Buffer.from(d.data).toString('hex'),
      acl: tree.getAcl(path)!.acl,
      children: tree.getChildren(path)!,
    }
  }
  const sessions = tree.sessions().sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1))
  const ephemerals: Record<string, string[]> = {}
  for (const s of sessions) ephemerals[s.sessionId.toString()] = tree.ephemerals(s.sessionId)
  return { nodes, sessions, ephemerals }
}

/** The tree's size estimate computed from what it shows: per znode the overhead plus its path and data. */
export function sizeFromContents(tree: DataTree): number {
  let bytes = 0
  for (const path of tree.paths()) bytes += ZNODE_OVERHEAD_BYTES + path.length + tree.stat(path)!.dataLength
  return bytes
}
