/**
 * prep: a write request + the current state (tree + outstanding changes)
 * -> a Txn, with every check ZooKeeper's PrepRequestProcessor makes, in its
 * order. A user error becomes an `error` Txn carrying the ErrorCode; prep
 * never throws for one. The caller decides its fate: TreeDb.prep answers a
 * plain failed write at once, with no zxid (its reply is held until the
 * Txns prepped before it are applied: server/request/write-router.ts); an
 * exactly-once write's failure is logged as its error Txn, so a retry finds
 * the answer.
 *
 * Invariants: pure (reads the view, never mutates it); the Txn carries
 * absolute values (final path, new versions, the parent's new stored
 * cversion, the ephemerals a closeSession removes); a failed multi uses no
 * sequence number and has per-op results (OK…, code, RUNTIME_INCONSISTENCY…).
 * Must not import anything but shared/ and server/txn/.
 */
import { ErrorCode } from '../../shared/errors.js'
import {
  CreateFlag,
  isEphemeralMode,
  isSequentialMode,
  isTtlMode,
  Perms,
  TTL_MS_MAX,
} from '../../shared/opcodes.js'
import { parentPath, pathError, sequenceSuffix } from '../../shared/paths.js'
import type { ZnodeData } from '../../shared/records.js'
import { checkAcl, fixupAcl } from './acl.js'
import { OutstandingChanges } from './outstanding-changes.js'
import type { PrepNode, PrepView } from './prep-view.js'
import type {
  CreateRequest,
  MultiOpRequest,
  MultiRequest,
  PrepContext,
  PrepRequest,
  ReapRequest,
  SetAclRequest,
} from './request.js'
import { type CreateTxn, type SubTxn, type Txn, type TxnBody, withHeader } from './txn.js'

/** Largest znode data: exactly 1 MiB is accepted, one byte more is BAD_ARGUMENTS. */
export const DATA_BYTES_MAX = 1024 * 1024

/** Paths ZooKeeper never lets a client delete (DataTree.isSpecialPath). */
const SPECIAL_PATHS: ReadonlySet<string> = new Set([
  '/',
  '/zookeeper',
  '/zookeeper/quota',
  '/zookeeper/config',
])

type Outcome<T> = T | ErrorCode

function failed<T>(x: Outcome<T>): x is ErrorCode {
  return typeof x === 'string'
}

/** ZooKeeper's checkAndIncVersion: -1 matches any; the next version skips -1 (ZOOKEEPER-4743). */
function checkAndIncVersion(current: number, expected: number): Outcome<number> {
  if (expected !== -1 && expected !== current) return ErrorCode.BAD_VERSION
  const next = (current + 1) | 0
  return next === -1 ? 0 : next
}

/** Preps a request against a view (pure). Callers pipelining requests use prepAndRecord. */
export function prep(req: PrepRequest, view: PrepView, ctx: PrepContext): Txn {
  return withHeader(prepBody(req, view, ctx), ctx)
}

/** Preps against the outstanding changes and records the Txn's effects there. */
export function prepAndRecord(req: PrepRequest, changes: OutstandingChanges, ctx: PrepContext): Txn {
  const txn = prep(req, changes, ctx)
  changes.record(txn)
  return txn
}

function prepBody(req: PrepRequest, view: PrepView, ctx: PrepContext): TxnBody {
  switch (req.type) {
    case 'createSession':
      if (!Number.isSafeInteger(req.timeoutMs) || req.timeoutMs <= 0) return errorTxn(ErrorCode.BAD_ARGUMENTS)
      // The id is the leader's to choose; a clash is a bug upstream, refused rather than merged.
      if (view.hasSession(ctx.sessionId)) return errorTxn(ErrorCode.RUNTIME_INCONSISTENCY)
      return { type: 'createSession', timeoutMs: req.timeoutMs }
    case 'closeSession':
      // As in ZooKeeper: no session check (expiry closes sessions it does not own).
      return { type: 'closeSession', paths: [...view.ephemerals(ctx.sessionId)] }
    case 'reap':
      return orError(prepReap(req, view, ctx))
    case 'multi':
      return prepMulti(req, view, ctx)
    case 'setACL':
      return orError(prepSetAcl(req, view, ctx))
    default:
      return orError(prepOp(req, view, ctx))
  }
}

