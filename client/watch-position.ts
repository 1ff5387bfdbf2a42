/**
 * WatchPosition: how far the session's watch events go, so its watches can
 * resume from there on the next connection (ConclaveOpCode.resumeWatches)
 * with every missed event delivered once and none twice.
 *
 * A Conclave server sends, on one connection, the events of each applied
 * change in zxid order, and the events of a change before any reply that
 * carries that zxid or a later one (watches fire before replies). So:
 * - a reply with zxid R means every event up to R has arrived: the position
 *   is R, complete;
 * - an event with zxid Z (above the position) means every event before Z has
 *   arrived, and some of Z's: the position is Z, partial, with the events of
 *   Z seen so far (a multi's Txn fires several).
 * A resume from a complete position asks for the events after it; from a
 * partial one, for the events after Z - 1, and the events of Z the server
 * sends again (the same ones, in the same order: the same changes through
 * the same watches) are recognised by (type, path) and dropped.
 *
 * Invariants: `zxid` never decreases; `partial` is set only for an event's
 * zxid; `skip` only while a resume's replay may still resend events of `zxid`.
 * Pure. Imports nothing.
 */

export class WatchPosition {
  /** Every event up to here has been delivered (all of them if `partial` is undefined). */
  zxid = 0
  /** The events of `zxid` delivered so far, by type and path (undefined: all of them). */
  private partial: Map<string, number> | undefined
  /** Events of `zxid` a resume's replay sends again, still to drop. */
  private skip: Map<string, number> | undefined

  /** An event arrived; false if it is one delivered before (a resume's replay sends it again): drop it. */
  event(zxid: number, type: number, path: string): boolean {
    if (zxid < 0) return true // a server that does not stamp its events
    const key = `${type}\u0000${path}`
    if (zxid > this.zxid) {
      this.zxid = zxid
      this.partial = new Map([[key, 1]])
      this.skip = undefined
      return true
    }
    if (zxid < this.zxid) return true
    const left = this.skip?.get(key) ?? 0
    if (left > 0) {
      this.skip!.set(key, left - 1)
      return false
    }
    this.partial?.set(key, (this.partial.get(key) ?? 0) + 1)
    return true
  }

  /** A reply with this zxid arrived: every event up to it has. */
  reply(zxid: number): void {
    if (zxid <= 0 || zxid < this.zxid) return
    this.zxid = zxid
    this.partial = undefined
    this.skip = undefined
  }

  /**
   * The server's history did not reach the resume's start (the client was
   * told to read its state again): what it had up to `zxid` counts as seen.
   */
  compacted(zxid: number): void {
    this.reply(zxid)
  }

  /** Where a resume starts (the events after it are asked for); arms the dropping of resent ones. */
  resumeFrom(): number {
    if (this.partial === undefined) {
      this.skip = undefined
      return this.zxid
    }
    this.skip = new Map(this.partial)
    return this.zxid - 1
  }
}
