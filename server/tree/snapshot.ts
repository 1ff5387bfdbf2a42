/**
 * The snapshot format: a versioned binary stream of records cut into
 * chunks of bounded size, written lazily (a generator the caller drains a
 * chunk at a time, applying Txns in between: a fuzzy snapshot) and read
 * back record by record. Big-endian, with shared/jute's reader and writer
 * (DataView/Uint8Array only, no Buffer).
 *
 * Layout: the first chunk opens with MAGIC, FORMAT_VERSION, zxid (the last
 * zxid applied when the snapshot began). Then records, each a tag and a
 * body: SESSION (id, timeout), ACL (local id, list), NODE (path, data,
 * ACL local id, kind, owner, ttl, stat), WRITES (a session's write memory:
 * id, ackXid, evictedXid, count, then per write xid, zxid and its encoded
 * result; after every NODE, so a fuzzy snapshot's write memory is never
 * older than its znodes) and one END (counts) last. Format 1, written
 * before exactly-once writes, has no WRITES records and three counts in
 * END; it is still read. A server from before format 2 refuses a format-2
 * snapshot with "unsupported snapshot format 2". Data
 * is a jute buffer, length -1 for null data (kept distinct from empty
 * bytes); snapshots written before null was kept never hold -1 there and
 * read as before, so FORMAT_VERSION is unchanged. A
 * record never spans two chunks; a chunk holds records up to `chunkBytes`,
 * or one larger record alone.
 *
 * Invariants: every malformed input makes readSnapshot throw
 * SnapshotFormatError (never another error type, never a partial success);
 * ACL local ids are per snapshot, keyed by the list's content (so a ref
 * reused during a fuzzy snapshot cannot alias two lists).
 * Must not import anything but shared/ and server/tree/.
 */
import type { Acl } from '../../shared/acl.js'
import { ByteQueue } from '../../shared/byte-queue.js'
import { JuteReader, JuteWriter, ProtocolError } from '../../shared/jute.js'
import type { ZnodeData } from '../../shared/records.js'
import { aclKey } from './acl-cache.js'
import type { Kind } from './node-store.js'
import type { SessionWritesRecord } from './write-memory.js'
import { latin1String, type StoredData, writeData } from './znode-data.js'

export class SnapshotFormatError extends Error {
  override name = 'SnapshotFormatError'
}

export const SNAPSHOT_MAGIC = 0x434e534e // 'CNSN'
export const SNAPSHOT_FORMAT_VERSION = 2
/** The format written before exactly-once writes: no WRITES records. */
const FORMAT_NO_WRITES = 1
export const SNAPSHOT_CHUNK_BYTES_DEFAULT = 512 * 1024
const CHUNK_BYTES_MIN = 1

const TAG_SESSION = 1
const TAG_ACL = 2
const TAG_NODE = 3
const TAG_END = 4
const TAG_WRITES = 5

/** A znode as stored in a snapshot (stored cversion, internal kind and owner). */
export interface NodeRecord {
  path: string
  /** null: no data (distinct from empty bytes). */
  data: ZnodeData
  acl: readonly Acl[]
  kind: Kind
  owner: bigint
  ttlMs: number
  czxid: number
  mzxid: number
  pzxid: number
  ctime: number
  mtime: number
  version: number
  cversion: number
  aversion: number
}

function writeAcl(w: JuteWriter, acl: readonly Acl[]): void {
  w.vector(acl, (x, a) => x.int(a.perms).ustring(a.id.scheme).ustring(a.id.id))
}

/**
 * A znode as a snapshot writes it: its data may be as the tree stores it
 * (znode-data.ts: a one-byte string for small data), written without a copy.
 */
export interface NodeRecordOut extends Omit<NodeRecord, 'data'> {
  data: StoredData
}

