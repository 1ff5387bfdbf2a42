/**
 * `conclave server`: flags and/or a config file → a validated ServerConfig →
 * a running ServerNode. Flags win over the file. SIGTERM and SIGINT stop the
 * server cleanly (storage flushed) with exit code 0.
 */
import { parseConfig, parseServersFlag, readConfigFile, splitList } from '../config.js'
import { startServer } from '../node.js'
import { numberOrText, parseArgs } from './args.js'

const FLAGS: Record<string, [string, boolean]> = {
  port: ['clientPort', true],
  host: ['clientPortAddress', true],
  'data-dir': ['dataDir', true],
  'tick-time': ['tickTime', true],
  'min-session-timeout': ['minSessionTimeout', true],
  'max-session-timeout': ['maxSessionTimeout', true],
  'max-client-cnxns': ['maxClientCnxns', true],
  id: ['serverId', true],
  servers: ['servers', true],
  'admin-port': ['adminPort', true],
  'log-level': ['logLevel', true],
  'snap-count': ['snapCount', true],
  'allowed-origins': ['allowedOrigins', true],
  secret: ['ensembleSecret', true],
  'secret-file': ['secretFile', true],
  'tls-cert': ['clientTlsCertFile', true],
  'tls-key': ['clientTlsKeyFile', true],
  'tls-ca': ['clientTlsCaFile', true],
  'tls-client-auth': ['clientTlsClientAuth', true],
  'tls-only': ['clientTlsOnly', false],
  'quorum-tls-cert': ['quorumTlsCertFile', true],
  'quorum-tls-key': ['quorumTlsKeyFile', true],
  'quorum-tls-ca': ['quorumTlsCaFile', true],
  'read-only': ['readOnlyMode', false],
  config: ['', true],
}

/** Flags + file → raw config values (validated by parseConfig). */
export function configInput(argv: string[]): Record<string, unknown> {
  const spec = Object.fromEntries(Object.entries(FLAGS).map(([k, [, takes]]) => [k, takes]))
  const { flags, positionals } = parseArgs(argv, spec)
  if (positionals.length > 0) throw new Error(`unexpected argument '${positionals[0]}'`)
  const file = flags.get('config')
  const input: Record<string, unknown> = typeof file === 'string' ? readConfigFile(file) : {}
  for (const [flag, value] of flags) {
    const key = FLAGS[flag]![0]
    if (key === '') continue
    if (key === 'servers') input.servers = parseServersFlag(String(value))
    else if (key === 'allowedOrigins') input.allowedOrigins = splitList(String(value))
    else
      input[key] =
        value === true
          ? true
          : key === 'dataDir' || key === 'logLevel' || key.endsWith('File')
            ? value
            : numberOrText(value)
  }
  // A secret given by flag wins over the file's, whichever way each gives it.
  if (flags.has('secret') && !flags.has('secret-file')) delete input.secretFile
  if (flags.has('secret-file') && !flags.has('secret')) delete input.ensembleSecret
  if (process.env.CONCLAVE_SECRET && input.ensembleSecret === undefined && input.secretFile === undefined)
    input.ensembleSecret = process.env.CONCLAVE_SECRET
  return input
}

export async function runServer(argv: string[]): Promise<number> {
  const config = parseConfig(configInput(argv))
  const server = await startServer(config)
  if (argv.some((a) => a === '--secret' || a.startsWith('--secret=')))
    server.logger.warn(
      'the ensemble secret was given on the command line (--secret), where `ps` shows it to every user ' +
        'of this machine; use --secret-file, secretFile or CONCLAVE_SECRET',
    )
  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: string) => {
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
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    server.onFatal = (err) => {
      server.logger.fatal({ err }, 'fatal error; exiting')
      resolve(1)
    }
  })
}
