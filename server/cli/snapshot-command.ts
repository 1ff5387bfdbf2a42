/**
 * `conclave snapshot save | restore | inspect`: backups of a live server's
 * state, and what is in them.
 *
 * - save: GET /conclave/snapshot on the server's client port
 *   (admin/snapshot-endpoint.ts: ACL-checked): a fuzzy snapshot and the log
 *   that makes it exact (state/snapshot-transfer.ts), replayed here into the
 *   state at one zxid whose digest must be the server's; that state is
 *   written as a snapshot file, by way of a temporary file beside FILE that
 *   is fsynced and read back before it is renamed: FILE either is a
 *   complete, sound snapshot or does not exist.
 * - restore: checks FILE the same way before anything is written, then
 *   seeds a data directory with it (storage/data-dir.ts); refuses a
 *   directory a running server holds, and a non-empty one without --force.
 * - inspect: what a snapshot file or a data directory holds (zxid, epochs,
 *   counts, the largest znodes, sessions), read-only.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { basename, dirname, join, resolve } from 'node:path'
import { formatZxid, zxidEpoch } from '../../shared/zxid.js'
import {
  encodeSnapshotFile,
  readSnapshotFile,
  SnapshotFileError,
  type SnapshotFileHeader,
  verifySnapshotFile,
} from '../state/snapshot-file.js'
import {
  SNAPSHOT_PATH,
  type TransferEnd,
  TransferReader,
  type TransferStart,
} from '../state/snapshot-transfer.js'
import { TreeDb } from '../state/tree-db.js'
import { DataDirReader, dataDirInUse, seedDataDir } from '../storage/data-dir.js'
import { DataTree } from '../tree/data-tree.js'
import { type CommandSpec, formatHelp, parseCommandArgs, positiveIntFlag, UsageError } from './args.js'
import { Progress } from './progress.js'
import { formatStateReport, stateReport, stateReportSink } from './state-report.js'

/** Refusal bodies longer than this are cut (a server answers a line). */
const ERROR_BODY_MAX = 64 * 1024

export const SNAPSHOT_COMMAND: CommandSpec = {
  name: 'snapshot',
  usage: '<save|restore|inspect> [options]',
  summary:
    "Backups of a server's state: save one from a live server, restore a data directory from it,\n" +
    'inspect a file or a data directory. `conclave snapshot <sub> --help` for each.',
  options: {},
  positionals: true,
}

export const SAVE_COMMAND: CommandSpec = {
  name: 'snapshot save',
  usage: '--server ws://host:port --auth digest:user:password -o FILE',
  summary:
    'Streams a consistent snapshot (one zxid, with its tree digest) from a live server into FILE.\n' +
    'The caller must hold ALL on / through its own identity (not world:anyone), or be the\n' +
    'super user. FILE appears only once the whole snapshot is on disk and checked.',
  options: {
    server: {
      value: 'URL',
      default: 'ws://127.0.0.1:2181',
      help: "the server's client port (ws:// or wss://)",
    },
    auth: { value: 'SCHEME:CRED', help: 'credentials: digest:user:password, or x509 (with --tls-cert)' },
    output: { value: 'FILE', short: 'o', help: 'where to write the snapshot (required)' },
    timeout: { value: 'MS', default: '30000', help: 'give up when the server sends nothing for this long' },
    'tls-ca': { value: 'FILE', help: 'CA to check a wss:// server against' },
    'tls-cert': { value: 'FILE', help: 'client certificate (PEM) for wss:// (x509 auth)' },
    'tls-key': { value: 'FILE', help: 'its key (PEM)' },
  },
}

export const RESTORE_COMMAND: CommandSpec = {
  name: 'snapshot restore',
  usage: 'FILE --data-dir DIR [--server-id N] [--force]',
  summary:
    'Seeds a data directory from a snapshot file, checked (SHA-256, tree digest) before\n' +
    "anything is written. Restore the same file into every member's directory (each with its\n" +
    'own --server-id), then start the ensemble. Refuses a directory a running server holds.',
  options: {
    'data-dir': { value: 'DIR', help: 'the data directory to seed (required)' },
    'server-id': {
      value: 'N',
      default: 'claimed by the first server started there',
      help: "the member's id",
    },
    force: { help: 'replace what a non-empty directory holds (never one a running server holds)' },
  },
  positionals: true,
}