function errorTxn(code: ErrorCode): TxnBody {
  return { type: 'error', code }
}

function orError(x: Outcome<TxnBody>): TxnBody {
  return failed(x) ? errorTxn(x) : x
}

/** Multi: each op against a scratch overlay; all or nothing. */
function prepMulti(req: MultiRequest, view: PrepView, ctx: PrepContext): TxnBody {
  const scratch = new OutstandingChanges(view)
  const hdr = { zxid: ctx.zxid, sessionId: ctx.sessionId, timeMs: ctx.timeMs }
  const ops: SubTxn[] = []
  for (let i = 0; i < req.ops.length; i++) {
    const sub = prepOp(req.ops[i]!, scratch, ctx)
    if (failed(sub)) {
      const results = req.ops.map((_, j) =>
        j < i ? ErrorCode.OK : j === i ? sub : ErrorCode.RUNTIME_INCONSISTENCY,
      )
      return { type: 'error', code: sub, results }
    }
    ops.push(sub)
    scratch.recordBody(sub, hdr)
  }
  return { type: 'multi', ops }
}

/** The ops allowed in a multi (also valid alone). */
function prepOp(req: MultiOpRequest, view: PrepView, ctx: PrepContext): Outcome<SubTxn> {
  const op = req as { type: string }
  if (op.type !== 'create' && op.type !== 'delete' && op.type !== 'setData' && op.type !== 'check')
    return ErrorCode.BAD_ARGUMENTS
  if (!sessionLive(view, ctx)) return ErrorCode.SESSION_EXPIRED
  switch (req.type) {
    case 'create':
      return prepCreate(req, view, ctx)
    case 'delete':
      return prepDelete(req.path, req.version, view, ctx)
    case 'setData': {
      if (pathError(req.path) !== null) return ErrorCode.BAD_ARGUMENTS
      if (!dataFits(req.data, ctx)) return ErrorCode.BAD_ARGUMENTS
      const node = lookup(view, req.path, Perms.WRITE, ctx)
      if (failed(node)) return node
      const version = checkAndIncVersion(node.version, req.version)
      if (failed(version)) return version
      return { type: 'setData', path: req.path, data: req.data, version }
    }
    case 'check': {
      if (pathError(req.path) !== null) return ErrorCode.BAD_ARGUMENTS
      const node = lookup(view, req.path, Perms.READ, ctx)
      if (failed(node)) return node
      if (req.version !== -1 && req.version !== node.version) return ErrorCode.BAD_VERSION
      return { type: 'check', path: req.path, version: node.version }
    }
  }
}

/** The writing session is in the tree, or a local session (server/txn/request.ts, PrepContext.localSession). */
function sessionLive(view: PrepView, ctx: PrepContext): boolean {
  return ctx.localSession === true || view.hasSession(ctx.sessionId)
}

/** null (no data) fits; bytes up to the limit do. */
function dataFits(data: ZnodeData, ctx: PrepContext): boolean {
  if (data === null) return true
  return data instanceof Uint8Array && data.length <= (ctx.dataBytesMax ?? DATA_BYTES_MAX)
}

/** The znode, if it exists and the caller holds `perm` on it. */
function lookup(view: PrepView, path: string, perm: number, ctx: PrepContext): Outcome<PrepNode> {
  const node = view.nodeMeta(path)
  if (node === undefined) return ErrorCode.NO_NODE
  if (!checkAcl(node.acl, perm, ctx.authIds, ctx.superDigest)) return ErrorCode.NO_AUTH
  return node
}

/** ZooKeeper's EphemeralType.validateTTL: TTL modes need 0 < ttl <= 2^40-1; other modes must not have one. */
function ttlValid(req: CreateRequest): boolean {
  const ttl = req.ttlMs
  if (isTtlMode(req.mode))
    return ttl !== undefined && Number.isSafeInteger(ttl) && ttl > 0 && ttl <= TTL_MS_MAX
  return ttl === undefined || ttl < 0
}

