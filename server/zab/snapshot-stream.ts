/**
 * SnapshotStream: a SNAP's chunks, pulled one message at a time. The leader
 * decides to SNAP inside a step (leadership.ts), but producing the chunks is
 * the driver's job, in slices between other work: serialising a large tree
 * at once held the leader's event loop for seconds (1,000,000 znodes take
 * about 2.5 s to write out) and buffered the whole snapshot in memory. The
 * driver sends the SNAP header, then `next()` until it returns undefined,
 * then `end(reflectsThrough)`; everything else it has for that learner waits
 * behind the stream, so the learner sees the core's message order.
 *
 * Invariants: chunks are at most maxBytes each and numbered from 0 without
 * gaps; `end` is called once, after the source is exhausted, and its
 * endZxid is never below the snapshot's zxid.
 *
 * Must not import anything but shared/ and server/zab (pure module).
 */
import { assert } from '../../shared/assert.js'
import type { ConfigAt } from './membership.js'
import type { PeerMessage } from './messages.js'

type Msg<T extends PeerMessage['type']> = Extract<PeerMessage, { type: T }>

export class SnapshotStream {
  private readonly source: Iterator<Uint8Array>
  private current: Uint8Array | undefined
  private offset = 0
  private sent = 0
  private ended = false

  constructor(
    readonly zxid: number,
    chunks: Iterable<Uint8Array>,
    private readonly maxBytes: number,
    /** The membership config committed as of `zxid`, which the SNAP header carries. */
    private readonly config: ConfigAt,
  ) {
    assert(maxBytes > 0, 'snapshot chunks need a positive size')
    this.source = chunks[Symbol.iterator]()
  }

  header(): Msg<'SNAP'> {
    return { type: 'SNAP', zxid: this.zxid, configZxid: this.config.zxid, config: this.config.config.text }
  }

  /** The next SNAPCHUNK, or undefined once the snapshot is exhausted. */
  next(): Msg<'SNAPCHUNK'> | undefined {
    while (this.current === undefined || this.offset >= this.current.length) {
      const r = this.source.next()
      if (r.done) return undefined
      this.current = r.value
      this.offset = 0
    }
    const data = this.current.subarray(this.offset, this.offset + this.maxBytes)
    this.offset += data.length
    return { type: 'SNAPCHUNK', index: this.sent++, data }
  }

  /**
   * The closing SNAPEND. `reflectsThrough`: the highest zxid whose effects the
   * state may hold when the source ran out — the last applied, or more if the
   * state was itself rebuilt from a fuzzy snapshot not yet replayed past.
   */
  end(reflectsThrough: number): Msg<'SNAPEND'> {
    assert(!this.ended, 'snapshot stream ended twice')
    assert(reflectsThrough >= this.zxid, 'a snapshot cannot end before it began')
    this.ended = true
    return { type: 'SNAPEND', chunkCount: this.sent, endZxid: reflectsThrough }
  }

  /** Every message at once, for drivers that need no slicing (tests, the simulator). */
  drain(reflectsThrough: number): PeerMessage[] {
    const out: PeerMessage[] = [this.header()]
    for (let m = this.next(); m !== undefined; m = this.next()) out.push(m)
    out.push(this.end(reflectsThrough))
    return out
  }
}
