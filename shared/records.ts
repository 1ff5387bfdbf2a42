/**
 * The jute records of ZooKeeper's zookeeper.jute that Conclave serves, with
 * encoders and decoders: ConnectRequest/Response, RequestHeader, ReplyHeader,
 * WatcherEvent, every request and response body, multi.
 *
 * Requests are a discriminated union on `op` (the wire opcode). Decoding
 * untrusted bytes throws only ProtocolError and checks that the whole packet
 * was consumed. Imports only shared/.
 */
import type { Acl, Id } from './acl.js'
import { JuteReader, type JuteWriter, ProtocolError } from './jute.js'
import { ConclaveOpCode, OpCode } from './opcodes.js'
import type { WireStat } from './stat.js'

// ---------------------------------------------------------------- common

export function writeId(w: JuteWriter, id: Id): void {
  w.ustring(id.scheme).ustring(id.id)
}

/**
 * A null string in an Id reads as '' (ZooKeeper's Java reads it as null):
 * kazoo sends every empty string as null, so its `auth` ACL (CREATOR_ALL_ACL,
 * Id('auth', '')) arrives with a null id, which ZooKeeper accepts (the `auth`
 * scheme ignores it). Another scheme with an empty id fails ACL validation
 * (INVALID_ACL) instead of breaking the connection.
 */
export function readId(r: JuteReader): Id {
  return { scheme: r.ustring() ?? '', id: r.ustring() ?? '' }
}

export function writeAcl(w: JuteWriter, acl: Acl): void {
  w.int(acl.perms)
  writeId(w, acl.id)
}

export function readAcl(r: JuteReader): Acl {
  return { perms: r.int(), id: readId(r) }
}

function readAclList(r: JuteReader): Acl[] {
  return r.vector(readAcl, 12) ?? []
}

function writeAclList(w: JuteWriter, acl: readonly Acl[]): void {
  w.vector(acl, writeAcl)
}

function readStringList(r: JuteReader): string[] {
  return r.vector((x) => x.string('vector item'), 4) ?? []
}

function writeStringList(w: JuteWriter, items: readonly string[]): void {
  w.vector(items, (x, s) => x.ustring(s))
}

export const STAT_BYTES = 68

export function writeStat(w: JuteWriter, s: WireStat): void {
  w.long(s.czxid)
    .long(s.mzxid)
    .long(s.ctime)
    .long(s.mtime)
    .int(s.version)
    .int(s.cversion)
    .int(s.aversion)
    .long(s.ephemeralOwner)
    .int(s.dataLength)
    .int(s.numChildren)
    .long(s.pzxid)
}

export function readStat(r: JuteReader): WireStat {
  const czxid = r.numberLong()
  const mzxid = r.numberLong()
  const ctime = r.numberLong()
  const mtime = r.numberLong()
  const version = r.int()
  const cversion = r.int()
  const aversion = r.int()
  const ephemeralOwner = r.long()
  const dataLength = r.int()
  const numChildren = r.int()
  const pzxid = r.numberLong()
  return {
    czxid,
    mzxid,
    ctime,
    mtime,
    version,
    cversion,
    aversion,
    ephemeralOwner,
    dataLength,
    numChildren,
    pzxid,
  }
}

const EMPTY = new Uint8Array(0)

/**
 * Znode data as the protocol carries it: a jute buffer, whose length -1 is
 * null. ZooKeeper keeps null data (a create or setData sent with none, as
 * Java's null or Python's None) distinct from empty bytes and returns it as
 * null; so does Conclave, through requests, Txns, the tree, snapshots and
 * replies. (The SDK's getData reports null data as empty bytes: its
 * published type is Uint8Array.)
 */
export type ZnodeData = Uint8Array | null

// ---------------------------------------------------------------- connect

/**
 * Conclave's extension of the handshake: after the readOnly flag, a
 * ConnectRequest may carry int CONCLAVE_MAGIC and an int of ConclaveFeature
 * bits the client asks for; a Conclave server then answers with a trailer
 * of its own in its ConnectResponse: CONCLAVE_MAGIC, the bits it grants,
 * and the largest request packet it accepts (its frameBytesMax, so the SDK
 * can refuse a larger write before sending it, rather than re-send a write
 * that makes the server drop the connection). ZooKeeper's servers read the
 * readOnly flag and ignore what follows it, and a client that sends no
 * trailer gets ZooKeeper's ConnectResponse unchanged.
 */
