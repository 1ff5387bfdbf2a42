/**
 * The portable snapshot file of `conclave snapshot save / restore /
 * inspect`: one consistent snapshot of a server's state, self-describing
 * and checked end to end. The snapshot itself is the stream SNAP sync and
 * the data directory use (server/tree/snapshot.ts, its chunks as written);
 * this file wraps it:
 *
 *   "CNCLSNAP"                 8 bytes of magic
 *   u32 BE                     file format version (FILE_FORMAT_VERSION)
 *   u32 BE                     length of the header that follows
 *   header                     UTF-8 JSON: SnapshotFileHeader
 *   u32 BE                     CRC-32 of the header's bytes
 *   chunks                     each: u32 BE length, then the chunk's bytes
 *
 * The header names the zxid, the tree digest (DataTree.digest(): equal for
 * equal trees), the counts, the number of chunks and their bytes, and the
 * SHA-256 of the chunk section. A reader checks all of it before it trusts
 * a byte (readSnapshotFile), and `verifySnapshotFile` rebuilds the tree and
 * compares its digest: a file that passes was written by a complete, sound
 * snapshot, whatever happened to the download.
 *
 * Invariants: every malformed or damaged file throws SnapshotFileError with
 * the reason, never another error; nothing here writes to disk.
 */
import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { formatZxid } from '../../shared/zxid.js'
import { DataTree } from '../tree/data-tree.js'
import { Kind } from '../tree/node-store.js'
import {
  readSnapshot,
  SNAPSHOT_FORMAT_VERSION,
  SnapshotFormatError,
  type SnapshotSink,
} from '../tree/snapshot.js'

export class SnapshotFileError extends Error {
  override name = 'SnapshotFileError'
}

export const FILE_MAGIC = 'CNCLSNAP'
export const FILE_FORMAT_VERSION = 1
/** A header longer than this is not one of ours. */
const HEADER_BYTES_MAX = 64 * 1024
/** A chunk longer than this is not one of ours (the storage's snapshotChunkBytesMax). */
export const FILE_CHUNK_BYTES_MAX = 4 * 1024 * 1024

export interface SnapshotCounts {
  znodes: number
  ephemerals: number
  containers: number
  ttl: number
  sessions: number
  /** Sessions' exactly-once write memories. */
  writeMemories: number
}

export interface SnapshotFileHeader {
  fileFormat: number
  /** The version of the snapshot stream inside (server/tree/snapshot.ts). */
  snapshotFormat: number
  /** The last zxid applied to the state the snapshot holds, as a number and as 0x… text. */
  zxid: number
  zxidHex: string
  /** The tree digest of that state (equal on every member that applied the same zxids). */
  digest: string
  counts: SnapshotCounts
  chunkCount: number
  /** Bytes of the chunks themselves (without their length prefixes). */
  chunkBytes: number
  /** SHA-256 (hex) of the chunk section: every length prefix and chunk, in order. */
  sha256: string
  /** When and where it was taken. */
  createdAt: string
  serverId: number
}

/** What a parsed file holds: its header and its chunks, checked against it. */
export interface SnapshotFile {
  header: SnapshotFileHeader
  chunks: Uint8Array[]
}

/**
 * Counts what a snapshot stream holds (reads it; throws SnapshotFormatError
 * if it is malformed); `also` sees every record too (the CLI's state report).
 */
export function countSnapshot(
  chunks: readonly Uint8Array[],
  also?: Partial<SnapshotSink>,
): { zxid: number; counts: SnapshotCounts } {
  const counts: SnapshotCounts = {
    znodes: 0,
    ephemerals: 0,
    containers: 0,
    ttl: 0,
    sessions: 0,
    writeMemories: 0,
  }
  const zxid = readSnapshot(chunks, {
    session: (id, timeoutMs) => {
      counts.sessions++
      also?.session?.(id, timeoutMs)
    },
    node: (r) => {
      counts.znodes++
      if (r.kind === Kind.ephemeral) counts.ephemerals++
      else if (r.kind === Kind.container) counts.containers++
      else if (r.kind === Kind.ttl) counts.ttl++
      also?.node?.(r)
    },
    writes: (r) => {
      counts.writeMemories++
      also?.writes?.(r)
    },
  })
  return { zxid, counts }
}

