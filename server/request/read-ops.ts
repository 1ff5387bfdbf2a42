/**
 * Reads and session-local requests, served by the server the client is
 * connected to, from its own tree: exists, getData, getChildren(2),
 * getACL, getEphemerals, getAllChildrenNumber, whoAmI, multiRead, ping,
 * auth, setWatches(2), Conclave's resumeWatches, addWatch,
 * removeWatches/checkWatches.
 *
 * A watch is registered before the reply is sent, so a client never misses
 * a change that follows the data it read. A child list too large for one
 * packet (over frameBytesMax, which the SDK's default limit matches) is
 * refused with MARSHALLING_ERROR before any watch is set: sent, it would
 * break the client's connection, and it would again after every retry
 * (ZooKeeper's "Packet len is out of range").
 */
import { createHash } from 'node:crypto'
import type { Id } from '../../shared/acl.js'
import { ErrorCode } from '../../shared/errors.js'
import { utf8Decode } from '../../shared/jute.js'
import {
  AddWatchMode,
  ConclaveEventType,
  ConclaveOpCode,
  EventType,
  OpCode,
  Perms,
} from '../../shared/opcodes.js'
import { pathError } from '../../shared/paths.js'
import type {
  ChildrenPageRequest,
  MultiResult,
  Request,
  SetWatchesRequest,
  ZnodeData,
} from '../../shared/records.js'
import type { WireStat } from '../../shared/stat.js'
import { CONFIG_NODE, type TreeDb } from '../state/tree-db.js'
import type { ChangeRing } from '../watch/change-ring.js'
import { planResume, type ResumedWatch } from '../watch/watch-resume.js'
import { EVENT_TYPE, type WatchKind, type WatchTable } from '../watch/watch-table.js'
import type { ClientHandler, Reply } from './client-handler.js'

export interface ReadContext {
  db: TreeDb
  watches: WatchTable<ClientHandler>
  watchesPerSessionMax: number
  /** Recent changes, replayed to watches that resume. */
  watchHistory: ChangeRing
  watchResumesPerConnectionMax: number
  resumeStats: { resumed: number; compacted: number; replayedEvents: number }
  /** Identities (ip, digest ids from addAuth, super) one connection may hold. */
  authIdsPerConnectionMax: number
  superDigest: string | undefined
  /** The largest packet a reply may be (the server's frameBytesMax). */
  replyBytesMax: number
  /** The most names a getChildrenPage may ask for. */
  childrenPageMax: number
  /**
   * /zookeeper/config's data until a reconfig's entry is applied: the
   * membership's committed config (the config file's, or the one the leader
   * gave), undefined standalone.
   */
  staticConfigData(): Uint8Array | undefined
}

/** A node's data and Stat as reads show them: /zookeeper/config shows the static config until a reconfig. */
function shown(ctx: ReadContext, path: string, node: { data: ZnodeData; stat: WireStat }) {
  if (path !== CONFIG_NODE || (node.data?.length ?? 0) > 0) return node
  const data = ctx.staticConfigData()
  if (data === undefined) return node
  return { data, stat: { ...node.stat, dataLength: data.length } }
}

/** Room in a getChildren2 reply for everything but the names: reply header, list length, Stat. */
const CHILDREN_REPLY_OVERHEAD_BYTES = 16 + 4 + 80

/** Whether a getChildren(2) reply listing `names` fits in `max` bytes (each name: a 4-byte length and its UTF-8). */
export function childrenFit(names: readonly string[], max: number): boolean {
  let bound = CHILDREN_REPLY_OVERHEAD_BYTES
  // UTF-8 takes at most 3 bytes per UTF-16 unit: a cheap bound first, exact lengths only near the limit.
  for (const n of names) bound += 4 + 3 * n.length
  if (bound <= max) return true
  let exact = CHILDREN_REPLY_OVERHEAD_BYTES
  for (const n of names) {
    exact += 4 + Buffer.byteLength(n, 'utf8')
    if (exact > max) return false
  }
  return exact <= max
}

const fail = (err: ErrorCode, zxid: number): Reply => ({ err, zxid })