export const CONCLAVE_MAGIC = 0x434e434c // 'CNCL'

export const ConclaveFeature = {
  /** Writes carry ConclaveOpCode.exactlyOnce and are answered once (see the request header below). */
  exactlyOnce: 1,
  /** ConclaveOpCode.getChildrenPage is served. */
  childrenPage: 2,
  /** Watches resume after a reconnect: ConclaveOpCode.resumeWatches replays what they missed. */
  resumableWatches: 4,
} as const

export interface ConnectRequest {
  protocolVersion: number
  lastZxidSeen: bigint
  timeOut: number
  sessionId: bigint
  passwd: Uint8Array
  /** Absent in packets from very old clients. */
  readOnly: boolean | undefined
  /** ConclaveFeature bits asked for; undefined: no Conclave trailer (every ZooKeeper client). Needs readOnly. */
  features?: number | undefined
}

export interface ConnectResponse {
  protocolVersion: number
  timeOut: number
  sessionId: bigint
  passwd: Uint8Array
  readOnly: boolean
  /** ConclaveFeature bits granted; undefined: no Conclave trailer (a ZooKeeper server, or none asked for). */
  features?: number | undefined
  /** With `features`: the largest request packet the server accepts (0: not said). */
  requestBytesMax?: number | undefined
  /**
   * With `features`: how many exactly-once write results the server keeps per
   * session (its sessionWriteResultsMax; 0 or absent: not said). The SDK keeps
   * at most this many exactly-once writes unanswered, so a lost connection
   * never leaves one whose result was pushed out by its own later writes.
   */
  writeResultsMax?: number | undefined
}

export function encodeConnectRequest(w: JuteWriter, c: ConnectRequest): void {
  w.int(c.protocolVersion).long(c.lastZxidSeen).int(c.timeOut).long(c.sessionId).buffer(c.passwd)
  if (c.readOnly !== undefined) w.bool(c.readOnly)
  if (c.readOnly !== undefined && c.features !== undefined) w.int(CONCLAVE_MAGIC).int(c.features)
}

/** The Conclave trailer (magic, feature bits), if the rest of the packet is one. */
function readFeatures(r: JuteReader, what: string): number | undefined {
  if (r.remaining === 0) return undefined
  if (r.remaining !== 8 || r.int() !== CONCLAVE_MAGIC)
    throw new ProtocolError(`trailing bytes after the ${what}`)
  return r.int()
}

export function decodeConnectRequest(bytes: Uint8Array): ConnectRequest {
  const r = new JuteReader(bytes)
  const protocolVersion = r.int()
  const lastZxidSeen = r.long()
  const timeOut = r.int()
  const sessionId = r.long()
  const passwd = r.buffer() ?? EMPTY
  const readOnly = r.remaining >= 1 ? r.bool() : undefined
  const features = readOnly === undefined ? undefined : readFeatures(r, 'ConnectRequest')
  r.done('ConnectRequest')
  const req: ConnectRequest = { protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly }
  if (features !== undefined) req.features = features
  return req
}

export function encodeConnectResponse(w: JuteWriter, c: ConnectResponse): void {
  w.int(c.protocolVersion).int(c.timeOut).long(c.sessionId).buffer(c.passwd).bool(c.readOnly)
  if (c.features !== undefined)
    w.int(CONCLAVE_MAGIC)
      .int(c.features)
      .int(c.requestBytesMax ?? 0)
      .int(c.writeResultsMax ?? 0)
}

export function decodeConnectResponse(bytes: Uint8Array): ConnectResponse {
  const r = new JuteReader(bytes)
  const protocolVersion = r.int()
  const timeOut = r.int()
  const sessionId = r.long()
  const passwd = r.buffer() ?? EMPTY
  const readOnly = r.remaining >= 1 ? r.bool() : false
  // Anything else after readOnly that is not Conclave's trailer is ignored, as before.
  let features: number | undefined
  let requestBytesMax: number | undefined
  let writeResultsMax: number | undefined
  if (r.remaining >= 12 && r.int() === CONCLAVE_MAGIC) {
    features = r.int()
    requestBytesMax = r.int()
    // Servers before it end the trailer here.
    if (r.remaining >= 4) writeResultsMax = r.int()
  }
  return { protocolVersion, timeOut, sessionId, passwd, readOnly, features, requestBytesMax, writeResultsMax }
}

