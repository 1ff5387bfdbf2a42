/**
 * What a snapshot stream holds, for `conclave snapshot inspect`: counts,
 * the largest znodes by data size and by child count, and the sessions with
 * their timeouts and ephemerals. Read from the records (server/tree/
 * snapshot.ts), so the same report describes a snapshot file and a data
 * directory's state. Also its text and JSON forms.
 */
import { parentPath } from '../../shared/paths.js'
import { formatSessionId } from '../../shared/session-id.js'
import { formatZxid } from '../../shared/zxid.js'
import { countSnapshot, type SnapshotCounts } from '../state/snapshot-file.js'
import { Kind } from '../tree/node-store.js'
import type { SnapshotSink } from '../tree/snapshot.js'

export interface StateReport {
  zxid: number
  counts: SnapshotCounts
  dataBytes: number
  largestByData: { path: string; bytes: number }[]
  largestByChildren: { path: string; children: number }[]
  sessions: { id: string; timeoutMs: number; ephemerals: number }[]
}

/** Keeps the `n` largest of what it is offered (a small sorted list: n is a few dozen at most). */
class TopN<T> {
  readonly items: { key: number; value: T }[] = []
  constructor(private readonly n: number) {}
  offer(key: number, value: T): void {
    if (this.n <= 0) return
    if (this.items.length === this.n && key <= this.items[this.items.length - 1]!.key) return
    let at = this.items.findIndex((x) => x.key < key)
    if (at < 0) at = this.items.length
    this.items.splice(at, 0, { key, value })
    if (this.items.length > this.n) this.items.pop()
  }
}

/**
 * The report gathered while something else reads the snapshot: `sink` sees
 * its records (countSnapshot's `also`, or verifySnapshotFile's), `finish`
 * makes the report from what it saw and the stream's zxid and counts.
 */
export function stateReportSink(top: number): {
  sink: Partial<SnapshotSink>
  finish(read: { zxid: number; counts: SnapshotCounts }): StateReport
} {
  let dataBytes = 0
  const byData = new TopN<string>(top)
  const children = new Map<string, number>()
  const sessions = new Map<bigint, { timeoutMs: number; ephemerals: number }>()
  const owners = new Map<bigint, number>()
  const sink: Partial<SnapshotSink> = {
    session: (id, timeoutMs) => {
      sessions.set(id, { timeoutMs, ephemerals: 0 })
    },
    node: (r) => {
      const bytes = r.data?.length ?? 0
      dataBytes += bytes
      byData.offer(bytes, r.path)
      if (r.path !== '/') {
        const parent = parentPath(r.path)
        children.set(parent, (children.get(parent) ?? 0) + 1)
      }
      if (r.kind === Kind.ephemeral) owners.set(r.owner, (owners.get(r.owner) ?? 0) + 1)
    },
  }
  const finish = ({ zxid, counts }: { zxid: number; counts: SnapshotCounts }): StateReport => {
    const byChildren = new TopN<string>(top)
    for (const [path, n] of children) byChildren.offer(n, path)
    for (const [owner, n] of owners) {
      const s = sessions.get(owner)
      if (s !== undefined) s.ephemerals = n
    }
    return {
      zxid,
      counts,
      dataBytes,
      largestByData: byData.items.map((x) => ({ path: x.value, bytes: x.key })),
      largestByChildren: byChildren.items.map((x) => ({ path: x.value, children: x.key })),
      sessions: [...sessions].map(([id, s]) => ({ id: formatSessionId(id), ...s })),
    }
  }
  return { sink, finish }
}

/** The report of a snapshot stream, read for it alone. */
export function stateReport(chunks: readonly Uint8Array[], top: number): StateReport {
  const { sink, finish } = stateReportSink(top)
  return finish(countSnapshot(chunks, sink))
}

/** The report as text lines. */
export function formatStateReport(r: StateReport): string {
  const c = r.counts
  const lines = [
    `zxid:       ${formatZxid(r.zxid)}`,
    `znodes:     ${c.znodes} (${c.ephemerals} ephemeral, ${c.containers} container, ${c.ttl} TTL), ${r.dataBytes} bytes of data`,
    `sessions:   ${c.sessions} (${c.writeMemories} with exactly-once write memories)`,
    'largest znodes by data:',
    ...r.largestByData.map((x) => `  ${String(x.bytes).padStart(10)}  ${x.path}`),
    'largest znodes by children:',
    ...r.largestByChildren.map((x) => `  ${String(x.children).padStart(10)}  ${x.path}`),
    'sessions:',
    ...r.sessions.map((s) => `  ${s.id}  timeout ${s.timeoutMs} ms  ${s.ephemerals} ephemerals`),
  ]
  return `${lines.join('\n')}\n`
}
