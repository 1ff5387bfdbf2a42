/**
 * `conclave log dump DIR [--from-zxid Z] [--limit N] [--json]`: the
 * transactions a data directory's log holds, one per line (zxid, session,
 * type, path, size; a multi's ops indented under it), or one JSON object a
 * line. The directory is opened read-only (storage/data-dir.ts): dumping a
 * running server's log changes nothing, and every record is checksum-
 * verified as it is read (a damaged one stops the dump with its zxid).
 */
import { existsSync } from 'node:fs'
import { formatSessionId } from '../../shared/session-id.js'
import { formatZxid } from '../../shared/zxid.js'
import { DataDirReader } from '../storage/data-dir.js'
import { decodeTxn, TxnDecodeError } from '../txn/codec.js'
import type { SubTxn, Txn } from '../txn/txn.js'
import { type CommandSpec, formatHelp, parseCommandArgs, positiveIntFlag, UsageError } from './args.js'

export const LOG_COMMAND: CommandSpec = {
  name: 'log',
  usage: 'dump DIR [--from-zxid Z] [--limit N] [--json]',
  summary:
    "Lists the transactions in a data directory's log: zxid, session, type, path and size,\n" +
    "readable or as JSON lines. Opens the directory read-only (a running server's too).",
  options: {
    'from-zxid': { value: 'Z', default: 'the oldest', help: 'start at this zxid (0x… or decimal)' },
    limit: { value: 'N', default: 'all', help: 'stop after N transactions' },
    json: { help: 'one JSON object per transaction' },
  },
  positionals: true,
}

interface Row {
  zxid: string
  session: string
  type: string
  path?: string
  bytes: number
  time: string
  /** Data bytes (create, setData), create mode, error code, a multi's ops. */
  dataBytes?: number
  mode?: string
  /** A TTL node's TTL. */
  ttlMs?: number
  error?: string
  ops?: { type: string; path: string; dataBytes?: number }[]
}

function subRow(op: SubTxn): { type: string; path: string; dataBytes?: number } {
  const out: { type: string; path: string; dataBytes?: number } = { type: op.type, path: op.path }
  if (op.type === 'create' || op.type === 'setData') out.dataBytes = op.data?.length ?? 0
  return out
}

export function txnRow(zxid: number, bytes: number, txn: Txn): Row {
  const row: Row = {
    zxid: formatZxid(zxid),
    session: formatSessionId(txn.sessionId),
    type: txn.type,
    bytes,
    time: new Date(txn.timeMs).toISOString(),
  }
  switch (txn.type) {
    case 'create':
      row.path = txn.path
      row.mode = txn.mode
      row.dataBytes = txn.data?.length ?? 0
      if (txn.ttlMs > 0) row.ttlMs = txn.ttlMs
      break
    case 'setData':
      row.path = txn.path
      row.dataBytes = txn.data?.length ?? 0
      break
    case 'delete':
    case 'check':
    case 'setACL':
    case 'deleteContainer':
      row.path = txn.path
      break
    case 'multi':
      row.ops = txn.ops.map(subRow)
      break
    case 'closeSession':
      if (txn.paths.length > 0) row.ops = txn.paths.map((p) => ({ type: 'delete', path: p }))
      break
    case 'error':
      row.error = String(txn.code)
      break
    case 'createSession':
      break
  }
  return row
}

function textLine(r: Row): string {
  let line = `${r.zxid.padEnd(14)} ${r.session} ${r.type.padEnd(14)} ${r.path ?? ''}`
  const extra: string[] = [`${r.bytes} B`]
  if (r.mode !== undefined) extra.push(r.ttlMs === undefined ? r.mode : `${r.mode} ${r.ttlMs} ms`)
  if (r.dataBytes !== undefined) extra.push(`data ${r.dataBytes} B`)
  if (r.error !== undefined) extra.push(`error ${r.error}`)
  line = `${line.trimEnd()}  (${extra.join(', ')})`
  for (const op of r.ops ?? [])
    line += `\n${' '.repeat(34)}${op.type.padEnd(14)} ${op.path}${op.dataBytes === undefined ? '' : `  (data ${op.dataBytes} B)`}`
  return line
}

function parseZxidFlag(v: string | true | undefined): number {
  if (v === undefined) return 0
  const text = String(v)
  const n = /^0x[0-9a-f]+$/i.test(text)
    ? Number.parseInt(text.slice(2), 16)
    : /^\d+$/.test(text)
      ? Number(text)
      : NaN
  if (!Number.isSafeInteger(n))
    throw new UsageError(`--from-zxid (got ${JSON.stringify(text)}): expected 0x… or a decimal zxid`)
  return n
}

export async function runLog(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(formatHelp(LOG_COMMAND))
    return sub === undefined ? 2 : 0
  }
  if (sub !== 'dump') throw new UsageError(`unknown subcommand '${sub}': dump`)
  const { flags, positionals, help } = parseCommandArgs(rest, LOG_COMMAND)
  if (help) {
    process.stdout.write(formatHelp(LOG_COMMAND))
    return 0
  }
  if (positionals.length !== 1) throw new UsageError('expected one data directory DIR')
  const from = parseZxidFlag(flags.get('from-zxid'))
  const limit = positiveIntFlag('--limit', flags.get('limit'), Number.POSITIVE_INFINITY)
  const json = flags.get('json') === true
  const dir = positionals[0]!
  if (!existsSync(dir)) {
    process.stderr.write(`conclave log: no such directory: ${dir}\n`)
    return 1
  }
  let reader: DataDirReader
  try {
    reader = new DataDirReader(dir)
  } catch (err) {
    process.stderr.write(`conclave log: ${(err as Error).message}\n`)
    return 1
  }
  let n = 0
  try {
    for (const e of reader.logEntries(from)) {
      if (n >= limit) break
      let txn: Txn
      try {
        txn = decodeTxn(e.data)
      } catch (err) {
        if (!(err instanceof TxnDecodeError)) throw err
        process.stderr.write(`conclave log: record ${formatZxid(e.zxid)} does not decode: ${err.message}\n`)
        return 1
      }
      const row = txnRow(e.zxid, e.data.byteLength, txn)
      process.stdout.write(`${json ? JSON.stringify(row) : textLine(row)}\n`)
      n++
    }
  } catch (err) {
    process.stderr.write(`conclave log: ${(err as Error).message}\n`)
    return 1
  } finally {
    reader.close()
  }
  if (!json) process.stderr.write(`${n} transactions\n`)
  return 0
}
