/**
 * Migration of a znode tree from a live ZooKeeper (or any server the SDK
 * speaks to) into Conclave, with the SDK on both sides (ZooKeeper's TCP
 * framing to the source, client/transport-tcp.ts). Used by `conclave
 * migrate` (migrate-command.ts).
 *
 * copy(): read the source subtree (data, ACL, kind, the parents' cversion),
 * check the target (a path that exists there with other data is a conflict,
 * refused before anything is written unless `overwrite`), then create
 * parents before children: persistent, container and TTL nodes as they are
 * (a server may show the kind in ephemeralOwner: 0x8000000000000000 a
 * container, 0xff0000… | ttl a TTL node; ZooKeeper shows 0 to clients, so
 * its kinds come from its data directory through `kindOf`, or the znodes
 * are copied as persistent); ephemerals are listed, not copied
 * (their session is the source's); `/zookeeper` is skipped. Each parent's
 * child counter (cversion, which names sequential children) is brought up
 * to the source's, so sequential creates continue without a clash.
 *
 * follow(): a persistent recursive watch on the source (set before the copy
 * reads anything, so no change falls between the two) whose events are
 * applied in order: the source znode is read again and the target made
 * equal (created, set, its ACL set, or deleted). Events are not replayed
 * across a reconnect, so after one (and after a watch 'resync', or a new
 * session when the old one expired) the whole subtree is compared again and
 * every difference applied, deletions included.
 *
 * Invariants: the source is only read; on the target only paths under the
 * target base are written; a znode the target refuses (over its limits, say)
 * is reported with the reason and the rest goes on.
 */
import type { Acl, Client, Stat } from '../../client/index.js'
import { ZkError } from '../../client/index.js'
import { joinPath } from '../../shared/paths.js'
import { kindOfOwner } from './zookeeper-kinds.js'

export type NodeKind = 'persistent' | 'container' | 'ttl' | 'ephemeral'

export interface SourceNode {
  path: string
  data: Uint8Array
  acl: Acl[]
  kind: NodeKind
  ttlMs: number
  cversion: number
  mzxid: number
  /** The ephemeral's session (for the report). */
  owner: string
}

export interface MigrationReport {
  copied: number
  updated: number
  unchanged: number
  deleted: number
  ephemerals: { path: string; owner: string }[]
  failures: { path: string; reason: string }[]
  conflicts: { path: string; why: string }[]
  /** Parents whose child counter was raised, and by how much. */
  counters: { path: string; raisedBy: number }[]
}

export interface MigrationOptions {
  /** Source subtree root, e.g. `/` or `/app`. */
  fromPath: string
  /** Target subtree root. */
  toPath: string
  overwrite: boolean
  /** Called as the work goes on (phase, done, total when known). */
  progress?: (phase: string, done: number, total?: number) => void
  /** Reads in flight at once. */
  concurrency?: number
  /**
   * A znode's kind where the source does not tell it (ZooKeeper shows containers
   * and TTL nodes as persistent): from its data directory (zookeeper-kinds.ts).
   * `fresh`: the znode may be newer than what was read before.
   */
  kindOf?: (
    path: string,
    fresh: boolean,
  ) => { kind: 'container' } | { kind: 'ttl'; ttlMs: number } | undefined
}

const SEQ_SCRATCH = '.conclave-migrate-counter'
/** create+delete pairs per multi when raising a child counter. */
const COUNTER_PAIRS_PER_MULTI = 250

