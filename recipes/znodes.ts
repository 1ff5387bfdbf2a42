/**
 * znode helpers shared by the recipes: path joining and checking, creating
 * parents, quiet deletes, retrying idempotent requests on CONNECTION_LOSS,
 * sequence-number sorting and Curator's protected names (`_c_<uuid>-prefix`).
 *
 * Invariants: only idempotent requests go through `retryOnLoss`; every retry
 * loop is bounded (RETRIES_MAX); sorting by sequence ignores everything before
 * the 10-digit suffix, so protected and plain names sort together.
 * Imports only ../client/index.js and ../shared/*.js.
 */
import type { Client, CreateMode } from '../client/index.js'
import { ErrorCode, ZkError } from '../client/index.js'
import { isValidPath } from '../shared/paths.js'

/** How many times an idempotent request is retried after CONNECTION_LOSS. */
export const RETRIES_MAX = 20

/** Curator's protected-mode marker: a node name starts `_c_<uuid>-`. */
export const PROTECTED_MARK = '_c_'
const PROTECTED_LENGTH = PROTECTED_MARK.length + 36 + 1

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const utf8 = (s: string): Uint8Array => encoder.encode(s)
export const fromUtf8 = (b: Uint8Array): string => decoder.decode(b)

export function isCode(err: unknown, code: ErrorCode): err is ZkError {
  return ZkError.is(err, code)
}

/** Throws BAD_ARGUMENTS unless `path` is a valid absolute znode path. */
export function checkRecipePath(path: string): string {
  if (!isValidPath(path))
    throw new ZkError(ErrorCode.BAD_ARGUMENTS, path, `BAD_ARGUMENTS: invalid path ${path}`)
  return path
}

/** Throws BAD_ARGUMENTS unless `name` is a usable single node name. */
export function checkNodeName(name: string, what: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('/') || !isValidPath(`/${name}`))
    throw new ZkError(ErrorCode.BAD_ARGUMENTS, undefined, `BAD_ARGUMENTS: invalid ${what} '${String(name)}'`)
  return name
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

/** Runs an idempotent request, retrying it (bounded) when the connection was lost. */
export async function retryOnLoss<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      if (!isCode(err, ErrorCode.CONNECTION_LOSS) || attempt >= RETRIES_MAX) throw err
      // While the client moves to another server every attempt fails at once:
      // back off (25 ms doubling to 1 s, about 15 s in all) so a failover fits.
      await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt)))
    }
  }
}

/**
 * Creates `path` and any missing parent (each as `mode`); an existing node is
 * fine. `afterNoNode`: skip the exists() shortcut, because a create just saw
 * NO_NODE: a container may be queued for deletion, which a create sees before
 * a read does (creates are checked against pending changes, reads are not).
 */
export async function ensurePath(
  zk: Client,
  path: string,
  mode: CreateMode = 'persistent',
  afterNoNode = false,
): Promise<void> {
  if (path === '/') return
  if (!afterNoNode && (await retryOnLoss(() => zk.exists(path))) !== null) return
  const parts = path.split('/').filter((p) => p.length > 0)
  // A container parent may be reaped between two levels: then start again from the top.
  for (let attempt = 1; ; attempt++) {
    try {
      let prefix = ''
      for (const part of parts) {
        prefix = `${prefix}/${part}`
        await createIfAbsent(zk, prefix, mode)
      }
      return
    } catch (err) {
      if (!isCode(err, ErrorCode.NO_NODE) || attempt >= RETRIES_MAX) throw err
    }
  }
}

async function createIfAbsent(zk: Client, path: string, mode: CreateMode): Promise<void> {
  try {
    await retryOnLoss(() => zk.create(path, new Uint8Array(0), { mode }))
  } catch (err) {
    if (!isCode(err, ErrorCode.NODE_EXISTS)) throw err
  }
}

/** Deletes a node, ignoring NO_NODE and a finished session (its ephemerals are gone anyway). */
export async function deleteQuietly(zk: Client, path: string, version = -1): Promise<boolean> {
  try {
    await retryOnLoss(() => zk.delete(path, version))
    return true
  } catch (err) {
    if (isCode(err, ErrorCode.NO_NODE) || isCode(err, ErrorCode.SESSION_EXPIRED)) return false
    throw err
  }
}

/** Bound on a guaranteed delete's attempts (each after a reconnect, or a pause of up to 1 s). */
export const GUARANTEED_ATTEMPTS_MAX = 10_000

/** Whether an error means the session is over (its ephemeral nodes are gone, or will be). */
function sessionOver(err: unknown): boolean {
  return isCode(err, ErrorCode.SESSION_EXPIRED) || isCode(err, ErrorCode.AUTH_FAILED)
}

/** Resolves after `ms` if the client is connected, else once it is connected again or finished. */
function nextChance(zk: Client, ms: number): Promise<void> {
  if (zk.state === 'connected') return new Promise((r) => setTimeout(r, ms))
  // Finished: the next attempt learns it (SESSION_EXPIRED) at once.
  if (zk.state !== 'disconnected' && zk.state !== 'connecting') return Promise.resolve()
  return new Promise((resolve) => {
    const off = zk.on('state', (s) => {
      if (s === 'disconnected' || s === 'connecting') return
      off()
      resolve()
    })
  })
}

/**
 * Curator's guaranteed delete: deletes `path` (a node of this session), and
 * when the connection is lost keeps trying, after every reconnect (or a
 * short pause while connected), until the node is gone or the session is
 * over (an ephemeral node then goes with it). Resolves then; rejects only
 * for an error a retry cannot fix (NO_AUTH, ...). A retried delete that
 * meets NO_NODE means an earlier attempt (or the session's end) removed it;
 * sequential names are never reused, so it cannot delete another's node.
 */
