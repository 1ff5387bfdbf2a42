/**
 * Client-side validation and request building: everything the SDK checks
 * before sending (paths, data size, versions, create modes, TTL rules, ACL
 * shape, multi ops), and the wire Request records it sends.
 *
 * Invariants: every check failure throws ZkError(BAD_ARGUMENTS, path) and
 * nothing is sent; paths in the built records carry the chroot. Pure.
 * Imports only shared/ and client/types (no node:*).
 */
import type { Acl } from '../shared/acl.js'
import { OPEN_ACL_UNSAFE } from '../shared/acl.js'
import { ErrorCode, ZkError } from '../shared/errors.js'
import { utf8Encode } from '../shared/jute.js'
import {
  CreateFlag,
  type CreateMode,
  isSequentialMode,
  isTtlMode,
  OpCode,
  TTL_MS_MAX,
} from '../shared/opcodes.js'
import { applyChroot, pathError } from '../shared/paths.js'
import type { CreateRequest, MultiRequest, MultiWriteOp } from '../shared/records.js'
import type { CreateOptions, Data, MultiOp } from './types.js'

/** Largest znode data: exactly 1 MiB is accepted, one byte more is BAD_ARGUMENTS. */
export const DATA_BYTES_MAX = 1024 * 1024

const EMPTY = new Uint8Array(0)
const INT32_MAX = 2 ** 31 - 1

export function badArguments(path: string | undefined, why: string): ZkError {
  return new ZkError(
    ErrorCode.BAD_ARGUMENTS,
    path,
    `BAD_ARGUMENTS${path === undefined ? '' : `: ${path}`}: ${why}`,
  )
}

/** Throws unless `path` is a valid client path. */
export function checkPath(path: string, sequential = false): void {
  const why = pathError(path, sequential)
  if (why !== null) throw badArguments(typeof path === 'string' ? path : String(path), why)
}

/** A chroot: a valid absolute path; '/' means none. */
export function normalizeChroot(chroot: string | undefined): string | undefined {
  if (chroot === undefined || chroot === '' || chroot === '/') return undefined
  const why = pathError(chroot)
  if (why !== null) throw badArguments(chroot, `bad chroot: ${why}`)
  return chroot
}

export function toData(data: Data | undefined | null, path: string): Uint8Array {
  let bytes: Uint8Array
  if (data === undefined || data === null) bytes = EMPTY
  else if (typeof data === 'string') bytes = utf8Encode(data)
  else if (data instanceof Uint8Array) bytes = data
  else throw badArguments(path, 'data must be a Uint8Array or a string')
  if (bytes.length > DATA_BYTES_MAX)
    throw badArguments(path, `data is ${bytes.length} bytes, more than the ${DATA_BYTES_MAX} allowed`)
  return bytes
}

/** An expected version: -1 (any) or a non-negative int32. */
export function checkVersion(version: number, path: string): number {
  if (!Number.isInteger(version) || version < -1 || version > INT32_MAX)
    throw badArguments(path, `bad version ${String(version)}`)
  return version
}

export function checkAcl(acl: readonly Acl[], path: string): Acl[] {
  if (!Array.isArray(acl)) throw badArguments(path, 'acl must be an array')
  for (const a of acl) {
    const ok =
      typeof a === 'object' &&
      a !== null &&
      Number.isInteger(a.perms) &&
      a.perms >= 0 &&
      a.perms <= INT32_MAX &&
      typeof a.id === 'object' &&
      a.id !== null &&
      typeof a.id.scheme === 'string' &&
      typeof a.id.id === 'string'
    if (!ok) throw badArguments(path, 'acl entries must be { perms: number, id: { scheme, id } }')
  }
  return acl as Acl[]
}

function createOpCode(mode: CreateMode): CreateRequest['op'] {
  if (mode === 'container') return OpCode.createContainer
  if (isTtlMode(mode)) return OpCode.createTTL
  return OpCode.create
}

/** Builds a create request (server path) from the API's arguments. */
export function buildCreate(
  path: string,
  data: Data | undefined,
  opts: CreateOptions | undefined,
  chroot: string | undefined,
): CreateRequest {
  const mode = opts?.mode ?? 'persistent'
  const flags = (CreateFlag as Record<string, number>)[mode]
  if (typeof mode !== 'string' || flags === undefined || !Object.hasOwn(CreateFlag, mode))
    throw badArguments(path, `unknown create mode ${String(mode)}`)
  checkPath(path, isSequentialMode(mode))
  const ttlMs = opts?.ttlMs
  if (isTtlMode(mode)) {
    if (ttlMs === undefined) throw badArguments(path, `mode ${mode} needs ttlMs`)
    if (!Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > TTL_MS_MAX)
      throw badArguments(path, `ttlMs must be an integer in 1..${TTL_MS_MAX}`)
  } else if (ttlMs !== undefined) {
    throw badArguments(path, `ttlMs is only allowed with the TTL modes, not ${mode}`)
  }
  const acl = opts?.acl === undefined ? (OPEN_ACL_UNSAFE as Acl[]) : checkAcl(opts.acl, path)
  const bytes = toData(data, path)
  return {
    op: createOpCode(mode),
    path: applyChroot(chroot, path),
    data: bytes,
    acl,
    flags,
    ttl: ttlMs ?? 0,
  }
}

/** Throws for delete('/'), which can never succeed. */
export function checkDeletePath(path: string): void {
  checkPath(path)
  if (path === '/') throw badArguments(path, 'the root cannot be deleted')
}

function buildMultiOp(op: MultiOp, chroot: string | undefined): MultiWriteOp {
  if (typeof op !== 'object' || op === null) throw badArguments(undefined, 'multi op must be an object')
  switch (op.op) {
    case 'create':
      return buildCreate(op.path, op.data, op, chroot)
    case 'delete':
      checkDeletePath(op.path)
      return {
        op: OpCode.delete,
        path: applyChroot(chroot, op.path),
        version: checkVersion(op.version ?? -1, op.path),
      }
    case 'setData': {
      checkPath(op.path)
      const data = toData(op.data, op.path)
      const version = checkVersion(op.version ?? -1, op.path)
      return { op: OpCode.setData, path: applyChroot(chroot, op.path), data, version }
    }
    case 'check':
      checkPath(op.path)
      if (op.version === undefined) throw badArguments(op.path, 'check needs a version')
      return {
        op: OpCode.check,
        path: applyChroot(chroot, op.path),
        version: checkVersion(op.version, op.path),
      }
    default:
      throw badArguments(
        (op as { path?: string }).path,
        `unknown multi op ${String((op as { op?: unknown }).op)}`,
      )
  }
}

/** Builds a multi request; the whole multi is refused if any op is invalid. */
export function buildMulti(ops: readonly MultiOp[], chroot: string | undefined): MultiRequest {
  if (!Array.isArray(ops)) throw badArguments(undefined, 'multi takes an array of ops')
  return { op: OpCode.multi, ops: ops.map((op) => buildMultiOp(op, chroot)) }
}

/** Credentials as bytes (a string is UTF-8). */
export function authBytes(scheme: string, credentials: string | Uint8Array): Uint8Array {
  if (typeof scheme !== 'string' || scheme === '')
    throw badArguments(undefined, 'auth scheme must be a string')
  if (typeof credentials === 'string') return utf8Encode(credentials)
  if (credentials instanceof Uint8Array) return credentials
  throw badArguments(undefined, 'auth credentials must be a string or a Uint8Array')
}
