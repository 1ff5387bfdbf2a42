/**
 * Replies to writes that failed in prep, held until the local tree has
 * applied every Txn prepped before them.
 *
 * Prep checks a write against the tree plus the outstanding (proposed, not
 * yet applied) changes, so a create can fail with NODE_EXISTS because of
 * another session's create that is still on its way to a quorum. Sending
 * that error at once would let the same client read the tree before the
 * create is applied and see NO_NODE right after NODE_EXISTS. ZooKeeper
 * avoids this by pushing an error Txn through the whole pipeline; we keep
 * the log free of them and hold the reply until the local tree reaches the
 * last zxid prepped before the failure (the barrier).
 *
 * Barriers arrive in non-decreasing order (the leader's proposals, or the
 * leader's answers on one FIFO link), so a queue is enough; the client
 * handler still sends each session's replies in request order.
 */
export class HeldReplies {
  private readonly queue: { barrier: number; release: (ok: boolean) => void }[] = []
  private head = 0

  get size(): number {
    return this.queue.length - this.head
  }

  /** Runs `release(true)` once applied(zxid ≥ barrier) is called; at once if `appliedZxid` already is. */
  hold(barrier: number, appliedZxid: number, release: (ok: boolean) => void): void {
    if (barrier <= appliedZxid) return release(true)
    this.queue.push({ barrier, release })
  }

  /** The local tree applied everything up to `zxid`. */
  applied(zxid: number): void {
    while (this.head < this.queue.length && this.queue[this.head]!.barrier <= zxid) {
      this.queue[this.head++]!.release(true)
    }
    if (this.head > 0 && this.head === this.queue.length) {
      this.queue.length = 0
      this.head = 0
    }
  }

  /** Leadership changed: the barrier may never be applied here; every held reply gets `release(false)`. */
  dropAll(): void {
    const rest = this.queue.slice(this.head)
    this.queue.length = 0
    this.head = 0
    for (const e of rest) e.release(false)
  }
}
