/**
 * `GET /conclave/snapshot` on the client port: a consistent snapshot of
 * this server's state, streamed as a snapshot file (state/snapshot-file.ts)
 * to `conclave snapshot save`.
 *
 * Why the client port and not the admin HTTP port: the client port is
 * always open (the admin port is off unless configured), it is the address
 * operators and `--server ws://host:port` already name, and it is where
 * callers authenticate: the same identities a session gets (its address as
 * `ip`, a verified TLS client certificate as `x509`, digest credentials as
 * `digest`, the super digest as `super`) are checked against the same ACLs.
 * The request is a plain HTTP GET on that port (ClientListener hands it
 * here instead of upgrading it), so a snapshot needs no session.
 *
 * Who may take one (ZooKeeper 3.9.0-3.9.3 let any authenticated caller run
 * its snapshot command: CVE-2025-58457, fixed in 3.9.4 by requiring ALL on
 * `/`). Here the caller must present credentials (`Authorization: digest
 * user:password`, or a verified client certificate with `Authorization:
 * x509`), else 401; and then be the super user or be granted every one of
 * READ, WRITE, CREATE, DELETE and ADMIN on `/` by entries naming its own
 * identities, each permission checked on its own, else 403. A `world:anyone`
 * entry grants nothing here: a snapshot holds every znode's data, whatever
 * their ACLs, so an open root (the default) must not open it to everyone.
 *
 * Consistency without a pause: the snapshot is written fuzzy, a slice of
 * SLICE_MS per event-loop turn while Txns keep being applied, then the Txns
 * logged from its start through the zxid applied when its last chunk was
 * written, then that zxid and the tree's digest at that moment
 * (state/snapshot-transfer.ts). The caller replays the log over the
 * snapshot and must arrive at that digest: the exact state at one zxid.
 * Limits: one snapshot at a time per server (a second caller gets 503), a
 * caller that stops reading for SEND_IDLE_MS is cut off, a request with a
 * body or a bad head is refused; a SNAP from the leader replacing the tree
 * meanwhile ends the stream without its end frame (the caller retries).
 */
import type { Socket } from 'node:net'
import type { Id } from '../../shared/acl.js'
import { Perms } from '../../shared/opcodes.js'
import { formatZxid } from '../../shared/zxid.js'
import type { PlainHttpRequest } from '../net/client-listener.js'
import { digestId } from '../request/read-ops.js'
import { chunkFrame, endFrame, logFrame, SNAPSHOT_PATH, startFrame } from '../state/snapshot-transfer.js'
import type { TreeDb } from '../state/tree-db.js'
import type { LogEntry } from '../storage/index.js'
import { checkAcl, isSuper } from '../txn/acl.js'

/** A caller that reads nothing for this long is cut off (it holds the snapshot's bytes). */
const SEND_IDLE_MS = 30_000
/** Time one slice of the snapshot may take before the event loop gets a turn. */
const SLICE_MS = 4
/** How long to wait for the Txns applied during the snapshot to be durable in this server's log. */
const DURABLE_WAIT_MS = 10_000
const LOG_BATCH = 1000
const REFUSAL_LOG_MS = 1000
/** Small chunks: one is made per generator step, so this bounds a slice (~2-5 ms per 64 KiB). */
const TRANSFER_CHUNK_BYTES = 64 * 1024
const PERMISSIONS: [string, number][] = [
  ['READ', Perms.READ],
  ['WRITE', Perms.WRITE],
  ['CREATE', Perms.CREATE],
  ['DELETE', Perms.DELETE],
  ['ADMIN', Perms.ADMIN],
]

export interface SnapshotSource {
  db(): TreeDb
  serverId(): number
  superDigest(): string | undefined
  /** Why this server cannot give a consistent snapshot now (not serving, still catching up), or undefined. */
  unavailable(): string | undefined
  log(obj: Record<string, unknown>, msg: string): void
  /** This server's log: the Txns applied while the snapshot was written are read back from it. */
  storage(): { readonly durableZxid: number; readLogFrom(fromZxid: number, maxEntries: number): LogEntry[] }
}

function answer(socket: Socket, status: number, text: string, extra: Record<string, string> = {}): void {
  const reason: Record<number, string> = {
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    503: 'Service Unavailable',
  }
  const body = `${text}\n`
  let head = `HTTP/1.1 ${status} ${reason[status] ?? 'Error'}\r\nContent-Type: text/plain\r\n`
  for (const [k, v] of Object.entries(extra)) head += `${k}: ${v}\r\n`
  head += `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`
  socket.end(head + body)
  setTimeout(() => socket.destroy(), 1000).unref()
}

