/**
 * The public types of the SDK (shared/spec/client-api.md): client states,
 * options, watch events, multi ops and results, read results.
 * Types only. Imports only shared/ and client/ (no node:*).
 */
import type { Acl } from '../shared/acl.js'
import type { CreateMode } from '../shared/opcodes.js'
import type { Stat } from '../shared/stat.js'
import type { TlsOptions, TransportFactory, WebSocketConstructor } from './transport.js'

export type ClientState =
  | 'connecting'
  | 'connected'
  /** Connected to a read-only server (no quorum), with canBeReadOnly: reads only (ZooKeeper's ConnectedReadOnly). */
  | 'connectedReadOnly'
  | 'disconnected'
  | 'expired'
  | 'closed'
  | 'authFailed'

/**
 * 'resync' reaches only persistent watches: after a reconnect whose missed
 * events could not be replayed (the server's history no longer reached back
 * that far, or an Apache ZooKeeper server), so the listener must read the
 * state again; live events follow it.
 */
export type WatchEventType = 'created' | 'deleted' | 'dataChanged' | 'childrenChanged' | 'resync'

export interface WatchEvent {
  type: WatchEventType
  /** The znode's path, relative to the chroot ('resync': the watched path). */
  path: string
  /**
   * The zxid of the change; -1 if the server sent none (ZooKeeper before
   * 3.9). Not enumerable, so an event still compares equal to `{ type, path }`;
   * for 'resync' (enumerable) the zxid from which live events follow, or -1.
   */
  zxid?: number
}

export type Watcher = (event: WatchEvent) => void

/** A one-shot watch (`{ watch: fn }`) for exists, getData, getChildren and getChildrenWithStat. */
export interface WatchOptions {
  watch?: Watcher | undefined
}

export type PersistentWatchMode = 'persistent' | 'persistentRecursive'

/** znode data: bytes, or a string sent as UTF-8. */
export type Data = Uint8Array | string

export interface CreateOptions {
  mode?: CreateMode | undefined
  /** Default: world:anyone with every permission. */
  acl?: readonly Acl[] | undefined
  /** Required by, and only allowed with, the TTL modes. */
  ttlMs?: number | undefined
}

export type MultiOp =
  | ({ op: 'create'; path: string; data?: Data | undefined } & CreateOptions)
  | { op: 'delete'; path: string; version?: number | undefined }
  | { op: 'setData'; path: string; data: Data; version?: number | undefined }
  | { op: 'check'; path: string; version: number }

export type OpResult =
  | { op: 'create'; path: string }
  | { op: 'delete' }
  | { op: 'setData'; stat: Stat }
  | { op: 'check' }

/**
 * A membership change (ZooKeeper's reconfig): incremental (`joining` server
 * lines added or replacing their id's, `leaving` ids removed) or whole
 * (`newMembers`, the complete new list). `fromConfig` is the config version
 * (the hex number on /zookeeper/config's `version=` line) it is made from;
 * omitted, whatever is current.
 */
export interface ReconfigOptions {
  joining?: string | readonly string[] | undefined
  leaving?: string | number | readonly (string | number)[] | undefined
  newMembers?: string | readonly string[] | undefined
  fromConfig?: number | bigint | undefined
}

export interface DataResult {
  data: Uint8Array
  stat: Stat
}

export interface ChildrenResult {
  /** Names, sorted in JavaScript's default string order. */
  children: string[]
  stat: Stat
}

/** Options of getChildrenPage. */
export interface ChildrenPageOptions {
  /** Most names in the page: 1 .. the server's childrenPageMax (10 000 by default). Default 1 000. */
  limit?: number | undefined
  /** Start after this name (the previous page's `next`); absent: from the first name. */
  after?: string | undefined
  /** Most bytes of names (each: 4 + its UTF-8 length); a page still holds at least one name. Default: the server's frame limit only. */
  maxBytes?: number | undefined
  /** A one-shot child watch, set with this page (as getChildren's). */
  watch?: Watcher | undefined
}

/** One page of a znode's children, names ascending (JavaScript's default string order). */
export interface ChildrenPage {
  children: string[]
  /** Where the next page starts (pass it as `after`); absent on the last page. */
  next?: string | undefined
  /** The parent's Stat when the page was read: a different cversion or pzxid than another page's means the children changed in between. */
  stat: Stat
}

