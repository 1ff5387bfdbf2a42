/**
 * `conclave server`: flags and/or a config file → a validated ServerConfig →
 * a running ServerNode. Flags win over the file. SIGTERM and SIGINT stop the
 * server cleanly (storage flushed) with exit code 0.
 *
 * Every flag is one row of FLAGS (its config key, how its value is read, its
 * help and default), from which the parser and `--help` are made. The
 * server itself (../node.js, which loads better-sqlite3) is imported only
 * when the server starts, so `--help` and usage errors need no native module.
 */
import { ConfigError, parseConfig, parseServersFlag, readConfigFile, splitList } from '../config.js'
import {
  type CommandSpec,
  formatHelp,
  numberOrText,
  type OptionSpec,
  parseCommandArgs,
  UsageError,
} from './args.js'
import { chooseLogFormat, createServerLogger, type LogFormat } from './log-format.js'

interface ServerFlag extends OptionSpec {
  /** The config key it sets; '' for flags the command itself uses (--config, --log-format). */
  key: string
  /** How the value becomes a config value: an integer (text left for zod to name), text, a list. */
  read?: 'int' | 'text' | 'list' | 'servers' | 'switch'
}

const FLAGS: Record<string, ServerFlag> = {
  port: {
    key: 'clientPort',
    value: 'N',
    default: '2181',
    help: 'client port (WebSocket, ZooKeeper TCP, 4lw)',
  },
  host: {
    key: 'clientPortAddress',
    value: 'ADDR',
    read: 'text',
    default: '127.0.0.1',
    help: 'client address to listen on',
  },
  'data-dir': { key: 'dataDir', value: 'DIR', read: 'text', default: './data', help: 'data directory' },
  'tick-time': { key: 'tickTime', value: 'MS', default: '2000', help: 'basic time unit' },
  'min-session-timeout': {
    key: 'minSessionTimeout',
    value: 'MS',
    default: '2 × tick-time',
    help: 'shortest session timeout granted',
  },
  'max-session-timeout': {
    key: 'maxSessionTimeout',
    value: 'MS',
    default: '20 × tick-time',
    help: 'longest session timeout granted',
  },
  'max-client-cnxns': {
    key: 'maxClientCnxns',
    value: 'N',
    default: '60',
    help: 'connections from one IP address (0: unlimited)',
  },
  id: { key: 'serverId', value: 'N', default: '1', help: "this server's id in --servers" },
  servers: {
    key: 'servers',
    value: 'LIST',
    read: 'servers',
    default: 'none (standalone)',
    help: 'every member: id=host:peerPort:clientPort[:observer],…',
  },
  'admin-port': {
    key: 'adminPort',
    value: 'N',
    default: '0 (off)',
    help: 'HTTP admin port (health, metrics)',
  },
  'admin-console': {
    key: 'adminConsole',
    default: 'off',
    help: 'serve the web console on the admin port at /console/',
  },
  'log-level': {
    key: 'logLevel',
    value: 'LEVEL',
    read: 'text',
    default: 'info',
    help: 'trace, debug, info, warn, error, fatal or silent',
  },
  'log-format': {
    key: '',
    value: 'FORMAT',
    default: 'auto',
    help: 'json, pretty, or auto: pretty on a terminal, else JSON',
  },
  'snap-count': { key: 'snapCount', value: 'N', default: '100000', help: 'Txns between snapshots' },
  'allowed-origins': {
    key: 'allowedOrigins',
    value: 'LIST',
    read: 'list',
    default: 'none',
    help: 'browser origins allowed to connect (or *)',
  },
  secret: {
    key: 'ensembleSecret',
    value: 'S',
    read: 'text',
    default: '$CONCLAVE_SECRET',
    help: 'ensemble secret (visible in ps: prefer --secret-file)',
  },
  'secret-file': {
    key: 'secretFile',
    value: 'FILE',
    read: 'text',
    default: 'none',
    help: 'file whose first line is the ensemble secret',
  },
  'tls-cert': {
    key: 'clientTlsCertFile',
    value: 'FILE',
    read: 'text',
    default: 'none',
    help: 'client TLS cert (PEM)',
  },
  'tls-key': {
    key: 'clientTlsKeyFile',
    value: 'FILE',
    read: 'text',
    default: 'none',
    help: 'client TLS key (PEM)',
  },
  'tls-ca': {
    key: 'clientTlsCaFile',
    value: 'FILE',
    read: 'text',
    default: 'none',
    help: 'CA that client certificates are checked against',
  },
  'tls-client-auth': {
    key: 'clientTlsClientAuth',
    value: 'MODE',
    read: 'text',
    default: 'want with --tls-ca, else none',
    help: 'ask TLS clients for a certificate: none, want or need',
  },
  'tls-only': { key: 'clientTlsOnly', default: 'off', help: 'refuse plaintext clients' },
  'quorum-tls-cert': {
    key: 'quorumTlsCertFile',
    value: 'FILE',
    read: 'text',
    default: 'none',
    help: "this member's quorum TLS cert (PEM)",
  },
  'quorum-tls-key': {
    key: 'quorumTlsKeyFile',
    value: 'FILE',
    read: 'text',
    default: 'none',
    help: "this member's quorum TLS key (PEM)",
  },
  'quorum-tls-ca': {
    key: 'quorumTlsCaFile',
    value: 'FILE',
    read: 'text',
    default: 'none',
    help: "the ensemble's quorum CA (PEM)",
  },
  'reconfig-enabled': {
    key: 'reconfigEnabled',
    default: 'off',
    help: 'serve reconfig requests (the super user, or WRITE on /zookeeper/config)',
  },
  'read-only': {
    key: 'readOnlyMode',
    default: 'off',
    help: 'without a quorum, serve reads to read-only clients',
  },
  'local-sessions': {
    key: 'localSessions',
    default: 'off',
    help: 'new sessions are local: no Txn to open or close one (set on every member)',
  },
  'local-sessions-upgrading': {
    key: 'localSessionsUpgrading',
    value: 'on|off',
    read: 'switch',
    default: 'on with --local-sessions',
    help: "a local session's first ephemeral makes it global (off: EPHEMERAL_ON_LOCAL_SESSION)",
  },
  config: { key: '', value: 'FILE', default: 'none', help: 'JSON or ZooKeeper-style key=value config file' },
}

