/**
 * A linearizability checker for histories of concurrent operations, in the
 * Wing–Gong style with Lowe's memoization (as in porcupine, Jepsen's Knossos'
 * linear algorithm): a depth-first search for an order of the operations
 * that respects real time (an operation that returned before another was
 * invoked comes first) and that a sequential model accepts, caching every
 * (set of operations linearized, model state) pair already explored so no
 * state is searched twice.
 *
 * Histories are partitioned by key by the caller (each key is an independent
 * object; linearizability is compositional). An operation whose outcome the
 * client never learned (a timeout, CONNECTION_LOSS) is indeterminate: it
 * returns at +infinity, so it may take effect at any point after it was
 * invoked — or never, since placing it after everything else observes
 * nothing (Jepsen's :info operations).
 *
 * Indeterminate operations with the same input are interchangeable once
 * both are invoked (both return at infinity), so the cache keys the
 * linearized set as a multiset of them: linearizing one of k identical
 * pending operations is searched once, not k ways, which is what decides
 * histories with hundreds of timeouts (a ZooKeeper leader's death). The
 * register workload makes more of them identical by writing '?' for the
 * value of every indeterminate write that no read ever saw
 * (anonymizeUnobserved): the value cannot matter to any read, only the
 * version it bumps.
 *
 * Bounded: the search gives up after `maxSteps` model steps and says so
 * (unknown), never silently passes.
 *
 * Pure: no I/O, no clock.
 */

export interface Model<S, I, O> {
  init(): S
  /** Applies `input` to `state`; ok is false when the output `output` is impossible from `state`. */
  step(state: S, input: I, output: O | undefined): { ok: boolean; state: S }
  /** A string identifying a state (for the cache). */
  key(state: S): string
  describe?(input: I, output: O | undefined): string
  /** Identifies an input, so identical indeterminate operations are searched once (default JSON). */
  inputKey?(input: I): string
}

export interface Operation<I, O> {
  readonly client: number
  readonly input: I
  /** Undefined when indeterminate (the client never learned the outcome). */
  readonly output: O | undefined
  readonly invokedAt: number
  /** Infinity when indeterminate. */
  readonly returnedAt: number
}

export type CheckResult =
  | { result: 'ok'; steps: number; order: number[] }
  | { result: 'illegal'; steps: number; longest: number[] }
  | { result: 'unknown'; steps: number }

interface Entry {
  readonly op: number
  readonly isCall: boolean
  readonly time: number
  match: Entry | undefined
  prev: Entry | undefined
  next: Entry | undefined
}

function buildEntries<I, O>(ops: readonly Operation<I, O>[]): Entry {
  const events: { op: number; isCall: boolean; time: number }[] = []
  ops.forEach((o, i) => {
    if (!(o.returnedAt >= o.invokedAt)) throw new Error(`operation ${i} returns before it is invoked`)
    events.push({ op: i, isCall: true, time: o.invokedAt }, { op: i, isCall: false, time: o.returnedAt })
  })
  // By time; at equal times returns first, so touching operations are ordered (conservative).
  events.sort((a, b) => a.time - b.time || Number(a.isCall) - Number(b.isCall) || a.op - b.op)
  const head: Entry = {
    op: -1,
    isCall: false,
    time: -Infinity,
    match: undefined,
    prev: undefined,
    next: undefined,
  }
  let last = head
  const calls = new Map<number, Entry>()
  for (const e of events) {
    const entry: Entry = { ...e, match: undefined, prev: last, next: undefined }
    last.next = entry
    last = entry
    if (e.isCall) calls.set(e.op, entry)
    else {
      const call = calls.get(e.op)!
      call.match = entry
      entry.match = call
    }
  }
  return head
}

/** Removes a call and its return from the list. */
function lift(call: Entry): void {
  call.prev!.next = call.next
  if (call.next) call.next.prev = call.prev
  const ret = call.match!
  ret.prev!.next = ret.next
  if (ret.next) ret.next.prev = ret.prev
}

function unlift(call: Entry): void {
  const ret = call.match!
  ret.prev!.next = ret
  if (ret.next) ret.next.prev = ret
  call.prev!.next = call
  if (call.next) call.next.prev = call
}