/** The caller's identities, or why it has none worth checking (401). */
export function callerIds(req: PlainHttpRequest, superDigest: string | undefined): Id[] | string {
  const ids: Id[] = [{ scheme: 'ip', id: req.remoteAddress.replace(/^::ffff:/, '') }]
  const auth = req.headers.get('authorization')
  if (auth === undefined)
    return 'a snapshot needs credentials: Authorization: digest user:password (conclave snapshot save --auth digest:user:password)'
  const space = auth.indexOf(' ')
  const scheme = (space < 0 ? auth : auth.slice(0, space)).toLowerCase()
  const cred = space < 0 ? '' : auth.slice(space + 1).trim()
  if (scheme === 'digest') {
    if (cred.indexOf(':') <= 0) return 'digest credentials must be user:password'
    const id = digestId(cred)
    ids.push({ scheme: 'digest', id })
    if (superDigest !== undefined && id === superDigest) ids.push({ scheme: 'super', id: '' })
  } else if (scheme === 'x509') {
    const subject = req.tls?.x509Subject
    if (subject === undefined) return 'x509 needs a TLS connection with a verified client certificate'
    ids.push({ scheme: 'x509', id: subject })
  } else return `unknown auth scheme '${scheme.slice(0, 40)}' (digest or x509)`
  return ids
}

/** The permissions on `/` the caller lacks (each checked on its own; world:anyone grants none here). */
export function missingPermissions(db: TreeDb, ids: Id[], superDigest: string | undefined): string[] {
  if (isSuper(ids, superDigest)) return []
  const root = db.get('/')
  const acl = (root?.acl ?? []).filter((a) => !(a.id.scheme === 'world' && a.id.id === 'anyone'))
  return PERMISSIONS.filter(([, p]) => acl.length === 0 || !checkAcl(acl, p, ids)).map(([n]) => n)
}

export class SnapshotEndpoint {
  private sending = false
  /** Refusals are logged at most once per REFUSAL_LOG_MS (a flood of them must not flood the log). */
  private lastRefusalLog = 0
  private refusalsUnlogged = 0

  constructor(private readonly source: SnapshotSource) {}

  /** Serves a plain HTTP request for SNAPSHOT_PATH; false for any other path (not ours). */
  handle(socket: Socket, req: PlainHttpRequest): boolean {
    if (req.path !== SNAPSHOT_PATH && !req.path.startsWith(`${SNAPSHOT_PATH}?`)) return false
    const who = { remote: req.remoteAddress }
    if (req.method !== 'GET') {
      answer(socket, 405, 'use GET', { Allow: 'GET' })
      return true
    }
    if ((req.headers.get('content-length') ?? '0') !== '0' || req.headers.has('transfer-encoding')) {
      answer(socket, 405, 'a snapshot request has no body')
      return true
    }
    const ids = callerIds(req, this.source.superDigest())
    if (typeof ids === 'string') {
      this.refused({ ...who, reason: ids }, 'snapshot refused (401)')
      answer(socket, 401, `refused: ${ids}`, { 'WWW-Authenticate': 'digest' })
      return true
    }
    const db = this.source.db()
    const missing = missingPermissions(db, ids, this.source.superDigest())
    const named = ids.filter((i) => i.scheme !== 'ip').map((i) => `${i.scheme}:${i.id.split(':')[0]}`)
    if (missing.length > 0) {
      this.refused({ ...who, ids: named, missing }, 'snapshot refused (403)')
      answer(
        socket,
        403,
        `refused: ${named.join(', ')} lacks ${missing.join(', ')} on / (a snapshot needs ALL on / ` +
          'granted to the caller itself, not to world:anyone, or the super user)',
      )
      return true
    }
    const why = this.source.unavailable()
    if (why !== undefined) {
      answer(socket, 503, `not now: ${why}`, { 'Retry-After': '1' })
      return true
    }
    if (this.sending) {
      answer(socket, 503, 'not now: another snapshot is being sent from this server', { 'Retry-After': '5' })
      return true
    }
    this.send(socket, db, named)
    return true
  }

  private refused(obj: Record<string, unknown>, msg: string): void {
    const now = Date.now()
    if (now - this.lastRefusalLog < REFUSAL_LOG_MS) {
      this.refusalsUnlogged++
      return
    }
    this.lastRefusalLog = now
    const more = this.refusalsUnlogged
    this.refusalsUnlogged = 0
    this.source.log(more > 0 ? { ...obj, refusedSinceLastLine: more } : obj, msg)
  }

