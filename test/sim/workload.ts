/**
 * Workload: simulated clients. Writes go to a random serving server: the
 * leader proposes them itself, a learner forwards them to the leader as an
 * APP message (the leader proposes and answers with an APP reply naming the
 * zxid). A write is acknowledged when the server the client talked to
 * commits it (same incarnation: a crash loses the client's connection).
 * Sync-reads run `sync` at a random serving server and then read every key
 * whose latest acknowledged write happened before the sync began.
 *
 * Invariants checked here: an APP reply (leader -> learner) arrives before
 * the COMMIT of the zxid it names, i.e. app messages are FIFO with ZAB
 * traffic.
 */
import type { Prng } from '../../server/core/prng.js'
import type { RoleEvent, ServerId } from '../../server/zab/index.js'
import type { Checker } from './checker.js'
import { decodeWrite, encodeWrite } from './kv-state-machine.js'
import type { SimNode } from './sim-node.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** What the simulation asks of a client workload (KV here, tree in tree-workload.ts). */
export interface SimWorkload {
  readonly writesIssued: number
  readonly writesAcked: number
  readonly syncsDone: number
  /** Called every writeEveryMs (on average): issue a write, or whatever clients do next. */
  issueWrite(): void
  issueSync(): void
  onCommitted(node: SimNode, zxid: number, data: Uint8Array): void
  onApp(node: SimNode, from: ServerId, payload: Uint8Array): void
  onSyncDone(node: SimNode, requestId: number): void
  onRole?(node: SimNode, role: RoleEvent): void
}

interface PendingWrite {
  readonly node: ServerId
  readonly incarnation: number
  readonly key: string
}

export class Workload implements SimWorkload {
  private writeSeq = 0
  private syncSeq = 0
  private readonly pendingWrites = new Map<number, PendingWrite>()
  private readonly ackedLatest = new Map<string, number>()
  private readonly pendingSyncs = new Map<string, Map<string, number>>()
  writesIssued = 0
  writesAcked = 0
  syncsIssued = 0
  syncsDone = 0
  /** Simulated time of the latest acknowledgement. */
  lastAckAt = -1

  constructor(
    private readonly nodes: readonly SimNode[],
    private readonly checker: Checker,
    private readonly prng: Prng,
    private readonly keys: number,
    private readonly clock: () => number,
  ) {}

  private servingNode(): SimNode | undefined {
    const serving = this.nodes.filter((n) => n.up && !n.paused && n.peer.status().serving)
    return serving.length > 0 ? this.prng.pick(serving) : undefined
  }

  issueWrite(): void {
    const node = this.servingNode()
    if (!node) return
    const writeId = ++this.writeSeq
    const key = `k${this.prng.int(0, this.keys - 1)}`
    const data = encodeWrite({ writeId, key, value: `v${writeId}` })
    const st = node.peer.status()
    this.writesIssued++
    this.pendingWrites.set(writeId, { node: node.id, incarnation: node.incarnation, key })
    if (st.role === 'LEADING') {
      node.propose(data)
    } else if (st.leaderId !== undefined) {
      node.appSend(st.leaderId, data)
    }
  }

  issueSync(): void {
    const node = this.servingNode()
    if (!node) return
    const requestId = ++this.syncSeq
    this.syncsIssued++
    this.pendingSyncs.set(`${node.id}:${node.incarnation}:${requestId}`, new Map(this.ackedLatest))
    node.sync(requestId)
  }

  onCommitted(node: SimNode, zxid: number, data: Uint8Array): void {
    const w = decodeWrite(data)
    if (!w) return
    const p = this.pendingWrites.get(w.writeId)
    if (!p || p.node !== node.id || p.incarnation !== node.incarnation) return
    this.pendingWrites.delete(w.writeId)
    this.writesAcked++
    this.lastAckAt = this.clock()
    this.checker.onAcked({ writeId: w.writeId, key: w.key, zxid, data })
    this.ackedLatest.set(w.key, Math.max(this.ackedLatest.get(w.key) ?? 0, zxid))
  }

  onApp(node: SimNode, from: ServerId, payload: Uint8Array): void {
    const text = dec.decode(payload)
    if (text.startsWith('r:')) {
      const zxid = Number(text.split(':')[2])
      if (node.peer.status().commitZxid >= zxid) {
        this.checker.fail(
          'app-fifo',
          `n${node.id} got the APP reply for 0x${zxid.toString(16)} after its COMMIT`,
        )
      }
      return
    }
    const w = decodeWrite(payload)
    if (!w) return
    const out = node.propose(payload)
    if (out?.ok) {
      node.appSend(from, enc.encode(`r:${w.writeId}:${out.zxid}`))
    }
  }

  onSyncDone(node: SimNode, requestId: number): void {
    const key = `${node.id}:${node.incarnation}:${requestId}`
    const expected = this.pendingSyncs.get(key)
    if (!expected) return
    this.pendingSyncs.delete(key)
    this.syncsDone++
    this.checker.checkSyncRead(node, expected)
  }
}