export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  maxSteps = 2_000_000,
): CheckResult {
  const r = search(model, ops, maxSteps, undefined)
  if (r.result !== 'illegal') return r
  // The longest linearizable prefix, for the report: copying the stack each time the search got
  // deeper cost O(n²) on long histories (minutes for a 5-minute run), so the search only measures
  // the depth, and a replay (the search is deterministic) copies the stack when it first gets there.
  const again = search(model, ops, maxSteps, r.deepest)
  return { result: 'illegal', steps: r.steps, longest: again.result === 'illegal' ? again.longest : [] }
}

function search<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  maxSteps: number,
  captureAt: number | undefined,
):
  | { result: 'ok'; steps: number; order: number[] }
  | { result: 'illegal'; steps: number; longest: number[]; deepest: number }
  | { result: 'unknown'; steps: number } {
  const n = ops.length
  if (n === 0) return { result: 'ok', steps: 0, order: [] }
  const head = buildEntries(ops)
  const linearized = new Uint8Array(n)
  // The set of linearized operations, hashed incrementally (Zobrist-style: a random 64-bit word
  // per operation, added in and subtracted out), so a step costs O(1) instead of O(n) to key the
  // cache. Identical indeterminate operations share a word, making the key a multiset.
  const word = new Int32Array(n)
  const classes = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const o = ops[i]!
    if (o.output !== undefined) word[i] = i
    else {
      const k = model.inputKey?.(o.input) ?? JSON.stringify(o.input)
      let c = classes.get(k)
      if (c === undefined) classes.set(k, (c = i))
      word[i] = c
    }
  }
  const zob = new Uint32Array(2 * n)
  let seed = 0x9e3779b9
  for (let i = 0; i < zob.length; i++) {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    zob[i] = seed >>> 0
  }
  let h1 = 0
  let h2 = 0
  const add = (op: number) => {
    h1 = (h1 + zob[2 * word[op]!]!) >>> 0
    h2 = (h2 + zob[2 * word[op]! + 1]!) >>> 0
  }
  const remove = (op: number) => {
    h1 = (h1 - zob[2 * word[op]!]!) >>> 0
    h2 = (h2 - zob[2 * word[op]! + 1]!) >>> 0
  }
  const cache = new Set<string>()
  const stack: { call: Entry; state: S }[] = []
  let state = model.init()
  let entry = head.next
  let steps = 0
  let longest: number[] = []
  let deepest = 0
  while (entry !== undefined) {
    if (++steps > maxSteps) return { result: 'unknown', steps }
    if (entry.isCall) {
      const op = ops[entry.op]!
      const r = model.step(state, op.input, op.output)
      if (r.ok) {
        linearized[entry.op] = 1
        add(entry.op)
        const k = `${h1}:${h2}|${model.key(r.state)}`
        if (!cache.has(k)) {
          cache.add(k)
          stack.push({ call: entry, state })
          state = r.state
          lift(entry)
          entry = head.next
          continue
        }
        linearized[entry.op] = 0
        remove(entry.op)
      }
      entry = entry.next
      continue
    }
    // A return: the operation it ends was not linearized before it; back up.
    if (stack.length === 0) return { result: 'illegal', steps, longest, deepest }
    if (stack.length > deepest) {
      deepest = stack.length
      if (deepest === captureAt) longest = stack.map((s) => s.call.op)
    }
    const top = stack.pop()!
    state = top.state
    linearized[top.call.op] = 0
    remove(top.call.op)
    unlift(top.call)
    entry = top.call.next
  }
  return { result: 'ok', steps, order: stack.map((s) => s.call.op) }
}