/** ZooKeeper's digest id: `user:base64(sha1("user:password"))`. */
export function digestId(credentials: string): string {
  const user = credentials.slice(0, Math.max(0, credentials.indexOf(':')))
  return `${user}:${createHash('sha1').update(credentials, 'utf8').digest('base64')}`
}

function addWatch(ctx: ReadContext, h: ClientHandler, kind: WatchKind, path: string): boolean {
  if (ctx.watches.countFor(h) >= ctx.watchesPerSessionMax && !ctx.watches.has(kind, path, h)) return false
  ctx.watches.add(kind, path, h)
  return true
}

function canRead(ctx: ReadContext, h: ClientHandler, path: string, perm: number = Perms.READ): boolean {
  const node = ctx.db.get(path)
  return node === undefined || ctx.db.canAccess(node.acl, perm, h.authIds)
}

export function serveRead(ctx: ReadContext, h: ClientHandler, req: Request): Reply {
  const { db } = ctx
  const zxid = db.lastZxid
  if ('path' in req && req.op !== OpCode.removeWatches && req.op !== OpCode.checkWatches) {
    const prefixOk = req.op === OpCode.getEphemerals && req.path === ''
    if (!prefixOk && pathError(req.path) !== null) return fail(ErrorCode.BAD_ARGUMENTS, zxid)
  }
  switch (req.op) {
    case OpCode.ping:
      return { err: ErrorCode.OK, zxid, body: { op: OpCode.ping } }
    case OpCode.exists: {
      const node = db.get(req.path)
      if (req.watch && !addWatch(ctx, h, 'data', req.path)) return fail(ErrorCode.THROTTLED_OP, zxid)
      if (node === undefined) return fail(ErrorCode.NO_NODE, zxid)
      return { err: ErrorCode.OK, zxid, body: { op: req.op, stat: shown(ctx, req.path, node).stat } }
    }
    case OpCode.getData: {
      const node = db.get(req.path)
      if (node === undefined) return fail(ErrorCode.NO_NODE, zxid)
      if (!db.canAccess(node.acl, Perms.READ, h.authIds)) return fail(ErrorCode.NO_AUTH, zxid)
      if (req.watch && !addWatch(ctx, h, 'data', req.path)) return fail(ErrorCode.THROTTLED_OP, zxid)
      const { data, stat } = shown(ctx, req.path, node)
      return { err: ErrorCode.OK, zxid, body: { op: req.op, data, stat } }
    }
    case OpCode.getChildren:
    case OpCode.getChildren2: {
      const node = db.get(req.path)
      const children = db.children(req.path)
      if (node === undefined || children === undefined) return fail(ErrorCode.NO_NODE, zxid)
      if (!db.canAccess(node.acl, Perms.READ, h.authIds)) return fail(ErrorCode.NO_AUTH, zxid)
      if (!childrenFit(children, ctx.replyBytesMax)) {
        h.warnReplyTooLarge(req.op, req.path, `${children.length} children`)
        return fail(ErrorCode.MARSHALLING_ERROR, zxid)
      }
      if (req.watch && !addWatch(ctx, h, 'child', req.path)) return fail(ErrorCode.THROTTLED_OP, zxid)
      if (req.op === OpCode.getChildren) return { err: ErrorCode.OK, zxid, body: { op: req.op, children } }
      return { err: ErrorCode.OK, zxid, body: { op: req.op, children, stat: node.stat } }
    }
    case OpCode.getACL: {
      const node = db.get(req.path)
      if (node === undefined) return fail(ErrorCode.NO_NODE, zxid)
      const ok =
        db.canAccess(node.acl, Perms.READ, h.authIds) || db.canAccess(node.acl, Perms.ADMIN, h.authIds)
      if (!ok) return fail(ErrorCode.NO_AUTH, zxid)
      return { err: ErrorCode.OK, zxid, body: { op: req.op, acl: [...node.acl], stat: node.stat } }
    }
    case OpCode.getEphemerals: {
      const prefix = req.path === '/' ? '' : req.path
      const paths = db.ephemerals(h.sessionId).filter((p) => p.startsWith(prefix))
      return { err: ErrorCode.OK, zxid, body: { op: req.op, paths } }
    }
    case OpCode.getAllChildrenNumber: {
      if (db.get(req.path) === undefined) return fail(ErrorCode.NO_NODE, zxid)
      if (!canRead(ctx, h, req.path)) return fail(ErrorCode.NO_AUTH, zxid)
      return { err: ErrorCode.OK, zxid, body: { op: req.op, total: db.descendantCount(req.path) } }
    }
    case OpCode.whoAmI:
      return {
        err: ErrorCode.OK,
        zxid,
        // As ZooKeeper's providers name users: a digest id shows only its user name.
        body: {
          op: req.op,
          clientInfo: h.authIds.map((i) => ({
            authScheme: i.scheme,
            user: i.scheme === 'digest' ? i.id.slice(0, Math.max(0, i.id.indexOf(':'))) : i.id,
          })),
        },
      }
    case OpCode.multiRead:
      return {
        err: ErrorCode.OK,
        zxid,
        body: { op: req.op, results: req.ops.map((o) => multiReadOne(ctx, h, o)) },
      }
    case OpCode.setWatches:
    case OpCode.setWatches2:
      return setWatches(ctx, h, req)
    case ConclaveOpCode.resumeWatches:
      return resumeWatches(ctx, h, req)
    case OpCode.addWatch: {
      if (req.mode !== AddWatchMode.persistent && req.mode !== AddWatchMode.persistentRecursive)
        return fail(ErrorCode.BAD_ARGUMENTS, zxid)
      const kind = req.mode === AddWatchMode.persistent ? 'persistent' : 'persistentRecursive'
      if (!addWatch(ctx, h, kind, req.path)) return fail(ErrorCode.THROTTLED_OP, zxid)
      return { err: ErrorCode.OK, zxid, body: { op: req.op } }
    }
    case OpCode.removeWatches:
    case OpCode.checkWatches:
      return removeWatches(ctx, h, req.op, req.path, req.type)
    case ConclaveOpCode.getChildrenPage:
      return childrenPage(ctx, h, req)
    default:
      return fail(ErrorCode.UNIMPLEMENTED, zxid)
  }
}

