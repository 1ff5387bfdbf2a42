/**
 * Scheduler: the simulator's only source of time. A binary heap of events
 * keyed by (timeMs, seq); `seq` is the insertion order, so events at the same
 * time run in the order they were scheduled and a run is exactly repeatable.
 *
 * Invariants: `now` never decreases; an event never runs before its time;
 * the loop never awaits (a seed runs synchronously to the end).
 *
 * Must not import node:* timers, Date or Math.random.
 */

interface Event {
  readonly time: number
  readonly seq: number
  readonly run: () => void
}

function before(a: Event, b: Event): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}

export class Scheduler {
  now = 0
  executed = 0
  private seq = 0
  private readonly heap: Event[] = []

  get size(): number {
    return this.heap.length
  }

  at(time: number, run: () => void): void {
    const t = Math.max(time, this.now)
    this.push({ time: t, seq: this.seq++, run })
  }

  after(delayMs: number, run: () => void): void {
    this.at(this.now + delayMs, run)
  }

  /** Runs events in order until the next one is later than `untilMs` or `stop()` says so. */
  runUntil(untilMs: number, stop: () => boolean): void {
    while (this.heap.length > 0 && this.heap[0]!.time <= untilMs) {
      const e = this.pop()
      this.now = e.time
      this.executed++
      e.run()
      if (stop()) return
    }
    this.now = Math.max(this.now, untilMs)
  }

  private push(e: Event): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(h[i]!, h[parent]!)) break
      const t = h[i]!
      h[i] = h[parent]!
      h[parent] = t
      i = parent
    }
  }

  private pop(): Event {
    const h = this.heap
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l]!, h[m]!)) m = l
        if (r < h.length && before(h[r]!, h[m]!)) m = r
        if (m === i) break
        const t = h[i]!
        h[i] = h[m]!
        h[m] = t
        i = m
      }
    }
    return top
  }
}