/** Checks each key's operations on its own (linearizability is compositional). */
export function checkPartitioned<S, I, O>(
  model: Model<S, I, O>,
  byKey: ReadonlyMap<string, readonly Operation<I, O>[]>,
  maxSteps = 2_000_000,
): { ok: boolean; unknown: string[]; illegal: { key: string; longest: number[] }[]; steps: number } {
  const illegal: { key: string; longest: number[] }[] = []
  const unknown: string[] = []
  let steps = 0
  for (const [key, ops] of byKey) {
    const r = checkOperations(model, ops, maxSteps)
    steps += r.steps
    if (r.result === 'illegal') illegal.push({ key, longest: r.longest })
    else if (r.result === 'unknown') unknown.push(key)
  }
  return { ok: illegal.length === 0 && unknown.length === 0, unknown, illegal, steps }
}

// ---------------------------------------------------------------- a znode register

/**
 * Writes '?' for the value of every indeterminate write, create or
 * compare-and-set whose value no completed operation returned: no read can
 * tell such values apart (only the version they bump matters), and with one
 * value they become identical, so the search treats them as a multiset.
 * The history is linearizable exactly when the anonymized one is.
 */
export function anonymizeUnobserved(
  ops: readonly Operation<RegisterInput, RegisterOutput>[],
): Operation<RegisterInput, RegisterOutput>[] {
  const seen = new Set<string>()
  for (const o of ops) if (o.output?.ok && o.output.value !== undefined) seen.add(o.output.value)
  return ops.map((o) =>
    o.output === undefined && 'value' in o.input && !seen.has(o.input.value)
      ? { ...o, input: { ...o.input, value: '?' } }
      : o,
  )
}

/** A znode used as a register: its data and version, or absent. */
export interface ZnodeState {
  readonly exists: boolean
  readonly value: string
  readonly version: number
}

export type RegisterInput =
  | { readonly f: 'read' }
  | { readonly f: 'write'; readonly value: string }
  /** setData with an expected version: compare-and-set. */
  | { readonly f: 'cas'; readonly value: string; readonly version: number }
  | { readonly f: 'create'; readonly value: string }

export type RegisterOutput =
  /** read: what was seen; write/cas/create: the new version, or the error code. */
  | { readonly ok: true; readonly exists?: boolean; readonly value?: string; readonly version: number }
  | { readonly ok: false; readonly error: 'NO_NODE' | 'BAD_VERSION' | 'NODE_EXISTS' }

export const znodeRegister: Model<ZnodeState, RegisterInput, RegisterOutput> = {
  init: () => ({ exists: false, value: '', version: -1 }),
  key: (s) => (s.exists ? `${s.version}:${s.value}` : '-'),
  step(s, input, out) {
    switch (input.f) {
      case 'read':
        if (out === undefined) return { ok: true, state: s }
        if (!out.ok) return { ok: out.error === 'NO_NODE' && !s.exists, state: s }
        return { ok: s.exists && out.value === s.value && out.version === s.version, state: s }
      case 'create': {
        const next = { exists: true, value: input.value, version: 0 }
        if (out === undefined) return { ok: true, state: s.exists ? s : next }
        if (!out.ok) return { ok: out.error === 'NODE_EXISTS' && s.exists, state: s }
        return { ok: !s.exists && out.version === 0, state: next }
      }
      case 'write': {
        const next = { exists: true, value: input.value, version: s.version + 1 }
        if (out === undefined) return { ok: true, state: s.exists ? next : s }
        if (!out.ok) return { ok: out.error === 'NO_NODE' && !s.exists, state: s }
        return { ok: s.exists && out.version === next.version, state: next }
      }
      case 'cas': {
        const matches = s.exists && s.version === input.version
        const next = matches ? { exists: true, value: input.value, version: s.version + 1 } : s
        if (out === undefined) return { ok: true, state: next }
        if (!out.ok)
          return {
            ok:
              (out.error === 'BAD_VERSION' && s.exists && !matches) || (out.error === 'NO_NODE' && !s.exists),
            state: s,
          }
        return { ok: matches && out.version === next.version, state: next }
      }
    }
  },
  describe(input, out) {
    const o =
      out === undefined
        ? '?'
        : out.ok
          ? `ok v${out.version}${out.value !== undefined ? ` ${out.value}` : ''}`
          : out.error
    return `${input.f}${'value' in input ? ` ${input.value}` : ''}${'version' in input ? ` @${input.version}` : ''} -> ${o}`
  },
}
