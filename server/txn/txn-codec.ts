/**
 * Binary encoding of Txns for the log and for PROPOSALs: a version byte,
 * then jute fields. Decoding bytes that are not a Txn throws ProtocolError
 * (a corrupt log is caught by storage checksums before this).
 *
 * Pure: imports only shared/.
 */
import type { Acl } from '../../shared/acl.js'
import { JuteReader, JuteWriter, ProtocolError } from '../../shared/jute.js'
import { readAcl, writeAcl } from '../../shared/records.js'
import type { Txn, TxnOp } from './txn-types.js'

const VERSION = 1
const CODE: Record<TxnOp['type'], number> = {
  createSession: 1,
  // 2 was closeSession without its paths: still decoded, as paths [].
  closeSession: 10,
  create: 3,
  delete: 4,
  setData: 5,
  setACL: 6,
  check: 7,
  multi: 8,
  reap: 9,
}

function writeAcls(w: JuteWriter, acl: readonly Acl[]): void {
  w.vector(acl, writeAcl)
}

function writeOp(w: JuteWriter, op: TxnOp): void {
  w.int(CODE[op.type])
  switch (op.type) {
    case 'createSession':
      w.long(op.sessionId).int(op.timeoutMs)
      return
    case 'closeSession':
      w.long(op.sessionId)
      w.vector(op.paths, (x, p) => x.ustring(p))
      return
    case 'create':
      w.int(op.opcode).ustring(op.path).buffer(op.data)
      writeAcls(w, op.acl)
      w.int(op.kind).long(op.ephemeralOwner).long(op.ttlMs).int(op.parentCVersion)
      return
    case 'delete':
    case 'check':
    case 'reap':
      w.ustring(op.path)
      return
    case 'setData':
      w.ustring(op.path).buffer(op.data).int(op.version)
      return
    case 'setACL':
      w.ustring(op.path)
      writeAcls(w, op.acl)
      w.int(op.aversion)
      return
    case 'multi':
      w.vector(op.ops, writeOp)
      return
  }
}

export function encodeTxn(txn: Txn, w = new JuteWriter(128)): Uint8Array {
  w.reset()
  w.int(VERSION).long(txn.sessionId).int(txn.cxid).long(txn.zxid).long(txn.timeMs)
  writeOp(w, txn.op)
  return w.finish()
}

const EMPTY = new Uint8Array(0)
const CLOSE_SESSION_V1 = 2

function readOp(r: JuteReader, depth: number): TxnOp {
  const code = r.int()
  switch (code) {
    case CODE.createSession:
      return { type: 'createSession', sessionId: r.long(), timeoutMs: r.int() }
    case CLOSE_SESSION_V1:
      return { type: 'closeSession', sessionId: r.long(), paths: [] }
    case CODE.closeSession:
      return {
        type: 'closeSession',
        sessionId: r.long(),
        paths: r.vector((x) => x.string('path'), 4) ?? [],
      }
    case CODE.create:
      return {
        type: 'create',
        opcode: r.int(),
        path: r.string('path'),
        data: r.buffer() ?? EMPTY,
        acl: r.vector(readAcl, 12) ?? [],
        kind: r.int(),
        ephemeralOwner: r.long(),
        ttlMs: r.safeLong('ttl'),
        parentCVersion: r.int(),
      }
    case CODE.delete:
      return { type: 'delete', path: r.string('path') }
    case CODE.check:
      return { type: 'check', path: r.string('path') }
    case CODE.reap:
      return { type: 'reap', path: r.string('path') }
    case CODE.setData:
      return { type: 'setData', path: r.string('path'), data: r.buffer() ?? EMPTY, version: r.int() }
    case CODE.setACL:
      return { type: 'setACL', path: r.string('path'), acl: r.vector(readAcl, 12) ?? [], aversion: r.int() }
    case CODE.multi:
      if (depth > 0) throw new ProtocolError('nested multi Txn')
      return { type: 'multi', ops: r.vector((x) => readOp(x, depth + 1), 4) ?? [] }
  }
  throw new ProtocolError(`unknown Txn code ${code}`)
}

export function decodeTxn(bytes: Uint8Array): Txn {
  const r = new JuteReader(bytes)
  const version = r.int()
  if (version !== VERSION) throw new ProtocolError(`unknown Txn version ${version}`)
  const sessionId = r.long()
  const cxid = r.int()
  const zxid = r.safeLong('zxid')
  const timeMs = r.safeLong('time')
  const op = readOp(r, 0)
  r.done('Txn')
  return { sessionId, cxid, zxid, timeMs, op }
}
