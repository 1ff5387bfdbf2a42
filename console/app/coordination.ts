/**
 * Decodes the recipes' znode layouts (recipes/*.ts) found under a path:
 *
 *   lock (Lock, LeaderSelector, a Semaphore's mutex)   <dir>/[_c_<uuid>-]lock-<seq>, ephemeral:
 *                                                      the lowest holds it, the rest wait in order;
 *                                                      the fencing token is a node's czxid
 *   read-write lock                                    <dir>/[_c_<uuid>-]__READ__<seq>, __WRIT__<seq>
 *   semaphore                                          <path>/leases/[_c_<uuid>-]lease-<seq> (holders),
 *                                                      <path>/locks (its mutex)
 *   election (LeaderElection)                          <dir>/[_c_<uuid>-]latch-<seq> holding the
 *                                                      candidate's id: the lowest leads
 *   queue (Queue, PriorityQueue, DelayQueue)           <dir>/[_c_<uuid>-]qn-|qp-|qd-…<seq>, persistent;
 *                                                      <dir>/_claims holds takes in progress
 *   group (GroupMembership, ServiceDiscovery)          <dir>/<id>, ephemeral, not sequential
 *
 * classify() is pure (the unit tests feed it listings); scan() walks a
 * subtree with the SDK, breadth by breadth, bounded by maxNodes.
 * Must not import node:* (bundled for browsers) and no DOM.
 */
import { type Client, ErrorCode, type Stat, ZkError } from '../../client/index.js'
import { joinPath } from './subtree.js'

const PROTECTED = /^_c_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-/

export function stripProtected(name: string): string {
  return name.replace(PROTECTED, '')
}

/** The 10-digit sequence suffix, or undefined. */
export function sequenceOf(name: string): number | undefined {
  const m = /(\d{10})$/.exec(name)
  return m === null ? undefined : Number(m[1])
}

export interface ChildInfo {
  name: string
  stat: Stat
  /** The node's data as text, where the layout keeps something in it (a candidate's id, a member's data). */
  data?: string
}

export interface Contender {
  node: string
  session: string
  /** The node's czxid: the fencing token a holder gets. */
  fencingToken: number
  sequence: number
  /** For a read-write lock: 'read' or 'write'. */
  kind?: 'read' | 'write'
  /** What the node holds (a LeaderSelector's or candidate's id), if any. */
  id?: string
}

export type Structure =
  | { type: 'lock'; path: string; holders: Contender[]; waiters: Contender[] }
  | { type: 'rwlock'; path: string; holders: Contender[]; waiters: Contender[] }
  | { type: 'semaphore'; path: string; leases: Contender[] }
  | { type: 'election'; path: string; leader: Contender | undefined; candidates: Contender[] }
  | { type: 'queue'; path: string; kind: 'fifo' | 'priority' | 'delay'; depth: number; claims: number }
  | { type: 'group'; path: string; members: { id: string; session: string; data: string }[] }

function contenders(children: readonly ChildInfo[], test: (bare: string) => boolean): Contender[] {
  const out: Contender[] = []
  for (const c of children) {
    const bare = stripProtected(c.name)
    const sequence = sequenceOf(bare)
    if (!test(bare) || sequence === undefined) continue
    const x: Contender = {
      node: c.name,
      session: c.stat.ephemeralOwner,
      fencingToken: c.stat.czxid,
      sequence,
    }
    if (c.data !== undefined && c.data !== '') x.id = c.data
    out.push(x)
  }
  return out.sort((a, b) => a.sequence - b.sequence)
}

/** Which names a directory's children must have for a layout, and whether their data is read. */
export function wantsData(children: readonly string[]): boolean {
  return children.some((n) => {
    const b = stripProtected(n)
    return b.startsWith('latch-') || b.startsWith('lock-')
  })
}

/**
 * The structures a directory is, from its children (with their stats; data
 * where wantsData says so). `parentName` tells a semaphore's `leases`.
 */
