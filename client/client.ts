/**
 * Client: the public, Promise-based API of shared/spec/client-api.md. It
 * validates arguments, applies the chroot, and hands wire requests to the
 * Session; results are mapped in pending.ts.
 *
 * Invariants: an invalid argument rejects with ZkError(BAD_ARGUMENTS) and
 * sends nothing; every failure is a ZkError; paths given and returned are
 * relative to the chroot.
 * Imports only shared/ and client/ (no node:*, nothing of server/).
 */
import type { Acl } from '../shared/acl.js'
import { ErrorCode, ZkError } from '../shared/errors.js'
import { FRAME_BYTES_MAX_DEFAULT } from '../shared/framing.js'
import { AddWatchMode, ConclaveOpCode, OpCode, WatcherType } from '../shared/opcodes.js'
import { applyChroot, pathError } from '../shared/paths.js'
import { formatSessionId, parseSessionId } from '../shared/session-id.js'
import type { Stat } from '../shared/stat.js'
import { parseConnectString, shuffled } from './connect-string.js'
import type { Listener } from './emitter.js'
import { SERVERS_MAX } from './ensemble-config.js'
import {
  authBytes,
  badArguments,
  buildCreate,
  buildMulti,
  checkAcl,
  checkDeletePath,
  checkPath,
  checkVersion,
  normalizeChroot,
  toData,
} from './requests.js'
import { RECONNECT_DELAY_MS_DEFAULT, Session } from './session.js'
import { openTransport } from './transport.js'
import type {
  AclResult,
  ChildrenIterationOptions,
  ChildrenPage,
  ChildrenPageOptions,
  ChildrenResult,
  ClientEvents,
  ClientInfo,
  ClientState,
  ConnectOptions,
  CreateOptions,
  Data,
  DataResult,
  MultiOp,
  OpResult,
  PersistentWatchMode,
  ReconfigOptions,
  Watcher,
  WatchOptions,
} from './types.js'
import { openWatchStream, type WatchStream, type WatchStreamOptions } from './watch-stream.js'

export const SESSION_TIMEOUT_MS_DEFAULT = 30_000
export const CONNECT_TIMEOUT_MS_DEFAULT = 10_000
/** Names per page of getChildrenPage and children() unless told. */
export const CHILDREN_PAGE_DEFAULT = 1_000

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value <= 0 || value > 2 ** 31 - 1)
    throw badArguments(undefined, `${name} must be a positive integer, not ${String(value)}`)
  return value
}

function nonNegativeInt(value: number | undefined, fallback: number, name: string): number {
  return value === 0 ? 0 : positiveInt(value, fallback, name)
}

function resumeId(opts: ConnectOptions): { id: bigint; password: Uint8Array } {
  if (opts.sessionId === undefined) return { id: 0n, password: new Uint8Array(16) }
  if (!(opts.sessionPassword instanceof Uint8Array))
    throw badArguments(undefined, 'sessionId needs sessionPassword (a Uint8Array)')
  try {
    return { id: parseSessionId(opts.sessionId), password: opts.sessionPassword.slice() }
  } catch {
    throw badArguments(undefined, `bad sessionId ${opts.sessionId}`)
  }
}

function watcherOf(opts: WatchOptions | undefined, path: string): Watcher | undefined {
  const w = opts?.watch
  if (w !== undefined && typeof w !== 'function') throw badArguments(path, 'watch must be a function')
  return w
}

export class Client {
  private constructor(
    private readonly session: Session,
    /** How this client was connected, for newSession(). */
    private readonly origin: { connectString: string; opts: ConnectOptions },
  ) {}

