/**
 * The tree-size quota (config `treeBytesMax`). Every server holds the whole
 * tree in its heap, so a client that keeps creating znodes would run every
 * server of the ensemble out of memory at the same create. Past the limit,
 * a write that would grow the tree (a create, a setData with more bytes than
 * the znode holds, a multi with either) fails with QUOTA_EXCEEDED; deletes,
 * writes that do not grow it, sessions and reads go on, so a client can
 * clean up. The size is DataTree.sizeEstimateBytes: per znode a fixed
 * overhead plus its path and data.
 *
 * Checked by the server that preps (leader or standalone) against the
 * applied tree, not counting writes in flight: the tree can pass the limit
 * by what is in flight (at most globalOutstandingLimit writes per server).
 * Not replicated state: a refused write is a failed prep, never logged.
 * I/O edge (reads the heap limit for the default); not for the pure core.
 */
import { getHeapStatistics } from 'node:v8'
import type { Logger } from 'pino'
import type { PrepRequest } from '../txn/request.js'
import type { TreeDb } from './tree-db.js'

/** The default limit: half the heap limit, leaving the rest for sessions, watches, snapshots and traffic. */
export function defaultTreeBytesMax(): number {
  return Math.floor(getHeapStatistics().heap_size_limit / 2)
}

/** Whether `w` would make the tree larger (new znodes, or more data in one). */
export function growsTree(w: PrepRequest, db: Pick<TreeDb, 'get'>): boolean {
  switch (w.type) {
    case 'create':
      return true
    case 'setData':
      return (w.data?.length ?? 0) > (db.get(w.path)?.stat.dataLength ?? 0)
    case 'multi':
      return w.ops.some((op) => growsTree(op, db))
    default:
      return false
  }
}

export class TreeQuota {
  private over = false

  constructor(
    readonly bytesMax: number,
    private readonly logger: Logger,
  ) {}

  /** True when `w` must fail with QUOTA_EXCEEDED. Logs when the tree passes the limit and when it is back under. */
  refuses(w: PrepRequest, db: Pick<TreeDb, 'get' | 'sizeEstimateBytes' | 'nodeCount'>): boolean {
    const size = db.sizeEstimateBytes()
    if (size < this.bytesMax) {
      if (this.over) {
        this.over = false
        this.logger.info({ treeBytes: size, treeBytesMax: this.bytesMax }, 'tree back under treeBytesMax')
      }
      return false
    }
    if (!growsTree(w, db)) return false
    if (!this.over) {
      this.over = true
      this.logger.warn(
        { treeBytes: size, treeBytesMax: this.bytesMax, znodes: db.nodeCount() },
        'tree past treeBytesMax: writes that would grow it fail with QUOTA_EXCEEDED until znodes are deleted',
      )
    }
    return true
  }
}
