/**
 * The Txn log format: encodeTxn / decodeTxn, compact big-endian binary
 * with shared/jute's primitives (no Buffer).
 *
 * Layout: int FORMAT_VERSION, int type (ZooKeeper's opcode numbers:
 * create 1, delete 2, setData 5, setACL 7, check 13, multi 14,
 * deleteContainer 20, createSession -10, closeSession -11, error -1), then
 * the header (long sessionId, int cxid, long zxid, long timeMs), then the
 * body. An exactly-once write (a Txn with `remember`) is format
 * TXN_FORMAT_REMEMBERED instead: the same with int ackXid, int resultsMax,
 * int resultBytesMax after the header. Every other Txn is written as before, so logs written
 * before exactly-once writes read unchanged (a server from before them
 * refuses a format-2 Txn with a clear "unsupported Txn format 2"). Create modes are ZooKeeper's CreateMode flags; error codes their
 * wire numbers. Data is a jute buffer, length -1 for null data (none, kept
 * distinct from empty bytes): logs written before null was kept never hold
 * -1 there and read as before, so the format version is unchanged.
 *
 * Invariants: decodeTxn(encodeTxn(t)) deep-equals t; decoding anything
 * malformed (truncated, trailing bytes, unknown type/mode/code, bad UTF-8,
 * nested multi, out-of-range number) throws TxnDecodeError and nothing
 * else; decoded data buffers are views into the input (copy to keep).
 * Must not import anything but shared/ and server/txn/.
 */
import type { Acl } from '../../shared/acl.js'
import { type ErrorCode, errorCodeOf, errorNumber } from '../../shared/errors.js'
import { JuteReader, JuteWriter, ProtocolError } from '../../shared/jute.js'
import { CreateFlag, createModeOfFlag, OpCode } from '../../shared/opcodes.js'
import { type RememberSpec, type SubTxn, type Txn, type TxnBody, withHeader } from './txn.js'

export const TXN_FORMAT_VERSION = 1
/** The format of an exactly-once write's Txn: TXN_FORMAT_VERSION plus its RememberSpec. */
export const TXN_FORMAT_REMEMBERED = 2

export class TxnDecodeError extends Error {
  override name = 'TxnDecodeError'
}

const TYPE_CODE = {
  create: OpCode.create,
  delete: OpCode.delete,
  setData: OpCode.setData,
  setACL: OpCode.setACL,
  check: OpCode.check,
  multi: OpCode.multi,
  deleteContainer: OpCode.deleteContainer,
  createSession: OpCode.createSession,
  closeSession: OpCode.closeSession,
  error: OpCode.error,
} as const satisfies Record<TxnBody['type'], number>

function writeAcl(w: JuteWriter, acl: readonly Acl[]): void {
  w.vector(acl, (x, a) => x.int(a.perms).ustring(a.id.scheme).ustring(a.id.id))
}

function writeBody(w: JuteWriter, b: TxnBody): void {
  switch (b.type) {
    case 'create':
      w.ustring(b.path).buffer(b.data)
      writeAcl(w, b.acl)
      w.int(CreateFlag[b.mode]).long(b.ttlMs).int(b.parentCversion)
      return
    case 'delete':
    case 'deleteContainer':
      w.ustring(b.path)
      return
    case 'setData':
      w.ustring(b.path).buffer(b.data).int(b.version)
      return
    case 'setACL':
      w.ustring(b.path)
      writeAcl(w, b.acl)
      w.int(b.aversion)
      return
    case 'check':
      w.ustring(b.path).int(b.version)
      return
    case 'multi':
      w.int(b.ops.length)
      for (const op of b.ops) {
        w.int(TYPE_CODE[op.type])
        writeBody(w, op)
      }
      return
    case 'createSession':
      w.long(b.timeoutMs)
      return
    case 'closeSession':
      w.vector(b.paths, (x, p) => x.ustring(p))
      return
    case 'error':
      w.int(errorNumber(b.code))
      w.vector(b.results ?? null, (x, c) => x.int(errorNumber(c)))
      return
  }
}

/**
 * Encodes a Txn. Reusing `w` saves an allocation per Txn. The result is a
 * copy in a shared slab (JuteWriter.finishPooled): Txns pass through the log
 * in order, so their slabs are released in order too.
 */
