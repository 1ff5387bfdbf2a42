/**
 * The write opcodes, and the one reshaping of a client's write on its way
 * to prep: a decoded wire request (create*, delete, setData, setACL,
 * check, multi, closeSession) becomes the PrepRequest prep takes (the create
 * flags become a mode). Field checks that need no tree (paths, TTL rules,
 * data size) happen in prep; this refuses only what has no PrepRequest
 * shape (an unknown create flag, a container through the wrong opcode).
 */
import { ErrorCode } from '../../shared/errors.js'
import { createModeOfFlag, isEphemeralMode, OpCode } from '../../shared/opcodes.js'
import type { MultiWriteOp, Request } from '../../shared/records.js'
import type { MultiOpRequest, PrepRequest } from '../txn/request.js'

/** Requests that go through the log (prep, propose, commit), in ZooKeeper's sense. */
const WRITE_OPS: ReadonlySet<number> = new Set([
  OpCode.create,
  OpCode.create2,
  OpCode.createContainer,
  OpCode.createTTL,
  OpCode.delete,
  OpCode.setData,
  OpCode.setACL,
  OpCode.check,
  OpCode.multi,
  OpCode.closeSession,
  // Not prepped into a Txn: the leader turns it into a config entry (reconfig.ts).
  OpCode.reconfig,
])

export function isWriteOp(op: number): boolean {
  return WRITE_OPS.has(op)
}

/** A create of an ephemeral (or a multi with one): what upgrades a local session (ZooKeeper's checkUpgradeSession). */
export function createsEphemeral(req: Request): boolean {
  if (req.op === OpCode.multi) return req.ops.some(createsEphemeralOne)
  return createsEphemeralOne(req)
}

function createsEphemeralOne(req: Request): boolean {
  if (req.op !== OpCode.create && req.op !== OpCode.create2) return false
  const mode = createModeOfFlag(req.flags)
  return mode !== undefined && isEphemeralMode(mode)
}

function one(req: MultiWriteOp): MultiOpRequest | { err: ErrorCode } {
  switch (req.op) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL: {
      const mode = createModeOfFlag(req.flags)
      if (mode === undefined) return { err: ErrorCode.BAD_ARGUMENTS }
      // A container is made by createContainer (or create/create2 with its flag), never by createTTL.
      if (
        req.op === OpCode.createContainer
          ? mode !== 'container'
          : mode === 'container' && req.op === OpCode.createTTL
      )
        return { err: ErrorCode.BAD_ARGUMENTS }
      // Only createTTL carries a TTL; prep refuses a TTL mode without one.
      if (req.op === OpCode.createTTL)
        return { type: 'create', path: req.path, data: req.data, acl: req.acl, mode, ttlMs: req.ttl }
      return { type: 'create', path: req.path, data: req.data, acl: req.acl, mode }
    }
    // Plain object literals, not spreads: this runs for every write.
    case OpCode.delete:
      return { type: 'delete', path: req.path, version: req.version }
    case OpCode.setData:
      return { type: 'setData', path: req.path, data: req.data, version: req.version }
    case OpCode.check:
      return { type: 'check', path: req.path, version: req.version }
  }
}

/** The PrepRequest of a client's write, or the error it is refused with before prep. */
export function toPrepRequest(req: Request): PrepRequest | { err: ErrorCode } {
  switch (req.op) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
    case OpCode.delete:
    case OpCode.setData:
    case OpCode.check:
      return one(req)
    case OpCode.setACL:
      return { type: 'setACL', path: req.path, acl: req.acl, version: req.version }
    case OpCode.multi: {
      const ops: MultiOpRequest[] = []
      for (const o of req.ops) {
        const r = one(o)
        if ('err' in r) return r
        ops.push(r)
      }
      return { type: 'multi', ops }
    }
    case OpCode.closeSession:
      return { type: 'closeSession' }
    default:
      return { err: ErrorCode.UNIMPLEMENTED }
  }
}