function writeNode(w: JuteWriter, r: NodeRecordOut, aclId: number): void {
  w.int(TAG_NODE).ustring(r.path)
  writeData(w, r.data)
  w.int(aclId).int(r.kind).long(r.owner).long(r.ttlMs)
  w.long(r.czxid).long(r.mzxid).long(r.pzxid).long(r.ctime).long(r.mtime)
  w.int(r.version).int(r.cversion).int(r.aversion)
}

function writeWrites(w: JuteWriter, r: SessionWritesRecord): void {
  w.int(TAG_WRITES).long(r.sessionId).int(r.ackXid).int(r.evictedXid).int(r.writes.length)
  for (const x of r.writes) w.int(x.xid).long(x.zxid).buffer(x.result)
}

function writesBytesMax(r: SessionWritesRecord): number {
  let n = 24
  for (const x of r.writes) n += 16 + x.result.length
  return n
}

/** Writes sessions, then znodes, then write memories, lazily: one chunk per `next()`. */
export function* writeSnapshot(
  zxid: number,
  sessions: Iterable<[bigint, number]>,
  nodes: Iterable<NodeRecordOut>,
  chunkBytes = SNAPSHOT_CHUNK_BYTES_DEFAULT,
  writes: Iterable<SessionWritesRecord> = [],
): Generator<Uint8Array, void, void> {
  const limit = Math.max(CHUNK_BYTES_MIN, chunkBytes)
  const w = new JuteWriter(limit + 1024)
  w.int(SNAPSHOT_MAGIC).int(SNAPSHOT_FORMAT_VERSION).long(zxid)
  let sessionCount = 0
  let nodeCount = 0
  for (const [id, timeoutMs] of sessions) {
    w.int(TAG_SESSION).long(id).long(timeoutMs)
    sessionCount++
    if (w.pos >= limit) yield takeChunk(w)
  }
  const aclIds = new Map<string, number>()
  // Znodes sharing an ACL hand out the cache's one frozen list: reuse its id without building the key.
  let lastAcl: readonly Acl[] | undefined
  let lastAclId = 0
  for (const r of nodes) {
    let key: string | undefined
    let aclId: number | undefined
    if (r.acl === lastAcl) aclId = lastAclId
    else {
      key = aclKey(r.acl)
      aclId = aclIds.get(key)
    }
    // Cut before a record that would overflow the chunk, unless it would be alone anyway.
    if (w.pos > 0 && w.pos + recordBytesMax(r, aclId === undefined) > limit) yield takeChunk(w)
    if (aclId === undefined) {
      aclId = aclIds.size
      aclIds.set(key ?? aclKey(r.acl), aclId)
      w.int(TAG_ACL).int(aclId)
      writeAcl(w, r.acl)
    }
    if (Object.isFrozen(r.acl)) {
      lastAcl = r.acl
      lastAclId = aclId
    }
    writeNode(w, r, aclId)
    nodeCount++
    if (w.pos >= limit) yield takeChunk(w)
  }
  let writesCount = 0
  for (const r of writes) {
    if (w.pos > 0 && w.pos + writesBytesMax(r) > limit) yield takeChunk(w)
    writeWrites(w, r)
    writesCount++
    if (w.pos >= limit) yield takeChunk(w)
  }
  w.int(TAG_END).int(sessionCount).int(aclIds.size).int(nodeCount).int(writesCount)
  yield takeChunk(w)
}

function takeChunk(w: JuteWriter): Uint8Array {
  const out = w.finish()
  w.reset()
  return out
}

/** An upper bound on the bytes of a node record (and its ACL record), for cutting chunks. */
function recordBytesMax(r: NodeRecordOut, withAcl: boolean): number {
  let n = 96 + 3 * r.path.length + (r.data?.length ?? 0)
  if (withAcl) for (const a of r.acl) n += 12 + 3 * (a.id.scheme.length + a.id.id.length)
  return n + 12
}

export interface SnapshotSink {
  session(id: bigint, timeoutMs: number): void
  /** A znode record of its own (the sink may keep it). */
  node(record: NodeRecord): void
  writes(record: SessionWritesRecord): void
}