export async function deleteGuaranteed(zk: Client, path: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await zk.delete(path)
      return
    } catch (err) {
      if (isCode(err, ErrorCode.NO_NODE) || sessionOver(err)) return
      if (!isCode(err, ErrorCode.CONNECTION_LOSS) || attempt >= GUARANTEED_ATTEMPTS_MAX) throw err
    }
    await nextChance(zk, Math.min(1000, 25 * 2 ** Math.min(attempt, 6)))
  }
}

/**
 * Removes a node this session created to hold or wait for something (a
 * lock, a lease, a candidacy, a membership). Resolves once it is deleted,
 * or at once when the delete meets CONNECTION_LOSS: the delete then goes on
 * in the background (deleteGuaranteed), so the node cannot outlive the
 * connection's return and block everyone behind it (CURATOR-678). Rejects
 * only for an error a retry cannot fix.
 */
export async function releaseNode(zk: Client, path: string): Promise<void> {
  try {
    await zk.delete(path)
  } catch (err) {
    if (isCode(err, ErrorCode.NO_NODE) || sessionOver(err)) return
    if (!isCode(err, ErrorCode.CONNECTION_LOSS)) throw err
    void deleteGuaranteed(zk, path).catch(() => {
      // Not retryable (e.g. NO_AUTH on the parent): nothing more can be done; the session's end removes it.
    })
  }
}

/**
 * getChildren that treats a missing directory as empty. With a watch, the
 * watch also covers a directory that does not exist yet: ZooKeeper sets no
 * children watch when getChildren fails with NO_NODE, so a waiter that looked
 * before the first producer created the directory would never be woken (a
 * consumer that starts first waited out its whole timeout). Then an exists
 * watch, with the same watcher, fires when the directory is created; if it
 * was created between the two reads, the directory is listed again.
 */
export async function childrenOrEmpty(zk: Client, dir: string, watch?: () => void): Promise<string[]> {
  for (let i = 0; i < RETRIES_MAX; i++) {
    try {
      return await retryOnLoss(() => zk.getChildren(dir, watch === undefined ? undefined : { watch }))
    } catch (err) {
      if (!isCode(err, ErrorCode.NO_NODE)) throw err
    }
    if (watch === undefined) return []
    if ((await retryOnLoss(() => zk.exists(dir, { watch }))) === null) return []
  }
  // Created and removed again and again (a container): the exists watch set last covers it.
  return []
}

/**
 * The sequence number ZooKeeper appended to a name: its last 10 digits. (Past
 * 2^31 - 1 creates in one parent the counter wraps negative; we do not sort those.)
 */
export function sequenceOf(name: string): number {
  const m = /(\d{10})$/.exec(name)
  return m === null ? Number.NaN : Number(m[1])
}

/** Names sorted by sequence number, then by name; names without one are dropped. */
export function sortBySequence(names: readonly string[]): string[] {
  return names
    .filter((n) => !Number.isNaN(sequenceOf(n)))
    .sort((a, b) => sequenceOf(a) - sequenceOf(b) || (a < b ? -1 : a > b ? 1 : 0))
}

/**
 * The data (UTF-8) of the first candidate under `dir` in sequence order (an
 * election's leader), or null when there is none; read again while the
 * first one vanishes between the listing and the read (bounded).
 */
export async function firstCandidateData(
  zk: Client,
  dir: string,
  isCandidate: (name: string) => boolean,
): Promise<string | null> {
  for (let i = 0; i < RETRIES_MAX; i++) {
    const first = sortBySequence((await childrenOrEmpty(zk, dir)).filter(isCandidate))[0]
    if (first === undefined) return null
    try {
      return fromUtf8((await retryOnLoss(() => zk.getData(joinPath(dir, first)))).data)
    } catch (err) {
      if (!isCode(err, ErrorCode.NO_NODE)) throw err
    }
  }
  throw new ZkError(ErrorCode.SYSTEM_ERROR, dir, 'SYSTEM_ERROR: the candidates kept changing')
}

/** Every candidate's data under `dir`, in sequence order (those gone before they are read left out). */
export async function candidatesData(
  zk: Client,
  dir: string,
  isCandidate: (name: string) => boolean,
): Promise<string[]> {
  const sorted = sortBySequence((await childrenOrEmpty(zk, dir)).filter(isCandidate))
  const reads = sorted.map((n) =>
    retryOnLoss(() => zk.getData(joinPath(dir, n))).then(
      (r) => fromUtf8(r.data),
      (err: unknown) => {
        if (isCode(err, ErrorCode.NO_NODE)) return undefined
        throw err
      },
    ),
  )
  return (await Promise.all(reads)).filter((x): x is string => x !== undefined)
}

export function newGuid(): string {
  return globalThis.crypto.randomUUID()
}

export function protectedName(guid: string, prefix: string): string {
  return `${PROTECTED_MARK}${guid}-${prefix}`
}

export function isProtected(name: string): boolean {
  return (
    name.startsWith(PROTECTED_MARK) && name.length >= PROTECTED_LENGTH && name[PROTECTED_LENGTH - 1] === '-'
  )
}

/** The name without its protected `_c_<uuid>-` prefix. */
export function stripProtected(name: string): string {
  return isProtected(name) ? name.slice(PROTECTED_LENGTH) : name
}

/** Whether two session ids ('0x…' text) are the same session. */
export function sameSession(a: string, b: string): boolean {
  try {
    return BigInt.asUintN(64, BigInt(a)) === BigInt.asUintN(64, BigInt(b))
  } catch {
    return false
  }
}
