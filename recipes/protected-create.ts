/**
 * Curator's protected mode: a sequential create whose name starts
 * `_c_<uuid>-`, so that after CONNECTION_LOSS (the create's outcome is
 * unknown) we look for our own node by its GUID instead of creating a second
 * one or leaking the first. The created node's Stat is read back, giving its
 * czxid (a fencing token) and its ephemeralOwner, which must be this session
 * (CURATOR-653/696: never act on a node of another session).
 *
 * Invariants: at most one node per call survives: when the call gives up
 * (deadline, abort, session end, error) every node carrying its GUID is
 * deleted, now or as soon as an abandoned request lands; loops are bounded.
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, CreateMode, Data, Stat, Watcher } from '../client/index.js'
import { ErrorCode, ZkError } from '../client/index.js'
import { bounded, checkContext, type EndSource, type WaitContext } from './wait.js'
import {
  childrenOrEmpty,
  deleteQuietly,
  ensurePath,
  isCode,
  joinPath,
  newGuid,
  PROTECTED_MARK,
  protectedName,
  RETRIES_MAX,
  retryOnLoss,
  sameSession,
} from './znodes.js'

export interface ProtectedCreateOptions {
  dir: string
  /** The name after the protected mark, e.g. 'lock-' (the server appends the sequence). */
  prefix: string
  data?: Data | undefined
  mode: CreateMode
  /** For the TTL modes. */
  ttlMs?: number | undefined
  /** Mode of missing parents: containers for lock-like directories. */
  parentMode?: CreateMode | undefined
  ctx: WaitContext
  end?: EndSource | undefined
  /** Set on the created node by the exists that reads its Stat back (protectedCreate only). */
  watch?: Watcher | undefined
}

export interface CreatedNode {
  path: string
  name: string
  stat: Stat
}

async function findByGuid(zk: Client, dir: string, guid: string): Promise<string | undefined> {
  const mark = `${PROTECTED_MARK}${guid}-`
  const found = (await childrenOrEmpty(zk, dir)).find((c) => c.startsWith(mark))
  return found === undefined ? undefined : joinPath(dir, found)
}

/** Deletes every node of `dir` that carries `guid` (best effort). */
export async function deleteByGuid(zk: Client, dir: string, guid: string): Promise<void> {
  try {
    const path = await findByGuid(zk, dir, guid)
    if (path !== undefined) await deleteQuietly(zk, path)
  } catch {
    // Best effort: an ephemeral goes with its session anyway.
  }
}

/**
 * Sends the create of `<dir>/<protected name>`, bounded by the call's
 * deadline, abort and end; a create given up on is deleted as soon as it
 * lands (or looked for by its GUID and deleted, if its outcome is unknown).
 */
function createBounded(zk: Client, o: ProtectedCreateOptions, guid: string): Promise<string> {
  const abandon = (p: Promise<string>): void => {
    void p.then(
      (path) => deleteQuietly(zk, path).catch(() => {}),
      () => deleteByGuid(zk, o.dir, guid),
    )
  }
  const path = joinPath(o.dir, protectedName(guid, o.prefix))
  const create = zk.create(path, o.data, { mode: o.mode, ttlMs: o.ttlMs })
  return bounded(create, o.ctx, o.end, `create in ${o.dir}`, abandon)
}

/** One create attempt: the path, or undefined when the attempt should be repeated. */
async function attempt(zk: Client, o: ProtectedCreateOptions, guid: string): Promise<string | undefined> {
  try {
    return await createBounded(zk, o, guid)
  } catch (err) {
    if (isCode(err, ErrorCode.CONNECTION_LOSS)) return await findByGuid(zk, o.dir, guid)
    if (isCode(err, ErrorCode.NO_NODE)) {
      await ensurePath(zk, o.dir, o.parentMode ?? 'persistent', true)
      return undefined
    }
    throw err
  }
}

/**
 * A protected sequential node that others may delete as soon as it exists
 * (a queue item). Gone is not "never created" here: a consumer may have
 * taken it already. So a create that succeeded is final (its node is not
 * looked at again), and after CONNECTION_LOSS the node is looked for by its
 * GUID once: found, it is the result; not found, the outcome cannot be known
 * and the caller gets CONNECTION_LOSS instead of a second copy. (Found by
 * the chaos harness: `Queue.put` made an item twice when a consumer took it
 * before the put's existence check, which then created it again.)
 */
export async function protectedCreateConsumable(zk: Client, o: ProtectedCreateOptions): Promise<string> {
  const guid = newGuid()
  for (let i = 0; i < RETRIES_MAX; i++) {
    checkContext(o.ctx, o.end, `create in ${o.dir}`, o.dir)
    try {
      return await createBounded(zk, o, guid)
    } catch (err) {
      if (isCode(err, ErrorCode.NO_NODE)) {
        // Certain: nothing was created. Make the directory and try again.
        await ensurePath(zk, o.dir, o.parentMode ?? 'persistent', true)
        continue
      }
      if (!isCode(err, ErrorCode.CONNECTION_LOSS)) throw err
      const found = await retryOnLoss(() => findByGuid(zk, o.dir, guid))
      if (found !== undefined) return found
      throw new ZkError(
        ErrorCode.CONNECTION_LOSS,
        o.dir,
        `CONNECTION_LOSS: the create in ${o.dir} may have happened (no node with its GUID is there now: it may have been taken already); it was not made again`,
      )
    }
  }
  throw new ZkError(ErrorCode.CONNECTION_LOSS, o.dir, `CONNECTION_LOSS: could not create a node in ${o.dir}`)
}

/** Creates a protected sequential node in `o.dir` and returns it with its Stat. */
export async function protectedCreate(zk: Client, o: ProtectedCreateOptions): Promise<CreatedNode> {
  const guid = newGuid()
  const ephemeral = o.mode === 'ephemeral' || o.mode === 'ephemeralSequential'
  for (let i = 0; i < RETRIES_MAX; i++) {
    checkContext(o.ctx, o.end, `create in ${o.dir}`, o.dir)
    const path = await attempt(zk, o, guid)
    if (path === undefined) continue
    let stat: Stat | null
    try {
      stat = await retryOnLoss(() => zk.exists(path, { watch: o.watch }))
    } catch (err) {
      await deleteByGuid(zk, o.dir, guid)
      throw err
    }
    if (stat === null) continue
    if (ephemeral && !sameSession(stat.ephemeralOwner, zk.sessionId)) {
      await deleteQuietly(zk, path).catch(() => {})
      throw new ZkError(
        ErrorCode.SESSION_EXPIRED,
        path,
        `SESSION_EXPIRED: ${path} is owned by session ${stat.ephemeralOwner}, not ${zk.sessionId}`,
      )
    }
    return { path, name: path.slice(path.lastIndexOf('/') + 1), stat }
  }
  throw new ZkError(ErrorCode.CONNECTION_LOSS, o.dir, `CONNECTION_LOSS: could not create a node in ${o.dir}`)
}
