/**
 * Wire constants from ZooKeeper's ZooDefs / Watcher: opcodes, special xids,
 * create flags, watcher event types and keeper states, addWatch and
 * removeWatches modes, permission bits. These numbers are the protocol.
 * Imports nothing.
 */

export const OpCode = {
  notification: 0,
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getACL: 6,
  setACL: 7,
  getChildren: 8,
  sync: 9,
  ping: 11,
  getChildren2: 12,
  check: 13,
  multi: 14,
  create2: 15,
  reconfig: 16,
  checkWatches: 17,
  removeWatches: 18,
  createContainer: 19,
  deleteContainer: 20,
  createTTL: 21,
  multiRead: 22,
  auth: 100,
  setWatches: 101,
  sasl: 102,
  getEphemerals: 103,
  getAllChildrenNumber: 104,
  setWatches2: 105,
  addWatch: 106,
  whoAmI: 107,
  createSession: -10,
  closeSession: -11,
  error: -1,
} as const
export type OpCodeNumber = (typeof OpCode)[keyof typeof OpCode]

/**
 * Conclave's own opcodes, outside ZooKeeper's table (kept apart so OpCode
 * stays the table of the ZooKeeper release Conclave serves). No ZooKeeper
 * client sends them; the SDK sends them only to a server whose
 * ConnectResponse offered the feature (records.ts, ConclaveFeature).
 */
export const ConclaveOpCode = {
  /**
   * A write with its exactly-once header: int ackXid (every reply below it has
   * reached the client), int opcode (create*, delete, setData, setACL, check,
   * multi), then that write's own record. Its xid names it within the session.
   */
  exactlyOnce: 1001,
  /**
   * A page of a znode's children in name order: ustring path, ustring after
   * (the last name of the previous page; empty: from the first), int
   * maxCount, int maxBytes (0: only the server's limit), bool watch (a child
   * watch). Reply: vector<ustring> children, bool more, the parent's Stat.
   */
  getChildrenPage: 1002,
  /**
   * Re-registers a reconnecting client's watches and replays what they
   * missed (ConclaveFeature.resumableWatches): the body of setWatches2
   * (long fromZxid, then the data, exist, child, persistent and
   * persistentRecursive path lists). The server sends, as notifications, the
   * events the changes after fromZxid fired on those watches, each with its
   * change's zxid, in zxid order — or, when its history no longer reaches
   * fromZxid, one ConclaveEventType.watchesCompacted first and then
   * setWatches2's rules — and registers the watches in the same step, so
   * nothing falls between the replay and the live events. The reply body is
   * empty. (server/watch/watch-resume.ts)
   */
  resumeWatches: 1010,
} as const

/**
 * Conclave's own watch event types (a WatcherEvent's type), sent only in
 * answer to ConclaveOpCode.resumeWatches, so never to a ZooKeeper client.
 */
export const ConclaveEventType = {
  /**
   * The server's history of changes does not reach back to the resume's
   * fromZxid: missed events are lost, the client must read the state again.
   * Its path is '/', its zxid the server's last zxid; it comes before any
   * other notification of the resume.
   */
  watchesCompacted: 1010,
} as const

/** Reserved xids. */
export const Xid = {
  notification: -1,
  ping: -2,
  auth: -4,
  setWatches: -8,
} as const

/** CreateMode flag values on the wire. */
export const CreateFlag = {
  persistent: 0,
  ephemeral: 1,
  persistentSequential: 2,
  ephemeralSequential: 3,
  container: 4,
  persistentWithTtl: 5,
  persistentSequentialWithTtl: 6,
} as const

export type CreateMode = keyof typeof CreateFlag
export const CreateMode = {
  persistent: 'persistent',
  ephemeral: 'ephemeral',
  persistentSequential: 'persistentSequential',
  ephemeralSequential: 'ephemeralSequential',
  container: 'container',
  persistentWithTtl: 'persistentWithTtl',
  persistentSequentialWithTtl: 'persistentSequentialWithTtl',
} as const satisfies Record<CreateMode, CreateMode>

const MODE_BY_FLAG = new Map<number, CreateMode>(
  Object.entries(CreateFlag).map(([mode, flag]) => [flag, mode as CreateMode]),
)

export function createModeOfFlag(flag: number): CreateMode | undefined {
  return MODE_BY_FLAG.get(flag)
}

export function isSequentialMode(mode: CreateMode): boolean {
  return (
    mode === 'persistentSequential' ||
    mode === 'ephemeralSequential' ||
    mode === 'persistentSequentialWithTtl'
  )
}

export function isEphemeralMode(mode: CreateMode): boolean {
  return mode === 'ephemeral' || mode === 'ephemeralSequential'
}

export function isTtlMode(mode: CreateMode): boolean {
  return mode === 'persistentWithTtl' || mode === 'persistentSequentialWithTtl'
}

/** Watcher.Event.EventType */
export const EventType = {
  none: -1,
  nodeCreated: 1,
  nodeDeleted: 2,
  nodeDataChanged: 3,
  nodeChildrenChanged: 4,
  dataWatchRemoved: 5,
  childWatchRemoved: 6,
  persistentWatchRemoved: 7,
} as const

/** Watcher.Event.KeeperState */
export const KeeperState = {
  disconnected: 0,
  syncConnected: 3,
  authFailed: 4,
  connectedReadOnly: 5,
  saslAuthenticated: 6,
  expired: -112,
  closed: 7,
} as const

/** AddWatchMode */
export const AddWatchMode = {
  persistent: 0,
  persistentRecursive: 1,
} as const

/** Watcher.WatcherType, for removeWatches/checkWatches. */
export const WatcherType = {
  children: 1,
  data: 2,
  any: 3,
  persistent: 4,
  persistentRecursive: 5,
} as const

export const Perms = {
  READ: 1,
  WRITE: 2,
  CREATE: 4,
  DELETE: 8,
  ADMIN: 16,
  ALL: 31,
} as const

/** Largest TTL ZooKeeper accepts: 2^40 - 1 ms. */
export const TTL_MS_MAX = 2 ** 40 - 1
