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
 * Invariants: `zxid` never decreases; `got` holds events only while the
 * position is partial; `skip` only while a resume's replay may still resend
 * events of `zxid`.
 * Pure. Imports nothing.
 */

export class WatchPosition {
  /** Every event up to here has been delivered (all of them if `complete`). */
  zxid = 0
  private complete = true
  /** The events of `zxid` delivered so far, as type, path, type, path, … (reused: no allocation per event). */
  private readonly got: (number | string)[] = []
  /** Events of `zxid` a resume's replay sends again, still to drop (by type and path). */
  private skip: Map<string, number> | undefined

  /** An event arrived; false if it is one delivered before (a resume's replay sends it again): drop it. */
  event(zxid: number, type: number, path: string): boolean {
    if (zxid < 0) return true // a server that does not stamp its events
    if (zxid > this.zxid) {
      this.zxid = zxid
      this.complete = false
      this.got.length = 0
      this.got.push(type, path)
      this.skip = undefined
      return true
    }
    if (zxid < this.zxid || this.complete) return true
    if (this.skip !== undefined) {
      const key = `${type}\u0000${path}`
      const left = this.skip.get(key) ?? 0
      if (left > 0) {
        this.skip.set(key, left - 1)
        return false
      }
    }
    this.got.push(type, path)
    return true
  }

  /** A reply with this zxid arrived: every event up to it has. */
  reply(zxid: number): void {
    if (zxid <= 0 || zxid < this.zxid) return
    this.zxid = zxid
    this.complete = true
    if (this.got.length > 0) this.got.length = 0
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
    this.skip = undefined
    if (this.complete) return this.zxid
    const skip = new Map<string, number>()
    for (let i = 0; i < this.got.length; i += 2) {
      const key = `${this.got[i]}\u0000${this.got[i + 1]}`
      skip.set(key, (skip.get(key) ?? 0) + 1)
    }
    this.skip = skip
    return this.zxid - 1
  }
}
