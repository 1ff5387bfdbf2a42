/**
 * PersistentNode (Curator's PersistentNode) and PersistentTtlNode (Curator's
 * PersistentTtlNode): a znode kept in place for as long as the object runs.
 *
 *   const node = new PersistentNode(zk, '/services/api/a', data, { mode: 'ephemeral' })
 *   await node.start() ; await node.setData(newData) ; await node.close()
 *
 * The node is created at start() (parents as containers, as Curator does)
 * and watched (an exists watch): deleted by anyone, it is created again; a
 * reconnect is followed by a look; when the session expires, the node goes
 * on with a new session (zk.newSession(), or `opts.newSession`), creates the
 * node again and carries on: the expired client stays expired, the node's
 * current client is `node.client` (closed by close()). setData() keeps the
 * data and writes it; if the connection is lost meanwhile it is written
 * after the reconnect, and every re-creation uses the latest data. A node
 * that already exists (another session's, or left by us) gets our data, and
 * is created again once it goes. Sequential modes use Curator's protected
 * names and create a new sequence node when theirs is gone (`actualPath`).
 *
 * PersistentTtlNode keeps a container node (holding the data) with a TTL
 * child `touch`, written every ttlMs / 2: when the process stops touching it
 * (dies), the child expires after ttlMs and the server then removes the
 * empty container, so the node outlives connection trouble without outliving
 * its owner (needs TTL nodes: Conclave, or ZooKeeper with extended types).
 *
 * Invariants: one reconciliation at a time (a coalescing loop, bounded per
 * burst); no busy retry: after CONNECTION_LOSS the next look waits for the
 * reconnect, or a pause when the client is not reconnecting; close() stops
 * everything, deletes the node and closes the clients it opened.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, CreateMode, Data, WatchEvent } from '../client/index.js'
import { Emitter, ErrorCode, ZkError } from '../client/index.js'
import { TURNS_MAX } from './lock-core.js'
import { protectedCreate } from './protected-create.js'
import { SessionGuard } from './session-guard.js'
import { contextOf, type EndSource, Latch, timeoutError, type WaitOptions, waitLatch } from './wait.js'
import {
  baseName,
  checkNodeName,
  checkRecipePath,
  ensurePath,
  isCode,
  joinPath,
  releaseNode,
  sameSession,
  utf8,
} from './znodes.js'

/** Pause before looking again when a look failed and no reconnect will prompt one. */
const RETRY_DELAY_MS = 1_000

const SEQUENTIAL: ReadonlySet<CreateMode> = new Set([
  'persistentSequential',
  'ephemeralSequential',
  'persistentSequentialWithTtl',
])
const EPHEMERAL: ReadonlySet<CreateMode> = new Set(['ephemeral', 'ephemeralSequential'])

export interface PersistentNodeOptions {
  /** Default 'ephemeral'. */
  mode?: CreateMode | undefined
  /** For the TTL modes. */
  ttlMs?: number | undefined
  /** Mode of missing parents. Default 'container' (as Curator's creatingParentContainersIfNeeded). */
  parentMode?: CreateMode | undefined
  /** A client with a new session once the session has expired. Default: `expired.newSession()`. */
  newSession?: ((expired: Client) => Promise<Client>) | undefined
}

type PersistentNodeEvents = {
  /** The node was created (again): its path. */
  created: [path: string]
  /** The session expired and the node goes on with this client. */
  session: [client: Client]
  error: [err: unknown]
}

/** Why start() cannot succeed: an EndSource for its wait. */
class StartFailure implements EndSource {
  private readonly events = new Emitter<{ end: [err: ZkError] }>()
  endError: ZkError | undefined

  onEnd(fn: (err: ZkError) => void): () => void {
    return this.events.on('end', fn)
  }

  fail(err: ZkError): void {
    if (this.endError !== undefined) return
    this.endError = err
    this.events.emit('end', err)
  }
}

const toBytes = (data: Data): Uint8Array => (typeof data === 'string' ? utf8(data) : data.slice())

function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

