/**
 * The recipes' async iterators (`for await (const members of group)`, of a
 * NodeCache, a TreeCache, a LeaderElection, a Queue) share this: the options,
 * and a set of open streams that a recipe ends, or fails, when it stops.
 * The streams are the SDK's EventStream (client/event-stream.ts): bounded,
 * with a per-recipe rule for a consumer that falls behind:
 *   - a state (member list, cached node): only the newest value is kept;
 *   - election roles: pairs of the oldest changes are dropped, so roles still
 *     alternate and the last one is current;
 *   - a TreeCache: one event per path (the newest), in order of last change.
 *
 * Invariants: a stream leaves its set when it stops (break, return(),
 * close(), abort, end, failure); endAll/failAll stop every open stream once.
 * Imports only ../client/index.js.
 */
import { EventStream } from '../client/index.js'

/** Options of every recipe iterator. */
export interface IterateOptions {
  /** Aborting it ends the iteration (done). */
  signal?: AbortSignal | undefined
  /** Most values held for a slow consumer (the recipe's rule then applies). */
  bufferSize?: number | undefined
}

/** Streams of one recipe object. */
export class StreamSet<T> {
  private readonly streams = new Set<EventStream<T>>()

  get size(): number {
    return this.streams.size
  }

  /** Opens a stream that leaves the set when it stops; `onClose` runs after that. */
  open(
    opts: IterateOptions,
    bufferSize: number,
    overflow: ((buffered: T[], incoming: T) => T[]) | undefined,
    onClose?: () => void,
  ): EventStream<T> {
    const stream: EventStream<T> = new EventStream<T>({
      bufferSize: opts.bufferSize ?? bufferSize,
      overflow,
      signal: opts.signal,
      onClose: () => {
        this.streams.delete(stream)
        onClose?.()
      },
    })
    if (stream.open) this.streams.add(stream)
    return stream
  }

  push(value: T): void {
    for (const s of this.streams) s.push(value)
  }

  endAll(): void {
    for (const s of [...this.streams]) s.end()
  }

  failAll(err: unknown): void {
    for (const s of [...this.streams]) s.fail(err)
  }
}

/** Keep only the newest value (a state). */
export const newest = <T>(_buffered: T[], incoming: T): T[] => [incoming]

/** Roles alternate: drop the oldest pair, so they still alternate and the last one is current. */
export const dropOldestPair = <T>(buffered: T[], incoming: T): T[] => [...buffered.slice(2), incoming]

/** One entry per key, the newest, in order of their last change. */
export function newestPerKey<T>(key: (value: T) => string): (buffered: T[], incoming: T) => T[] {
  return (buffered, incoming) => {
    const byKey = new Map<string, T>()
    for (const v of [...buffered, incoming]) {
      const k = key(v)
      byKey.delete(k)
      byKey.set(k, v)
    }
    return [...byKey.values()]
  }
}