/** The file's bytes, as parts to write in order (the chunks are not copied). */
export function encodeSnapshotFile(
  snapshot: { zxid: number; digest: string; chunks: readonly Uint8Array[] },
  serverId: number,
  createdAt = new Date(),
): { header: SnapshotFileHeader; parts: Uint8Array[]; bytes: number } {
  const { counts } = countSnapshot(snapshot.chunks)
  const sha = createHash('sha256')
  const body: Uint8Array[] = []
  let chunkBytes = 0
  for (const c of snapshot.chunks) {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(c.byteLength)
    sha.update(len).update(c)
    body.push(len, c)
    chunkBytes += c.byteLength
  }
  const header: SnapshotFileHeader = {
    fileFormat: FILE_FORMAT_VERSION,
    snapshotFormat: SNAPSHOT_FORMAT_VERSION,
    zxid: snapshot.zxid,
    zxidHex: formatZxid(snapshot.zxid),
    digest: snapshot.digest,
    counts,
    chunkCount: snapshot.chunks.length,
    chunkBytes,
    sha256: sha.digest('hex'),
    createdAt: createdAt.toISOString(),
    serverId,
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  const head = Buffer.alloc(16)
  head.write(FILE_MAGIC, 0, 'latin1')
  head.writeUInt32BE(FILE_FORMAT_VERSION, 8)
  head.writeUInt32BE(json.byteLength, 12)
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(json) >>> 0)
  const parts = [head, json, crc, ...body]
  let bytes = 0
  for (const p of parts) bytes += p.byteLength
  return { header, parts, bytes }
}

/** Parses and checks the header alone (the first bytes of a file); with the offset where chunks start. */
export function readSnapshotFileHeader(bytes: Uint8Array): {
  header: SnapshotFileHeader
  bodyOffset: number
} {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buf.byteLength < 16 || buf.toString('latin1', 0, 8) !== FILE_MAGIC)
    throw new SnapshotFileError('not a Conclave snapshot file (no CNCLSNAP magic)')
  const version = buf.readUInt32BE(8)
  if (version !== FILE_FORMAT_VERSION)
    throw new SnapshotFileError(
      `unsupported snapshot file format ${version} (this Conclave reads ${FILE_FORMAT_VERSION})`,
    )
  const length = buf.readUInt32BE(12)
  if (length > HEADER_BYTES_MAX) throw new SnapshotFileError(`header of ${length} bytes is too long`)
  if (buf.byteLength < 20 + length) throw new SnapshotFileError('file is truncated inside its header')
  if (buf.readUInt32BE(16 + length) !== crc32(buf.subarray(16, 16 + length)) >>> 0)
    throw new SnapshotFileError('the header does not match its checksum: the file is damaged')
  let header: SnapshotFileHeader
  try {
    header = JSON.parse(buf.toString('utf8', 16, 16 + length)) as SnapshotFileHeader
  } catch (err) {
    throw new SnapshotFileError(`unreadable header: ${(err as Error).message}`)
  }
  checkHeader(header)
  return { header, bodyOffset: 20 + length }
}

function checkHeader(h: SnapshotFileHeader): void {
  const count = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0
  const problems: string[] = []
  if (h === null || typeof h !== 'object') throw new SnapshotFileError('header is not an object')
  if (h.fileFormat !== FILE_FORMAT_VERSION) problems.push('fileFormat')
  if (!count(h.zxid)) problems.push('zxid')
  if (typeof h.digest !== 'string' || h.digest.length === 0) problems.push('digest')
  if (!count(h.chunkCount) || h.chunkCount === 0) problems.push('chunkCount')
  if (!count(h.chunkBytes)) problems.push('chunkBytes')
  if (typeof h.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.sha256)) problems.push('sha256')
  if (h.counts === null || typeof h.counts !== 'object' || !count(h.counts.znodes)) problems.push('counts')
  if (problems.length > 0) throw new SnapshotFileError(`header has bad fields: ${problems.join(', ')}`)
}