function prepCreate(req: CreateRequest, view: PrepView, ctx: PrepContext): Outcome<CreateTxn> {
  if (!Object.hasOwn(CreateFlag, req.mode) || !ttlValid(req)) return ErrorCode.BAD_ARGUMENTS
  // An ephemeral's owner must be in the tree (a local session is upgraded before its first one).
  if (isEphemeralMode(req.mode) && !view.hasSession(ctx.sessionId))
    return ErrorCode.EPHEMERAL_ON_LOCAL_SESSION
  if (!dataFits(req.data, ctx)) return ErrorCode.BAD_ARGUMENTS
  const sequential = isSequentialMode(req.mode)
  if (pathError(req.path, sequential) !== null) return ErrorCode.BAD_ARGUMENTS
  const acl = fixupAcl(req.acl, ctx.authIds, ctx.aclEntriesMax)
  if (acl === undefined) return ErrorCode.INVALID_ACL
  const parentName = parentPath(req.path)
  const parent = lookup(view, parentName, Perms.CREATE, ctx)
  if (failed(parent)) return parent
  // The suffix is the parent's stored cversion before this create (PrepRequestProcessor).
  const path = sequential ? req.path + sequenceSuffix(parent.cversion) : req.path
  if (pathError(path) !== null) return ErrorCode.BAD_ARGUMENTS
  if (view.nodeMeta(path) !== undefined) return ErrorCode.NODE_EXISTS
  if (parent.kind === 'ephemeral') return ErrorCode.NO_CHILDREN_FOR_EPHEMERALS
  return {
    type: 'create',
    path,
    data: req.data,
    acl,
    mode: req.mode,
    ttlMs: isTtlMode(req.mode) ? req.ttlMs! : 0,
    parentCversion: (parent.cversion + 1) | 0,
  }
}

function prepDelete(path: string, version: number, view: PrepView, ctx: PrepContext): Outcome<SubTxn> {
  if (pathError(path) !== null || SPECIAL_PATHS.has(path)) return ErrorCode.BAD_ARGUMENTS
  const parent = lookup(view, parentPath(path), Perms.DELETE, ctx)
  if (failed(parent)) return parent
  const node = view.nodeMeta(path)
  if (node === undefined) return ErrorCode.NO_NODE
  const next = checkAndIncVersion(node.version, version)
  if (failed(next)) return next
  if (node.numChildren > 0) return ErrorCode.NOT_EMPTY
  return { type: 'delete', path }
}

function prepSetAcl(req: SetAclRequest, view: PrepView, ctx: PrepContext): Outcome<TxnBody> {
  if (!sessionLive(view, ctx)) return ErrorCode.SESSION_EXPIRED
  if (pathError(req.path) !== null) return ErrorCode.BAD_ARGUMENTS
  const acl = fixupAcl(req.acl, ctx.authIds, ctx.aclEntriesMax)
  if (acl === undefined) return ErrorCode.INVALID_ACL
  const node = lookup(view, req.path, Perms.ADMIN, ctx)
  if (failed(node)) return node
  const aversion = checkAndIncVersion(node.aversion, req.version)
  if (failed(aversion)) return aversion
  return { type: 'setACL', path: req.path, acl, aversion }
}

/**
 * deleteContainer: re-checks eligibility at prep time (the candidate list
 * the leader acted on may be stale): a container that had a child and has
 * none, or a childless TTL znode unchanged for longer than its TTL.
 * No session or ACL check: the server itself asks.
 */
function prepReap(req: ReapRequest, view: PrepView, ctx: PrepContext): Outcome<TxnBody> {
  if (pathError(req.path) !== null || SPECIAL_PATHS.has(req.path)) return ErrorCode.BAD_ARGUMENTS
  const node = view.nodeMeta(req.path)
  if (node === undefined) return ErrorCode.NO_NODE
  if (node.numChildren > 0) return ErrorCode.NOT_EMPTY
  const eligible =
    (node.kind === 'container' && node.cversion !== 0) ||
    (node.kind === 'ttl' && ctx.timeMs - node.mtime > node.ttlMs)
  // ZooKeeper answers BadVersion for a znode that is not (or no longer) a candidate.
  if (!eligible) return ErrorCode.BAD_VERSION
  return { type: 'deleteContainer', path: req.path }
}