// ---------------------------------------------------------------- headers

export interface RequestHeader {
  xid: number
  type: number
}

export interface ReplyHeader {
  xid: number
  zxid: number
  err: number
}

export function writeReplyHeader(w: JuteWriter, h: ReplyHeader): void {
  w.int(h.xid).long(h.zxid).int(h.err)
}

export function readReplyHeader(r: JuteReader): ReplyHeader {
  return { xid: r.int(), zxid: r.numberLong(), err: r.int() }
}

export interface WatcherEvent {
  type: number
  state: number
  path: string
}

export function writeWatcherEvent(w: JuteWriter, e: WatcherEvent): void {
  w.int(e.type).int(e.state).ustring(e.path)
}

export function readWatcherEvent(r: JuteReader): WatcherEvent {
  return { type: r.int(), state: r.int(), path: r.ustring() ?? '' }
}

// ---------------------------------------------------------------- requests

type Op = typeof OpCode

export type CreateOpCode = Op['create'] | Op['create2'] | Op['createContainer'] | Op['createTTL']
export type CreateRequest = {
  op: CreateOpCode
  path: string
  data: ZnodeData
  acl: Acl[]
  flags: number
  /** Only for createTTL; 0 otherwise. */
  ttl: number
}
export type DeleteRequest = { op: Op['delete']; path: string; version: number }
export type SetDataRequest = { op: Op['setData']; path: string; data: ZnodeData; version: number }
export type CheckRequest = { op: Op['check']; path: string; version: number }
export type ReadRequest = {
  op: Op['exists'] | Op['getData'] | Op['getChildren'] | Op['getChildren2']
  path: string
  watch: boolean
}
export type PathRequest = {
  op: Op['getACL'] | Op['sync'] | Op['getEphemerals'] | Op['getAllChildrenNumber']
  path: string
}
export type SetACLRequest = { op: Op['setACL']; path: string; acl: Acl[]; version: number }
export type MultiWriteOp = CreateRequest | DeleteRequest | SetDataRequest | CheckRequest
export type MultiReadOp = { op: Op['getChildren'] | Op['getData']; path: string; watch: false }
export type MultiRequest = { op: Op['multi']; ops: MultiWriteOp[] }
export type MultiReadRequest = { op: Op['multiRead']; ops: MultiReadOp[] }
export type EmptyRequest = { op: Op['ping'] | Op['closeSession'] | Op['whoAmI'] }
export type SetWatchesRequest = {
  /** resumeWatches: Conclave's, with setWatches2's body (relativeZxid is then its fromZxid). */
  op: Op['setWatches'] | Op['setWatches2'] | (typeof ConclaveOpCode)['resumeWatches']
  relativeZxid: number
  dataWatches: string[]
  existWatches: string[]
  childWatches: string[]
  persistentWatches: string[]
  persistentRecursiveWatches: string[]
}
export type AddWatchRequest = { op: Op['addWatch']; path: string; mode: number }
export type RemoveWatchesRequest = {
  op: Op['removeWatches'] | Op['checkWatches']
  path: string
  type: number
}
export type AuthRequest = { op: Op['auth']; authType: number; scheme: string; auth: Uint8Array }
export type ChildrenPageRequest = {
  op: (typeof ConclaveOpCode)['getChildrenPage']
  path: string
  /** The last name of the previous page; '' for the first page. */
  after: string
  maxCount: number
  /** 0: no limit but the server's. */
  maxBytes: number
  watch: boolean
}

/** ZooKeeper's ReconfigRequest (opcode 16): incremental (joining/leaving) or whole (newMembers). */
export type ReconfigRequest = {
  op: Op['reconfig']
  /** Comma-separated server lines to add or change; '' for none. */
  joiningServers: string
  /** Comma-separated server ids to remove; '' for none. */
  leavingServers: string
  /** Comma-separated server lines making the whole new config; '' for an incremental change. */
  newMembers: string
  /** The config version the change is made from (its zxid); -1: whatever is current. */
  curConfigId: number
}

