/**
 * Server targets for the SDK's differential tests (test/integration/sdk*.test.ts):
 * every target runs the same tests, written against the client contract.
 * A target says how to start one server and which behaviours it has where
 * servers legitimately differ (flags below). Also a TCP proxy, to cut or
 * stall a client's connection without touching the server.
 *
 * To add a target, push one more `Target` into `targets` (the lead adds
 * `conclave`). `unavailable()` says what is not installed (and its apt
 * package), or undefined; a suite asks `targetCanRun`, which skips it with
 * that reason, or fails it under CI=true (prerequisites.ts).
 * Invariants: `start()` resolves once the server accepts clients; `stop()`
 * reaps the process and its files. Test-only: imports node:* freely.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'
import { startConclave } from './conclave.js'
import { canRun, describeMissing, type Missing, zookeeperMissing } from './prerequisites.js'
import { startZooKeeper } from './zookeeper.js'

export interface TargetInstance {
  /** e.g. `tcp://127.0.0.1:PORT` or `ws://127.0.0.1:PORT` (one server). */
  connectString: string
  stop(): Promise<void>
  /** Stops and starts the server again on the same port and data (if supported). */
  restart?(): Promise<void>
}

export interface TargetStartOptions {
  /** Server tick; session timeouts are clamped to [2, 20] x tickTime. */
  tickTimeMs?: number
}

export interface Target {
  name: string
  /** What this target needs and is not installed, or undefined when it can run. */
  unavailable(): Missing | undefined
  start(opts?: TargetStartOptions): Promise<TargetInstance>
  /** TTL and container nodes are removed within seconds (ZooKeeper polls every 60 s). */
  fastReaping: boolean
  /** Accepts exactly 1 MiB of data (ZooKeeper's default jute.maxbuffer, 0xfffff, refuses the packet). */
  acceptsOneMiB: boolean
  /**
   * The server keeps one watch mode per (session, path), so watches of
   * different modes on one path replace each other (ZooKeeper before 3.9,
   * ZOOKEEPER-4466). The SDK repairs the one-shot-over-persistent case by
   * setting the persistent mode again; persistent and persistentRecursive on
   * the same path cannot be repaired.
   */
  watchModesInterfere: boolean
}

export const zookeeperTarget: Target = {
  name: 'zookeeper',
  unavailable: zookeeperMissing,
  start: async (opts = {}) => {
    const zk = await startZooKeeper(opts.tickTimeMs === undefined ? {} : { tickTime: opts.tickTimeMs })
    return { connectString: zk.connectString, stop: zk.stop }
  },
  fastReaping: false,
  acceptsOneMiB: false,
  watchModesInterfere: true,
}

/** Our own server, a real process, over WebSocket (the SDK's default transport). */
export const conclaveTarget: Target = {
  name: 'conclave',
  unavailable: () => undefined,
  start: async (opts = {}) => {
    const s = await startConclave(opts.tickTimeMs === undefined ? {} : { tickTime: opts.tickTimeMs })
    return {
      connectString: s.connectString,
      stop: async () => {
        await s.stop()
        s.remove()
      },
      restart: () => s.restart(),
    }
  },
  fastReaping: true,
  acceptsOneMiB: true,
  watchModesInterfere: false,
}

export const targets: Target[] = [conclaveTarget, zookeeperTarget]

/** Names the describe block, with the skip reason when the target cannot run. */
export function targetTitle(t: Target): string {
  const why = t.unavailable()
  return why === undefined ? t.name : `${t.name} (skipped: ${describeMissing(why)})`
}

/**
 * Whether `suite` can run against `t`: true, or (something not installed)
 * false with one line saying so, or, under CI=true, an error (prerequisites.ts).
 */
export function targetCanRun(t: Target, suite: string): boolean {
  return canRun(`${suite} against ${t.name}`, t.unavailable())
}

// ---------------------------------------------------------------- proxy

/**
 * A TCP proxy in front of one server (works for tcp:// and ws:// alike).
 * `cut()` drops every open connection; `stall()` also refuses new ones
 * until `resume()`, which is how a test keeps a client away from the
 * server past its session timeout.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>()
  private readonly upstreams = new Map<Socket, Socket>()
  private stalled = false
  private accepted = 0

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  static async start(targetConnectString: string): Promise<TcpProxy> {
    const targetPort = Number(new URL(targetConnectString.split(',')[0]!).port)
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    const addr = server.address()
    if (addr === null || typeof addr === 'string') throw new Error('proxy has no address')
    const proxy = new TcpProxy(server, addr.port, targetPort)
    server.on('connection', (s) => proxy.accept(s))
    return proxy
  }

  /** The target's connect string, pointed at the proxy. */
  connectString(targetConnectString: string): string {
    const url = new URL(targetConnectString.split(',')[0]!)
    return `${url.protocol}//127.0.0.1:${this.port}`
  }

  private accept(client: Socket): void {
    this.accepted++
    if (this.stalled) {
      client.destroy()
      return
    }
    const upstream = tcpConnect(this.targetPort, '127.0.0.1')
    for (const s of [client, upstream]) {
      this.sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        this.sockets.delete(s)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream)
    upstream.pipe(client)
    this.upstreams.set(upstream, client)
    upstream.on('close', () => this.upstreams.delete(upstream))
  }

  /** Stops passing the server's bytes to the open connections' clients (they wait unread) until cut(). */
  holdReplies(): void {
    for (const [upstream, client] of this.upstreams) {
      upstream.unpipe(client)
      upstream.pause()
    }
  }

  /** Bytes of the server's that holdReplies() holds back (received from it, not passed on yet). */
  get heldBytes(): number {
    let n = 0
    for (const upstream of this.upstreams.keys()) if (upstream.isPaused()) n += upstream.readableLength
    return n
  }

  /**
   * Passes on what holdReplies() held, and everything after it: written in
   * one go, a client reads it in one go (replies, then a close frame, say).
   */
  releaseReplies(): void {
    for (const [upstream, client] of this.upstreams) if (upstream.isPaused()) upstream.pipe(client)
  }

  /** Connections accepted so far (a client's every attempt, refused ones included). */
  get connectionsAccepted(): number {
    return this.accepted
  }

  /** Drops every open connection (clients reconnect at once). */
  cut(): void {
    for (const s of this.sockets) s.destroy()
  }

  /** Drops every connection and refuses new ones until resume(). */
  stall(): void {
    this.stalled = true
    this.cut()
  }

  resume(): void {
    this.stalled = false
  }

  get openConnections(): number {
    return this.sockets.size / 2
  }

  async stop(): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