/** Options of children(): an async iterator over every child name, a page at a time. */
export interface ChildrenIterationOptions {
  /** Names fetched per request. Default 1 000. */
  pageSize?: number | undefined
  /** A one-shot child watch, set with the first page: it fires on any change to the children after the listing began. */
  watch?: Watcher | undefined
  /** Aborting it ends the iteration (with the signal's reason). */
  signal?: AbortSignal | undefined
}

export interface AclResult {
  acl: Acl[]
  stat: Stat
}

export interface AuthInfo {
  scheme: string
  /** For `digest`: 'user:password'. A string is sent as UTF-8. */
  credentials: string | Uint8Array
}

/** What the server knows this connection as (whoAmI). */
export interface ClientInfo {
  scheme: string
  id: string
}

export interface ConnectOptions {
  /** Requested session timeout; the server negotiates it within its bounds. Default 30 000. */
  sessionTimeoutMs?: number | undefined
  /** Give up on the first connection after this long (CONNECTION_LOSS). Default 10 000. */
  connectTimeoutMs?: number | undefined
  /** Every path is relative to this znode. */
  chroot?: string | undefined
  /** Credentials sent after the session is established, and again after every reconnect. */
  auth?: readonly AuthInfo[] | undefined
  /** Resume an existing session (with `sessionPassword`) instead of creating one. */
  sessionId?: string | undefined
  sessionPassword?: Uint8Array | undefined
  /** Aborting it abandons the first connection (CONNECTION_LOSS). */
  signal?: AbortSignal | undefined
  /** Largest packet accepted from a server. Default 1 MiB + 64 KiB. */
  frameBytesMax?: number | undefined
  /** A WebSocket implementation (WHATWG API) to use instead of the default: in Node the SDK's own client, elsewhere the global WebSocket. */
  WebSocket?: WebSocketConstructor | undefined
  /** wss:// in Node: trusted CAs (e.g. a private CA), a client certificate, the name to verify. */
  tls?: TlsOptions | undefined
  /** Replaces the transports altogether (tests, custom networks). */
  transport?: TransportFactory | undefined
  /**
   * Reconnect pacing (ZooKeeper's): after a lost connection, wait a random
   * delay below this before each attempt, plus this much when coming back to
   * the server last connected to (every attempt, with one server). Default
   * 1 000; 0 reconnects at once.
   */
  reconnectDelayMs?: number | undefined
  /** Source of randomness for the server order and reconnect delays, in [0, 1). Default Math.random. */
  random?: (() => number) | undefined
  /**
   * Exactly-once writes (default true): against Conclave servers, a write
   * whose connection is lost is sent again on the session's next connection
   * and answered once — with its original result if it had been applied,
   * else by applying it — instead of failing with CONNECTION_LOSS. false
   * restores ZooKeeper's behaviour; against ZooKeeper servers it is always so.
   */
  exactlyOnce?: boolean | undefined
  /**
   * Accept a read-only server (ZooKeeper's canBeReadOnly; default false):
   * when no server of the ensemble has a quorum, one started with read-only
   * mode gives the client a read-only session: state 'connectedReadOnly',
   * reads served, writes NOT_READ_ONLY. The SDK keeps asking the other
   * servers (`isro`) and moves to the first read-write one.
   */
  canBeReadOnly?: boolean | undefined
  /**
   * Follow the ensemble's membership (ZooKeeper's getConfig +
   * updateServerList, done for you): on every connection the SDK reads
   * /zookeeper/config (with a watch, once it names servers) and replaces the
   * server list with the configuration's client addresses, reached with the
   * scheme, path and TLS options of the connect string; it leaves a server
   * that is no longer listed for one that is, keeping the session. A config
   * it cannot read, a malformed one, or one that names none of the servers
   * this client reaches them by (other names, port mappings) leaves the
   * list as it is ('warning' event). Default false, as ZooKeeper's client
   * (which follows only when the application calls updateServerList): on,
   * a client given one server is no longer pinned to it.
   */
  followMembership?: boolean | undefined
}

export type ClientEvents = {
  state: [state: ClientState]
  /** The server list was replaced (followMembership, or updateServerList): the servers' URLs. */
  servers: [servers: readonly string[]]
  /** Something the SDK worked around, e.g. an unreadable or malformed /zookeeper/config. */
  warning: [message: string]
  /** A watch or state listener threw. */
  error: [err: unknown]
}
