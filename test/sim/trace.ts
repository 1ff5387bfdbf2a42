/**
 * Trace: a ring buffer of the last N one-line events of a simulation run,
 * printed when an invariant fails so the failure can be read without a
 * replay. Lines are built lazily only when tracing is on.
 *
 * Invariants: at most `capacity` lines are kept; order is event order.
 */

export class Trace {
  private readonly lines: string[]
  private next = 0
  private count = 0

  constructor(
    private readonly capacity: number,
    private readonly clock: () => number,
    private readonly echo = false,
  ) {
    this.lines = new Array<string>(capacity)
  }

  add(line: string): void {
    const text = `${String(this.clock()).padStart(7)}ms ${line}`
    if (this.echo) console.log(text)
    this.lines[this.next] = text
    this.next = (this.next + 1) % this.capacity
    this.count++
  }

  tail(): string[] {
    const n = Math.min(this.count, this.capacity)
    const out: string[] = []
    for (let i = 0; i < n; i++) out.push(this.lines[(this.next - n + i + this.capacity) % this.capacity]!)
    return out
  }
}