/**
 * A page of children in name order (ConclaveOpCode.getChildrenPage). Bad
 * input (maxCount outside 1..childrenPageMax, negative maxBytes, an `after`
 * that could not be a name: with a '/', or '.'/'..') is BAD_ARGUMENTS and
 * sets no watch. The names fit in maxBytes (0: no limit) and in a reply
 * packet, but a page holds at least one name while any is left. The watch,
 * if asked for, is a child watch set with this page.
 */
function childrenPage(ctx: ReadContext, h: ClientHandler, req: ChildrenPageRequest): Reply {
  const { db } = ctx
  const zxid = db.lastZxid
  const { after, maxCount, maxBytes } = req
  if (maxCount < 1 || maxCount > ctx.childrenPageMax || maxBytes < 0)
    return fail(ErrorCode.BAD_ARGUMENTS, zxid)
  if (after.includes('/') || after === '.' || after === '..') return fail(ErrorCode.BAD_ARGUMENTS, zxid)
  const node = db.get(req.path)
  if (node === undefined) return fail(ErrorCode.NO_NODE, zxid)
  if (!db.canAccess(node.acl, Perms.READ, h.authIds)) return fail(ErrorCode.NO_AUTH, zxid)
  const room = ctx.replyBytesMax - PAGE_REPLY_OVERHEAD_BYTES
  const page = db.childrenPage(req.path, after, maxCount, maxBytes === 0 ? room : Math.min(maxBytes, room))
  if (page === undefined) return fail(ErrorCode.NO_NODE, zxid)
  if (req.watch && !addWatch(ctx, h, 'child', req.path)) return fail(ErrorCode.THROTTLED_OP, zxid)
  return {
    err: ErrorCode.OK,
    zxid,
    body: { op: req.op, children: page.names, more: page.more, stat: node.stat },
  }
}

/** Room in a getChildrenPage reply for everything but the names: header, list length, more, Stat. */
const PAGE_REPLY_OVERHEAD_BYTES = 16 + 4 + 1 + 80