/**
 * A znode record read in place, for a sink that copies what it keeps (the
 * tree's loader): one object refilled for every record, valid only during
 * the call; the data is left in the chunk, bytes[dataAt, dataAt +
 * dataLength), dataLength -1 for null. A NodeRecord, a view for its data
 * and the path's decoding were ~0.4 s of CPU and GC in loading 1M znodes.
 */
export interface NodeRecordView extends Omit<NodeRecord, 'data'> {
  bytes: Uint8Array
  dataAt: number
  dataLength: number
}

/** A sink that reads znode records in place (see NodeRecordView). */
export interface SnapshotViewSink extends Omit<SnapshotSink, 'node'> {
  nodeView(record: NodeRecordView): void
}

function readWrites(r: JuteReader): SessionWritesRecord {
  const sessionId = r.long()
  const ackXid = r.int()
  const evictedXid = r.int()
  const n = r.int()
  // Each write takes at least 16 bytes (xid, zxid, buffer length), so n is bounded by what is left.
  if (n < 0 || n * 16 > r.remaining) throw new SnapshotFormatError(`bad write count ${n}`)
  const writes: SessionWritesRecord['writes'] = []
  for (let i = 0; i < n; i++) {
    const xid = r.int()
    const zxid = r.safeLong('zxid')
    const result = r.buffer()
    if (result === null) throw new SnapshotFormatError(`write ${xid} of session ${sessionId} has no result`)
    // A copy: the record outlives the chunk it was read from.
    writes.push({ xid, zxid, result: result.slice() })
  }
  return { sessionId, ackXid, evictedXid, writes }
}

/** Frozen: every znode record that names this ACL shares the one list (see AclCache.intern). */
function readAcl(r: JuteReader): readonly Acl[] {
  return Object.freeze(
    r.vector((x) => ({ perms: x.int(), id: { scheme: x.string('scheme'), id: x.string('id') } }), 12) ?? [],
  )
}

/** A session id from its two halves: no BigInt made for the common 0 (a znode that is not ephemeral). */
function ownerOf(hi: number, lo: number): bigint {
  if (hi === 0 && lo === 0) return 0n
  return (BigInt(hi) << 32n) | BigInt(lo >>> 0)
}

/**
 * A path as its UTF-8 bytes give it: read in place as one-byte characters
 * when every byte is ASCII (the common case, and the same string), else
 * by the jute reader's UTF-8 decoding (which also reports a bad length).
 */
function readPath(r: JuteReader, bytes: Uint8Array): string {
  const len = r.int()
  const at = r.pos
  if (len >= 0 && len <= r.remaining) {
    let i = at
    while (i < at + len && bytes[i]! < 0x80) i++
    if (i === at + len) {
      r.pos += len
      return latin1String(bytes, at, len)
    }
  }
  r.pos = at - 4
  return r.string('path')
}

/** Reads one znode record into `v` (see NodeRecordView); `bytes` are the reader's. */
function readNodeView(
  r: JuteReader,
  bytes: Uint8Array,
  acls: Map<number, readonly Acl[]>,
  v: NodeRecordView,
): NodeRecordView {
  const path = readPath(r, bytes)
  const dataLength = r.int()
  if (dataLength < -1) throw new ProtocolError(`negative buffer length ${dataLength}`)
  if (dataLength > r.remaining)
    throw new ProtocolError(`truncated buffer: need ${dataLength} bytes, ${r.remaining} left`)
  const dataAt = r.pos
  if (dataLength > 0) r.pos += dataLength
  const aclId = r.int()
  const acl = acls.get(aclId)
  if (acl === undefined) throw new SnapshotFormatError(`znode ${path} refers to unknown ACL ${aclId}`)
  const kind = r.int()
  if (kind < 0 || kind > 3) throw new SnapshotFormatError(`znode ${path} has unknown kind ${kind}`)
  v.path = path
  v.bytes = bytes
  v.dataAt = dataAt
  v.dataLength = dataLength
  v.acl = acl
  v.kind = kind as Kind
  v.owner = ownerOf(r.int(), r.int())
  v.ttlMs = r.safeLong('ttl')
  v.czxid = r.safeLong('czxid')
  v.mzxid = r.safeLong('mzxid')
  v.pzxid = r.safeLong('pzxid')
  v.ctime = r.safeLong('ctime')
  v.mtime = r.safeLong('mtime')
  v.version = r.int()
  v.cversion = r.int()
  v.aversion = r.int()
  return v
}