export const INSPECT_COMMAND: CommandSpec = {
  name: 'snapshot inspect',
  usage: 'FILE|DIR [--top N] [--json]',
  summary:
    'What a snapshot file or a data directory holds: zxid, epochs, counts, the largest znodes,\n' +
    "sessions. A data directory is opened read-only (a running server's too): its newest\n" +
    'snapshot that verifies, with the log after it replayed in memory.',
  options: {
    top: { value: 'N', default: '10', help: 'how many of the largest znodes to list' },
    json: { help: 'print one JSON object' },
  },
  positionals: true,
}

export async function runSnapshot(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  switch (sub) {
    case 'save':
      return save(rest)
    case 'restore':
      return restore(rest)
    case 'inspect':
      return inspect(rest)
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(formatHelp(SNAPSHOT_COMMAND))
      return sub === undefined ? 2 : 0
    default:
      throw new UsageError(`unknown subcommand '${sub}': save, restore or inspect`)
  }
}

function fail(message: string): number {
  process.stderr.write(`conclave snapshot: ${message}\n`)
  return 1
}

// ------------------------------------------------------------------ save

interface Target {
  secure: boolean
  host: string
  port: number
}

export function parseServerUrl(text: string): Target {
  const m = /^(ws|wss|http|https):\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(text.trim())
  if (m === null)
    throw new UsageError(`bad server address '${text}': expected ws://host:port or wss://host:port`)
  return {
    secure: m[1] === 'wss' || m[1] === 'https',
    host: m[2]!.replace(/^\[|\]$/g, ''),
    port: Number(m[3]),
  }
}

function authHeader(auth: string | true | undefined): string | undefined {
  if (auth === undefined) return undefined
  if (typeof auth !== 'string') throw new UsageError('--auth needs a value: --auth digest:user:password')
  const at = auth.indexOf(':')
  const scheme = at < 0 ? auth : auth.slice(0, at)
  if (scheme === 'x509') return 'x509'
  if (scheme !== 'digest' || auth.indexOf(':', at + 1) <= at + 1)
    throw new UsageError(`--auth '${scheme}:…': expected digest:user:password or x509`)
  return `digest ${auth.slice(at + 1)}`
}