/** Errors a later look may not meet: wait for a reconnect (or a pause) and look again. */
function transient(err: unknown): boolean {
  return isCode(err, ErrorCode.CONNECTION_LOSS) || isCode(err, ErrorCode.OPERATION_TIMEOUT)
}

export class PersistentNode extends Emitter<PersistentNodeEvents> {
  readonly path: string
  private readonly mode: CreateMode
  private zk: Client
  /** Clients this object opened (after expiries); closed by close(). */
  private readonly owned: Client[] = []
  private state: 'new' | 'running' | 'closed' = 'new'
  private bytes: Uint8Array
  private dataDirty = false
  private actual: string | undefined
  private guard: SessionGuard | undefined
  private dirty = false
  private loop: Promise<void> | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private readonly createdOnce = new Latch()
  private readonly failure = new StartFailure()
  private readonly onWatch = (_ev: WatchEvent): void => void this.kick()

  constructor(
    zk: Client,
    path: string,
    data: Data,
    private readonly opts: PersistentNodeOptions = {},
  ) {
    super()
    this.path = checkRecipePath(path)
    if (this.path === '/') throw new ZkError(ErrorCode.BAD_ARGUMENTS, path, 'BAD_ARGUMENTS: not the root')
    this.zk = zk
    this.mode = opts.mode ?? 'ephemeral'
    this.bytes = toBytes(data)
  }

  /** The client the node lives on now (another one after a session expiry). */
  get client(): Client {
    return this.zk
  }

  /** The node's path (with its sequence suffix in the sequential modes), once created. */
  get actualPath(): string | undefined {
    return this.actual
  }

  /** The data the node is kept with. */
  get data(): Uint8Array {
    return this.bytes.slice()
  }

  /**
   * Creates the node and starts keeping it; resolves once it is in place.
   * Rejects with OPERATION_TIMEOUT at `timeoutMs` (the node goes on trying),
   * or with an error that trying again cannot fix (e.g. NO_AUTH; the node is
   * then stopped).
   */
  async start(opts?: WaitOptions): Promise<void> {
    if (this.state !== 'new')
      throw new ZkError(ErrorCode.API_ERROR, this.path, 'API_ERROR: the node was already started')
    const ctx = contextOf(opts)
    this.state = 'running'
    this.follow(this.zk)
    void this.kick()
    if ((await waitLatch(this.createdOnce, ctx, this.failure)) === 'timeout')
      throw timeoutError('the node was not created in time', this.path)
  }

  /** Keeps `data` from now on: written now, or after the reconnect if the connection is lost. */
  async setData(data: Data): Promise<void> {
    this.bytes = toBytes(data)
    this.dataDirty = true
    if (this.state === 'running') await this.kick()
  }

  /** Stops keeping the node, deletes it, and closes the clients this object opened. */
  async close(): Promise<void> {
    if (this.state === 'closed') return
    const wasRunning = this.state === 'running'
    this.state = 'closed'
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.guard?.dispose()
    this.guard = undefined
    this.stopStart(new ZkError(ErrorCode.API_ERROR, this.path, 'API_ERROR: the node was closed'))
    await this.loop
    const actual = this.actual
    if (wasRunning && actual !== undefined) await this.deleteOurs(actual).catch(() => {})
    for (const c of this.owned.splice(0)) await c.close().catch(() => {})
  }

  /** Deletes the node unless it is another session's ephemeral node. */
  private async deleteOurs(path: string): Promise<void> {
    if (EPHEMERAL.has(this.mode)) {
      const stat = await this.zk.exists(path)
      if (stat === null || !sameSession(stat.ephemeralOwner, this.zk.sessionId)) return
    }
    await releaseNode(this.zk, path)
  }

  private stopStart(err: ZkError): void {
    this.failure.fail(err)
  }

  /** Follows a client's session: a reconnect prompts a look; an expiry, a new session. */
  private follow(zk: Client): void {
    this.guard?.dispose()
    const guard = new SessionGuard(zk)
    this.guard = guard
    guard.on('reconnected', () => void this.kick())
    guard.onEnd((err) => {
      if (zk.state === 'expired') void this.kick()
      else this.stop(err)
    })
  }

