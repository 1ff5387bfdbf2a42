/**
 * A tiny typed event emitter for the SDK (node:events is not available in a
 * browser). Listeners run synchronously in registration order; a listener
 * added or removed during an emit does not change that emit.
 *
 * Invariants: `on` returns its own unsubscribe function; removing a listener
 * twice is harmless; a throwing listener does not stop the others (its error
 * goes to `onListenerError`, or is swallowed).
 * Imports nothing (no node:*).
 */

// biome-ignore lint/suspicious/noExplicitAny: listener tuples are any-typed by design.
export type EventMap = Record<string, any[]>
export type Listener<A extends unknown[]> = (...args: A) => void

export class Emitter<E extends EventMap> {
  private readonly listeners = new Map<keyof E, Listener<E[keyof E]>[]>()

  /** Called with whatever a listener throws (default: ignore it). */
  onListenerError: ((err: unknown) => void) | undefined

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    const list = this.listeners.get(event)
    const f = fn as Listener<E[keyof E]>
    // Copy on write, so an emit in progress keeps its snapshot.
    this.listeners.set(event, list === undefined ? [f] : [...list, f])
    return () => this.off(event, fn)
  }

  /** Adds a listener that runs at most once. */
  once<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    const off = this.on(event, ((...args: E[K]) => {
      off()
      fn(...args)
    }) as Listener<E[K]>)
    return off
  }

  off<K extends keyof E>(event: K, fn: Listener<E[K]>): void {
    const list = this.listeners.get(event)
    if (list === undefined) return
    const i = list.indexOf(fn as Listener<E[keyof E]>)
    if (i < 0) return
    // Copy on write, so an emit in progress keeps its snapshot.
    const next = list.slice(0, i).concat(list.slice(i + 1))
    if (next.length === 0) this.listeners.delete(event)
    else this.listeners.set(event, next)
  }

  emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const list = this.listeners.get(event)
    if (list === undefined) return
    for (const fn of list) {
      try {
        fn(...args)
      } catch (err) {
        this.onListenerError?.(err)
      }
    }
  }

  listenerCount<K extends keyof E>(event: K): number {
    return this.listeners.get(event)?.length ?? 0
  }

  removeAllListeners(): void {
    this.listeners.clear()
  }
}