export function classify(path: string, children: readonly ChildInfo[]): Structure[] {
  const bare = children.map((c) => stripProtected(c.name))
  const out: Structure[] = []
  const has = (prefix: string): boolean =>
    bare.some((b) => b.startsWith(prefix) && sequenceOf(b) !== undefined)
  if (has('lock-')) {
    const all = contenders(children, (b) => b.startsWith('lock-'))
    out.push({ type: 'lock', path, holders: all.slice(0, 1), waiters: all.slice(1) })
  }
  if (has('__READ__') || has('__WRIT__')) {
    const all = contenders(children, (b) => b.startsWith('__READ__') || b.startsWith('__WRIT__')).map(
      (c) => ({
        ...c,
        kind: stripProtected(c.node).startsWith('__READ__') ? ('read' as const) : ('write' as const),
      }),
    )
    // Curator's rule: a writer holds it when first; readers hold it while no writer is before them.
    const firstWriter = all.findIndex((c) => c.kind === 'write')
    const holders =
      firstWriter === 0 ? all.slice(0, 1) : all.slice(0, firstWriter === -1 ? all.length : firstWriter)
    out.push({ type: 'rwlock', path, holders, waiters: all.slice(holders.length) })
  }
  if (has('lease-') && path.endsWith('/leases')) {
    const semaphore = path.slice(0, -'/leases'.length) || '/'
    out.push({
      type: 'semaphore',
      path: semaphore,
      leases: contenders(children, (b) => b.startsWith('lease-')),
    })
  }
  if (has('latch-')) {
    const all = contenders(children, (b) => b.startsWith('latch-'))
    out.push({ type: 'election', path, leader: all[0], candidates: all })
  }
  for (const [prefix, kind] of [
    ['qn-', 'fifo'],
    ['qp-', 'priority'],
    ['qd-', 'delay'],
  ] as const) {
    const items = children.filter((c) => {
      const b = stripProtected(c.name)
      return b.startsWith(prefix) && sequenceOf(b) !== undefined && c.stat.ephemeralOwner === '0x0'
    })
    const claims = children.find((c) => c.name === '_claims')?.stat.numChildren ?? 0
    if (items.length > 0 || (claims > 0 && kind === 'fifo' && !has('qp-') && !has('qd-')))
      out.push({ type: 'queue', path, kind, depth: items.length, claims })
  }
  if (
    out.length === 0 &&
    children.length > 0 &&
    children.every((c) => c.stat.ephemeralOwner !== '0x0' && sequenceOf(c.name) === undefined)
  )
    out.push({
      type: 'group',
      path,
      members: children.map((c) => ({ id: c.name, session: c.stat.ephemeralOwner, data: c.data ?? '' })),
    })
  return out
}

export interface ScanResult {
  root: string
  structures: Structure[]
  /** znodes looked at. */
  visited: number
  /** True when maxNodes stopped the walk before the end. */
  truncated: boolean
}

/** Directories whose own children are never walked into: they hold recipe nodes only. */
function isLeafDir(structures: readonly Structure[]): boolean {
  return structures.some((s) => s.type !== 'semaphore' && s.type !== 'group')
}

/** Walks the subtree at `root` and decodes every directory (at most `maxNodes` znodes). */
export async function scan(zk: Client, root: string, maxNodes = 5_000): Promise<ScanResult> {
  const structures: Structure[] = []
  let visited = 0
  let truncated = false
  let level = [root]
  while (level.length > 0) {
    const next: string[] = []
    await Promise.all(
      level.map(async (dir) => {
        let names: string[]
        try {
          names = await zk.getChildren(dir)
        } catch (err) {
          // Gone, or not readable with this session's credentials: nothing to decode there.
          if (ZkError.is(err, ErrorCode.NO_NODE) || ZkError.is(err, ErrorCode.NO_AUTH)) return
          throw err
        }
        if (visited + names.length > maxNodes) {
          truncated = true
          names = names.slice(0, Math.max(0, maxNodes - visited))
        }
        visited += names.length
        const withData = wantsData(names) || names.length <= 200
        const infos = (
          await Promise.all(
            names.map(async (name): Promise<ChildInfo | undefined> => {
              const p = joinPath(dir, name)
              try {
                if (withData) {
                  const { data, stat } = await zk.getData(p)
                  return { name, stat, data: new TextDecoder().decode(data.subarray(0, 256)) }
                }
              } catch (err) {
                if (ZkError.is(err, ErrorCode.NO_NODE)) return undefined
                if (!ZkError.is(err, ErrorCode.NO_AUTH)) throw err
                // Not readable: its Stat still is (exists needs no permission).
              }
              const stat = await zk.exists(p)
              return stat === null ? undefined : { name, stat }
            }),
          )
        ).filter((c): c is ChildInfo => c !== undefined)
        const found = classify(dir, infos)
        structures.push(...found)
        if (isLeafDir(found)) return
        for (const c of infos)
          if (c.stat.numChildren > 0 && c.name !== '_claims') next.push(joinPath(dir, c.name))
      }),
    )
    level = truncated ? [] : next
  }
  structures.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.type < b.type ? -1 : 1))
  return { root, structures, visited, truncated }
}