export type Request =
  | ReconfigRequest
  | CreateRequest
  | DeleteRequest
  | SetDataRequest
  | CheckRequest
  | ReadRequest
  | PathRequest
  | SetACLRequest
  | MultiRequest
  | MultiReadRequest
  | EmptyRequest
  | SetWatchesRequest
  | AddWatchRequest
  | RemoveWatchesRequest
  | AuthRequest
  | ChildrenPageRequest

/** The exactly-once header of a write (ConclaveOpCode.exactlyOnce). */
export interface OnceHeader {
  /** The client has the reply of every request whose xid is below this (it is at most the write's own xid). */
  ackXid: number
}

/** Encodes one request packet: RequestHeader then the body; with `once`, wrapped in ConclaveOpCode.exactlyOnce. */
export function encodeRequest(w: JuteWriter, xid: number, req: Request, once?: OnceHeader): void {
  if (once !== undefined) w.int(xid).int(ConclaveOpCode.exactlyOnce).int(once.ackXid).int(req.op)
  else w.int(xid).int(req.op)
  writeRequestBody(w, req)
}

/** The writes ConclaveOpCode.exactlyOnce may carry. */
export function isOnceWriteOp(op: number): boolean {
  switch (op) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
    case OpCode.delete:
    case OpCode.setData:
    case OpCode.setACL:
    case OpCode.check:
    case OpCode.multi:
      return true
  }
  return false
}

function writeCreate(w: JuteWriter, req: CreateRequest): void {
  w.ustring(req.path).buffer(req.data)
  writeAclList(w, req.acl)
  w.int(req.flags)
  if (req.op === OpCode.createTTL) w.long(req.ttl)
}

function writeRequestBody(w: JuteWriter, req: Request): void {
  switch (req.op) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      writeCreate(w, req)
      return
    case OpCode.delete:
    case OpCode.check:
      w.ustring(req.path).int(req.version)
      return
    case OpCode.setData:
      w.ustring(req.path).buffer(req.data).int(req.version)
      return
    case OpCode.exists:
    case OpCode.getData:
    case OpCode.getChildren:
    case OpCode.getChildren2:
      w.ustring(req.path).bool(req.watch)
      return
    case OpCode.getACL:
    case OpCode.sync:
    case OpCode.getEphemerals:
    case OpCode.getAllChildrenNumber:
      w.ustring(req.path)
      return
    case OpCode.setACL:
      w.ustring(req.path)
      writeAclList(w, req.acl)
      w.int(req.version)
      return
    case OpCode.reconfig:
      w.ustring(req.joiningServers || null)
        .ustring(req.leavingServers || null)
        .ustring(req.newMembers || null)
        .long(BigInt(req.curConfigId))
      return
    case OpCode.multi:
    case OpCode.multiRead:
      for (const op of req.ops) {
        w.int(op.op).bool(false).int(-1)
        writeRequestBody(w, op)
      }
      w.int(-1).bool(true).int(-1)
      return
    case OpCode.ping:
    case OpCode.closeSession:
    case OpCode.whoAmI:
      return
    case OpCode.setWatches:
    case OpCode.setWatches2:
    case ConclaveOpCode.resumeWatches:
      w.long(req.relativeZxid)
      writeStringList(w, req.dataWatches)
      writeStringList(w, req.existWatches)
      writeStringList(w, req.childWatches)
      if (req.op !== OpCode.setWatches) {
        writeStringList(w, req.persistentWatches)
        writeStringList(w, req.persistentRecursiveWatches)
      }
      return
    case OpCode.addWatch:
      w.ustring(req.path).int(req.mode)
      return
    case OpCode.removeWatches:
    case OpCode.checkWatches:
      w.ustring(req.path).int(req.type)
      return
    case OpCode.auth:
      w.int(req.authType).ustring(req.scheme).buffer(req.auth)
      return
    case ConclaveOpCode.getChildrenPage:
      w.ustring(req.path).ustring(req.after).int(req.maxCount).int(req.maxBytes).bool(req.watch)
      return
  }
}

/** Thrown for a well-formed header whose opcode we do not serve. */
export class UnknownOpError extends ProtocolError {
  constructor(readonly opcode: number) {
    super(`unknown opcode ${opcode}`)
  }
}

