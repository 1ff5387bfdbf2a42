/**
 * The result of an exactly-once write, as its session's write memory keeps
 * it (server/tree/write-memory.ts), snapshots store it and a leader sends it
 * to the follower that answers a re-sent write: encodeResult / decodeResult.
 *
 * Layout: int RESULT_FORMAT_VERSION, int type (ZooKeeper's opcode numbers:
 * create 1, delete 2, setData 5, setACL 7, check 13, multi 14, error -1),
 * then per type: create a path and a Stat; setData and setACL a Stat;
 * delete and check nothing; multi an int count and each op's result
 * (type, body); error the code's number and the per-op codes of a failed
 * multi (a jute vector, -1 when none). Stats are jute Stat records.
 *
 * Invariants: decodeResult(encodeResult(r)) deep-equals r for every result
 * a remembered write can have (never createSession, closeSession or
 * deleteContainer: those are not client writes); decoding anything
 * malformed throws TxnDecodeError and nothing else.
 * Must not import anything but shared/ and server/txn/.
 */
import { type ErrorCode, errorCodeOf, errorNumber } from '../../shared/errors.js'
import { JuteReader, JuteWriter, ProtocolError } from '../../shared/jute.js'
import { OpCode } from '../../shared/opcodes.js'
import { readStat, writeStat } from '../../shared/records.js'
import type { OpResult, TxnResult } from './apply.js'
import { TxnDecodeError } from './codec.js'

export const RESULT_FORMAT_VERSION = 1

function writeOp(w: JuteWriter, r: OpResult): void {
  switch (r.type) {
    case 'create':
      w.int(OpCode.create).ustring(r.path)
      writeStat(w, r.stat)
      return
    case 'setData':
      w.int(OpCode.setData)
      writeStat(w, r.stat)
      return
    case 'delete':
      w.int(OpCode.delete)
      return
    case 'check':
      w.int(OpCode.check)
      return
  }
}

/** Encodes a remembered write's result (a copy; reusing `w` saves an allocation). */
export function encodeResult(r: TxnResult, w = new JuteWriter(128)): Uint8Array {
  w.reset()
  w.int(RESULT_FORMAT_VERSION)
  switch (r.type) {
    case 'create':
    case 'setData':
    case 'delete':
    case 'check':
      writeOp(w, r)
      break
    case 'setACL':
      w.int(OpCode.setACL)
      writeStat(w, r.stat)
      break
    case 'multi':
      w.int(OpCode.multi).int(r.results.length)
      for (const x of r.results) writeOp(w, x)
      break
    case 'error':
      w.int(OpCode.error).int(errorNumber(r.code))
      w.vector(r.results ?? null, (x, c) => x.int(errorNumber(c)))
      break
    default:
      throw new Error(`a ${r.type} result is never remembered`)
  }
  return w.finish()
}

/** Decodes what encodeResult wrote; throws TxnDecodeError on anything malformed. */
export function decodeResult(bytes: Uint8Array): TxnResult {
  try {
    const r = new JuteReader(bytes)
    const format = r.int()
    if (format !== RESULT_FORMAT_VERSION) throw new TxnDecodeError(`unsupported result format ${format}`)
    const type = r.int()
    const out = readTop(r, type)
    r.done('write result')
    return out
  } catch (e) {
    if (e instanceof ProtocolError) throw new TxnDecodeError(`bad write result: ${e.message}`)
    throw e
  }
}

function readOp(r: JuteReader, type: number): OpResult {
  switch (type) {
    case OpCode.create:
      return { type: 'create', path: r.string('path'), stat: readStat(r) }
    case OpCode.setData:
      return { type: 'setData', stat: readStat(r) }
    case OpCode.delete:
      return { type: 'delete' }
    case OpCode.check:
      return { type: 'check' }
  }
  throw new TxnDecodeError(`unknown write result type ${type}`)
}

function readCode(n: number): ErrorCode {
  const code = errorCodeOf(n)
  if (errorNumber(code) !== n) throw new TxnDecodeError(`unknown error number ${n}`)
  return code
}

function readTop(r: JuteReader, type: number): TxnResult {
  switch (type) {
    case OpCode.setACL:
      return { type: 'setACL', stat: readStat(r) }
    case OpCode.multi: {
      const n = r.int()
      // Each op result takes at least 4 bytes (its type), so n is bounded by what is left.
      if (n < 0 || n * 4 > r.remaining) throw new TxnDecodeError(`bad multi result count ${n}`)
      const results: OpResult[] = []
      for (let i = 0; i < n; i++) results.push(readOp(r, r.int()))
      return { type: 'multi', results }
    }
    case OpCode.error: {
      const code = readCode(r.int())
      const results = r.vector((x) => readCode(x.int()), 4)
      return results === null ? { type: 'error', code } : { type: 'error', code, results }
    }
  }
  return readOp(r, type)
}