async function save(argv: string[]): Promise<number> {
  const { flags, help } = parseCommandArgs(argv, SAVE_COMMAND)
  if (help) {
    process.stdout.write(formatHelp(SAVE_COMMAND))
    return 0
  }
  const out = flags.get('output')
  if (typeof out !== 'string') throw new UsageError('-o FILE is required (where to write the snapshot)')
  const target = parseServerUrl(String(flags.get('server') ?? 'ws://127.0.0.1:2181'))
  const auth = authHeader(flags.get('auth'))
  const timeoutMs = positiveIntFlag('--timeout', flags.get('timeout'), 30_000)
  const file = resolve(out)
  if (!existsSync(dirname(file)))
    return fail(`cannot write ${out}: directory ${dirname(file)} does not exist`)
  if (existsSync(file) && statSync(file).isDirectory()) return fail(`${out} is a directory`)
  const tmp = join(dirname(file), `.${basename(file)}.partial-${process.pid}`)
  const tls: Record<string, Buffer> = {}
  for (const [flag, key] of [
    ['tls-ca', 'ca'],
    ['tls-cert', 'cert'],
    ['tls-key', 'key'],
  ] as const) {
    const v = flags.get(flag)
    if (typeof v === 'string') tls[key] = readFileSync(v)
  }
  const removeTmp = (): void => rmSync(tmp, { force: true })
  const onSignal = (): void => {
    removeTmp()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const where = `${target.secure ? 'wss' : 'ws'}://${target.host}:${target.port}`
  try {
    const got = await download(target, auth, tls, timeoutMs, where)
    if (typeof got === 'string') return fail(got)
    const built = rebuild(got)
    if (typeof built === 'string') return fail(`the snapshot from ${where} does not check: ${built}`)
    const encoded = encodeSnapshotFile(built, got.start.serverId)
    const fd = openSync(tmp, 'w')
    for (const part of encoded.parts) {
      let off = 0
      while (off < part.byteLength) off += writeSync(fd, part, off, part.byteLength - off)
    }
    fsyncSync(fd)
    closeSync(fd)
    let header: SnapshotFileHeader
    try {
      // What reached the disk, read back: length, SHA-256, every record, the counts.
      header = readSnapshotFile(readFileSync(tmp)).header
    } catch (err) {
      if (err instanceof SnapshotFileError) return fail(`${tmp} does not read back: ${err.message}`)
      throw err
    }
    renameSync(tmp, file)
    const dfd = openSync(dirname(file), 'r')
    fsyncSync(dfd)
    closeSync(dfd)
    const c = header.counts
    process.stdout.write(
      `saved ${out}: zxid ${header.zxidHex}, digest ${header.digest}, ${c.znodes} znodes, ` +
        `${c.sessions} sessions, ${encoded.bytes} bytes, from server ${header.serverId} at ${where} ` +
        `(snapshot from ${formatZxid(got.start.zxidStart)} + ${got.entries.length} log entries replayed)\n`,
    )
    return 0
  } finally {
    removeTmp()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

interface Received {
  start: TransferStart
  end: TransferEnd
  chunks: Uint8Array[]
  entries: { zxid: number; data: Uint8Array }[]
}

/**
 * The fuzzy snapshot with the log replayed over it: the state at the end
 * zxid, which must have the server's digest. The consistent snapshot of it,
 * or why not.
 */
function rebuild(r: Received): { zxid: number; digest: string; chunks: Uint8Array[] } | string {
  const { end } = r
  if (r.chunks.length !== end.chunks || r.entries.length !== end.entries)
    return `${r.chunks.length} chunks and ${r.entries.length} log entries arrived, the server sent ${end.chunks} and ${end.entries}`
  let db: TreeDb
  try {
    db = new TreeDb(DataTree.fromSnapshot(r.chunks))
    db.replayThrough(end.zxidEnd)
    let last = r.start.zxidStart
    for (const e of r.entries) {
      if (e.zxid <= last) return `log entry ${formatZxid(e.zxid)} out of order`
      db.replay(e.zxid, e.data)
      last = e.zxid
    }
  } catch (err) {
    return (err as Error).message
  }
  if (db.lastZxid !== end.zxidEnd)
    return `the log replayed ends at ${formatZxid(db.lastZxid)}, the server's state at ${formatZxid(end.zxidEnd)}`
  const digest = db.digest()
  if (digest !== end.digest)
    return `the rebuilt tree's digest ${digest} differs from the server's ${end.digest} at ${formatZxid(end.zxidEnd)}`
  return { zxid: end.zxidEnd, digest, chunks: [...db.snapshot().chunks] }
}

/** Receives the transfer (state/snapshot-transfer.ts), or says why it failed. */
function download(
  target: Target,
  auth: string | undefined,
  tls: Record<string, Buffer>,
  timeoutMs: number,
  where: string,
): Promise<Received | string> {
  return new Promise((resolvePromise) => {
    let settled = false
    const finish = (v: Received | string): void => {
      if (settled) return
      settled = true
      resolvePromise(v)
    }
    const options = {
      host: target.host,
      port: target.port,
      path: SNAPSHOT_PATH,
      method: 'GET',
      headers: auth === undefined ? {} : { authorization: auth },
      timeout: timeoutMs,
      ...tls,
    }
    const onResponse = (res: IncomingMessage): void => {
      if (res.statusCode !== 200) {
        const parts: Buffer[] = []
        let n = 0
        res.on('data', (c: Buffer) => {
          if (n < ERROR_BODY_MAX) parts.push(c)
          n += c.length
        })
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8').trim()
          finish(`${where} refused the snapshot (HTTP ${res.statusCode}): ${text}`)
        })
        res.on('error', (err) => finish(`${where}: ${err.message}`))
        return
      }
      const reader = new TransferReader()
      const progress = new Progress(`snapshot from ${where}`, { unit: 'bytes' })
      const got: Partial<Received> & Pick<Received, 'chunks' | 'entries'> = { chunks: [], entries: [] }
      let bytes = 0
      res.on('data', (c: Buffer) => {
        bytes += c.length
        try {
          for (const f of reader.push(c)) {
            if (f.type === 'start') {
              got.start = f.start
              progress.total = f.start.treeBytesEstimate
            } else if (f.type === 'chunk') got.chunks.push(f.data)
            else if (f.type === 'log') got.entries.push({ zxid: f.zxid, data: f.data })
            else got.end = f.end
          }
        } catch (err) {
          res.destroy()
          progress.clear()
          return finish(`${where} sent a malformed snapshot stream: ${(err as Error).message}`)
        }
        progress.update(bytes, got.end === undefined ? '(total estimated)' : '')
      })
      res.on('end', () => {
        progress.total = bytes
        progress.done(bytes)
        if (got.start === undefined || got.end === undefined || !reader.ended)
          finish(
            `the snapshot stream from ${where} ended after ${bytes} bytes, incomplete: nothing was saved (try again)`,
          )
        else finish({ start: got.start, end: got.end, chunks: got.chunks, entries: got.entries })
      })
      res.on('error', (err) => {
        progress.clear()
        finish(`${where}: ${err.message} after ${bytes} bytes: nothing was saved`)
      })
      res.on('aborted', () =>
        finish(`the connection to ${where} broke after ${bytes} bytes: nothing was saved`),
      )
    }
    const req = target.secure ? httpsRequest(options, onResponse) : httpRequest(options, onResponse)
    req.on('timeout', () => req.destroy(new Error(`nothing from the server for ${timeoutMs} ms`)))
    req.on('error', (err) => finish(`cannot take a snapshot from ${where}: ${err.message}`))
    req.end()
  })
}

// --------------------------------------------------------------- restore

async function restore(argv: string[]): Promise<number> {
  const { flags, positionals, help } = parseCommandArgs(argv, RESTORE_COMMAND)
  if (help) {
    process.stdout.write(formatHelp(RESTORE_COMMAND))
    return 0
  }
  if (positionals.length !== 1) throw new UsageError('expected one snapshot FILE')
  const dataDir = flags.get('data-dir')
  if (typeof dataDir !== 'string') throw new UsageError('--data-dir DIR is required')
  const sid = flags.get('server-id')
  const serverId = sid === undefined ? undefined : positiveIntFlag('--server-id', sid, 0)
  const force = flags.get('force') === true
  const path = positionals[0]!
  if (!existsSync(path)) return fail(`no such file: ${path}`)
  let checked: ReturnType<typeof verifySnapshotFile>
  try {
    checked = verifySnapshotFile(readFileSync(path))
  } catch (err) {
    if (err instanceof SnapshotFileError)
      return fail(`${path} does not check, nothing was written: ${err.message}`)
    throw err
  }
  const h = checked.header
  let nonEmpty = false
  if (existsSync(dataDir)) {
    if (!statSync(dataDir).isDirectory()) return fail(`${dataDir} is not a directory`)
    if (dataDirInUse(dataDir))
      return fail(`${dataDir} is held by a running server: stop it first; nothing was written`)
    nonEmpty = readdirSync(dataDir).length > 0
    if (nonEmpty && !force)
      return fail(
        `${dataDir} is not empty: restore into a new directory, or add --force to replace what it holds`,
      )
  }
  seedDataDir({
    dataDir,
    ...(serverId === undefined ? {} : { serverId }),
    zxid: h.zxid,
    digest: h.digest,
    chunks: checked.chunks,
    epoch: zxidEpoch(h.zxid),
    replace: nonEmpty,
  })
  process.stdout.write(
    `restored ${path} into ${dataDir}: zxid ${h.zxidHex}, digest ${h.digest}, ${h.counts.znodes} znodes` +
      `${serverId === undefined ? '' : `, server id ${serverId}`}\n`,
  )
  return 0
}

// --------------------------------------------------------------- inspect

async function inspect(argv: string[]): Promise<number> {
  const { flags, positionals, help } = parseCommandArgs(argv, INSPECT_COMMAND)
  if (help) {
    process.stdout.write(formatHelp(INSPECT_COMMAND))
    return 0
  }
  if (positionals.length !== 1) throw new UsageError('expected one snapshot FILE or data directory DIR')
  const top = positiveIntFlag('--top', flags.get('top'), 10)
  const json = flags.get('json') === true
  const path = positionals[0]!
  if (!existsSync(path)) return fail(`no such file or directory: ${path}`)
  if (statSync(path).isDirectory()) return inspectDir(path, top, json)
  // The report is gathered in the pass that checks the file's counts, not in a pass of its own.
  const collect = stateReportSink(top)
  let file: ReturnType<typeof verifySnapshotFile>
  try {
    file = verifySnapshotFile(readFileSync(path), collect.sink)
  } catch (err) {
    if (err instanceof SnapshotFileError) return fail(`${path} does not check: ${err.message}`)
    throw err
  }
  const h = file.header
  const report = collect.finish({ zxid: h.zxid, counts: h.counts })
  if (json) {
    process.stdout.write(`${JSON.stringify({ file: path, header: h, ...report, zxid: h.zxidHex })}\n`)
    return 0
  }
  process.stdout.write(
    `snapshot file ${path} (format ${h.fileFormat}, stream format ${h.snapshotFormat})\n` +
      `taken:      ${h.createdAt} from server ${h.serverId}\n` +
      `digest:     ${h.digest} (checked: SHA-256 and the rebuilt tree's digest)\n` +
      `epoch:      ${zxidEpoch(h.zxid)} (of its zxid)\n` +
      formatStateReport(report),
  )
  return 0
}

function inspectDir(dir: string, top: number, json: boolean): number {
  let reader: DataDirReader
  try {
    reader = new DataDirReader(dir)
  } catch (err) {
    return fail((err as Error).message)
  }
  try {
    const meta = reader.meta()
    const snapshots = reader.snapshotList()
    const log = reader.logRange()
    const newest = reader.newestSnapshot(snapshots)
    const db = new TreeDb(
      newest === undefined ? new DataTree() : DataTree.fromSnapshot(reader.snapshotChunks(newest)),
    )
    if (newest !== undefined) db.replayThrough(newest.zxidEnd)
    let replayed = 0
    for (const e of reader.logEntries((newest?.zxidStart ?? 0) + 1)) {
      db.replay(e.zxid, e.data)
      replayed++
    }
    const report = stateReport([...db.snapshot().chunks], top)
    const snaps = snapshots.map((s) => ({
      id: s.id,
      state: s.state,
      zxidStart: formatZxid(s.zxidStart),
      zxidEnd: s.zxidEnd === null ? null : formatZxid(s.zxidEnd),
      bytes: s.totalBytes,
      verified: s.state === 'complete' ? (s.problem ?? 'ok') : undefined,
    }))
    if (json) {
      process.stdout.write(
        `${JSON.stringify({
          dataDir: dir,
          meta,
          log: { oldest: formatZxid(log.oldest), last: formatZxid(log.last), records: log.count },
          snapshots: snaps,
          replayed,
          digest: db.digest(),
          ...report,
          zxid: formatZxid(report.zxid),
        })}\n`,
      )
      return 0
    }
    const lines = [
      `data directory ${dir} (${reader.file}, opened read-only)`,
      `server id:  ${meta.serverId ?? 'not claimed yet'}`,
      `epochs:     accepted ${meta.acceptedEpoch}, current ${meta.currentEpoch}`,
      `log:        ${log.count} records, ${formatZxid(log.oldest)} .. ${formatZxid(log.last)}` +
        (meta.logPurgedThrough > 0 ? ` (purged through ${formatZxid(meta.logPurgedThrough)})` : ''),
      'snapshots:',
      ...snaps.map(
        (s) =>
          `  #${s.id} ${s.state} ${s.zxidStart}..${s.zxidEnd ?? '?'} ${s.bytes ?? 0} bytes` +
          (s.verified === undefined ? '' : ` (${s.verified === 'ok' ? 'verifies' : s.verified})`),
      ),
      `state:      snapshot #${newest?.id ?? '-'} + ${replayed} log records replayed (everything logged; ` +
        'in an ensemble the newest may not be committed yet)',
      `digest:     ${db.digest()}`,
    ]
    process.stdout.write(`${lines.join('\n')}\n${formatStateReport(report)}`)
    return 0
  } finally {
    reader.close()
  }
}
