/**
 * One request in flight: what to decode its reply as, where its watch goes,
 * and how to settle its promise. And `replyValue`, which turns a decoded
 * response into the value the API resolves with.
 *
 * Invariants: a Pending is settled exactly once (or never, for internal
 * requests, whose resolve/reject are no-ops); `req` is dropped once sent,
 * except by an exactly-once write, which keeps it until answered.
 * Pure. Imports only shared/ and client/ (no node:*).
 */
import { ZkError } from '../shared/errors.js'
import { ConclaveOpCode, OpCode } from '../shared/opcodes.js'
import { stripChroot } from '../shared/paths.js'
import type { MultiWriteOp, Request, Response } from '../shared/records.js'
import { clientPath, multiOutcome, toStat } from './results.js'
import type { Watcher } from './types.js'

const noop = (): void => {}

export class Pending {
  xid = 0
  /** Sent exactly-once: `req` is kept, to send again (same xid) if the connection is lost. */
  once = false
  /** Times sent exactly-once (bounded by EXACTLY_ONCE_SENDS_MAX). */
  sends = 0
  resolve: (value: unknown) => void = noop
  reject: (err: ZkError) => void = noop

  constructor(
    /** The opcode, which says how to decode the reply. */
    readonly op: number,
    /** The record to send; cleared once sent. */
    public req: Request | undefined,
    /** The client path, for errors and watch registration. */
    readonly path: string | undefined,
    readonly watch: Watcher | undefined = undefined,
    /** For addWatch: the AddWatchMode. */
    readonly watchMode = -1,
    /** For multi: the ops, to name the failing op's path. */
    readonly ops: MultiWriteOp[] | undefined = undefined,
  ) {}

  /** Rejects with `code`; `why`, when given, is added to the message. */
  fail(code: ZkError['code'], why?: string): void {
    const head = this.path === undefined ? code : `${code}: ${this.path}`
    // The server refuses a read whose reply would exceed its frameBytesMax (e.g. a huge child list).
    const detail =
      why ??
      (code === 'MARSHALLING_ERROR' ? "the reply would be larger than the server's frameBytesMax" : undefined)
    this.reject(new ZkError(code, this.path, detail === undefined ? undefined : `${head} (${detail})`))
  }
}

function sorted(names: string[]): string[] {
  return names.sort()
}

/** The API value for a successful response, or the ZkError of a failed multi. */
export function replyValue(p: Pending, res: Response, chroot: string | undefined): unknown {
  switch (res.op) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      return clientPath(chroot, res.path)
    case OpCode.getData:
    case OpCode.reconfig:
      // A copy, so the value does not pin the whole receive buffer. Null data (a znode
      // created or set with none: the wire's length -1) is empty bytes here, as the
      // SDK's DataResult.data is always a Uint8Array (docs: client API).
      return { data: res.data === null ? new Uint8Array(0) : res.data.slice(), stat: toStat(res.stat) }
    case OpCode.exists:
    case OpCode.setData:
    case OpCode.setACL:
      return toStat(res.stat)
    case OpCode.getChildren:
      return sorted(res.children)
    case OpCode.getChildren2:
      return { children: sorted(res.children), stat: toStat(res.stat) }
    case OpCode.getACL:
      return { acl: res.acl, stat: toStat(res.stat) }
    case OpCode.multi:
    case OpCode.multiRead:
      return multiOutcome(res.results, p.ops ?? [], chroot)
    case OpCode.getEphemerals:
      // A prefix match may reach past the chroot ('/app' matches '/apple'): keep only nodes inside it.
      return sorted(
        res.paths.flatMap((x) => {
          const p = chroot === undefined ? x : stripChroot(chroot, x)
          return p === undefined ? [] : [p]
        }),
      )
    case OpCode.getAllChildrenNumber:
      return res.total
    case OpCode.whoAmI:
      return res.clientInfo.map((c) => ({ scheme: c.authScheme, id: c.user }))
    case ConclaveOpCode.getChildrenPage: {
      // In the server's order (already ascending): a page is a range, not a set to sort.
      const page: { children: string[]; next?: string; stat: ReturnType<typeof toStat> } = {
        children: res.children,
        stat: toStat(res.stat),
      }
      if (res.more && res.children.length > 0) page.next = res.children[res.children.length - 1]!
      return page
    }
    default:
      return undefined
  }
}
