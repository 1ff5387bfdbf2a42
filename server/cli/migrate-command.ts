/**
 * `conclave migrate --from zk://host:port/path --to ws://host:port[/path]
 * [--follow]`: copies a tree from a live ZooKeeper into Conclave, then (with
 * --follow) keeps applying the source's changes until SIGINT/SIGTERM or
 * --follow-ms, reporting how far behind the target is. The work itself is
 * migration.ts; this is the command: addresses, connections and their
 * errors, progress (a bar on a terminal, plain lines otherwise) and the
 * report. Exit 0 when everything was copied, 1 when something was refused
 * or failed (each named), 2 on a usage error.
 */
import { Client, parseConnectString, ZkError } from '../../client/index.js'
import { formatZxid } from '../../shared/zxid.js'
import {
  authFlag,
  type CommandSpec,
  formatHelp,
  parseCommandArgs,
  positiveIntFlag,
  UsageError,
} from './args.js'
import { Migration, type MigrationOptions } from './migration.js'
import { Progress } from './progress.js'
import { readZooKeeperKinds, type ZkKind, ZkKindsError } from './zookeeper-kinds.js'

export const MIGRATE_COMMAND: CommandSpec = {
  name: 'migrate',
  usage: '--from zk://host:port[,host:port]/path --to ws://host:port[/path] [--follow] [options]',
  summary:
    'Copies a znode tree from a live ZooKeeper into Conclave: data, ACLs, persistent, container\n' +
    'and TTL nodes (ephemerals are listed, not copied; /zookeeper is skipped), and each\n' +
    "parent's sequential counter. A target path that exists with other data is refused\n" +
    'before anything is written, unless --overwrite. With --follow it then applies every\n' +
    'change made in ZooKeeper (a persistent recursive watch; the whole tree compared again\n' +
    'after a reconnect) until SIGINT/SIGTERM or --follow-ms, and reports the lag.',
  options: {
    from: { value: 'URL', help: 'the source: zk://host:port[,host:port...][/path] (required)' },
    to: {
      value: 'URL',
      default: 'ws://127.0.0.1:2181/',
      help: 'the target: ws://, wss:// or tcp://host:port[/path]',
    },
    'from-auth': { value: 'SCHEME:CRED', help: 'credentials for the source (digest:user:password)' },
    'to-auth': { value: 'SCHEME:CRED', help: 'credentials for the target (digest:user:password)' },
    overwrite: { help: 'replace target znodes that exist with other data' },
    follow: { help: "after the copy, keep applying the source's changes" },
    'follow-ms': { value: 'MS', default: 'until SIGINT/SIGTERM', help: 'stop following after this long' },
    timeout: { value: 'MS', default: '10000', help: 'how long to wait to connect to each side' },
    'zk-data-dir': {
      value: 'DIR',
      default: 'none: containers and TTL nodes become persistent',
      help: "ZooKeeper's dataDir (read-only), where the kinds ZooKeeper hides from clients are read",
    },
  },
  footer:
    'example:\n' +
    '  conclave migrate --from zk://zk1:2181,zk2:2181/app --to ws://conclave1:2181/app --follow\n',
}

/** A source or target address: the SDK's connect string and the subtree root. */
export function parseMigrateUrl(
  flag: string,
  text: string,
  schemes: readonly string[],
): { connect: string; path: string } {
  const m = /^([a-z]+):\/\/([^/]+)(\/.*)?$/.exec(text.trim())
  if (m === null || !schemes.includes(m[1]!))
    throw new UsageError(
      `${flag} '${text}': expected ${schemes.map((s) => `${s}://`).join(' or ')}host:port[/path]`,
    )
  const scheme = m[1] === 'zk' ? 'tcp' : m[1]!
  const hosts = m[2]!.split(',').filter((h) => h !== '')
  if (hosts.length === 0 || !hosts.every((h) => /^(\[[^\]]+\]|[^:\s]+):\d+$/.test(h)))
    throw new UsageError(`${flag} '${text}': every server needs host:port`)
  let path = (m[3] ?? '/').replace(/\/+$/, '')
  if (path === '') path = '/'
  if (
    path !== '/' &&
    path
      .split('/')
      .slice(1)
      .some((p) => p === '' || p === '.' || p === '..')
  )
    throw new UsageError(`${flag} '${text}': bad path ${path}`)
  const connect = hosts.map((h) => `${scheme}://${h}`).join(',')
  parseConnectString(connect)
  return { connect, path }
}

