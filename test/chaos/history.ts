/**
 * The chaos run's history: every client operation as one event (invocation
 * and completion times in milliseconds since the run started), every fault
 * the nemesis injected, written as JSON lines (history.jsonl) and read back
 * for checking (`npm run chaos -- --check DIR` re-checks a kept history).
 *
 * An operation is `ok` (it happened, with this result), `fail` (it
 * definitely did not happen: NO_NODE, BAD_VERSION, …) or `info` (the client
 * never learned: CONNECTION_LOSS, a timeout, SESSION_EXPIRED — Jepsen's
 * :info). An info operation returns at +infinity (null in the file).
 */
import { readFileSync } from 'node:fs'

export type Outcome = 'ok' | 'fail' | 'info'

export interface ChaosEvent {
  /** The workload that made it (registers, sequential, …). */
  readonly workload: string
  /** The client (a lane in the timeline); unique across workloads. */
  readonly process: number
  /** What was done: read, write, create, take, acquire, … */
  readonly f: string
  /** The object it was done to (a znode path), if any. */
  readonly key?: string | undefined
  /** The operation's argument. */
  readonly value?: unknown
  /** What it returned (ok), or the error's details (fail). */
  readonly result?: unknown
  readonly type: Outcome
  /** The error code, for fail and info. */
  readonly error?: string | undefined
  readonly invokedAt: number
  /** +Infinity for info. */
  readonly returnedAt: number
  /** The server the client was connected to when the operation completed (ws://… or tcp://…), if known. */
  readonly server?: string | undefined
}

export interface FaultEvent {
  /** The fault kind (kill, pause, partition-halves, …). */
  readonly kind: string
  /** The members it hit. */
  readonly targets: readonly number[]
  /** A readable description (the partition's sides, say). */
  readonly detail: string
  /** The leader when the fault began, if one was known. */
  readonly leader?: number | undefined
  readonly startAt: number
  readonly endAt: number
}

/** Collects a run's events; `now()` is milliseconds since the run started. */
export class History {
  readonly events: ChaosEvent[] = []
  readonly faults: FaultEvent[] = []
  private readonly t0 = performance.now()

  now(): number {
    return performance.now() - this.t0
  }

  add(e: ChaosEvent): void {
    this.events.push(e)
  }

  fault(f: FaultEvent): void {
    this.faults.push(f)
  }

  /** Runs `op`, recording its invocation and completion; `classify` maps an error to fail or info (or rethrows). */
  async record<T>(
    base: { workload: string; process: number; f: string; key?: string; value?: unknown },
    op: () => Promise<T>,
    classify: (err: unknown) => { type: 'fail' | 'info'; error: string; result?: unknown },
    resultOf: (r: T) => unknown = (r) => r,
    server?: () => string | undefined,
  ): Promise<{ type: Outcome; result?: T }> {
    const invokedAt = this.now()
    try {
      const r = await op()
      const at = server?.()
      this.add({
        ...base,
        type: 'ok',
        result: resultOf(r),
        invokedAt,
        returnedAt: this.now(),
        ...(at !== undefined ? { server: at } : {}),
      })
      return { type: 'ok', result: r }
    } catch (err) {
      const c = classify(err)
      const at = server?.()
      this.add({
        ...base,
        ...(at !== undefined ? { server: at } : {}),
        type: c.type,
        error: c.error,
        ...(c.result !== undefined ? { result: c.result } : {}),
        invokedAt,
        returnedAt: c.type === 'info' ? Number.POSITIVE_INFINITY : this.now(),
      })
      return { type: c.type }
    }
  }
}

/** One JSON object a line: `{"fault": …}` lines for faults, the rest operations. */
export function historyToJsonLines(events: readonly ChaosEvent[], faults: readonly FaultEvent[]): string {
  const lines: string[] = []
  for (const f of faults) lines.push(JSON.stringify({ fault: f }))
  for (const e of events)
    lines.push(JSON.stringify(e, (_k, v) => (v === Number.POSITIVE_INFINITY ? null : v)))
  return `${lines.join('\n')}\n`
}

export function readHistory(file: string): { events: ChaosEvent[]; faults: FaultEvent[] } {
  const events: ChaosEvent[] = []
  const faults: FaultEvent[] = []
  const text = readFileSync(file, 'utf8')
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    let o: Record<string, unknown>
    try {
      o = JSON.parse(line) as Record<string, unknown>
    } catch {
      throw new Error(`${file}:${i + 1}: not JSON`)
    }
    if (o.fault !== undefined) faults.push(o.fault as FaultEvent)
    else {
      if (typeof o.workload !== 'string' || typeof o.invokedAt !== 'number')
        throw new Error(`${file}:${i + 1}: not an operation (workload, invokedAt missing)`)
      events.push({
        ...(o as unknown as ChaosEvent),
        returnedAt: (o.returnedAt as number | null) ?? Infinity,
      })
    }
  }
  return { events, faults }
}
