/**
 * The `conclave` command: `server`, `cluster`, `shell`, `status`, `console`,
 * `snapshot`, `log`, `migrate`, `reconfig`, `help`.
 * Returns the process exit code: 0 ok, 1 runtime failure, 2 usage or
 * configuration error. Each command's module is loaded only when it runs
 * (`server` loads the native storage module; `shell` and `status` do not).
 * `conclave <command> --help` (or `conclave help <command>`) prints that
 * command's options with their defaults.
 */
import { ConfigError } from '../config.js'
import { UsageError } from './args.js'

const HELP = `conclave — a ZooKeeper-style coordination service

usage: conclave <command> [options]

commands:
  server    run one server, standalone or a member of an ensemble
  cluster   run a local ensemble on 127.0.0.1, one process per server
  shell     the interactive shell (Conclave's zkCli.sh), or one command with -c
  status    ask servers for their role, zxid and sessions (srvr)
  console   serve the web console (tree, live events, locks, elections, ensemble, sessions)
  snapshot  save a consistent snapshot from a live server, restore a data directory from it,
            inspect a snapshot file or a data directory (save | restore | inspect)
  log       dump a data directory's transaction log (log dump DIR)
  migrate   copy a tree from a live ZooKeeper into Conclave, then follow its changes
  reconfig  change the ensemble's membership (add, remove, promote, demote servers)
  help      this help; \`conclave help <command>\` for a command's options

\`conclave <command> --help\` lists the command's options and their defaults.
`

const COMMANDS = [
  'server',
  'cluster',
  'shell',
  'status',
  'console',
  'snapshot',
  'log',
  'migrate',
  'reconfig',
] as const

async function run(cmd: string, rest: string[]): Promise<number> {
  switch (cmd) {
    case 'server': {
      const { runServer } = await import('./server-command.js')
      return runServer(rest)
    }
    case 'cluster': {
      const { runCluster } = await import('./cluster-command.js')
      return runCluster(rest)
    }
    case 'shell': {
      const { runShell } = await import('../../client/shell/shell.js')
      return runShell(rest)
    }
    case 'status': {
      const { runStatus } = await import('./status-command.js')
      return runStatus(rest)
    }
    case 'console': {
      const { runConsole } = await import('./console-command.js')
      return runConsole(rest)
    }
    case 'snapshot': {
      const { runSnapshot } = await import('./snapshot-command.js')
      return runSnapshot(rest)
    }
    case 'log': {
      const { runLog } = await import('./log-command.js')
      return runLog(rest)
    }
    case 'migrate': {
      const { runMigrate } = await import('./migrate-command.js')
      return runMigrate(rest)
    }
    case 'reconfig': {
      const { runReconfig } = await import('./reconfig-command.js')
      return runReconfig(rest)
    }
    default:
      throw new UsageError(`unknown command '${cmd}'`)
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd === undefined) {
    process.stderr.write(HELP)
    return 2
  }
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
    const topic = rest[0]
    if (topic === undefined) {
      process.stdout.write(HELP)
      return 0
    }
    if (!(COMMANDS as readonly string[]).includes(topic)) {
      process.stderr.write(`conclave help: unknown command '${topic}'\n\n${HELP}`)
      return 2
    }
    return main([topic, '--help'])
  }
  if (!(COMMANDS as readonly string[]).includes(cmd)) {
    process.stderr.write(`conclave: unknown command '${cmd}'\n\n${HELP}`)
    return 2
  }
  try {
    return await run(cmd, rest)
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`conclave ${cmd}: ${err.message}\n`)
      return 2
    }
    throw err
  }
}
