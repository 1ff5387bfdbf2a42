/**
 * A leader's write path in miniature, built only on the data core: prep
 * against the OutstandingChanges overlay (the tree as prepped-but-unapplied
 * Txns leave it) → encodeTxn; later decodeTxn → DataTree.apply →
 * OutstandingChanges.applied. This is what the server's TreeDb does
 * around these modules (server/state/tree-db.ts).
 */

import type { DataTree } from '../../../server/tree/data-tree.js'
import type { ApplyResult } from '../../../server/txn/apply.js'
import { decodeTxn, encodeTxn } from '../../../server/txn/codec.js'
import { OutstandingChanges } from '../../../server/txn/outstanding-changes.js'
import { prepAndRecord } from '../../../server/txn/prepare.js'
import type { PrepContext, PrepRequest } from '../../../server/txn/request.js'
import type { Txn } from '../../../server/txn/txn.js'
import { JuteWriter } from '../../../shared/jute.js'

export type { PrepRequest }

export class Leader {
  readonly outstanding: OutstandingChanges
  private readonly writer = new JuteWriter(64)

  constructor(readonly tree: DataTree) {
    this.outstanding = new OutstandingChanges(tree)
  }

  /** Preps (recording the Txn's effects in the overlay) and encodes. */
  prep(req: PrepRequest, ctx: PrepContext): { txn: Txn; bytes: Uint8Array } {
    const txn = prepAndRecord(req, this.outstanding, ctx)
    return { txn, bytes: encodeTxn(txn, this.writer) }
  }

  apply(zxid: number, bytes: Uint8Array): ApplyResult {
    const res = this.tree.apply(decodeTxn(bytes))
    this.outstanding.applied(zxid)
    return res
  }
}
