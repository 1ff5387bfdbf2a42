/**
 * What kind each znode of a ZooKeeper is (container, TTL and its TTL), read
 * from ZooKeeper's own data directory, for `conclave migrate --zk-data-dir`.
 * ZooKeeper does not tell clients: a Stat's ephemeralOwner is 0 for a
 * container and a TTL node (DataTree.copyStat hides its internal encoding),
 * so the kinds can only come from its files, read-only:
 *
 * - the newest `snapshot.<zxid>` (FileSnap: header ZKSN, sessions, the ACL
 *   cache, then every node as path + DataNode, whose StatPersisted holds
 *   the real ephemeralOwner: Long.MIN_VALUE a container, 0xff00… | ttl a
 *   TTL node), uncompressed (ZooKeeper's default);
 * - then every `log.<zxid>` (FileTxnLog: header ZKLG, then records of
 *   checksum, length, TxnHeader + txn, 'B'), replaying creates
 *   (createContainer 19, createTTL 21, create 1), deletes (2, 20) and
 *   multis (14) after the snapshot's zxid.
 *
 * Invariants: the files are only read; a record that does not parse ends
 * that log (a torn or preallocated tail, as ZooKeeper treats it); an
 * unreadable snapshot is an error naming the file.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { JuteReader } from '../../shared/jute.js'

export type ZkKind = { kind: 'container' } | { kind: 'ttl'; ttlMs: number }

const SNAP_MAGIC = 0x5a4b534e // ZKSN
const LOG_MAGIC = 0x5a4b4c47 // ZKLG
const CONTAINER_OWNER = 2n ** 63n

const T = {
  create: 1,
  delete: 2,
  multi: 14,
  createContainer: 19,
  deleteContainer: 20,
  createTTL: 21,
  create2: 15,
}

export class ZkKindsError extends Error {}

/**
 * The container or TTL kind ZooKeeper encodes in an ephemeralOwner
 * (EphemeralType), signed as its files store it or unsigned as a Stat's
 * 0x… text reads; undefined for anything else (0, or a session's id).
 */
export function kindOfOwner(owner: bigint): ZkKind | undefined {
  const u = BigInt.asUintN(64, owner)
  if (u === CONTAINER_OWNER) return { kind: 'container' }
  // TTL: 0xff in the top byte, extended type 0x0000 next, the TTL in the low 48 bits.
  if (u >> 56n === 0xffn && ((u >> 48n) & 0xffn) === 0n)
    return { kind: 'ttl', ttlMs: Number(u & 0xffffffffffffn) }
  return undefined
}

function skipAcls(r: JuteReader): void {
  const n = r.int()
  for (let i = 0; i < n; i++) {
    r.int()
    r.ustring()
    r.ustring()
  }
}

/** The ZooKeeper data directory's `version-2` (given either it or its parent). */
function versionDir(dir: string): string {
  const names = readdirSync(dir)
  return names.includes('version-2') ? join(dir, 'version-2') : dir
}

function zxidOfName(name: string, prefix: string): bigint | undefined {
  if (!name.startsWith(prefix)) return undefined
  const hex = name.slice(prefix.length)
  return /^[0-9a-f]+$/i.test(hex) ? BigInt(`0x${hex}`) : undefined
}

/** path → kind, for every container and TTL node in ZooKeeper's files now. */
export function readZooKeeperKinds(dataDir: string): Map<string, ZkKind> {
  let dir: string
  let names: string[]
  try {
    dir = versionDir(dataDir)
    names = readdirSync(dir)
  } catch (err) {
    throw new ZkKindsError(`cannot read ZooKeeper's data directory ${dataDir}: ${(err as Error).message}`)
  }
  const snaps = names
    .map((n) => ({ n, z: zxidOfName(n, 'snapshot.') }))
    .filter((x): x is { n: string; z: bigint } => x.z !== undefined)
    .sort((a, b) => (a.z < b.z ? 1 : -1))
  const kinds = new Map<string, ZkKind>()
  let after = -1n
  const newest = snaps[0]
  if (newest !== undefined) {
    readSnapshot(join(dir, newest.n), kinds)
    after = newest.z
  }
  const logs = names
    .map((n) => ({ n, z: zxidOfName(n, 'log.') }))
    .filter((x): x is { n: string; z: bigint } => x.z !== undefined)
    .sort((a, b) => (a.z < b.z ? -1 : 1))
  for (const l of logs) readLog(join(dir, l.n), after, kinds)
  return kinds
}

function readSnapshot(file: string, kinds: Map<string, ZkKind>): void {
  const r = new JuteReader(readFileSync(file))
  try {
    if (r.int() !== SNAP_MAGIC)
      throw new ZkKindsError(`${file} is not a ZooKeeper snapshot (or it is compressed)`)
    r.int()
    r.long()
    const sessions = r.int()
    for (let i = 0; i < sessions; i++) {
      r.long()
      r.int()
    }
    const acls = r.int()
    for (let i = 0; i < acls; i++) {
      r.long()
      skipAcls(r)
    }
    for (;;) {
      const path = r.string('path')
      if (path === '/') break
      r.buffer()
      r.long()
      for (let i = 0; i < 4; i++) r.long()
      r.int()
      r.int()
      r.int()
      const owner = r.long()
      r.long()
      const kind = kindOfOwner(owner)
      if (kind !== undefined) kinds.set(path, kind)
    }
  } catch (err) {
    if (err instanceof ZkKindsError) throw err
    throw new ZkKindsError(`cannot read ZooKeeper snapshot ${file}: ${(err as Error).message}`)
  }
}

function readLog(file: string, after: bigint, kinds: Map<string, ZkKind>): void {
  const bytes = readFileSync(file)
  const r = new JuteReader(bytes)
  if (bytes.length < 16 || r.int() !== LOG_MAGIC) return
  r.int()
  r.long()
  for (;;) {
    try {
      if (r.remaining < 12) return
      const crc = r.long()
      const len = r.int()
      if (crc === 0n || len <= 0 || len > r.remaining) return
      const txn = new JuteReader(bytes, r.pos, r.pos + len)
      r.pos += len
      if (r.remaining < 1 || bytes[r.pos] !== 0x42) return
      r.pos += 1
      txn.long()
      txn.int()
      const zxid = txn.long()
      txn.long()
      const type = txn.int()
      if (zxid > after) applyTxn(type, txn, kinds)
    } catch {
      return
    }
  }
}

function applyTxn(type: number, r: JuteReader, kinds: Map<string, ZkKind>): void {
  switch (type) {
    case T.create:
    case T.create2:
      kinds.delete(r.string('path'))
      return
    case T.createContainer:
      kinds.set(r.string('path'), { kind: 'container' })
      return
    case T.createTTL: {
      const path = r.string('path')
      r.buffer()
      skipAcls(r)
      r.int()
      kinds.set(path, { kind: 'ttl', ttlMs: Number(r.long()) })
      return
    }
    case T.delete:
    case T.deleteContainer:
      kinds.delete(r.string('path'))
      return
    case T.multi: {
      const n = r.int()
      for (let i = 0; i < n; i++) {
        const sub = r.int()
        const data = r.buffer()
        if (data !== null) applyTxn(sub, new JuteReader(data), kinds)
      }
      return
    }
  }
}