/** Decodes one request packet (after framing); `once` when it came wrapped in ConclaveOpCode.exactlyOnce. */
export function decodeRequest(bytes: Uint8Array): { xid: number; req: Request; once?: OnceHeader } {
  const r = new JuteReader(bytes)
  const xid = r.int()
  let op = r.int()
  let once: OnceHeader | undefined
  if (op === ConclaveOpCode.exactlyOnce) {
    once = { ackXid: r.int() }
    op = r.int()
    if (!isOnceWriteOp(op)) throw new ProtocolError(`opcode ${op} cannot be sent exactly-once`)
  }
  const req = readRequestBody(r, op, false)
  r.done(`request (opcode ${op})`)
  return once === undefined ? { xid, req } : { xid, req, once }
}

/** Reads just the header (for replying to an unknown opcode with its xid). */
export function peekRequestHeader(bytes: Uint8Array): RequestHeader | undefined {
  if (bytes.length < 8) return undefined
  const r = new JuteReader(bytes)
  return { xid: r.int(), type: r.int() }
}

function readCreate(r: JuteReader, op: CreateOpCode): CreateRequest {
  const path = r.string('path')
  const data = r.buffer()
  const acl = readAclList(r)
  const flags = r.int()
  const ttl = op === OpCode.createTTL ? r.safeLong('ttl') : 0
  return { op, path, data, acl, flags, ttl }
}

function readRequestBody(r: JuteReader, op: number, inMulti: boolean): Request {
  switch (op) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      return readCreate(r, op)
    case OpCode.delete:
    case OpCode.check:
      return { op, path: r.string('path'), version: r.int() }
    case OpCode.setData:
      return { op, path: r.string('path'), data: r.buffer(), version: r.int() }
    case OpCode.exists:
    case OpCode.getData:
    case OpCode.getChildren:
    case OpCode.getChildren2:
      return { op, path: r.string('path'), watch: r.bool() }
    case OpCode.getACL:
    case OpCode.sync:
    case OpCode.getEphemerals:
    case OpCode.getAllChildrenNumber:
      return { op, path: r.string('path') }
    case OpCode.setACL:
      return { op, path: r.string('path'), acl: readAclList(r), version: r.int() }
  }
  if (inMulti) throw new ProtocolError(`opcode ${op} is not allowed inside multi`)
  switch (op) {
    case OpCode.multi:
      return { op, ops: readMultiOps(r, false) as MultiWriteOp[] }
    case OpCode.multiRead:
      return { op, ops: readMultiOps(r, true) as MultiReadOp[] }
    case OpCode.ping:
    case OpCode.closeSession:
    case OpCode.whoAmI:
      return { op }
    case OpCode.setWatches:
    case OpCode.setWatches2:
    case ConclaveOpCode.resumeWatches: {
      const relativeZxid = r.safeLong('relativeZxid')
      const dataWatches = readStringList(r)
      const existWatches = readStringList(r)
      const childWatches = readStringList(r)
      const two = op !== OpCode.setWatches
      const persistentWatches = two ? readStringList(r) : []
      const persistentRecursiveWatches = two ? readStringList(r) : []
      return {
        op,
        relativeZxid,
        dataWatches,
        existWatches,
        childWatches,
        persistentWatches,
        persistentRecursiveWatches,
      }
    }
    case OpCode.addWatch:
      return { op, path: r.string('path'), mode: r.int() }
    case OpCode.reconfig: {
      const joiningServers = r.ustring() ?? ''
      const leavingServers = r.ustring() ?? ''
      const newMembers = r.ustring() ?? ''
      const id = r.long()
      if (id < -1n || id > BigInt(Number.MAX_SAFE_INTEGER))
        throw new ProtocolError(`reconfig curConfigId ${id} out of range`)
      return { op, joiningServers, leavingServers, newMembers, curConfigId: Number(id) }
    }
    case OpCode.removeWatches:
    case OpCode.checkWatches:
      return { op, path: r.string('path'), type: r.int() }
    case OpCode.auth:
      return { op, authType: r.int(), scheme: r.string('scheme'), auth: r.buffer() ?? EMPTY }
    case ConclaveOpCode.getChildrenPage:
      return {
        op,
        path: r.string('path'),
        after: r.ustring() ?? '',
        maxCount: r.int(),
        maxBytes: r.int(),
        watch: r.bool(),
      }
  }
  throw new UnknownOpError(op)
}