export function encodeTxn(txn: Txn, w = new JuteWriter(256)): Uint8Array {
  w.reset()
  const remember = txn.remember
  w.int(remember === undefined ? TXN_FORMAT_VERSION : TXN_FORMAT_REMEMBERED).int(TYPE_CODE[txn.type])
  w.long(txn.sessionId).int(txn.cxid).long(txn.zxid).long(txn.timeMs)
  if (remember !== undefined) w.int(remember.ackXid).int(remember.resultsMax).int(remember.resultBytesMax)
  writeBody(w, txn)
  return w.finishPooled()
}

/** Decodes a Txn; throws TxnDecodeError on any malformed input. */
export function decodeTxn(bytes: Uint8Array): Txn {
  try {
    const r = new JuteReader(bytes)
    const format = r.int()
    if (format !== TXN_FORMAT_VERSION && format !== TXN_FORMAT_REMEMBERED)
      throw new TxnDecodeError(`unsupported Txn format ${format}`)
    const type = r.int()
    const sessionId = r.long()
    const cxid = r.int()
    const zxid = r.safeLong('zxid')
    const timeMs = r.safeLong('time')
    const remember = format === TXN_FORMAT_REMEMBERED ? readRemember(r) : undefined
    const body = readBody(r, type, false)
    r.done('Txn')
    return withHeader(body, { sessionId, cxid, zxid, timeMs, remember })
  } catch (e) {
    if (e instanceof ProtocolError) throw new TxnDecodeError(`bad Txn: ${e.message}`)
    throw e
  }
}

function readRemember(r: JuteReader): RememberSpec {
  const ackXid = r.int()
  const resultsMax = r.int()
  const resultBytesMax = r.int()
  if (resultsMax < 1) throw new TxnDecodeError(`bad resultsMax ${resultsMax}`)
  if (resultBytesMax < 1) throw new TxnDecodeError(`bad resultBytesMax ${resultBytesMax}`)
  return { ackXid, resultsMax, resultBytesMax }
}

function readAcl(r: JuteReader): Acl[] {
  return (
    r.vector((x) => ({ perms: x.int(), id: { scheme: x.string('scheme'), id: x.string('id') } }), 12) ?? []
  )
}

function readCode(n: number): ErrorCode {
  const code = errorCodeOf(n)
  if (errorNumber(code) !== n) throw new TxnDecodeError(`unknown error number ${n}`)
  return code
}

function readBody(r: JuteReader, type: number, inMulti: boolean): TxnBody {
  switch (type) {
    case OpCode.create: {
      const path = r.string('path')
      const data = r.buffer()
      const acl = readAcl(r)
      const flag = r.int()
      const mode = createModeOfFlag(flag)
      if (mode === undefined) throw new TxnDecodeError(`unknown create mode ${flag}`)
      return { type: 'create', path, data, acl, mode, ttlMs: r.safeLong('ttl'), parentCversion: r.int() }
    }
    case OpCode.delete:
      return { type: 'delete', path: r.string('path') }
    case OpCode.setData:
      return {
        type: 'setData',
        path: r.string('path'),
        data: r.buffer(),
        version: r.int(),
      }
    case OpCode.check:
      return { type: 'check', path: r.string('path'), version: r.int() }
  }
  if (inMulti) throw new TxnDecodeError(`Txn type ${type} is not allowed inside multi`)
  return readTopBody(r, type)
}

function readTopBody(r: JuteReader, type: number): TxnBody {
  switch (type) {
    case OpCode.setACL:
      return { type: 'setACL', path: r.string('path'), acl: readAcl(r), aversion: r.int() }
    case OpCode.multi: {
      const n = r.int()
      // Each op takes at least 8 bytes (type + the shortest body), so n is bounded by what is left.
      if (n < 0 || n * 8 > r.remaining) throw new TxnDecodeError(`bad multi op count ${n}`)
      const ops: SubTxn[] = []
      for (let i = 0; i < n; i++) ops.push(readBody(r, r.int(), true) as SubTxn)
      return { type: 'multi', ops }
    }
    case OpCode.deleteContainer:
      return { type: 'deleteContainer', path: r.string('path') }
    case OpCode.createSession: {
      const timeoutMs = r.safeLong('timeout')
      if (timeoutMs <= 0) throw new TxnDecodeError(`bad session timeout ${timeoutMs}`)
      return { type: 'createSession', timeoutMs }
    }
    case OpCode.closeSession:
      return { type: 'closeSession', paths: r.vector((x) => x.string('path'), 4) ?? [] }
    case OpCode.error: {
      const code = readCode(r.int())
      const results = r.vector((x) => readCode(x.int()), 4)
      return results === null ? { type: 'error', code } : { type: 'error', code, results }
    }
  }
  throw new TxnDecodeError(`unknown Txn type ${type}`)
}
