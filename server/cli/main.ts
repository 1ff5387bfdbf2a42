/**
 * The `conclave` command: `server`, `cluster`, `shell`, `status`, `help`.
 * Returns the process exit code: 0 ok, 1 runtime failure, 2 usage or
 * configuration error.
 */
import { ConfigError } from '../config.js'
import { UsageError } from './args.js'

const HELP = `conclave — a ZooKeeper-style coordination service

usage:
  conclave server [--port 2181] [--data-dir ./data] [--tick-time 2000]
                  [--min-session-timeout MS] [--max-session-timeout MS]
                  [--id N --servers 1=host:peerPort:clientPort,2=…] [--config FILE]
  conclave cluster [--size 3|5|7] [--observers N] [--base-port 2181] [--data-dir ./data]
  conclave shell [ws://host:port,...] [-c "command"]
  conclave status [ws://host:port,...]
  conclave help
`

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  try {
    switch (cmd) {
      case 'server': {
        const { runServer } = await import('./server-command.js')
        return await runServer(rest)
      }
      case 'cluster': {
        const { runCluster } = await import('./cluster-command.js')
        return await runCluster(rest)
      }
      case 'shell': {
        const { runShell } = await import('../../client/shell/shell.js')
        return await runShell(rest)
      }
      case 'status': {
        const { runStatus } = await import('./status-command.js')
        return await runStatus(rest)
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP)
        return cmd === undefined ? 2 : 0
      default:
        process.stderr.write(`conclave: unknown command '${cmd}'\n\n${HELP}`)
        return 2
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`conclave ${cmd}: ${err.message}\n`)
      return 2
    }
    throw err
  }
}
