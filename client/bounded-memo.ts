/**
 * A function of a string, remembered for the last few keys: what a client
 * computes again for every session it opens with the same connect string
 * (parsing its URLs) is computed once. Bounded: past `max` keys, everything
 * remembered is dropped and the memo fills again.
 *
 * Invariants: `compute` is pure (the same key gives an equal result); what
 * it throws is not remembered; results are shared, so callers must not
 * mutate them. Imports nothing (the SDK runs in browsers).
 */
export function boundedMemo<T>(max: number, compute: (key: string) => T): (key: string) => T {
  const known = new Map<string, T>()
  return (key) => {
    const hit = known.get(key)
    if (hit !== undefined || known.has(key)) return hit as T
    const value = compute(key)
    if (known.size >= max) known.clear()
    known.set(key, value)
    return value
  }
}
