/**
 * SDK sessions for the bench: opened with a bounded number in flight and
 * spread over the members of a deployment (session i talks to member
 * i mod size, so reads in an ensemble are served by every server), closed
 * with a deadline. The bench only ever talks to servers through our SDK.
 *
 * Invariants: every connect and close is bounded in time; openSessions
 * either returns all the sessions it was asked for or closes the ones it
 * opened and rejects. Bench-only: nothing of server/.
 */
import { Client, type ConnectOptions } from '../../client/index.js'
import type { Deployment } from './deploy.js'
import { inParallel, withTimeout } from './load.js'

/** Within ZooKeeper's and Conclave's [2, 20] x tickTime at the default tick (2000 ms). */
export const SESSION_TIMEOUT_MS = 20_000
export const CONNECT_TIMEOUT_MS = 10_000
export const CLOSE_TIMEOUT_MS = 10_000
const CONNECT_ATTEMPTS = 3
/** Sessions a closed-loop workload spreads its C outstanding requests over. */
export const LOAD_SESSIONS_MAX = 8

export const clientOptions: ConnectOptions = {
  sessionTimeoutMs: SESSION_TIMEOUT_MS,
  connectTimeoutMs: CONNECT_TIMEOUT_MS,
  reconnectDelayMs: 100,
}

export function connectMember(dep: Deployment, i: number, opts: ConnectOptions = {}): Promise<Client> {
  return Client.connect(dep.endpoint(i % dep.size), { ...clientOptions, ...opts })
}

export async function openSessions(
  dep: Deployment,
  n: number,
  opts: { inFlight?: number; connect?: ConnectOptions } = {},
): Promise<Client[]> {
  const clients: Client[] = new Array(n)
  let failure: unknown
  await inParallel(
    Array.from({ length: n }, (_, i) => i),
    opts.inFlight ?? 16,
    async (i) => {
      if (failure !== undefined) return
      // A connection refused by a busy server is retried; the deadline is each attempt's connect timeout.
      for (let attempt = 1; attempt <= CONNECT_ATTEMPTS; attempt++) {
        try {
          clients[i] = await connectMember(dep, i, opts.connect)
          return
        } catch (err) {
          if (attempt === CONNECT_ATTEMPTS) failure ??= err
        }
      }
    },
  )
  if (failure !== undefined) {
    await closeSessions(clients.filter((c) => c !== undefined))
    throw failure
  }
  return clients
}

export async function closeSessions(clients: readonly Client[], inFlight = 64): Promise<void> {
  await inParallel(clients, inFlight, async (c) => {
    await withTimeout(c.close(), CLOSE_TIMEOUT_MS, 'close').catch(() => {})
  })
}

/** Creates the node (and its parents) unless it exists. */
export async function ensurePath(zk: Client, path: string, data?: Uint8Array): Promise<void> {
  const parts = path.split('/').filter((p) => p !== '')
  let at = ''
  for (let i = 0; i < parts.length; i++) {
    at += `/${parts[i]}`
    const last = i === parts.length - 1
    await zk.create(at, last ? data : undefined).catch((err: unknown) => {
      if ((err as { code?: unknown }).code !== 'NODE_EXISTS') throw err
    })
  }
}
