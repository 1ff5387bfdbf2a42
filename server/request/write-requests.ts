/**
 * Maps a decoded wire request that writes (create*, delete, setData,
 * setACL, check, multi, closeSession) to the WriteRequest prep takes.
 * Field checks that need no tree (paths, create flags, TTL rules) happen in
 * prep too; this only reshapes.
 */
import { ErrorCode } from '../../shared/errors.js'
import { OpCode } from '../../shared/opcodes.js'
import type { MultiWriteOp, Request } from '../../shared/records.js'
import type { WriteRequest } from '../state/db.js'

function one(req: MultiWriteOp): WriteRequest {
  switch (req.op) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      return {
        kind: 'create',
        path: req.path,
        data: req.data,
        acl: req.acl,
        flags: req.flags,
        ttlMs: req.ttl,
        op: req.op,
      }
    case OpCode.delete:
      return { kind: 'delete', path: req.path, version: req.version }
    case OpCode.setData:
      return { kind: 'setData', path: req.path, data: req.data, version: req.version }
    case OpCode.check:
      return { kind: 'check', path: req.path, version: req.version }
  }
}

export function toWriteRequest(req: Request, sessionId: bigint): WriteRequest | { err: ErrorCode } {
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
      return { kind: 'setACL', path: req.path, acl: req.acl, version: req.version }
    case OpCode.multi:
      return { kind: 'multi', ops: req.ops.map(one) }
    case OpCode.closeSession:
      return { kind: 'closeSession', sessionId }
    default:
      return { err: ErrorCode.UNIMPLEMENTED }
  }
}
