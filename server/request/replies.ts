/**
 * Turns a Txn's result into the reply for the request that made it: the
 * request's opcode decides the shape (create answers a path; create2,
 * createContainer and createTTL a path and a Stat; in a multi, each op as
 * its own opcode asks). A failed prep becomes an error reply, or for a
 * multi, err 0 with one error result per op, as ZooKeeper replies.
 */
import { ErrorCode, errorNumber } from '../../shared/errors.js'
import { OpCode } from '../../shared/opcodes.js'
import type { MultiResult, Request, Response } from '../../shared/records.js'
import type { TxnResult } from '../state/tree-db.js'
import type { Reply } from './client-handler.js'

type OpResult = Extract<TxnResult, { type: 'create' | 'delete' | 'setData' | 'check' }>

function multiResult(op: number, r: OpResult): MultiResult {
  switch (r.type) {
    case 'create':
      return op === OpCode.create
        ? { type: OpCode.create, path: r.path }
        : { type: op as typeof OpCode.create2, path: r.path, stat: r.stat }
    case 'setData':
      return { type: OpCode.setData, stat: r.stat }
    case 'delete':
      return { type: OpCode.delete }
    case 'check':
      return { type: OpCode.check }
  }
}

function body(req: Request, r: TxnResult): Response | undefined {
  switch (r.type) {
    case 'create':
      if (req.op === OpCode.create) return { op: OpCode.create, path: r.path }
      return { op: req.op as typeof OpCode.create2, path: r.path, stat: r.stat }
    case 'setData':
      return { op: OpCode.setData, stat: r.stat }
    case 'setACL':
      return { op: OpCode.setACL, stat: r.stat }
    case 'delete':
      return { op: OpCode.delete }
    case 'check':
      return { op: OpCode.check }
    case 'multi': {
      const ops = req.op === OpCode.multi ? req.ops : []
      return {
        op: OpCode.multi,
        results: r.results.map((x, i) => multiResult(ops[i]?.op ?? OpCode.create2, x)),
      }
    }
    case 'closeSession':
      return { op: OpCode.closeSession }
    default:
      return undefined
  }
}

/** The reply to `req` for a committed Txn's result. */
export function replyFor(req: Request, result: TxnResult, zxid: number): Reply {
  if (result.type === 'error') return failedReply(result.code, result.results, zxid)
  return { err: ErrorCode.OK, zxid, body: body(req, result) }
}

/** The reply to a request that failed in prep. */
export function failedReply(err: ErrorCode, multi: ErrorCode[] | undefined, zxid: number): Reply {
  if (multi === undefined) return { err, zxid }
  const results: MultiResult[] = multi.map((code) => ({ type: OpCode.error, err: errorNumber(code) }))
  return { err: ErrorCode.OK, zxid, body: { op: OpCode.multi, results } }
}
