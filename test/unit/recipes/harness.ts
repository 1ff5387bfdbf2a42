/**
 * Test harness for the recipes' integration tests (test/integration/recipes-*.test.ts):
 * runs a suite once per server target of test/helpers/targets.ts (falling
 * back to Apache ZooKeeper alone), one server per target (tickTime 500 ms, so
 * session timeouts clamp to [1 s, 10 s]); hands out clients that are closed
 * after each test; kills a session the way a crash would (a TCP proxy that
 * drops the connection and refuses new ones until the session has expired),
 * or at once (a twin connection resumes the session and closes it); and
 * wraps a client to count the watch events it receives.
 *
 * Invariants: every client and proxy a test gets is closed in afterEach;
 * every wait has a deadline. Test-only: imports node:* and the SDK freely.
 * Not a test file itself (no .test.ts), so vitest does not collect it.
 */
import { afterAll, afterEach, beforeAll, describe } from 'vitest'
import {
  Client,
  type ConnectOptions,
  ErrorCode,
  type WatchEvent,
  type Watcher,
  ZkError,
} from '../../../client/index.js'
import {
  type Target,
  type TargetInstance,
  TcpProxy,
  targetCanRun,
  targets,
  targetTitle,
} from '../../helpers/targets.js'
import { waitFor } from '../../helpers/wait.js'

/**
 * A directory's children; one that does not exist (NO_NODE) has none: a recipe's
 * directory is often a container, which the server may reap as soon as its last
 * child goes. Any other error fails.
 */
export const children = (zk: Client, path: string): Promise<string[]> =>
  zk.getChildren(path).catch((err: unknown) => {
    if (ZkError.is(err, ErrorCode.NO_NODE)) return []
    throw err
  })

export const SESSION_TIMEOUT_MS = 4_000
/** Session timeout for clients whose expiry a test waits for. */
export const SHORT_SESSION_MS = 2_000
const TICK_MS = 500

export interface Env {
  /** A connected client through a proxy of its own (closed after the test). */
  connect(opts?: ConnectOptions): Promise<Client>
  /** Like connect(), returning the proxy too, so the test can cut the client off. */
  connectProxied(opts?: ConnectOptions): Promise<{ zk: Client; proxy: TcpProxy }>
  /** A fresh root path for this test. */
  root(name: string): string
  /** Ends `zk`'s session at once, as the server would on expiry (its ephemerals go now). */
  killSession(zk: Client): Promise<void>
  readonly connectString: string
  /** The target's name: 'conclave' or 'zookeeper'. */
  readonly target: string
}

export function forEachTarget(title: string, suite: (env: Env) => void): void {
  const list: Target[] = targets.length > 0 ? targets : []
  describe.each(list.map((t) => ({ target: t, name: targetTitle(t) })))(
    `${title} against $name`,
    ({ target }) => {
      describe.runIf(targetCanRun(target, title))('recipes', () => {
        suite(makeEnv(target))
      })
    },
  )
}

function makeEnv(target: Target): Env {
  let server: TargetInstance | undefined
  const clients: Client[] = []
  const proxies: TcpProxy[] = []
  let roots = 0

  beforeAll(async () => {
    server = await target.start({ tickTimeMs: TICK_MS })
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})))
    await Promise.all(proxies.splice(0).map((p) => p.stop()))
  })
  afterAll(async () => {
    await server?.stop()
  })

  const cs = (): string => {
    if (server === undefined) throw new Error('server not started')
    return server.connectString
  }
  const connectTo = async (connectString: string, opts: ConnectOptions = {}): Promise<Client> => {
    const zk = await Client.connect(connectString, {
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      connectTimeoutMs: 15_000,
      ...opts,
    })
    clients.push(zk)
    return zk
  }
  const env: Env = {
    get connectString() {
      return cs()
    },
    target: target.name,
    connect: (opts) => connectTo(cs(), opts),
    async connectProxied(opts) {
      const proxy = await TcpProxy.start(cs())
      proxies.push(proxy)
      const zk = await connectTo(proxy.connectString(cs()), opts)
      return { zk, proxy }
    },
    root: (name) => `/recipes-${name}-${++roots}-${Date.now().toString(36)}`,
    async killSession(zk) {
      // A twin resumes the session and closes it. The victim may win the session
      // back by reconnecting first, so repeat (bounded) until it learns the end.
      const ended = (): boolean => zk.state === 'expired' || zk.state === 'closed'
      for (let attempt = 0; attempt < 10 && !ended(); attempt++) {
        const twin = await Client.connect(cs(), {
          sessionId: zk.sessionId,
          sessionPassword: zk.sessionPassword,
          sessionTimeoutMs: zk.sessionTimeoutMs,
          connectTimeoutMs: 15_000,
        }).catch(() => undefined)
        await twin?.close()
        await waitFor(ended, { timeoutMs: 4_000, what: 'the session to end' }).catch(() => {})
      }
      if (!ended()) throw new Error(`could not kill session ${zk.sessionId}`)
    },
  }
  return env
}

/**
 * Counts, per wrapped client, watch events delivered to one-shot watchers
 * (`fired`), watched reads that have returned, i.e. watches now set
 * (`armed`, or `armed(method)` for one read method), and calls of each read
 * method (`calls(method)`).
 */
export function countingClient(zk: Client): {
  client: Client
  fired: () => number
  armed: (method?: ReadMethod) => number
  calls: (method: ReadMethod) => number
  reset: () => void
} {
  let fired = 0
  const armed = new Map<ReadMethod, number>()
  const calls = new Map<ReadMethod, number>()
  const bump = (m: Map<ReadMethod, number>, k: ReadMethod) => m.set(k, (m.get(k) ?? 0) + 1)
  const wrap = (w: Watcher | undefined): Watcher | undefined =>
    w === undefined
      ? undefined
      : (ev: WatchEvent) => {
          fired++
          w(ev)
        }
  type Read = (p: string, o?: { watch?: Watcher }) => Promise<unknown>
  const client = new Proxy(zk, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (READ_METHODS.includes(prop as ReadMethod)) {
        const method = prop as ReadMethod
        return async (path: string, opts?: { watch?: Watcher }) => {
          bump(calls, method)
          const r = await (value as Read).call(target, path, opts && { ...opts, watch: wrap(opts.watch) })
          if (opts?.watch !== undefined) bump(armed, method)
          return r
        }
      }
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return {
    client,
    fired: () => fired,
    armed: (method) =>
      method !== undefined ? (armed.get(method) ?? 0) : [...armed.values()].reduce((a, b) => a + b, 0),
    calls: (method) => calls.get(method) ?? 0,
    reset: () => (fired = 0),
  }
}

const READ_METHODS = ['getData', 'exists', 'getChildren', 'getChildrenWithStat'] as const
type ReadMethod = (typeof READ_METHODS)[number]

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b)