function multiReadOne(ctx: ReadContext, h: ClientHandler, o: { op: number; path: string }): MultiResult {
  if (pathError(o.path) !== null) return { type: OpCode.error, err: -8 }
  const node = ctx.db.get(o.path)
  if (node === undefined) return { type: OpCode.error, err: -101 }
  if (!ctx.db.canAccess(node.acl, Perms.READ, h.authIds)) return { type: OpCode.error, err: -102 }
  if (o.op === OpCode.getData) {
    // Named, not spread: a NodeView's data and stat are getters, which a spread does not copy.
    const { data, stat } = shown(ctx, o.path, node)
    return { type: OpCode.getData, data, stat }
  }
  return { type: OpCode.getChildren, children: ctx.db.children(o.path) ?? [] }
}

/** Watcher types of removeWatches: 1 children, 2 data, 3 any, 4 persistent, 5 persistentRecursive. */
const KINDS_BY_TYPE: Record<number, WatchKind[]> = {
  1: ['child'],
  2: ['data'],
  3: ['child', 'data', 'persistent', 'persistentRecursive'],
  4: ['persistent'],
  5: ['persistentRecursive'],
}

function removeWatches(ctx: ReadContext, h: ClientHandler, op: number, path: string, type: number): Reply {
  const zxid = ctx.db.lastZxid
  if (pathError(path) !== null) return fail(ErrorCode.BAD_ARGUMENTS, zxid)
  const kinds = KINDS_BY_TYPE[type]
  if (kinds === undefined) return fail(ErrorCode.BAD_ARGUMENTS, zxid)
  let found = false
  for (const k of kinds) {
    if (op === OpCode.checkWatches) found ||= ctx.watches.has(k, path, h)
    else found = ctx.watches.remove(k, path, h) || found
  }
  if (!found) return fail(ErrorCode.NO_WATCHER, zxid)
  return { err: ErrorCode.OK, zxid, body: { op: op as typeof OpCode.removeWatches } }
}

/**
 * Checked whole before anything is set or sent (issue 15): every path
 * valid, and room for every watch (a path that fires at once takes none,
 * but is counted: the check stays one pass). An error, or undefined.
 */
function checkSetWatches(ctx: ReadContext, h: ClientHandler, req: SetWatchesRequest): ErrorCode | undefined {
  const lists = [
    req.dataWatches,
    req.existWatches,
    req.childWatches,
    req.persistentWatches,
    req.persistentRecursiveWatches,
  ]
  let paths = 0
  for (const list of lists) {
    for (const path of list) if (pathError(path) !== null) return ErrorCode.BAD_ARGUMENTS
    paths += list.length
  }
  if (ctx.watches.countFor(h) + paths > ctx.watchesPerSessionMax) return ErrorCode.THROTTLED_OP
  return undefined
}

/**
 * Re-registers a reconnecting client's watches, firing at once whatever
 * changed since its last zxid (ZooKeeper's DataTree.setWatches rules).
 * Persistent watches are re-added; their missed events are not replayed
 * (resumeWatches does that).
 */
function setWatches(ctx: ReadContext, h: ClientHandler, req: SetWatchesRequest): Reply {
  const zxid = ctx.db.lastZxid
  const err = checkSetWatches(ctx, h, req)
  if (err !== undefined) return fail(err, zxid)
  registerAsSetWatches(ctx, h, req)
  return { err: ErrorCode.OK, zxid, body: { op: req.op } }
}

function registerAsSetWatches(ctx: ReadContext, h: ClientHandler, req: SetWatchesRequest): void {
  const { db } = ctx
  const rel = req.relativeZxid
  const zxid = db.lastZxid
  const send = (type: number, path: string) => h.notify(type, path, zxid)
  for (const path of req.dataWatches) {
    const node = db.get(path)
    if (node === undefined) send(EventType.nodeDeleted, path)
    else if (node.stat.mzxid > rel) send(EventType.nodeDataChanged, path)
    else addWatch(ctx, h, 'data', path)
  }
  for (const path of req.existWatches) {
    if (db.get(path) !== undefined) send(EventType.nodeCreated, path)
    else addWatch(ctx, h, 'data', path)
  }
  for (const path of req.childWatches) {
    const node = db.get(path)
    if (node === undefined) send(EventType.nodeDeleted, path)
    else if (node.stat.pzxid > rel) send(EventType.nodeChildrenChanged, path)
    else addWatch(ctx, h, 'child', path)
  }
  for (const path of req.persistentWatches) addWatch(ctx, h, 'persistent', path)
  for (const path of req.persistentRecursiveWatches) addWatch(ctx, h, 'persistentRecursive', path)
}