async function open(
  side: 'source' | 'target',
  what: string,
  connect: string,
  auth: { scheme: string; credentials: string }[],
  timeoutMs: number,
): Promise<Client> {
  try {
    return await Client.connect(connect, {
      connectTimeoutMs: timeoutMs,
      sessionTimeoutMs: 30_000,
      auth,
      // A source znode may be as large as its server allows (ZooKeeper's jute.maxbuffer).
      ...(side === 'source' ? { frameBytesMax: 64 * 1024 * 1024 } : {}),
    })
  } catch (err) {
    const why =
      err instanceof ZkError && err.code === 'CONNECTION_LOSS' ? 'unreachable' : (err as Error).message
    throw new MigrateError(`cannot connect to the ${side} ${what} (${connect}): ${why}`)
  }
}

class MigrateError extends Error {}

const say = (line: string): boolean => process.stdout.write(`${line}\n`)

export async function runMigrate(argv: string[]): Promise<number> {
  const { flags, help } = parseCommandArgs(argv, MIGRATE_COMMAND)
  if (help) {
    process.stdout.write(formatHelp(MIGRATE_COMMAND))
    return 0
  }
  const fromText = flags.get('from')
  if (typeof fromText !== 'string') throw new UsageError('--from zk://host:port/path is required')
  const from = parseMigrateUrl('--from', fromText, ['zk', 'tcp'])
  const to = parseMigrateUrl('--to', String(flags.get('to') ?? 'ws://127.0.0.1:2181/'), ['ws', 'wss', 'tcp'])
  const timeoutMs = positiveIntFlag('--timeout', flags.get('timeout'), 10_000, 'ms')
  const followMs = flags.has('follow-ms')
    ? positiveIntFlag('--follow-ms', flags.get('follow-ms'), 0, 'ms')
    : undefined
  const follow = flags.get('follow') === true || followMs !== undefined
  const overwrite = flags.get('overwrite') === true
  const fromAuth = authFlag('--from-auth', flags.get('from-auth'))
  const toAuth = authFlag('--to-auth', flags.get('to-auth'))
  const zkDir = flags.get('zk-data-dir')
  let kindOf: MigrationOptions['kindOf']
  if (typeof zkDir === 'string') {
    let kinds: Map<string, ZkKind>
    try {
      kinds = readZooKeeperKinds(zkDir)
    } catch (err) {
      if (!(err instanceof ZkKindsError)) throw err
      process.stderr.write(`conclave migrate: ${err.message}\n`)
      return 1
    }
    kindOf = (path, fresh) => {
      // A znode created after the files were read: its create is in ZooKeeper's log by now.
      if (fresh && !kinds.has(path)) kinds = readZooKeeperKinds(zkDir)
      return kinds.get(path)
    }
  }

  let source: Client | undefined
  let target: Client | undefined
  try {
    source = await open('source', 'ZooKeeper', from.connect, fromAuth, timeoutMs)
    target = await open('target', 'Conclave', to.connect, toAuth, timeoutMs)
    if ((await source.exists(from.path)) === null)
      throw new MigrateError(`the source has no ${from.path}: nothing to migrate`)
    return await migrate(source, target, {
      from,
      to,
      overwrite,
      follow,
      followMs,
      kindOf,
      zkDir: typeof zkDir === 'string',
    })
  } catch (err) {
    if (err instanceof MigrateError) {
      process.stderr.write(`conclave migrate: ${err.message}\n`)
      return 1
    }
    throw err
  } finally {
    await source?.close().catch(() => {})
    await target?.close().catch(() => {})
  }
}

interface Plan {
  from: { connect: string; path: string }
  to: { connect: string; path: string }
  overwrite: boolean
  follow: boolean
  followMs: number | undefined
  kindOf: MigrationOptions['kindOf']
  zkDir: boolean
}