  /** Connects and establishes (or resumes) a session; rejects with CONNECTION_LOSS after connectTimeoutMs. */
  static async connect(connectString: string, opts: ConnectOptions = {}): Promise<Client> {
    const random = opts.random ?? Math.random
    const endpoints = shuffled(parseConnectString(connectString), random)
    // Off unless asked: a one-server connect string pins a client to that server (docs/api.md).
    const followMembership = opts.followMembership ?? false
    if (typeof followMembership !== 'boolean')
      throw badArguments(undefined, `followMembership must be a boolean, not ${String(followMembership)}`)
    const { id, password } = resumeId(opts)
    const session = new Session({
      endpoints,
      followMembership,
      sessionTimeoutMs: positiveInt(opts.sessionTimeoutMs, SESSION_TIMEOUT_MS_DEFAULT, 'sessionTimeoutMs'),
      chroot: normalizeChroot(opts.chroot),
      sessionId: id,
      password,
      frameBytesMax: positiveInt(opts.frameBytesMax, FRAME_BYTES_MAX_DEFAULT, 'frameBytesMax'),
      transport: opts.transport ?? openTransport,
      WebSocket: opts.WebSocket,
      tls: opts.tls,
      random,
      reconnectDelayMs: nonNegativeInt(opts.reconnectDelayMs, RECONNECT_DELAY_MS_DEFAULT, 'reconnectDelayMs'),
      exactlyOnce: opts.exactlyOnce ?? true,
      canBeReadOnly: opts.canBeReadOnly ?? false,
      // Probes need the real network: a custom transport (tests, custom networks) gets none.
      probeReadWrite:
        opts.transport === undefined
          ? async (endpoint, timeoutMs) =>
              (await import('./probe-rw.js')).askIsro(endpoint, opts.tls, timeoutMs)
          : undefined,
    })
    for (const a of opts.auth ?? []) session.addInitialAuth(a.scheme, authBytes(a.scheme, a.credentials))
    const connectTimeoutMs = positiveInt(
      opts.connectTimeoutMs,
      CONNECT_TIMEOUT_MS_DEFAULT,
      'connectTimeoutMs',
    )
    await session.start(connectTimeoutMs, opts.signal)
    return new Client(session, { connectString, opts })
  }

  /**
   * Connects another client, with a new session, to the same servers with the
   * same options (chroot, auth, timeouts, transport), e.g. to carry on after
   * this session expired (PersistentNode does). The caller closes it.
   */
  newSession(opts: { connectTimeoutMs?: number; signal?: AbortSignal } = {}): Promise<Client> {
    const { sessionId: _id, sessionPassword: _password, signal: _signal, ...rest } = this.origin.opts
    // The servers as they are now: the ensemble may have moved on from the ones first given.
    return Client.connect(this.session.servers.map((e) => e.url).join(','), { ...rest, ...opts })
  }

  // ------------------------------------------------------------ session

  /** '0x' + lowercase hex, no leading zeros. */
  get sessionId(): string {
    return formatSessionId(this.session.sessionId)
  }

  /** The session's password (a copy): with sessionId, it lets another client resume the session. */
  get sessionPassword(): Uint8Array {
    return this.session.password.slice()
  }

  get state(): ClientState {
    return this.session.state
  }

  /** The largest zxid seen in a reply. */
  get lastZxid(): number {
    return this.session.lastZxid
  }

  /**
   * Writes are exactly-once on the current (or last) connection: the option
   * is on and the server offers it. A write then never fails with
   * CONNECTION_LOSS while the session lives: it is sent again and answered once.
   */
  get exactlyOnce(): boolean {
    return this.session.exactlyOnce
  }

  /** Connected to a read-only server (state 'connectedReadOnly', with canBeReadOnly): writes fail NOT_READ_ONLY. */
  get readOnly(): boolean {
    return this.session.state === 'connectedReadOnly'
  }

  /** The session timeout the server granted. */
  get sessionTimeoutMs(): number {
    return this.session.negotiatedTimeoutMs
  }

  get chroot(): string | undefined {
    return this.session.chroot
  }

  /** The server currently connected to, if any. */
  get server(): string | undefined {
    return this.session.server
  }

  /**
   * The servers this client connects to, as URLs, in the order it tries
   * them: the connect string's, or the ensemble's once followMembership
   * learned them (a copy).
   */
  get servers(): readonly string[] {
    return Object.freeze(this.session.servers.map((e) => e.url))
  }

