/**
 * Snapshot format of the DataTree: a header (magic, format version, the
 * zxid applied when serialization began), the sessions, then every node
 * (path, data, ACL, kind, owner, TTL, Stat fields), in chunks of bounded
 * size. `snapshotChunks` is a generator the caller drains a little at a time
 * while Txns keep being applied (a fuzzy snapshot: Map iteration is live, so
 * nodes created meanwhile may or may not be included; replaying the log
 * from the start zxid fixes that up, since Txns are idempotent).
 *
 * Pure: imports only shared/ and server/tree.
 */
import { JuteReader, JuteWriter, ProtocolError } from '../../shared/jute.js'
import { readAcl, writeAcl } from '../../shared/records.js'
import { type NodeKind, ZNode } from './znode.js'
import { DataTree } from './znode-tree.js'

const MAGIC = 0x436e7631 // 'Cnv1'
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024

export function* snapshotChunks(tree: DataTree, chunkBytes = SNAPSHOT_CHUNK_BYTES): Generator<Uint8Array> {
  let w = new JuteWriter(chunkBytes + 64 * 1024)
  w.int(MAGIC).long(tree.lastZxid).int(tree.sessions.size)
  for (const [id, t] of tree.sessions) w.long(id).int(t)
  for (const [path, n] of tree.nodes) {
    // Record marker 1: a node follows.
    w.int(1).ustring(path).buffer(n.data)
    w.vector(n.acl, writeAcl)
    w.int(n.kind).long(n.ephemeralOwner).long(n.ttlMs)
    w.long(n.czxid).long(n.mzxid).long(n.pzxid).long(n.ctime).long(n.mtime)
    w.int(n.version).int(n.cversion).int(n.aversion)
    if (w.pos >= chunkBytes) {
      yield w.finish()
      w = new JuteWriter(chunkBytes + 64 * 1024)
    }
  }
  w.int(0)
  yield w.finish()
}

/**
 * Rebuilds a tree from snapshot chunks (all of them, in order). Chunk
 * boundaries need not fall between records (ZAB's SNAP re-chunks the
 * stream), so the chunks are read as one byte stream.
 */
export function treeFromSnapshot(chunks: Iterable<Uint8Array>): DataTree {
  const parts = [...chunks]
  const total = parts.reduce((n, c) => n + c.length, 0)
  const bytes = parts.length === 1 ? parts[0]! : new Uint8Array(total)
  if (parts.length > 1) {
    let at = 0
    for (const c of parts) {
      bytes.set(c, at)
      at += c.length
    }
  }
  const tree = new DataTree(true)
  const r = new JuteReader(bytes)
  if (r.int() !== MAGIC) throw new ProtocolError('not a Conclave snapshot (bad magic)')
  tree.lastZxid = r.safeLong('zxid')
  const sessions = r.int()
  if (sessions < 0 || sessions * 12 > r.remaining) throw new ProtocolError('bad session count')
  for (let i = 0; i < sessions; i++) tree.restoreSession(r.long(), r.int())
  let ended = false
  while (r.remaining > 0) {
    const marker = r.int()
    if (marker === 0) {
      ended = true
      break
    }
    if (marker !== 1) throw new ProtocolError(`bad snapshot record marker ${marker}`)
    const path = r.string('path')
    const data = (r.buffer() ?? new Uint8Array(0)).slice()
    const acl = r.vector(readAcl, 12) ?? []
    const kind = r.int() as NodeKind
    const owner = r.long()
    const ttl = r.safeLong('ttl')
    const n = new ZNode(data, tree.acls.take(acl), kind, owner, ttl, 0, 0, 0, 0, 0, 0, 0, 0)
    n.czxid = r.numberLong()
    n.mzxid = r.numberLong()
    n.pzxid = r.numberLong()
    n.ctime = r.numberLong()
    n.mtime = r.numberLong()
    n.version = r.int()
    n.cversion = r.int()
    n.aversion = r.int()
    tree.restoreNode(path, n)
  }
  if (ended && r.remaining > 0) throw new ProtocolError('snapshot has data after its end marker')
  if (!ended) throw new ProtocolError('snapshot is truncated (no end marker)')
  if (!tree.nodes.has('/')) throw new ProtocolError('snapshot has no root node')
  tree.finishRestore()
  return tree
}
