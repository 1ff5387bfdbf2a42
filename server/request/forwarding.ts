/**
 * Messages between a follower and its leader that ride ZAB's application
 * channel (FIFO with PROPOSAL/COMMIT on the same link): forwarded client
 * writes, session creation and session activity, the leader's answer to
 * a forwarded write that failed in prep, and its answer to an exactly-once
 * write that had been applied already (re-sent after a lost connection),
 * and its note that a forwarded reconfig was proposed. Jute-encoded; decoding untrusted
 * bytes throws only ProtocolError.
 */
import type { Id } from '../../shared/acl.js'
import { JuteReader, JuteWriter, ProtocolError } from '../../shared/jute.js'

export type ForwardMessage =
  /**
   * A client write: the request packet as the client sent it, and the session's identity;
   * `local`: the session is a local one of the sender's (no createSession Txn), sent as its own kind.
   */
  | { kind: 'write'; sessionId: bigint; cxid: number; authIds: Id[]; packet: Uint8Array; local?: true }
  | { kind: 'createSession'; sessionId: bigint; timeoutMs: number }
  /** Sessions with traffic since the last report (the leader owns expiry). */
  | { kind: 'touch'; sessionIds: bigint[] }
  /**
   * Leader → follower: a forwarded write failed in prep; `body` is an encoded
   * multi result or empty. The follower answers once it has applied `barrier`,
   * the last zxid the leader prepped before this write.
   */
  | { kind: 'failed'; sessionId: bigint; cxid: number; barrier: number; err: number; body: Uint8Array }
  /**
   * Leader → follower: a forwarded exactly-once write was applied already (at
   * `barrier`); `result` is its remembered result (server/txn/result-codec.ts).
   * The follower answers with it once it has applied `barrier`.
   */
  | { kind: 'answered'; sessionId: bigint; cxid: number; barrier: number; result: Uint8Array }
  /**
   * Leader → follower: a forwarded reconfig was proposed at `barrier`; the
   * follower answers with /zookeeper/config once it has applied it.
   */
  | { kind: 'reconfigured'; sessionId: bigint; cxid: number; barrier: number }

function zxidOf(n: bigint): number {
  if (n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError(`zxid ${n} out of range`)
  return Number(n)
}

const KIND = { write: 1, createSession: 2, touch: 3, failed: 4, answered: 5, reconfigured: 6 } as const
/** A write of a local session: a write's fields under their own kind (a plain write's bytes are unchanged). */
const LOCAL_WRITE = 7

/** The bytes a message carries beyond its fixed fields, so that its writer is sized once (not grown 64 → 2048 for a 1 KiB write). */
function forwardPayloadBytes(m: ForwardMessage): number {
  switch (m.kind) {
    case 'write':
      return m.packet.length
    case 'failed':
      return m.body.length
    case 'answered':
      return m.result.length
    default:
      return 0
  }
}

/**
 * A message with a payload is written into a writer sized for it and
 * returned as a view of a shared slab (finishPooled: the bytes are wrapped
 * into a peer message at once and dropped, never kept): a forwarded 1 KiB
 * write encoded in ~1.3 instead of ~2.3 µs. A small one is encoded as
 * before (sized or pooled, an 'answered' reply was slower).
 */
export function encodeForward(m: ForwardMessage): Uint8Array {
  const payload = forwardPayloadBytes(m)
  const w = new JuteWriter(payload <= 64 ? 64 : 64 + payload)
  w.int(m.kind === 'write' && m.local === true ? LOCAL_WRITE : KIND[m.kind])
  switch (m.kind) {
    case 'write':
      w.long(m.sessionId).int(m.cxid)
      w.vector(m.authIds, (x, id) => x.ustring(id.scheme).ustring(id.id))
      w.buffer(m.packet)
      break
    case 'createSession':
      w.long(m.sessionId).int(m.timeoutMs)
      break
    case 'touch':
      w.vector(m.sessionIds, (x, id) => x.long(id))
      break
    case 'failed':
      w.long(m.sessionId).int(m.cxid).long(BigInt(m.barrier)).int(m.err).buffer(m.body)
      break
    case 'answered':
      w.long(m.sessionId).int(m.cxid).long(BigInt(m.barrier)).buffer(m.result)
      break
    case 'reconfigured':
      w.long(m.sessionId).int(m.cxid).long(BigInt(m.barrier))
      break
  }
  return payload <= 64 ? w.finish() : w.finishPooled()
}

export function decodeForward(bytes: Uint8Array): ForwardMessage {
  const r = new JuteReader(bytes)
  const kind = r.int()
  let m: ForwardMessage
  switch (kind) {
    case KIND.write:
    case LOCAL_WRITE:
      m = {
        kind: 'write',
        sessionId: r.long(),
        cxid: r.int(),
        authIds: r.vector((x) => ({ scheme: x.string(), id: x.string() }), 8) ?? [],
        packet: r.buffer() ?? new Uint8Array(0),
      }
      if (kind === LOCAL_WRITE) m.local = true
      break
    case KIND.createSession:
      m = { kind: 'createSession', sessionId: r.long(), timeoutMs: r.int() }
      break
    case KIND.touch:
      m = { kind: 'touch', sessionIds: r.vector((x) => x.long(), 8) ?? [] }
      break
    case KIND.failed:
      m = {
        kind: 'failed',
        sessionId: r.long(),
        cxid: r.int(),
        barrier: zxidOf(r.long()),
        err: r.int(),
        body: r.buffer() ?? new Uint8Array(0),
      }
      break
    case KIND.answered:
      m = {
        kind: 'answered',
        sessionId: r.long(),
        cxid: r.int(),
        barrier: zxidOf(r.long()),
        result: r.buffer() ?? new Uint8Array(0),
      }
      break
    case KIND.reconfigured:
      m = { kind: 'reconfigured', sessionId: r.long(), cxid: r.int(), barrier: zxidOf(r.long()) }
      break
    default:
      throw new ProtocolError(`unknown forward message kind ${kind}`)
  }
  r.done('forward message')
  return m
}