async function migrate(source: Client, target: Client, plan: Plan): Promise<number> {
  const progress = new Progress('migrate', { unit: 'znodes' })
  let phase = ''
  const m = new Migration(source, target, {
    fromPath: plan.from.path,
    toPath: plan.to.path,
    overwrite: plan.overwrite,
    ...(plan.kindOf === undefined ? {} : { kindOf: plan.kindOf }),
    progress: (p, done, total) => {
      if (p !== phase) {
        if (phase !== '') progress.clear()
        phase = p
      }
      progress.total = total
      progress.update(done, p)
    },
  })
  // The watch first: a change made while the copy reads is reported, and applied after it.
  const stop = new AbortController()
  let stream = plan.follow
    ? source.watch(plan.from.path, { recursive: true, signal: stop.signal })
    : undefined
  const started = Date.now()
  const copied = await m.copy()
  const r = m.report
  progress.done(r.copied + r.updated + r.unchanged, 'copied')
  if (!copied) {
    stop.abort()
    process.stderr.write(
      `conclave migrate: refused: ${r.conflicts.length} target znode(s) exist with other data ` +
        '(nothing was written; --overwrite replaces them):\n' +
        r.conflicts
          .slice(0, 20)
          .map((c) => `  ${c.path}: ${c.why}\n`)
          .join('') +
        (r.conflicts.length > 20 ? `  … and ${r.conflicts.length - 20} more\n` : ''),
    )
    return 1
  }
  say(
    `copied ${plan.from.path} → ${plan.to.path}: ${r.copied} created, ${r.updated} updated, ` +
      `${r.unchanged} already equal, in ${Date.now() - started} ms (source zxid ${formatZxid(m.appliedZxid)})`,
  )
  if (!plan.zkDir)
    say(
      'note: ZooKeeper shows containers and TTL nodes to clients as persistent; without --zk-data-dir ' +
        'they were copied as persistent znodes',
    )
  for (const c of r.counters)
    say(`child counter of ${c.path} raised by ${c.raisedBy} (sequential names continue)`)
  if (r.ephemerals.length > 0) {
    say(`${r.ephemerals.length} ephemeral znode(s) not copied (they belong to the source's sessions):`)
    for (const e of r.ephemerals) say(`  ${e.path} (session ${e.owner})`)
  }
  if (stream !== undefined)
    await followChanges(
      m,
      source,
      plan,
      stop,
      () => stream!,
      (s) => (stream = s),
    )
  for (const f of r.failures) process.stderr.write(`conclave migrate: not copied: ${f.path}: ${f.reason}\n`)
  if (plan.follow)
    say(`stopped following: ${r.copied} created, ${r.updated} updated, ${r.deleted} deleted in all`)
  return r.failures.length > 0 ? 1 : 0
}

async function followChanges(
  m: Migration,
  initial: Client,
  plan: Plan,
  stop: AbortController,
  current: () => ReturnType<Client['watch']>,
  replace: (s: ReturnType<Client['watch']>) => void,
): Promise<void> {
  let source = initial
  let chain: Promise<void> = Promise.resolve()
  let applied = 0
  let lagMs = 0
  let lastAppliedAt = Date.now()
  let pending = 0
  const serial = (fn: () => Promise<void>): void => {
    chain = chain.then(fn).catch((err: unknown) => {
      process.stderr.write(`conclave migrate: ${(err as Error).message}\n`)
    })
  }
  const resync = (why: string): void =>
    serial(async () => {
      const n = await m.resync()
      say(`resynced after ${why}: ${n} difference(s) applied`)
    })
  let wasDisconnected = false
  const onState = (state: string): void => {
    if (state === 'disconnected') wasDisconnected = true
    if (state === 'connected' && wasDisconnected) {
      wasDisconnected = false
      resync('a reconnect to the source')
    }
  }
  let offState = source.on('state', onState)
  // Writes that failed while the target was away are made good by comparing everything again.
  let targetAway = false
  const offTarget = m.targetClient.on('state', (state) => {
    if (state === 'disconnected') targetAway = true
    if (state === 'connected' && targetAway) {
      targetAway = false
      resync('a reconnect to the target')
    }
  })
  const onSignal = (): void => stop.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const timer = plan.followMs === undefined ? undefined : setTimeout(() => stop.abort(), plan.followMs)
  const ticker = setInterval(() => report(), 5000)
  const tty = process.stderr.isTTY === true
  const report = (final = false): void => {
    const line =
      `following ${plan.from.path}: ${applied} change(s) applied, ${pending} waiting, ` +
      `last applied source zxid ${formatZxid(m.appliedZxid)}, lag ${lagMs} ms, ` +
      `${Math.round((Date.now() - lastAppliedAt) / 1000)} s since the last change`
    if (tty && !final) process.stderr.write(`\r\x1b[K${line}`)
    else process.stderr.write(`${tty ? '\r\x1b[K' : ''}${line}\n`)
  }
  say(`following changes under ${plan.from.path} (Ctrl-C stops)`)
  try {
    while (!stop.signal.aborted) {
      try {
        for await (const ev of current()) {
          if (ev.type === 'resync') {
            resync('missed events (the watch overflowed)')
            continue
          }
          const arrived = Date.now()
          pending++
          serial(async () => {
            await m.apply(ev.path)
            pending--
            applied++
            lagMs = Date.now() - arrived
            lastAppliedAt = Date.now()
          })
        }
      } catch (err) {
        if (!(err instanceof ZkError) || (err.code !== 'SESSION_EXPIRED' && err.code !== 'CONNECTION_LOSS'))
          throw err
        if (stop.signal.aborted) break
        // The source session expired: a new one, the watch again, then everything compared.
        say(`the source session ended (${err.code}); opening a new one`)
        offState()
        source = await source.newSession({ connectTimeoutMs: 10_000 })
        m.useSource(source)
        offState = source.on('state', onState)
        replace(source.watch(plan.from.path, { recursive: true, signal: stop.signal }))
        resync('a new source session')
        continue
      }
      break
    }
    await chain
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    clearInterval(ticker)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    offState()
    offTarget()
    if (source !== initial) await source.close().catch(() => {})
    report(true)
  }
}