/** A record of its own from a view: its data a view of the chunk, as jute's buffer() gives it. */
function recordOf(v: NodeRecordView): NodeRecord {
  return {
    path: v.path,
    data: v.dataLength === -1 ? null : v.bytes.subarray(v.dataAt, v.dataAt + v.dataLength),
    acl: v.acl,
    kind: v.kind,
    owner: v.owner,
    ttlMs: v.ttlMs,
    czxid: v.czxid,
    mzxid: v.mzxid,
    pzxid: v.pzxid,
    ctime: v.ctime,
    mtime: v.mtime,
    version: v.version,
    cversion: v.cversion,
    aversion: v.aversion,
  }
}

function emptyView(): NodeRecordView {
  return {
    path: '',
    bytes: new Uint8Array(0),
    dataAt: 0,
    dataLength: -1,
    acl: [],
    kind: 0,
    owner: 0n,
    ttlMs: 0,
    czxid: 0,
    mzxid: 0,
    pzxid: 0,
    ctime: 0,
    mtime: 0,
    version: 0,
    cversion: 0,
    aversion: 0,
  }
}

/**
 * Most bytes one record may take in a stream cut anywhere (a SNAP re-chunks
 * it): a record cut by a chunk boundary is held until the rest arrives, at
 * most this much. Znode data is at most a few MiB (the server's limit); a
 * session's write memory is bounded by its own limits, far below this.
 */
export const SNAPSHOT_RECORD_BYTES_MAX = 64 * 1024 * 1024

/**
 * Reads a snapshot stream pushed a chunk at a time, into `sink`, record by
 * record as each chunk arrives: the stream is never held whole, and chunk
 * boundaries may fall anywhere (inside a record too: the cut record waits
 * for the rest, up to SNAPSHOT_RECORD_BYTES_MAX). `end()` checks the end
 * record and returns the zxid. Throws SnapshotFormatError on any malformed
 * input; the sink may by then have seen part of it (the caller discards
 * what it built).
 */
export class SnapshotDecoder {
  private zxid: number | undefined
  private version = 0
  private ended = false
  private readonly counts = { sessions: 0, nodes: 0, writes: 0 }
  private readonly acls = new Map<number, readonly Acl[]>()
  /** The bytes of a record cut by a chunk boundary, and the chunks after it, until enough have come. */
  private readonly pending = new ByteQueue()
  /** Read the pending bytes again once this many are there (twice the last try: copies stay linear). */
  private retryAt = 0
  /** The one record every znode is read into. */
  private readonly view = emptyView()

  constructor(private readonly sink: SnapshotSink | SnapshotViewSink) {}

  /** The next piece of the stream (kept only while it ends inside a record). */
  push(chunk: Uint8Array): void {
    if (this.ended && chunk.length > 0) throw new SnapshotFormatError('data after the end record')
    if (this.pending.length === 0) return this.read(chunk, false)
    this.pending.push(chunk)
    if (this.pending.length < this.retryAt) return
    if (this.pending.length > SNAPSHOT_RECORD_BYTES_MAX) {
      // Not a record cut short but a malformed one: read it as final for its own error.
      this.read(this.takePending(), true)
      throw new SnapshotFormatError(`a record of more than ${SNAPSHOT_RECORD_BYTES_MAX} bytes`)
    }
    this.read(this.takePending(), false)
  }

  /** The stream is over: checks it was whole (header, end record, nothing cut); returns its zxid. */
  end(): number {
    if (this.pending.length > 0) this.read(this.takePending(), true)
    if (this.zxid === undefined) throw new SnapshotFormatError('empty snapshot')
    if (!this.ended) throw new SnapshotFormatError('snapshot is truncated (no end record)')
    return this.zxid
  }