/**
 * Conclave's resumeWatches (ConclaveFeature.resumableWatches): the
 * reconnecting client's watches, and every event they missed since its
 * `relativeZxid` replayed from the history (server/watch/watch-resume.ts),
 * each with its change's zxid, in zxid order, then registered — all in this
 * one synchronous step, so no Txn is applied between the replay and the
 * registration. If the history does not reach back that far, a
 * watchesCompacted notification goes first, then setWatches2's rules apply.
 * A client ahead of this server (it saw a zxid this server has not applied)
 * is refused (CONNECTION_LOSS: it tries another server) rather than given a
 * replay with a hole: the SDK never is, since the server refuses such a
 * session at connect (sessions.ts), and the resume follows the connect.
 */
function resumeWatches(ctx: ReadContext, h: ClientHandler, req: SetWatchesRequest): Reply {
  const zxid = ctx.db.lastZxid
  const err = checkSetWatches(ctx, h, req)
  if (err !== undefined) return fail(err, zxid)
  if (h.watchResumes >= ctx.watchResumesPerConnectionMax) return fail(ErrorCode.THROTTLED_OP, zxid)
  h.watchResumes++
  const from = req.relativeZxid
  if (from > zxid) return fail(ErrorCode.CONNECTION_LOSS, zxid)
  const watches: ResumedWatch[] = []
  for (const path of req.dataWatches) watches.push({ kind: 'data', path })
  for (const path of req.existWatches) watches.push({ kind: 'data', path })
  for (const path of req.childWatches) watches.push({ kind: 'child', path })
  for (const path of req.persistentWatches) watches.push({ kind: 'persistent', path })
  for (const path of req.persistentRecursiveWatches) watches.push({ kind: 'persistentRecursive', path })
  const plan = planResume(ctx.watchHistory, from, watches)
  if (plan.kind === 'compacted') {
    ctx.resumeStats.compacted++
    h.notify(ConclaveEventType.watchesCompacted, '/', zxid)
    registerAsSetWatches(ctx, h, req)
  } else {
    ctx.resumeStats.resumed++
    ctx.resumeStats.replayedEvents += plan.events.length
    for (const ev of plan.events) h.notify(EVENT_TYPE[ev.type], ev.path, ev.zxid)
    for (const w of plan.register) addWatch(ctx, h, w.kind, w.path)
  }
  return { err: ErrorCode.OK, zxid, body: { op: ConclaveOpCode.resumeWatches } }
}

/**
 * addAuth: digest credentials become a digest id (and the super id when they
 * match the configured super digest). `x509` succeeds only on a connection
 * whose TLS client certificate verified (its id is already there, from the
 * handshake; the credentials are ignored, as ZooKeeper's
 * X509AuthenticationProvider ignores them). 'failed' for an unknown scheme
 * or malformed credentials, 'too many' past authIdsPerConnectionMax
 * identities; either way the caller answers AUTH_FAILED and closes.
 */
export function addAuth(
  ctx: ReadContext,
  h: ClientHandler,
  scheme: string,
  auth: Uint8Array,
): 'ok' | 'failed' | 'too many' {
  if (scheme === 'x509') return h.authIds.some((x) => x.scheme === 'x509') ? 'ok' : 'failed'
  if (scheme !== 'digest') return 'failed'
  const text = utf8Decode(auth)
  if (text.indexOf(':') <= 0) return 'failed'
  const id = digestId(text)
  const fresh = (i: Id) => !h.authIds.some((x) => x.scheme === i.scheme && x.id === i.id)
  const ids: Id[] = [{ scheme: 'digest', id }]
  if (ctx.superDigest !== undefined && id === ctx.superDigest) ids.push({ scheme: 'super', id: '' })
  const added = ids.filter(fresh)
  // Every ACL check and forwarded write carries them all, and an `auth` ACL expands to them (issue 15).
  if (h.authIds.length + added.length > ctx.authIdsPerConnectionMax) return 'too many'
  h.authIds.push(...added)
  return 'ok'
}
