/**
 * Canonical dumps of a DataTree, for toEqual: what a client can observe
 * (dumpTree; the reference model dumps itself in the same shape, see
 * test/unit/state/model.ts), and everything replicas must agree on
 * (fullDump: also the stored fields, the digest, the size estimate and what
 * is reapable).
 */

import { expect } from 'vitest'
import { type DataTree, ZNODE_OVERHEAD_BYTES } from '../../../server/tree/data-tree.js'
import type { WireStat } from '../../../shared/stat.js'

export interface NodeDump {
  stat: WireStat
  /** Hex; null for null data. */
  data: string | null
  acl: { perms: number; scheme: string; id: string }[]
  children: string[]
}

export interface Dump {
  nodes: Record<string, NodeDump>
  sessions: [string, number][]
  /** Per owner of an ephemeral znode (whether or not its session still exists), its ephemerals. */
  ephemerals: Record<string, string[]>
}

/** Hex of the bytes (cheap to compare), or null for null data. */
export function hex(data: Uint8Array | null): string | null {
  return data === null ? null : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex')
}

export function dumpTree(tree: DataTree): Dump {
  const nodes: Record<string, NodeDump> = {}
  const owners = new Set<bigint>()
  for (const path of [...tree.paths()].sort()) {
    const { data, stat } = tree.getData(path)!
    nodes[path] = {
      stat,
      data: hex(data),
      acl: tree.aclOf(path)!.map((a) => ({ perms: a.perms, scheme: a.id.scheme, id: a.id.id })),
      children: tree.getChildren(path)!,
    }
    // Only an ephemeral shows an owner.
    if (stat.ephemeralOwner !== 0n) owners.add(stat.ephemeralOwner)
  }
  const ephemerals: Record<string, string[]> = {}
  for (const id of owners) ephemerals[String(id)] = tree.ephemerals(id)
  return {
    nodes,
    sessions: tree
      .sessions()
      .map((s): [string, number] => [String(s.sessionId), s.timeoutMs])
      .sort(),
    ephemerals: Object.fromEntries(Object.entries(ephemerals).sort()),
  }
}

const canonical = (_: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)
const json = (v: unknown) => JSON.stringify(v, canonical)

/** The first place where two dumps differ: its path of keys, and the two values there. */
function firstDifference(
  a: unknown,
  b: unknown,
  at: string[] = [],
): { at: string[]; a: unknown; b: unknown } {
  const plain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null
  if (!plain(a) || !plain(b) || Array.isArray(a) !== Array.isArray(b)) return { at, a, b }
  const keys = Object.keys(a)
  if (json(keys) !== json(Object.keys(b))) return { at, a, b }
  for (const k of keys) if (json(a[k]) !== json(b[k])) return firstDifference(a[k], b[k], [...at, k])
  return { at, a, b }
}

/**
 * expect(actual).toEqual(expected) for dumps (plain data: objects, arrays,
 * strings, numbers, bigints, null): the same JSON (keys in the same order)
 * is equal; otherwise toEqual judges the first part that differs, named by
 * its path of keys (cheap, also while fast-check shrinks a failure).
 */
export function expectSameDump(actual: unknown, expected: unknown, message?: string): void {
  if (json(actual) === json(expected)) return
  const d = firstDifference(actual, expected)
  const where = d.at.length === 0 ? 'the whole dump' : d.at.join(' › ')
  expect(d.a, `${message === undefined ? '' : `${message}: `}${where}`).toEqual(d.b)
  // Only key order differs (the JSON did, toEqual did not): judge the whole.
  expect(actual, message).toEqual(expected)
}

/** Everything a replica must agree on, including the internal (stored) fields and what is reapable. */
export function fullDump(tree: DataTree, nowMs = 0) {
  const raw: Record<string, unknown> = {}
  for (const path of [...tree.paths()].sort()) {
    const m = tree.nodeMeta(path)!
    raw[path] = { kind: m.kind, owner: m.ephemeralOwner, ttl: m.ttlMs, storedCversion: m.cversion }
  }
  return {
    ...dumpTree(tree),
    raw,
    lastZxid: tree.lastZxid,
    digest: tree.digest(),
    sizeEstimateBytes: tree.sizeEstimateBytes(),
    reapable: tree.reapable(nowMs).sort(),
    reapableLater: tree.reapable(Number.MAX_SAFE_INTEGER).sort(),
    nextReapAtMs: tree.nextReapAtMs(),
  }
}

/** The tree's size estimate computed from what it shows: per znode the overhead plus its path and data. */
export function sizeFromContents(tree: DataTree): number {
  let bytes = 0
  for (const path of tree.paths()) bytes += ZNODE_OVERHEAD_BYTES + path.length + tree.stat(path)!.dataLength
  return bytes
}
