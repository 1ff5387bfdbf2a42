/**
 * `conclave reconfig`: changes an ensemble's membership through the SDK's
 * zk.reconfig (ZooKeeper's reconfig, as zkCli.sh's `reconfig` command:
 * `--add` for -add, `--remove` for -remove, `--members` for -members, `--from`
 * for -v, a hex config version). Prints the new config as /zookeeper/config
 * holds it. Exit codes: 0 done, 1 refused or unreachable (the server's error
 * code and what it usually means), 2 usage.
 */
import { Client, parseConnectString, ZkError } from '../../client/index.js'
import {
  authFlag,
  type CommandSpec,
  formatHelp,
  parseCommandArgs,
  positiveIntFlag,
  UsageError,
} from './args.js'

export const RECONFIG_COMMAND: CommandSpec = {
  name: 'reconfig',
  usage: '[options]',
  summary:
    'Changes the ensemble membership (ZooKeeper reconfig; the servers need --reconfig-enabled, the\n' +
    'caller the super user or WRITE on /zookeeper/config). Incremental (--add/--remove) or whole\n' +
    '(--members). Prints the new configuration and its version.',
  options: {
    server: { value: 'CONNECT', default: '127.0.0.1:2181', help: 'servers to connect to (a connect string)' },
    add: {
      value: 'LINES',
      help: 'server lines to add or change: server.N=host:peer:peer:role;host:client,...',
    },
    remove: { value: 'IDS', help: 'server ids to remove: N,...' },
    members: { value: 'LINES', help: 'the whole new server list (instead of --add/--remove)' },
    from: { value: 'HEX', default: 'current', help: 'the config version to change from (as -v of zkCli.sh)' },
    auth: { value: 'SCHEME:CRED', default: 'none', help: 'credentials, e.g. digest:super:password' },
    timeout: { value: 'MS', default: '10000', help: 'connect timeout' },
  },
  footer:
    'example: conclave reconfig --server 127.0.0.1:2181 --auth digest:super:secret --remove 3\n' +
    '         conclave reconfig --add "server.4=127.0.0.1:2891:2891:participant;127.0.0.1:2184"\n' +
    'A server must already be in every member’s --servers list: the peer transport cannot reach\n' +
    'servers it was not started with (docs/operations.md, Membership changes).\n',
}

/** What a refusal usually means, for the operator. */
const HINTS: Record<string, string> = {
  RECONFIG_DISABLED: 'the servers run without --reconfig-enabled',
  NO_AUTH: 'reconfig needs the super user (--auth digest:super:...) or WRITE on /zookeeper/config',
  BAD_ARGUMENTS:
    'malformed, or names a server or address the ensemble was not started with (the leader logs why)',
  BAD_VERSION: 'the configuration changed since --from; read /zookeeper/config again',
  RECONFIG_IN_PROGRESS: 'another change is in flight; try again when it is committed',
  NEW_CONFIG_NO_QUORUM: 'no majority of the new voters is up and synced with the leader',
  UNIMPLEMENTED: 'a standalone server has no membership to change',
}

export async function runReconfig(argv: string[]): Promise<number> {
  const { flags, help } = parseCommandArgs(argv, RECONFIG_COMMAND)
  if (help) {
    process.stdout.write(formatHelp(RECONFIG_COMMAND))
    return 0
  }
  const text = (name: string): string | undefined => {
    const v = flags.get(name)
    if (v === true) throw new UsageError(`--${name} needs a value`)
    return v
  }
  const server = text('server') ?? '127.0.0.1:2181'
  try {
    parseConnectString(server)
  } catch (err) {
    throw new UsageError(`--server '${server}': ${(err as Error).message}`)
  }
  const add = text('add')
  const remove = text('remove')
  const members = text('members')
  if (members !== undefined && (add !== undefined || remove !== undefined))
    throw new UsageError('--members replaces the whole list: give it alone, or use --add/--remove')
  if (members === undefined && add === undefined && remove === undefined)
    throw new UsageError('nothing to change: give --add, --remove or --members')
  if (remove !== undefined && !/^\s*\d+\s*(,\s*\d+\s*)*$/.test(remove))
    throw new UsageError(`--remove '${remove}': expected server ids, e.g. 3 or 3,4`)
  const fromText = text('from')
  let fromConfig = -1
  if (fromText !== undefined) {
    if (!/^(0x)?[0-9a-fA-F]{1,13}$/.test(fromText))
      throw new UsageError(`--from '${fromText}': expected a hex config version (the version= line)`)
    fromConfig = Number.parseInt(fromText.replace(/^0x/, ''), 16)
  }
  const auth = authFlag('--auth', text('auth'))
  const timeout = positiveIntFlag('--timeout', text('timeout'), 10_000, 'ms')
  let zk: Client
  try {
    zk = await Client.connect(server, { connectTimeoutMs: timeout, auth })
  } catch (err) {
    process.stderr.write(`conclave reconfig: cannot connect to ${server}: ${(err as Error).message}\n`)
    return 1
  }
  try {
    const { data, stat } = await zk.reconfig({
      joining: add,
      leaving: remove,
      newMembers: members,
      fromConfig,
    })
    process.stdout.write(`${new TextDecoder().decode(data)}\n`)
    process.stdout.write(`(committed at zxid 0x${stat.mzxid.toString(16)})\n`)
    return 0
  } catch (err) {
    if (!(err instanceof ZkError)) throw err
    const hint = HINTS[err.code]
    process.stderr.write(`conclave reconfig: ${err.code}${hint === undefined ? '' : `: ${hint}`}\n`)
    return 1
  } finally {
    await zk.close()
  }
}