/**
 * Parses a whole file and checks it against its header: chunk count and
 * bytes, SHA-256, nothing after the last chunk, the stream's own zxid and
 * counts. Does not rebuild the tree (verifySnapshotFile does). `also` sees
 * every record of the pass that counts them (the CLI's state report).
 */
export function readSnapshotFile(bytes: Uint8Array, also?: Partial<SnapshotSink>): SnapshotFile {
  const { header, bodyOffset } = readSnapshotFileHeader(bytes)
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const sha = createHash('sha256')
  const chunks: Uint8Array[] = []
  let at = bodyOffset
  let chunkBytes = 0
  while (at < buf.byteLength) {
    if (chunks.length >= header.chunkCount)
      throw new SnapshotFileError(`more than the ${header.chunkCount} chunks the header names`)
    if (at + 4 > buf.byteLength) throw new SnapshotFileError('file is truncated inside a chunk length')
    const len = buf.readUInt32BE(at)
    if (len > FILE_CHUNK_BYTES_MAX)
      throw new SnapshotFileError(`chunk ${chunks.length} of ${len} bytes is too long`)
    if (at + 4 + len > buf.byteLength)
      throw new SnapshotFileError(`file is truncated inside chunk ${chunks.length} of ${header.chunkCount}`)
    sha.update(buf.subarray(at, at + 4 + len))
    chunks.push(buf.subarray(at + 4, at + 4 + len))
    chunkBytes += len
    at += 4 + len
  }
  if (chunks.length !== header.chunkCount)
    throw new SnapshotFileError(
      `file is truncated: ${chunks.length} of the ${header.chunkCount} chunks the header names`,
    )
  if (chunkBytes !== header.chunkBytes)
    throw new SnapshotFileError(`chunks hold ${chunkBytes} bytes, the header says ${header.chunkBytes}`)
  if (sha.digest('hex') !== header.sha256)
    throw new SnapshotFileError('SHA-256 of the chunks does not match the header: the file is damaged')
  let inside: ReturnType<typeof countSnapshot>
  try {
    inside = countSnapshot(chunks, also)
  } catch (err) {
    if (err instanceof SnapshotFormatError) throw new SnapshotFileError(err.message)
    throw err
  }
  if (inside.zxid !== header.zxid)
    throw new SnapshotFileError(
      `the snapshot inside is at zxid ${formatZxid(inside.zxid)}, the header says ${header.zxidHex}`,
    )
  for (const k of Object.keys(inside.counts) as (keyof SnapshotCounts)[])
    if (inside.counts[k] !== header.counts[k])
      throw new SnapshotFileError(
        `the snapshot holds ${inside.counts[k]} ${k}, the header says ${header.counts[k]}`,
      )
  return { header, chunks }
}

/**
 * readSnapshotFile, then the tree rebuilt and its digest compared with the
 * header's: the state the file restores is the state that was saved.
 * Returns the tree. `also`: as readSnapshotFile's.
 */
export function verifySnapshotFile(
  bytes: Uint8Array,
  also?: Partial<SnapshotSink>,
): SnapshotFile & { tree: DataTree } {
  const file = readSnapshotFile(bytes, also)
  let tree: DataTree
  try {
    tree = DataTree.fromSnapshot(file.chunks)
  } catch (err) {
    if (err instanceof SnapshotFormatError) throw new SnapshotFileError(err.message)
    throw err
  }
  const digest = tree.digest()
  if (digest !== file.header.digest)
    throw new SnapshotFileError(
      `the tree rebuilt from the file has digest ${digest}, the header says ${file.header.digest}`,
    )
  return { ...file, tree }
}