/** Most ops one multi may carry (a named limit; etcd allows 128). */
export const MULTI_OPS_MAX = 1024

function readMultiOps(r: JuteReader, read: boolean): Request[] {
  const ops: Request[] = []
  for (;;) {
    const type = r.int()
    const done = r.bool()
    r.int() // err, -1 in requests
    if (done) {
      if (type !== -1) throw new ProtocolError('multi end marker must have type -1')
      return ops
    }
    if (ops.length >= MULTI_OPS_MAX) throw new ProtocolError(`multi has more than ${MULTI_OPS_MAX} ops`)
    const allowed = read
      ? type === OpCode.getChildren || type === OpCode.getData
      : type === OpCode.create ||
        type === OpCode.create2 ||
        type === OpCode.createContainer ||
        type === OpCode.createTTL ||
        type === OpCode.delete ||
        type === OpCode.setData ||
        type === OpCode.check
    if (!allowed) throw new ProtocolError(`opcode ${type} is not allowed in ${read ? 'multiRead' : 'multi'}`)
    if (read) {
      // A GetDataRequest or GetChildrenRequest: the path, then a watch flag that multiRead
      // ignores (ZooKeeper's MultiOperationRecord keeps only the path: Op.getData(path)).
      const path = r.string('path')
      r.bool()
      ops.push({ op: type as MultiReadOp['op'], path, watch: false })
    } else ops.push(readRequestBody(r, type, true))
  }
}

// ---------------------------------------------------------------- responses

export type MultiResult =
  | { type: Op['create']; path: string }
  | { type: Op['create2'] | Op['createContainer'] | Op['createTTL']; path: string; stat: WireStat }
  | { type: Op['setData']; stat: WireStat }
  | { type: Op['delete'] | Op['check'] }
  | { type: Op['getData']; data: ZnodeData; stat: WireStat }
  | { type: Op['getChildren']; children: string[] }
  | { type: Op['error']; err: number }

export type Response =
  | { op: Op['create']; path: string }
  | { op: Op['create2'] | Op['createContainer'] | Op['createTTL']; path: string; stat: WireStat }
  | { op: Op['exists'] | Op['setData'] | Op['setACL']; stat: WireStat }
  | { op: Op['getData'] | Op['reconfig']; data: ZnodeData; stat: WireStat }
  | { op: Op['getChildren']; children: string[] }
  | { op: Op['getChildren2']; children: string[]; stat: WireStat }
  | { op: Op['getACL']; acl: Acl[]; stat: WireStat }
  | { op: Op['sync']; path: string }
  | { op: Op['multi'] | Op['multiRead']; results: MultiResult[] }
  | { op: Op['getEphemerals']; paths: string[] }
  | { op: Op['getAllChildrenNumber']; total: number }
  | { op: Op['whoAmI']; clientInfo: { authScheme: string; user: string }[] }
  | { op: Op['delete'] | Op['check'] | Op['ping'] | Op['closeSession'] | Op['auth'] | Op['setWatches'] }
  | { op: Op['setWatches2'] | Op['addWatch'] | Op['removeWatches'] | Op['checkWatches'] }
  | { op: (typeof ConclaveOpCode)['getChildrenPage']; children: string[]; more: boolean; stat: WireStat }
  | { op: (typeof ConclaveOpCode)['resumeWatches'] }

/** Writes a successful response body (after the ReplyHeader). */
export function writeResponseBody(w: JuteWriter, res: Response): void {
  switch (res.op) {
    case OpCode.create:
    case OpCode.sync:
      w.ustring(res.path)
      return
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      w.ustring(res.path)
      writeStat(w, res.stat)
      return
    case OpCode.exists:
    case OpCode.setData:
    case OpCode.setACL:
      writeStat(w, res.stat)
      return
    case OpCode.getData:
    case OpCode.reconfig:
      w.buffer(res.data)
      writeStat(w, res.stat)
      return
    case OpCode.getChildren:
      writeStringList(w, res.children)
      return
    case OpCode.getChildren2:
      writeStringList(w, res.children)
      writeStat(w, res.stat)
      return
    case OpCode.getACL:
      writeAclList(w, res.acl)
      writeStat(w, res.stat)
      return
    case OpCode.multi:
    case OpCode.multiRead:
      for (const result of res.results) writeMultiResult(w, result)
      w.int(-1).bool(true).int(-1)
      return
    case OpCode.getEphemerals:
      writeStringList(w, res.paths)
      return
    case OpCode.getAllChildrenNumber:
      w.int(res.total)
      return
    case OpCode.whoAmI:
      w.vector(res.clientInfo, (x, c) => x.ustring(c.authScheme).ustring(c.user))
      return
    case ConclaveOpCode.getChildrenPage:
      writeStringList(w, res.children)
      w.bool(res.more)
      writeStat(w, res.stat)
      return
    default:
      return
  }
}