  /** The client was closed or failed to authenticate: the node cannot be kept. */
  private stop(err: ZkError): void {
    if (this.state !== 'running') return
    this.state = 'closed'
    this.guard?.dispose()
    this.guard = undefined
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.stopStart(err)
    this.emit('error', err)
  }

  private kick(): Promise<void> {
    this.dirty = true
    this.loop ??= this.run()
    return this.loop
  }

  private async run(): Promise<void> {
    try {
      for (let i = 0; this.dirty && this.state === 'running' && i < TURNS_MAX; i++) {
        this.dirty = false
        try {
          await this.reconcile()
        } catch (err) {
          this.onFailure(err)
        }
      }
    } finally {
      this.loop = undefined
    }
  }

  private onFailure(err: unknown): void {
    if (this.state !== 'running') return
    const zk = this.zk
    if (zk.state === 'expired') {
      this.dirty = true
      return
    }
    if (zk.state === 'closed' || zk.state === 'authFailed') {
      this.stop(ZkError.is(err) ? err : new ZkError(ErrorCode.SESSION_EXPIRED, this.path, String(err)))
      return
    }
    if (!transient(err)) {
      this.emit('error', err)
      // Before the first create, an error that is not the connection's fails start() and stops.
      if (!this.createdOnce.isOpen) {
        const e = ZkError.is(err) ? err : new ZkError(ErrorCode.SYSTEM_ERROR, this.path, String(err))
        this.stopStart(e)
        this.state = 'closed'
        this.guard?.dispose()
        this.guard = undefined
        return
      }
    }
    // A reconnecting client prompts the next look itself ('reconnected'); otherwise wait a little.
    if (zk.state === 'connected' || !transient(err)) this.retryLater()
  }

  private retryLater(): void {
    if (this.retryTimer !== undefined) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      if (this.state === 'running') void this.kick()
    }, RETRY_DELAY_MS)
  }

  /** One look: a new session if expired, the node created if missing, our data if changed. */
  private async reconcile(): Promise<void> {
    if (this.zk.state === 'expired') await this.renew()
    if (this.state !== 'running') return
    const zk = this.zk
    const actual = this.actual
    if (actual === undefined) return this.create(zk)
    const stat = await zk.exists(actual, { watch: this.onWatch })
    if (stat === null) {
      if (SEQUENTIAL.has(this.mode)) this.actual = undefined
      return this.create(zk)
    }
    if (this.dataDirty) {
      const bytes = this.bytes
      await zk.setData(actual, bytes)
      if (this.bytes === bytes) this.dataDirty = false
    }
  }

  private async renew(): Promise<void> {
    const expired = this.zk
    const next = await (this.opts.newSession ?? ((c: Client) => c.newSession()))(expired)
    if (this.state !== 'running') {
      await next.close().catch(() => {})
      return
    }
    // An expired client this object opened is of no further use.
    const i = this.owned.indexOf(expired)
    if (i >= 0) {
      this.owned.splice(i, 1)
      void expired.close().catch(() => {})
    }
    this.owned.push(next)
    this.zk = next
    this.follow(next)
    if (SEQUENTIAL.has(this.mode)) this.actual = undefined
    this.emit('session', next)
  }

  private async create(zk: Client): Promise<void> {
    const bytes = this.bytes
    let path: string
    if (SEQUENTIAL.has(this.mode)) {
      const node = await protectedCreate(zk, {
        dir: parentOf(this.path),
        prefix: baseName(this.path),
        data: bytes,
        mode: this.mode,
        ttlMs: this.opts.ttlMs,
        parentMode: this.opts.parentMode ?? 'container',
        ctx: { deadline: undefined, signal: undefined },
      })
      path = node.path
    } else {
      try {
        path = await zk.create(this.path, bytes, { mode: this.mode, ttlMs: this.opts.ttlMs })
      } catch (err) {
        if (isCode(err, ErrorCode.NO_NODE)) {
          await ensurePath(zk, parentOf(this.path), this.opts.parentMode ?? 'container', true)
          this.dirty = true
          return
        }
        if (!isCode(err, ErrorCode.NODE_EXISTS)) throw err
        // Already there (ours after a lost reply, a predecessor's, another session's): give it our
        // data and watch it; if it goes, the watch brings us back to create ours.
        this.actual = this.path
        this.dataDirty = true
        this.dirty = true
        this.markCreated()
        return
      }
    }
    this.actual = path
    if (this.bytes === bytes) this.dataDirty = false
    this.markCreated()
    this.emit('created', path)
    // Watch it (and look again if it is already gone).
    this.dirty = true
  }

  private markCreated(): void {
    this.createdOnce.open()
  }
}