  /**
   * Replaces the server list (ZooKeeper's updateServerList): a connect
   * string as Client.connect takes, at most SERVERS_MAX servers, tried in a
   * random order. If the server connected to is not in it, the client moves
   * to one that is, keeping its session. With followMembership on, the
   * next configuration read is judged afresh: it replaces the list again
   * only if it names one of these servers. A bad list throws BAD_ARGUMENTS
   * and changes nothing.
   */
  updateServerList(connectString: string): void {
    const endpoints = parseConnectString(connectString)
    if (endpoints.length > SERVERS_MAX)
      throw badArguments(undefined, `more than ${SERVERS_MAX} servers (${endpoints.length})`)
    this.session.updateServers(shuffled(endpoints, this.origin.opts.random ?? Math.random))
  }

  on<K extends keyof ClientEvents>(event: K, fn: Listener<ClientEvents[K]>): () => void {
    return this.session.events.on(event, fn)
  }

  once<K extends keyof ClientEvents>(event: K, fn: Listener<ClientEvents[K]>): () => void {
    return this.session.events.once(event, fn)
  }

  off<K extends keyof ClientEvents>(event: K, fn: Listener<ClientEvents[K]>): void {
    this.session.events.off(event, fn)
  }

  /** Ends the session (its ephemeral nodes go at once). Later operations reject with SESSION_EXPIRED. */
  close(): Promise<void> {
    return this.session.close()
  }

  private wire(path: string): string {
    return applyChroot(this.session.chroot, path)
  }

  // ------------------------------------------------------------ writes