function writeMultiResult(w: JuteWriter, m: MultiResult): void {
  const err = m.type === OpCode.error ? m.err : 0
  w.int(m.type).bool(false).int(err)
  switch (m.type) {
    case OpCode.create:
      w.ustring(m.path)
      return
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      w.ustring(m.path)
      writeStat(w, m.stat)
      return
    case OpCode.setData:
      writeStat(w, m.stat)
      return
    case OpCode.getData:
      w.buffer(m.data)
      writeStat(w, m.stat)
      return
    case OpCode.getChildren:
      writeStringList(w, m.children)
      return
    case OpCode.error:
      w.int(m.err)
      return
    default:
      return
  }
}

/** Reads a successful response body for a request of opcode `op`. */
export function readResponseBody(r: JuteReader, op: number): Response {
  switch (op) {
    case OpCode.create:
    case OpCode.sync:
      return { op, path: r.string('path') }
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      return { op, path: r.string('path'), stat: readStat(r) }
    case OpCode.exists:
    case OpCode.setData:
    case OpCode.setACL:
      return { op, stat: readStat(r) }
    case OpCode.getData:
    case OpCode.reconfig:
      return { op, data: r.buffer(), stat: readStat(r) }
    case OpCode.getChildren:
      return { op, children: readStringList(r) }
    case OpCode.getChildren2:
      return { op, children: readStringList(r), stat: readStat(r) }
    case OpCode.getACL:
      return { op, acl: readAclList(r), stat: readStat(r) }
    case OpCode.multi:
    case OpCode.multiRead:
      return { op, results: readMultiResults(r) }
    case OpCode.getEphemerals:
      return { op, paths: readStringList(r) }
    case OpCode.getAllChildrenNumber:
      return { op, total: r.int() }
    case OpCode.whoAmI:
      return {
        op,
        clientInfo:
          r.vector((x) => ({ authScheme: x.string('authScheme'), user: x.ustring() ?? '' }), 8) ?? [],
      }
    case OpCode.delete:
    case OpCode.check:
    case OpCode.ping:
    case OpCode.closeSession:
    case OpCode.auth:
    case OpCode.setWatches:
    case OpCode.setWatches2:
    case OpCode.addWatch:
    case OpCode.removeWatches:
    case OpCode.checkWatches:
    case ConclaveOpCode.resumeWatches:
      return { op }
    case ConclaveOpCode.getChildrenPage:
      return { op, children: readStringList(r), more: r.bool(), stat: readStat(r) }
  }
  throw new UnknownOpError(op)
}

function readMultiResults(r: JuteReader): MultiResult[] {
  const out: MultiResult[] = []
  for (;;) {
    const type = r.int()
    const done = r.bool()
    const err = r.int()
    if (done) return out
    switch (type) {
      case OpCode.create:
        out.push({ type, path: r.string('path') })
        break
      case OpCode.create2:
      case OpCode.createContainer:
      case OpCode.createTTL:
        out.push({ type, path: r.string('path'), stat: readStat(r) })
        break
      case OpCode.setData:
        out.push({ type, stat: readStat(r) })
        break
      case OpCode.delete:
      case OpCode.check:
        out.push({ type })
        break
      case OpCode.getData:
        out.push({ type, data: r.buffer(), stat: readStat(r) })
        break
      case OpCode.getChildren:
        out.push({ type, children: readStringList(r) })
        break
      case OpCode.error:
        out.push({ type, err: r.int() })
        break
      default:
        throw new ProtocolError(`unknown multi result type ${type} (err ${err})`)
    }
  }
}
