/**
 * What a chaos workload is: clients that run operations against the
 * ensemble until the deadline (recording each in the history), a final
 * phase once the nemesis has healed everything (reads of the end state,
 * recorded too), and a checker — a pure function of the recorded events, so
 * it can be self-tested on known-good and known-bad histories
 * (test/unit/chaos/) and re-run on a kept history.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client, ZkError } from '../../../client/index.js'
import type { Prng } from '../../../server/core/prng.js'
import type { ChaosCluster } from '../cluster.js'
import type { ChaosEvent, History } from '../history.js'

export interface WorkloadContext {
  readonly cluster: ChaosCluster
  readonly history: History
  readonly prng: Prng
  /** performance.now() after which the workload stops issuing operations. */
  readonly deadline: number
  /** Clients this workload may run (a hint; each workload picks its own mix). */
  readonly clients: number
  /** 'sync': reads are sync then read (linearizable); 'plain': the read alone. */
  readonly reads: 'sync' | 'plain'
  /** Registers: how many keys. */
  readonly keys: number
  /** A new process (lane) number for a client of this workload. */
  lane(): number
  /** Connects a client to the ensemble (closed at the end of the run). */
  connect(opts?: {
    sessionTimeoutMs?: number
    exactlyOnce?: boolean
    connectString?: string
  }): Promise<Client>
  log(line: string): void
}

export interface Verdict {
  readonly workload: string
  /** true: the property holds; false: an anomaly; 'unknown': the checker could not decide. */
  readonly valid: boolean | 'unknown'
  /** Each anomaly (or undecided part), readable. */
  readonly problems: readonly string[]
  /** What was checked, in a line or two (counts). */
  readonly summary: string
}

export interface Workload {
  readonly name: string
  /** Runs clients until ctx.deadline. */
  run(ctx: WorkloadContext): Promise<void>
  /** After the faults healed: reads the end state into the history (bounded). */
  finish?(ctx: WorkloadContext): Promise<void>
  /** Pure: the verdict on this workload's events. */
  check(events: readonly ChaosEvent[]): Verdict
}

/** Error codes that leave an operation's outcome unknown to the client. */
export const INDETERMINATE = new Set([
  'CONNECTION_LOSS',
  'OPERATION_TIMEOUT',
  'SESSION_EXPIRED',
  'SESSION_MOVED',
  'OUTCOME_UNKNOWN',
])

export function codeOf(err: unknown): string {
  return ZkError.is(err) ? err.code : err instanceof Error ? err.name : 'ERROR'
}

/**
 * Definite failures are the codes listed; indeterminate ones (and `alsoIndeterminate`, the
 * caller's own) info; anything else is rethrown (a harness bug).
 */
export function classifier(definite: readonly string[], alsoIndeterminate: readonly string[] = []) {
  return (err: unknown): { type: 'fail' | 'info'; error: string } => {
    const code = codeOf(err)
    if (definite.includes(code)) return { type: 'fail', error: code }
    if (INDETERMINATE.has(code) || alsoIndeterminate.includes(code)) return { type: 'info', error: code }
    throw err
  }
}

/**
 * The client to use next: `zk`, or a new session in its place once `zk`'s has
 * expired (a server down longer than the session timeout ends the sessions of
 * the clients pinned to it) — so a long run keeps every client working.
 */
export async function live(
  ctx: WorkloadContext,
  zk: Client,
  opts?: Parameters<WorkloadContext['connect']>[0],
): Promise<Client> {
  if (zk.state !== 'expired' && zk.state !== 'closed') return zk
  await zk.close().catch(() => {})
  ctx.log(`a client's session ended (${zk.state}): connecting a new one`)
  return ctx.connect(opts)
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Retries a final-phase read until it succeeds or the deadline passes (the healed ensemble may still be electing). */
export async function retrying<T>(what: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const until = performance.now() + timeoutMs
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (performance.now() > until) throw new Error(`${what}: ${codeOf(err)} for ${timeoutMs} ms`)
      await sleep(200)
    }
  }
}

/** A compiled client-process script of the harness (dist/test/chaos/NAME.js), found from source (vitest) and dist/ alike. */
export function chaosScript(name: string): string {
  let dir = fileURLToPath(new URL('.', import.meta.url))
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'bin', 'conclave.js'))) return join(dir, 'dist', 'test', 'chaos', `${name}.js`)
    dir = join(dir, '..')
  }
  throw new Error('cannot find the repository root (bin/conclave.js)')
}

export { Client }