  /** Resolves to the created path (with its sequence suffix if sequential). */
  create(path: string, data?: Data, opts?: CreateOptions): Promise<string> {
    try {
      const req = buildCreate(path, data, opts, this.session.chroot)
      return this.session.request(req.op, req, path)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  setData(path: string, data: Data, version = -1): Promise<Stat> {
    try {
      checkPath(path)
      const req = { op: OpCode.setData, path: this.wire(path), data: toData(data, path), version }
      checkVersion(version, path)
      return this.session.request(OpCode.setData, req, path)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Changes the ensemble's membership (ZooKeeper's reconfig; the server must
   * run with reconfigEnabled, and the session be the super user or hold
   * WRITE on /zookeeper/config's ACL). Resolves to the new config as
   * /zookeeper/config holds it (its lines, then `version=<hex>`) and that
   * node's Stat, once the change is committed and applied on this session's
   * server.
   */
  reconfig(opts: ReconfigOptions): Promise<DataResult> {
    const path = '/zookeeper/config'
    try {
      const list = (v: unknown, name: string): string => {
        if (v === undefined || v === null) return ''
        const parts = typeof v === 'string' || typeof v === 'number' ? [v] : v
        if (!Array.isArray(parts)) throw badArguments(path, `${name} must be a string or a list`)
        return parts
          .map((x) => {
            if (typeof x !== 'string' && typeof x !== 'number')
              throw badArguments(path, `${name} entries must be strings`)
            return String(x).trim()
          })
          .join(',')
      }
      const joiningServers = list(opts.joining, 'joining')
      const leavingServers = list(opts.leaving, 'leaving')
      const newMembers = list(opts.newMembers, 'newMembers')
      if (newMembers !== '' && (joiningServers !== '' || leavingServers !== ''))
        throw badArguments(path, 'give joining/leaving or newMembers, not both')
      if (newMembers === '' && joiningServers === '' && leavingServers === '')
        throw badArguments(path, 'nothing to change: give joining/leaving or newMembers')
      const from = opts.fromConfig ?? -1
      const curConfigId = typeof from === 'bigint' ? Number(from) : from
      if (!Number.isSafeInteger(curConfigId) || curConfigId < -1)
        throw badArguments(path, `fromConfig must be a config version (a zxid) or -1, not ${String(from)}`)
      const req = { op: OpCode.reconfig, joiningServers, leavingServers, newMembers, curConfigId }
      return this.session.request(OpCode.reconfig, req, path)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  delete(path: string, version = -1): Promise<void> {
    try {
      checkDeletePath(path)
      checkVersion(version, path)
      return this.session.request(OpCode.delete, { op: OpCode.delete, path: this.wire(path), version }, path)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Atomic: every op succeeds, or none (then a ZkError with one `results` entry per op). */
  multi(ops: readonly MultiOp[]): Promise<OpResult[]> {
    try {
      const req = buildMulti(ops, this.session.chroot)
      return this.session.request(OpCode.multi, req, undefined)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  setACL(path: string, acl: readonly Acl[], aversion = -1): Promise<Stat> {
    try {
      checkPath(path)
      checkVersion(aversion, path)
      const req = { op: OpCode.setACL, path: this.wire(path), acl: checkAcl(acl, path), version: aversion }
      return this.session.request(OpCode.setACL, req, path)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  // ------------------------------------------------------------ reads

  private read<T>(op: ReadOp, path: string, opts: WatchOptions | undefined): Promise<T> {
    try {
      const why = pathError(path)
      if (why !== null) throw badArguments(path, why)
      const watch = watcherOf(opts, path)
      return this.session.request(op, { op, path: this.wire(path), watch: watch !== undefined }, path, watch)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  getData(path: string, opts?: WatchOptions): Promise<DataResult> {
    return this.read(OpCode.getData, path, opts)
  }

  /** The node's Stat, or null; a watch is set even when the node is absent. */
  exists(path: string, opts?: WatchOptions): Promise<Stat | null> {
    return this.read(OpCode.exists, path, opts)
  }

  /** Child names, sorted in JavaScript's default string order. */
  getChildren(path: string, opts?: WatchOptions): Promise<string[]> {
    return this.read(OpCode.getChildren, path, opts)
  }

  getChildrenWithStat(path: string, opts?: WatchOptions): Promise<ChildrenResult> {
    return this.read(OpCode.getChildren2, path, opts)
  }

  /**
   * One page of a znode's children, names ascending (a Conclave request:
   * against ZooKeeper it rejects with UNIMPLEMENTED). Pass the page's `next`
   * as `after` for the next one; the order is the name order, so a page
   * read after a concurrent change still continues where the last ended
   * (names created behind the cursor are not seen, names deleted ahead of it
   * are not listed). Compare `stat.cversion` between pages to know whether
   * the children changed meanwhile.
   */
  getChildrenPage(path: string, opts: ChildrenPageOptions = {}): Promise<ChildrenPage> {
    try {
      checkPath(path)
      const limit = opts.limit ?? CHILDREN_PAGE_DEFAULT
      if (!Number.isInteger(limit) || limit < 1 || limit > 2 ** 31 - 1)
        throw badArguments(path, `limit must be a positive integer, not ${String(limit)}`)
      const after = opts.after ?? ''
      if (typeof after !== 'string' || after.includes('/') || after === '.' || after === '..')
        throw badArguments(path, `after must be a child name (no '/'), not ${JSON.stringify(after)}`)
      const maxBytes = nonNegativeInt(opts.maxBytes, 0, 'maxBytes')
      const watch = watcherOf(opts, path)
      const op = ConclaveOpCode.getChildrenPage
      const req = { op, path: this.wire(path), after, maxCount: limit, maxBytes, watch: watch !== undefined }
      return this.session.request(op, req, path, watch)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Every child name of a znode, ascending, fetched a page at a time:
   * `for await (const name of zk.children('/q', { pageSize: 1000 }))`. Each
   * name comes once; names created behind the cursor during the listing are
   * not seen. `watch` is a child watch set with the first page. Breaking out
   * of the loop stops fetching.
   */
  async *children(
    path: string,
    opts: ChildrenIterationOptions = {},
  ): AsyncGenerator<string, void, undefined> {
    const limit = opts.pageSize ?? CHILDREN_PAGE_DEFAULT
    let page = await this.getChildrenPage(path, { limit, watch: opts.watch })
    for (;;) {
      opts.signal?.throwIfAborted()
      yield* page.children
      if (page.next === undefined) return
      opts.signal?.throwIfAborted()
      page = await this.getChildrenPage(path, { limit, after: page.next })
    }
  }

  getACL(path: string): Promise<AclResult> {
    return this.pathOp(OpCode.getACL, path)
  }

  /** After it resolves, reads on this connection see every write committed before it began. */
  async sync(path: string): Promise<void> {
    await this.pathOp(OpCode.sync, path)
  }

  /** Paths of this session's ephemeral nodes under a prefix (sorted). */
  getEphemerals(prefix = '/'): Promise<string[]> {
    try {
      checkPath(prefix, true)
      return this.session.request(
        OpCode.getEphemerals,
        { op: OpCode.getEphemerals, path: this.wire(prefix) },
        prefix,
      )
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The number of nodes below a path (all descendants). */
  getAllChildrenNumber(path: string): Promise<number> {
    return this.pathOp(OpCode.getAllChildrenNumber, path)
  }

  private pathOp<T>(op: PathOp, path: string): Promise<T> {
    try {
      checkPath(path)
      return this.session.request(op, { op, path: this.wire(path) }, path)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The identities this connection is authenticated as. */
  whoAmI(): Promise<ClientInfo[]> {
    return this.session.request(OpCode.whoAmI, { op: OpCode.whoAmI }, undefined)
  }

  // ------------------------------------------------------------ watches and auth

  /**
   * A watch that fires for every change until stopped: on the path
   * ('persistent', incl. childrenChanged) or on the path and its subtree
   * ('persistentRecursive', without childrenChanged). Resolves to `stop`.
   */
  async addWatch(path: string, mode: PersistentWatchMode, listener: Watcher): Promise<() => Promise<void>> {
    checkPath(path)
    if (mode !== 'persistent' && mode !== 'persistentRecursive')
      throw badArguments(path, `unknown watch mode ${String(mode)}`)
    if (typeof listener !== 'function') throw badArguments(path, 'listener must be a function')
    const wire = mode === 'persistent' ? AddWatchMode.persistent : AddWatchMode.persistentRecursive
    const req = { op: OpCode.addWatch, path: this.wire(path), mode: wire }
    await this.session.request(OpCode.addWatch, req, path, listener, wire)
    let stopped = false
    return async () => {
      if (stopped) return
      stopped = true
      await this.session.removePersistent(path, mode, listener)
    }
  }

  /**
   * A persistent watch as an async iterator: `for await (const ev of zk.watch('/app', { recursive: true, signal }))`.
   * Every event carries the zxid of its change (-1 if the server sends none).
   * `break`, close() or the signal's abort remove the watch on the server and
   * end the iteration; a consumer more than `bufferSize` events behind gets one
   * `{ type: 'resync' }` instead of them (see watch-stream.ts).
   */
  watch(path: string, opts?: WatchStreamOptions): WatchStream {
    return openWatchStream(this, path, opts)
  }

  /**
   * Removes every watch of this client on a path, locally and on the server
   * (ZooKeeper's removeAllWatches with WatcherType.Any). Rejects NO_WATCHER if there was none.
   */
  async removeAllWatches(path: string): Promise<void> {
    checkPath(path)
    const removed = this.session.watches.removeAllAt(path)
    if (!removed) throw new ZkError(ErrorCode.NO_WATCHER, path)
    const req = { op: OpCode.removeWatches, path: this.wire(path), type: WatcherType.any }
    await this.session.request(OpCode.removeWatches, req, path).catch((err: unknown) => {
      if (!ZkError.is(err, ErrorCode.NO_WATCHER)) throw err
    })
  }

  /** Adds credentials to the connection (and to every later reconnect). AUTH_FAILED ends the session's use. */
  addAuth(scheme: string, credentials: string | Uint8Array): Promise<void> {
    try {
      return this.session.addAuth(scheme, authBytes(scheme, credentials))
    } catch (err) {
      return Promise.reject(err)
    }
  }
}

type ReadOp =
  | typeof OpCode.getData
  | typeof OpCode.exists
  | typeof OpCode.getChildren
  | typeof OpCode.getChildren2
type PathOp = typeof OpCode.getACL | typeof OpCode.sync | typeof OpCode.getAllChildrenNumber
