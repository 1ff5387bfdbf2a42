/**
 * Canonical dumps of a DataTree and of the reference model, for toEqual.
 */
import type { DataTree } from '../../../server/tree/data-tree.js'
import type { WireStat } from '../../../shared/stat.js'
import type { Model } from './model.js'

export interface NodeDump {
  stat: WireStat
  /** null for null data. */
  data: number[] | null
  acl: { perms: number; scheme: string; id: string }[]
  children: string[]
}

export interface Dump {
  nodes: Record<string, NodeDump>
  sessions: [string, number][]
  ephemerals: Record<string, string[]>
}

export function dumpTree(tree: DataTree): Dump {
  const nodes: Record<string, NodeDump> = {}
  for (const path of [...tree.paths()].sort()) {
    const { data, stat } = tree.getData(path)!
    nodes[path] = {
      stat,
      data: data === null ? null : [...data],
      acl: tree.getAcl(path)!.acl.map((a) => ({ perms: a.perms, scheme: a.id.scheme, id: a.id.id })),
      children: tree.getChildren(path)!,
    }
  }
  const ephemerals: Record<string, string[]> = {}
  const owners = new Set<bigint>()
  for (const path of tree.paths()) {
    const m = tree.nodeMeta(path)!
    if (m.kind === 'ephemeral') owners.add(m.ephemeralOwner)
  }
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

export function dumpModel(model: Model): Dump {
  const nodes: Record<string, NodeDump> = {}
  for (const path of [...model.nodes.keys()].sort()) {
    const n = model.nodes.get(path)!
    nodes[path] = {
      stat: model.stat(path),
      data: n.data === null ? null : [...n.data],
      acl: n.acl.map((a) => ({ perms: a.perms, scheme: a.id.scheme, id: a.id.id })),
      children: model.children(path),
    }
  }
  const ephemerals: Record<string, string[]> = {}
  for (const path of [...model.nodes.keys()].sort()) {
    const n = model.nodes.get(path)!
    if (n.kind === 'ephemeral') (ephemerals[String(n.owner)] ??= []).push(path)
  }
  return {
    nodes,
    sessions: [...model.sessions].map(([id, t]): [string, number] => [String(id), t]).sort(),
    ephemerals: Object.fromEntries(Object.entries(ephemerals).sort()),
  }
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
    reapable: tree.reapable(nowMs).sort(),
    reapableLater: tree.reapable(Number.MAX_SAFE_INTEGER).sort(),
    nextReapAtMs: tree.nextReapAtMs(),
  }
}
