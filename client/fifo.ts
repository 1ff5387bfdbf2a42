/**
 * A growable ring buffer FIFO (as undici's fixed-queue): O(1) push and
 * shift without Array.prototype.shift's copying, for the hot queue of
 * requests awaiting their replies.
 *
 * Invariants: `length` is the number of items; shift/peek on an empty queue
 * return undefined; slots are cleared when shifted so nothing is retained.
 * Imports nothing.
 */
export class Fifo<T> {
  private items: (T | undefined)[]
  private head = 0
  length = 0

  constructor(capacity = 64) {
    let c = 1
    while (c < capacity) c *= 2
    this.items = new Array(c)
  }

  push(item: T): void {
    if (this.length === this.items.length) this.grow()
    this.items[(this.head + this.length) & (this.items.length - 1)] = item
    this.length++
  }

  peek(): T | undefined {
    return this.length === 0 ? undefined : this.items[this.head]
  }

  peekLast(): T | undefined {
    return this.length === 0 ? undefined : this.items[(this.head + this.length - 1) & (this.items.length - 1)]
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined
    const item = this.items[this.head]
    this.items[this.head] = undefined
    this.head = (this.head + 1) & (this.items.length - 1)
    this.length--
    return item
  }

  /** The oldest item `pred` accepts. */
  find(pred: (item: T) => boolean): T | undefined {
    for (let i = 0; i < this.length; i++) {
      const item = this.items[(this.head + i) & (this.items.length - 1)]!
      if (pred(item)) return item
    }
    return undefined
  }

  /** Removes and returns every item, oldest first. */
  drain(): T[] {
    const out: T[] = []
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item)
    return out
  }

  private grow(): void {
    const next: (T | undefined)[] = new Array(this.items.length * 2)
    for (let i = 0; i < this.length; i++) next[i] = this.items[(this.head + i) & (this.items.length - 1)]
    this.items = next
    this.head = 0
  }
}