  private takePending(): Uint8Array {
    return this.pending.take(this.pending.length)
  }

  /**
   * Reads every whole record of `bytes`. Unless `final`, a record that does
   * not parse may be one cut short: it and what follows wait for more bytes
   * (a copy: the caller may reuse its chunk).
   */
  private read(bytes: Uint8Array, final: boolean): void {
    const r = new JuteReader(bytes)
    let at = 0
    try {
      if (this.zxid === undefined) {
        // Sixteen bytes are the whole header: with them, a bad one is bad for good.
        if (bytes.length >= 16) ({ zxid: this.zxid, version: this.version } = readHeader(r))
        else throw new SnapshotFormatError('not a Conclave snapshot')
        at = r.pos
      }
      while (r.remaining > 0) {
        if (this.ended) throw new SnapshotFormatError('data after the end record')
        this.record(r, bytes)
        at = r.pos
      }
    } catch (e) {
      const rest = bytes.length - at
      const cut = this.zxid !== undefined || bytes.length < 16
      if (final || !cut || this.ended || !(e instanceof ProtocolError || e instanceof SnapshotFormatError)) {
        if (e instanceof ProtocolError) throw new SnapshotFormatError(`bad snapshot: ${e.message}`)
        throw e
      }
      this.pending.push(bytes.slice(at))
      this.retryAt = 2 * rest
    }
  }

  private record(r: JuteReader, bytes: Uint8Array): void {
    const tag = r.int()
    const { sink, counts } = this
    if (tag === TAG_NODE) {
      const v = readNodeView(r, bytes, this.acls, this.view)
      if ('nodeView' in sink) sink.nodeView(v)
      else sink.node(recordOf(v))
      counts.nodes++
    } else if (tag === TAG_SESSION) {
      sink.session(r.long(), positive(r.safeLong('timeout')))
      counts.sessions++
    } else if (tag === TAG_ACL) {
      const id = r.int()
      this.acls.set(id, readAcl(r))
    } else if (tag === TAG_WRITES && this.version !== FORMAT_NO_WRITES) {
      sink.writes(readWrites(r))
      counts.writes++
    } else if (tag === TAG_END) {
      checkEnd(r, counts, this.acls.size, this.version)
      this.ended = true
    } else throw new SnapshotFormatError(`unknown record tag ${tag}`)
  }
}

/** Reads a snapshot into `sink`; returns its zxid. Throws SnapshotFormatError on any malformed input. */
export function readSnapshot(chunks: Iterable<Uint8Array>, sink: SnapshotSink | SnapshotViewSink): number {
  const d = new SnapshotDecoder(sink)
  for (const c of chunks) d.push(c)
  return d.end()
}

function readHeader(r: JuteReader): { zxid: number; version: number } {
  if (r.remaining < 16 || r.int() !== SNAPSHOT_MAGIC) throw new SnapshotFormatError('not a Conclave snapshot')
  const version = r.int()
  if (version !== SNAPSHOT_FORMAT_VERSION && version !== FORMAT_NO_WRITES)
    throw new SnapshotFormatError(`unsupported snapshot format ${version}`)
  return { zxid: r.safeLong('zxid'), version }
}

function checkEnd(
  r: JuteReader,
  counts: { sessions: number; nodes: number; writes: number },
  aclCount: number,
  version: number,
): void {
  const sessions = r.int()
  const acls = r.int()
  const nodes = r.int()
  const writes = version === FORMAT_NO_WRITES ? 0 : r.int()
  r.done('end record')
  if (sessions !== counts.sessions || acls !== aclCount || nodes !== counts.nodes || writes !== counts.writes)
    throw new SnapshotFormatError('snapshot record counts do not match its end record')
}

function positive(n: number): number {
  if (n <= 0) throw new SnapshotFormatError(`bad session timeout ${n}`)
  return n
}