export interface PersistentTtlNodeOptions {
  /** The touch node's TTL: the node is removed this long after its owner stops (required). */
  ttlMs: number
  /** How often the touch node is written. Default ttlMs / 2. */
  touchIntervalMs?: number | undefined
  /** The TTL child's name. Default 'touch'. */
  childName?: string | undefined
  /** As PersistentNodeOptions.newSession. */
  newSession?: ((expired: Client) => Promise<Client>) | undefined
}

/** A container node kept alive by a TTL child that is touched periodically (Curator's PersistentTtlNode). */
export class PersistentTtlNode extends Emitter<{ error: [err: unknown] }> {
  readonly path: string
  private readonly node: PersistentNode
  private readonly touchPath: string
  private readonly ttlMs: number
  private readonly intervalMs: number
  private timer: ReturnType<typeof setInterval> | undefined
  private touching: Promise<void> | undefined

  constructor(zk: Client, path: string, data: Data, opts: PersistentTtlNodeOptions) {
    super()
    this.path = checkRecipePath(path)
    const ttl = opts?.ttlMs
    if (!Number.isInteger(ttl) || ttl <= 0)
      throw new ZkError(ErrorCode.BAD_ARGUMENTS, path, 'BAD_ARGUMENTS: ttlMs must be a positive integer')
    this.ttlMs = ttl
    this.intervalMs = Math.max(1, Math.floor(opts.touchIntervalMs ?? ttl / 2))
    this.touchPath = joinPath(this.path, checkNodeName(opts.childName ?? 'touch', 'child name'))
    this.node = new PersistentNode(zk, this.path, data, { mode: 'container', newSession: opts.newSession })
    this.node.on('error', (err) => this.emit('error', err))
    // Re-created (deleted, reaped, new session): touch at once, so the container has its child again.
    this.node.on('created', () => void this.touch())
  }

  get client(): Client {
    return this.node.client
  }

  get data(): Uint8Array {
    return this.node.data
  }

  /** Creates the container and its TTL child, and starts touching it. */
  async start(opts?: WaitOptions): Promise<void> {
    await this.node.start(opts)
    await this.touch()
    this.timer = setInterval(() => void this.touch(), this.intervalMs)
  }

  setData(data: Data): Promise<void> {
    return this.node.setData(data)
  }

  /** Stops touching, deletes the TTL child and the container. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    await this.touching
    await releaseNode(this.node.client, this.touchPath).catch(() => {})
    await this.node.close()
  }

  private touch(): Promise<void> {
    this.touching ??= this.touchOnce().finally(() => {
      this.touching = undefined
    })
    return this.touching
  }

  private async touchOnce(): Promise<void> {
    const zk = this.node.client
    try {
      try {
        await zk.setData(this.touchPath, new Uint8Array(0))
      } catch (err) {
        if (!isCode(err, ErrorCode.NO_NODE)) throw err
        await zk.create(this.touchPath, new Uint8Array(0), { mode: 'persistentWithTtl', ttlMs: this.ttlMs })
      }
    } catch (err) {
      // The container is being re-created (its watch brings a touch), or the connection is away: the
      // next touch tries again.
      if (
        !isCode(err, ErrorCode.NO_NODE) &&
        !isCode(err, ErrorCode.NODE_EXISTS) &&
        !isCode(err, ErrorCode.CONNECTION_LOSS) &&
        !isCode(err, ErrorCode.SESSION_EXPIRED)
      )
        this.emit('error', err)
    }
  }
}