  private send(socket: Socket, db: TreeDb, ids: string[]): void {
    this.sending = true
    socket.setTimeout(SEND_IDLE_MS, () => socket.destroy(new Error('the caller read nothing for 30 s')))
    let closed = false
    socket.once('close', () => {
      closed = true
      this.sending = false
    })
    this.stream(socket, db, () => closed).then(
      (sent) => {
        socket.setTimeout(0)
        if (sent === undefined) return void socket.destroy()
        socket.end()
        this.source.log({ ids, ...sent }, 'snapshot sent')
      },
      (err: Error) => {
        this.source.log({ ids, err: err.message }, 'snapshot not sent')
        socket.destroy()
      },
    )
  }

  /**
   * Writes the transfer (state/snapshot-transfer.ts): the fuzzy snapshot a
   * slice per event-loop turn, then the log through the zxid applied when it
   * ended, then that zxid and the digest. Undefined if the caller left or
   * the tree was replaced meanwhile (a SNAP from the leader): the stream
   * stops without its end frame, which the caller reports as incomplete.
   */
  private async stream(
    socket: Socket,
    db: TreeDb,
    gone: () => boolean,
  ): Promise<Record<string, unknown> | undefined> {
    const started = performance.now()
    const tree = db.tree
    const write = async (parts: Buffer[]): Promise<void> => {
      let ok = true
      for (const p of parts) ok = socket.write(p)
      if (!ok && !gone()) await new Promise<void>((r) => socket.once('drain', r).once('close', r))
    }
    socket.write(
      'HTTP/1.1 200 OK\r\nContent-Type: application/vnd.conclave.snapshot-transfer\r\n' +
        'Cache-Control: no-store\r\nConnection: close\r\n\r\n',
    )
    const { zxid: zxidStart, chunks } = db.snapshot({ chunkBytes: TRANSFER_CHUNK_BYTES })
    await write(
      startFrame({
        serverId: this.source.serverId(),
        zxidStart,
        znodes: db.nodeCount(),
        treeBytesEstimate: db.sizeEstimateBytes(),
      }),
    )
    let chunkCount = 0
    let bytes = 0
    let longestSliceMs = 0
    for (;;) {
      const slice = performance.now()
      let next = chunks.next()
      const parts: Buffer[] = []
      while (next.done !== true) {
        parts.push(...chunkFrame(next.value))
        chunkCount++
        bytes += next.value.byteLength
        if (performance.now() - slice >= SLICE_MS) break
        next = chunks.next()
      }
      // The end of the walk and the zxid/digest read in the same turn: they describe one state.
      const end = next.done === true ? { zxidEnd: db.lastZxid, digest: db.digest() } : undefined
      longestSliceMs = Math.max(longestSliceMs, performance.now() - slice)
      if (db.tree !== tree || gone()) return undefined
      await write(parts)
      if (end !== undefined)
        return this.finish(socket, write, gone, zxidStart, end, chunkCount, bytes, {
          started,
          longestSliceMs,
        })
      await new Promise<void>((r) => setImmediate(r))
      if (db.tree !== tree || gone()) return undefined
    }
  }

  private async finish(
    socket: Socket,
    write: (parts: Buffer[]) => Promise<void>,
    gone: () => boolean,
    zxidStart: number,
    end: { zxidEnd: number; digest: string },
    chunkCount: number,
    chunkBytes: number,
    timing: { started: number; longestSliceMs: number },
  ): Promise<Record<string, unknown> | undefined> {
    const storage = this.source.storage()
    // Every applied Txn is logged here; a leader may apply one before its own write is durable.
    const deadline = Date.now() + DURABLE_WAIT_MS
    while (storage.durableZxid < end.zxidEnd) {
      if (gone() || Date.now() > deadline) return undefined
      await new Promise<void>((r) => setTimeout(r, 5))
    }
    let entries = 0
    let from = zxidStart + 1
    while (from <= end.zxidEnd) {
      const batch = storage.readLogFrom(from, LOG_BATCH)
      const parts: Buffer[] = []
      for (const e of batch) {
        if (e.zxid > end.zxidEnd) break
        parts.push(...logFrame(e.zxid, e.data))
        entries++
        from = e.zxid + 1
      }
      if (parts.length === 0) break
      if (gone()) return undefined
      await write(parts)
    }
    if (gone()) return undefined
    socket.write(Buffer.concat(endFrame({ ...end, chunks: chunkCount, entries })))
    return {
      zxidStart: formatZxid(zxidStart),
      zxid: formatZxid(end.zxidEnd),
      digest: end.digest,
      chunks: chunkCount,
      chunkBytes,
      logEntries: entries,
      ms: Math.round(performance.now() - timing.started),
      longestSliceMs: Math.round(timing.longestSliceMs * 10) / 10,
    }
  }
}