export const SERVER_COMMAND: CommandSpec = {
  name: 'server',
  usage: '[options]',
  summary:
    'Runs one server: standalone, or a member of an ensemble with --id and --servers.\n' +
    'Flags win over the config file. SIGTERM or SIGINT stops it cleanly (exit 0).',
  options: FLAGS,
  footer:
    'An ensemble shares a secret: CONCLAVE_SECRET in the environment, --secret-file, or\n' +
    'secretFile in the config file. Every setting: docs/operations.md.\n\n' +
    'example:\n' +
    '  conclave server --id 1 --servers 1=10.0.0.1:2888:2181,2=10.0.0.2:2888:2181,3=10.0.0.3:2888:2181',
}

export interface ServerArgs {
  /** Raw config values (validated by parseConfig). */
  input: Record<string, unknown>
  /** The flag that set each config key, to name it in errors. */
  flagOf: Map<string, string>
  logFormat: string | undefined
  help: boolean
}

/** An on|off flag's value. */
function readSwitch(flag: string, value: string): boolean {
  if (value === 'on' || value === 'true') return true
  if (value === 'off' || value === 'false') return false
  throw new UsageError(`option --${flag} takes on or off (got ${JSON.stringify(value)})`)
}

/** Flags + file → raw config values and the command's own settings. */
export function parseServerArgs(argv: string[]): ServerArgs {
  const { flags, help } = parseCommandArgs(argv, SERVER_COMMAND)
  const file = flags.get('config')
  const input: Record<string, unknown> = typeof file === 'string' && !help ? readConfigFile(file) : {}
  const flagOf = new Map<string, string>()
  for (const [flag, value] of flags) {
    const { key, read = 'int' } = FLAGS[flag]!
    if (key === '') continue
    flagOf.set(key, `--${flag}`)
    if (value === true) input[key] = true
    else if (read === 'servers') input[key] = parseServersFlag(value)
    else if (read === 'list') input[key] = splitList(value)
    else if (read === 'switch') input[key] = readSwitch(flag, value)
    else input[key] = read === 'text' ? value : numberOrText(value)
  }
  // A secret given by flag wins over the file's, whichever way each gives it.
  if (flags.has('secret') && !flags.has('secret-file')) delete input.secretFile
  if (flags.has('secret-file') && !flags.has('secret')) delete input.ensembleSecret
  if (process.env.CONCLAVE_SECRET && input.ensembleSecret === undefined && input.secretFile === undefined)
    input.ensembleSecret = process.env.CONCLAVE_SECRET
  const format = flags.get('log-format')
  return { input, flagOf, logFormat: typeof format === 'string' ? format : undefined, help }
}

/** Flags + file → raw config values (validated by parseConfig). */
export function configInput(argv: string[]): Record<string, unknown> {
  return parseServerArgs(argv).input
}

/** parseConfig, with each complaint about a value a flag gave led by that flag. */
function validate(args: ServerArgs) {
  try {
    return parseConfig(args.input)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    const named = err.message
      .split('\n')
      .map((line) => {
        const flag = args.flagOf.get(/^[\w.]+/.exec(line)?.[0]?.split('.')[0] ?? '')
        return flag === undefined ? line : `${flag}: ${line}`
      })
      .join('\n')
    throw new ConfigError(named)
  }
}

export async function runServer(argv: string[]): Promise<number> {
  const args = parseServerArgs(argv)
  if (args.help) {
    process.stdout.write(formatHelp(SERVER_COMMAND))
    return 0
  }
  const format: LogFormat = chooseLogFormat(args.logFormat, process.stdout.isTTY === true)
  const config = validate(args)
  // Signals are ours from here on: a Ctrl-C while the server starts stops it as soon as
  // it is up (storage flushed), instead of killing it halfway through recovery.
  let signalled: string | undefined
  let onSignal = (signal: string) => {
    signalled ??= signal
  }
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  process.on('SIGINT', () => onSignal('SIGINT'))
  const { startServer } = await import('../node.js')
  const logger = createServerLogger({ level: config.logLevel, serverId: config.serverId, format })
  if (signalled !== undefined) return 0
  const server = await startServer(config, logger)
  if (argv.some((a) => a === '--secret' || a.startsWith('--secret=')))
    server.logger.warn(
      'the ensemble secret was given on the command line (--secret), where `ps` shows it to every user ' +
        'of this machine; use --secret-file, secretFile or CONCLAVE_SECRET',
    )
  return new Promise<number>((resolve) => {
    let stopping = false
    onSignal = (signal: string) => {
      if (stopping) return
      stopping = true
      server.logger.info({ signal }, 'stopping')
      server.stop().then(
        () => resolve(0),
        (err: unknown) => {
          server.logger.error({ err }, 'stop failed')
          resolve(1)
        },
      )
    }
    server.onFatal = (err) => {
      server.logger.fatal({ err }, 'fatal error; exiting')
      resolve(1)
    }
    if (signalled !== undefined) onSignal(signalled)
  })
}