/** ZooKeeper's ephemeralOwner encoding of what a znode is. */
export function kindOf(stat: Stat): { kind: NodeKind; ttlMs: number } {
  const owner = BigInt(stat.ephemeralOwner)
  if (owner === 0n) return { kind: 'persistent', ttlMs: 0 }
  const k = kindOfOwner(owner)
  if (k === undefined) return { kind: 'ephemeral', ttlMs: 0 }
  return { kind: k.kind, ttlMs: k.kind === 'ttl' ? k.ttlMs : 0 }
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof ZkError && codes.includes(err.code)
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

function aclKey(acl: readonly Acl[]): string {
  return JSON.stringify([...acl].map((a) => [a.perms, a.id.scheme, a.id.id]).sort())
}

/** Runs `fn` over `items` with at most `n` at once, in any order. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!)
  })
  await Promise.all(workers)
}

export class Migration {
  readonly report: MigrationReport = {
    copied: 0,
    updated: 0,
    unchanged: 0,
    deleted: 0,
    ephemerals: [],
    failures: [],
    conflicts: [],
    counters: [],
  }
  /** The highest source zxid whose change the target reflects. */
  appliedZxid = 0

  constructor(
    private source: Client,
    readonly targetClient: Client,
    private readonly opts: MigrationOptions,
  ) {}

  /** The source client changed (a new session after expiry). */
  useSource(source: Client): void {
    this.source = source
  }

  /** The target path of a source path under fromPath. */
  targetPath(sourcePath: string): string {
    const base = this.opts.fromPath
    const rel = base === '/' ? sourcePath.slice(1) : sourcePath.slice(base.length + 1)
    return rel === '' ? this.opts.toPath : joinPath(this.opts.toPath, rel)
  }

  private skipped(path: string): boolean {
    return path === '/zookeeper' || path.startsWith('/zookeeper/')
  }

  /** One source znode, or undefined if it is gone. */
  async readSource(path: string, fresh = false): Promise<SourceNode | undefined> {
    try {
      const [{ data, stat }, { acl }] = await Promise.all([
        this.source.getData(path),
        this.source.getACL(path),
      ])
      const owner = stat.ephemeralOwner
      let kind = kindOf(stat)
      if (kind.kind === 'persistent') {
        const k = this.opts.kindOf?.(path, fresh)
        if (k !== undefined) kind = { kind: k.kind, ttlMs: k.kind === 'ttl' ? k.ttlMs : 0 }
      }
      return { path, data, acl, ...kind, cversion: stat.cversion, mzxid: stat.mzxid, owner }
    } catch (err) {
      if (isCode(err, 'NO_NODE')) return undefined
      throw err
    }
  }

  /** The whole source subtree, parents before children (ephemerals included, marked). */
  async readTree(): Promise<SourceNode[]> {
    const out: SourceNode[] = []
    let level = [this.opts.fromPath]
    const progress = this.opts.progress
    while (level.length > 0) {
      const next: string[] = []
      const found: SourceNode[] = []
      await pool(level, this.opts.concurrency ?? 32, async (path) => {
        if (this.skipped(path)) return
        const [node, children] = await Promise.all([
          this.readSource(path),
          this.source.getChildren(path).catch((err: unknown) => {
            if (isCode(err, 'NO_NODE')) return [] as string[]
            throw err
          }),
        ])
        if (node === undefined) return
        found.push(node)
        for (const c of children) next.push(joinPath(path, c))
        progress?.('reading', out.length + found.length)
      })
      found.sort((a, b) => (a.path < b.path ? -1 : 1))
      out.push(...found)
      level = next
    }
    return out
  }

  /**
   * Target paths that exist with other data: a conflict unless `overwrite`.
   * `seen` gets what each target path held (null: absent), so the copy need
   * not read it again.
   */
  private async conflicts(
    nodes: SourceNode[],
    seen: Map<string, Uint8Array | null>,
  ): Promise<{ path: string; why: string }[]> {
    const found: { path: string; why: string }[] = []
    let done = 0
    await pool(
      nodes.filter((n) => n.kind !== 'ephemeral'),
      this.opts.concurrency ?? 32,
      async (n) => {
        const to = this.targetPath(n.path)
        seen.set(to, null)
        try {
          const { data } = await this.targetClient.getData(to)
          seen.set(to, data)
          if (!sameBytes(data, n.data))
            found.push({
              path: to,
              why: `exists with other data (${data.length} bytes, the source's ${n.data.length})`,
            })
        } catch (err) {
          if (!isCode(err, 'NO_NODE')) throw err
        }
        this.opts.progress?.('checking the target', ++done, nodes.length)
      },
    )
    return found.sort((a, b) => (a.path < b.path ? -1 : 1))
  }

  /**
   * The copy: read, check, write. Returns false (nothing written) when the
   * target has conflicting paths and `overwrite` is off.
   */
  async copy(): Promise<boolean> {
    const nodes = await this.readTree()
    const seen = new Map<string, Uint8Array | null>()
    if (!this.opts.overwrite) {
      const conflicts = await this.conflicts(nodes, seen)
      if (conflicts.length > 0) {
        this.report.conflicts = conflicts
        return false
      }
    }
    let done = 0
    // Level by level (readTree's order): a node's parent is written before it.
    for (const n of nodes) {
      if (n.kind === 'ephemeral') {
        this.noteEphemeral(n)
        continue
      }
      await this.upsert(n, seen.get(this.targetPath(n.path)))
      this.appliedZxid = Math.max(this.appliedZxid, n.mzxid)
      this.opts.progress?.('copying', ++done, nodes.length)
    }
    await this.alignCounters(nodes)
    return true
  }

  private noteEphemeral(n: SourceNode): void {
    if (this.report.ephemerals.some((e) => e.path === n.path)) return
    this.report.ephemerals.push({ path: n.path, owner: n.owner })
  }

  /**
   * Makes the target znode equal to `n` (created if missing, data and ACL
   * set if different). `known`: its target's data as conflicts() read it
   * (null: absent), instead of reading it again.
   */
  private async upsert(n: SourceNode, known?: Uint8Array | null): Promise<void> {
    const to = this.targetPath(n.path)
    try {
      let existing = known
      if (existing === undefined)
        try {
          existing = (await this.targetClient.getData(to)).data
        } catch (err) {
          if (!isCode(err, 'NO_NODE')) throw err
          existing = null
        }
      if (existing === null) {
        try {
          await this.create(to, n)
        } catch (err) {
          // Created on the target since conflicts() found it absent: compare it as it is now.
          if (known === null && isCode(err, 'NODE_EXISTS')) return this.upsert(n)
          throw err
        }
        this.report.copied++
        return
      }
      let changed = false
      if (!sameBytes(existing, n.data)) {
        await this.targetClient.setData(to, n.data)
        changed = true
      }
      const { acl } = await this.targetClient.getACL(to)
      if (aclKey(acl) !== aclKey(n.acl)) {
        await this.targetClient.setACL(to, n.acl)
        changed = true
      }
      if (changed) this.report.updated++
      else this.report.unchanged++
    } catch (err) {
      this.fail(to, n, err)
    }
  }

  private async create(to: string, n: SourceNode): Promise<void> {
    const mode = n.kind === 'container' ? 'container' : n.kind === 'ttl' ? 'persistentWithTtl' : 'persistent'
    try {
      await this.targetClient.create(to, n.data, {
        acl: n.acl,
        mode,
        ...(n.kind === 'ttl' ? { ttlMs: n.ttlMs } : {}),
      })
    } catch (err) {
      // The target base's parents (a --to path below /) are made as plain znodes.
      if (!isCode(err, 'NO_NODE') || to !== this.opts.toPath) throw err
      await this.ensureParents(to)
      await this.targetClient.create(to, n.data, {
        acl: n.acl,
        mode,
        ...(n.kind === 'ttl' ? { ttlMs: n.ttlMs } : {}),
      })
    }
  }

  private async ensureParents(path: string): Promise<void> {
    const parts = path.split('/').filter((p) => p !== '')
    let at = ''
    for (const p of parts.slice(0, -1)) {
      at += `/${p}`
      try {
        await this.targetClient.create(at, new Uint8Array(0))
      } catch (err) {
        if (!isCode(err, 'NODE_EXISTS')) throw err
      }
    }
  }

  private fail(to: string, n: SourceNode, err: unknown): void {
    const code = err instanceof ZkError ? err.code : ''
    let reason = err instanceof Error ? err.message : String(err)
    if (code === 'BAD_ARGUMENTS' || code === 'MARSHALLING_ERROR' || code === 'QUOTA_EXCEEDED')
      reason = `over the target's limits (${n.data.length} bytes of data, ${n.acl.length} ACL entries): ${reason}`
    this.report.failures.push({ path: to, reason })
  }

  /**
   * Raises each target parent's child counter (cversion) to the source's,
   * by creating and deleting a scratch child in batches: the next
   * sequential name the target gives is then the one the source would.
   */
  async alignCounters(nodes: SourceNode[]): Promise<void> {
    for (const n of nodes) {
      if (n.kind === 'ephemeral' || n.cversion === 0) continue
      const to = this.targetPath(n.path)
      const stat = await this.targetClient.exists(to).catch(() => null)
      if (stat === null || stat.cversion >= n.cversion) continue
      const gap = n.cversion - stat.cversion
      const scratch = joinPath(to, SEQ_SCRATCH)
      try {
        let left = Math.ceil(gap / 2)
        while (left > 0) {
          const pairs = Math.min(left, COUNTER_PAIRS_PER_MULTI)
          const ops = []
          for (let i = 0; i < pairs; i++)
            ops.push({ op: 'create' as const, path: scratch }, { op: 'delete' as const, path: scratch })
          await this.targetClient.multi(ops)
          left -= pairs
        }
        this.report.counters.push({ path: to, raisedBy: gap })
      } catch (err) {
        this.report.failures.push({
          path: to,
          reason: `could not raise its child counter: ${(err as Error).message}`,
        })
      }
    }
  }

  /** Applies one change the source reported at `path`: the target made equal to the source now. */
  async apply(path: string): Promise<void> {
    if (this.skipped(path)) return
    const n = await this.readSource(path, true)
    if (n === undefined) return this.remove(path)
    if (n.kind === 'ephemeral') return this.noteEphemeral(n)
    await this.upsert(n)
    this.appliedZxid = Math.max(this.appliedZxid, n.mzxid)
  }

  /** Deletes the target of a source path that is gone (and whatever is below it on the target). */
  async remove(sourcePath: string): Promise<void> {
    const to = this.targetPath(sourcePath)
    if (to === this.opts.toPath && to === '/') return
    try {
      await this.deleteTree(to)
    } catch (err) {
      if (!isCode(err, 'NO_NODE')) this.report.failures.push({ path: to, reason: (err as Error).message })
    }
  }

  private async deleteTree(path: string): Promise<void> {
    for (;;) {
      try {
        await this.targetClient.delete(path)
        this.report.deleted++
        return
      } catch (err) {
        if (isCode(err, 'NO_NODE')) return
        if (!isCode(err, 'NOT_EMPTY')) throw err
      }
      for (const c of await this.targetClient.getChildren(path).catch(() => [] as string[]))
        await this.deleteTree(joinPath(path, c))
    }
  }

  /**
   * Compares the whole subtree again and applies every difference (after a
   * reconnect or a dropped watch: changes in between were not reported).
   */
  async resync(): Promise<number> {
    const nodes = await this.readTree()
    const wanted = new Set<string>()
    let changes = 0
    const before = this.report.copied + this.report.updated
    for (const n of nodes) {
      if (n.kind === 'ephemeral') {
        this.noteEphemeral(n)
        continue
      }
      wanted.add(this.targetPath(n.path))
      await this.upsert(n)
      this.appliedZxid = Math.max(this.appliedZxid, n.mzxid)
    }
    changes += this.report.copied + this.report.updated - before
    // Target znodes under the base the source no longer has.
    const extra: string[] = []
    const walk = async (path: string): Promise<void> => {
      for (const c of await this.targetClient.getChildren(path).catch(() => [] as string[])) {
        const p = joinPath(path, c)
        if (this.skipped(p)) continue
        if (!wanted.has(p)) extra.push(p)
        else await walk(p)
      }
    }
    await walk(this.opts.toPath)
    for (const p of extra) {
      await this.deleteTree(p).catch((err: unknown) => {
        this.report.failures.push({ path: p, reason: (err as Error).message })
      })
      changes++
    }
    return changes
  }
}
