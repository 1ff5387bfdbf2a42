/**
 * The `conclave` commands' arguments (server/cli/args.ts on util.parseArgs):
 * every option of every command is in its --help with its default; an
 * unknown option, a missing value, a value given to a switch and a stray
 * argument are UsageErrors naming the flag; a bad value for the config names
 * the flag and the config key; cluster and status check their own values.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { type CommandSpec, formatHelp, parseCommandArgs, UsageError } from '../../../server/cli/args.js'
import { CLUSTER_COMMAND, parseClusterArgs } from '../../../server/cli/cluster-command.js'
import { parseServerArgs, SERVER_COMMAND } from '../../../server/cli/server-command.js'
import { STATUS_COMMAND } from '../../../server/cli/status-command.js'
import { parseConfig, readConfigFile } from '../../../server/config.js'

const COMMANDS = [SERVER_COMMAND, CLUSTER_COMMAND, STATUS_COMMAND]

function usageError(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    return (err as Error).message
  }
  throw new Error('expected a UsageError')
}

describe('--help', () => {
  it.each(COMMANDS.map((c) => [c.name, c] as [string, CommandSpec]))(
    'conclave %s --help lists every option with its value and default',
    (_, spec) => {
      const help = formatHelp(spec)
      expect(help).toMatch(new RegExp(`^usage: conclave ${spec.name} `))
      for (const [name, o] of Object.entries(spec.options)) {
        const line = help
          .split('\n')
          .findIndex((l) => l.startsWith(`  --${name}${o.value ? ` ${o.value}` : ''}`))
        expect(line, `--${name} in the help`).toBeGreaterThan(0)
        // The help text may sit on the next line when the option is long.
        const text = help
          .split('\n')
          .slice(line, line + 2)
          .join('\n')
        expect(text).toContain(o.help)
        expect(o.default, `--${name} has a default`).toBeDefined()
        expect(text).toContain(`[default: ${o.default}]`)
      }
      expect(help).toMatch(/--help, -h/)
    },
  )

  it('conclave server --help has the contract flags and every TLS flag', () => {
    const help = formatHelp(SERVER_COMMAND)
    for (const flag of [
      '--port N',
      '--data-dir DIR',
      '--tick-time MS',
      '--min-session-timeout MS',
      '--max-session-timeout MS',
      '--id N',
      '--servers LIST',
      '--config FILE',
      '--secret-file FILE',
      '--tls-cert FILE',
      '--tls-only',
      '--quorum-tls-ca FILE',
      '--log-format FORMAT',
    ])
      expect(help).toContain(flag)
  })

  it('is recognised anywhere, even after other options', () => {
    expect(parseServerArgs(['--port', '1', '--help']).help).toBe(true)
    expect(parseServerArgs(['-h']).help).toBe(true)
    expect(parseClusterArgs(['--size', '3', '-h'])).toBeUndefined()
  })
})

describe('usage errors name the flag', () => {
  it('an unknown option, with the near ones', () => {
    expect(usageError(() => parseServerArgs(['--prot', '2181']))).toBe(
      "unknown option --prot; did you mean --port? ('conclave server --help' lists the options)",
    )
    expect(usageError(() => parseServerArgs(['--colour']))).toMatch(/^unknown option --colour \(/)
    expect(usageError(() => parseServerArgs(['-x']))).toMatch(/^unknown option -x/)
    expect(usageError(() => parseClusterArgs(['--sise', '3']))).toMatch(/did you mean --size\?/)
  })

  it('a missing value, also when the next word is an option', () => {
    expect(usageError(() => parseServerArgs(['--port']))).toBe('option --port needs a value: --port N')
    expect(usageError(() => parseServerArgs(['--data-dir', '--port', '1']))).toBe(
      'option --data-dir needs a value: --data-dir DIR',
    )
    // A value that starts with a dash goes inline.
    expect(parseServerArgs(['--data-dir=-odd']).input.dataDir).toBe('-odd')
  })

  it('a value given to a switch', () => {
    expect(usageError(() => parseServerArgs(['--read-only=yes']))).toBe(
      'option --read-only takes no value (got "yes")',
    )
  })

  it('an argument where only options are taken', () => {
    expect(usageError(() => parseServerArgs(['2181']))).toBe(
      "unexpected argument '2181' (conclave server takes only options)",
    )
    expect(parseCommandArgs(['ws://a:1', 'ws://b:2'], STATUS_COMMAND).positionals).toEqual([
      'ws://a:1',
      'ws://b:2',
    ])
  })

  it('bad cluster values', () => {
    expect(usageError(() => parseClusterArgs(['--size', '4']))).toBe('--size (got "4"): expected 1, 3, 5, 7')
    expect(usageError(() => parseClusterArgs(['--observers', 'two']))).toBe(
      '--observers (got "two"): expected an integer from 0 to 5',
    )
    expect(usageError(() => parseClusterArgs(['--base-port', '70000']))).toMatch(
      /^--base-port \(got "70000"\)/,
    )
    expect(usageError(() => parseClusterArgs(['--base-port', '3000', '--peer-port', '3001']))).toMatch(
      /ranges of 3 ports overlap/,
    )
  })
})

describe('conclave server flags → config', () => {
  it('reads every kind of value: integers, text, lists, the servers list, switches', () => {
    const { input, flagOf, logFormat } = parseServerArgs([
      '--port=2182',
      '--host',
      '0.0.0.0',
      '--data-dir',
      '/var/lib/c',
      '--secret',
      '12345678',
      '--allowed-origins',
      'https://a.example,https://b.example',
      '--servers',
      '1=h1:2888:2181,2=h2:2888:2181,3=h3:2888:2181:observer',
      '--read-only',
      '--log-format',
      'pretty',
      '--port',
      '2183',
    ])
    expect(input).toMatchObject({
      clientPort: 2183,
      clientPortAddress: '0.0.0.0',
      dataDir: '/var/lib/c',
      // A secret of digits stays text.
      ensembleSecret: '12345678',
      allowedOrigins: ['https://a.example', 'https://b.example'],
      readOnlyMode: true,
    })
    expect(input.servers).toHaveLength(3)
    expect(input).not.toHaveProperty('logFormat')
    expect(logFormat).toBe('pretty')
    expect(flagOf.get('clientPort')).toBe('--port')
    expect(parseConfig(input).clientPort).toBe(2183)
  })

  it('leaves a malformed number to the config check, which names the key and the value', () => {
    const { input } = parseServerArgs(['--tick-time', 'soon'])
    expect(input.tickTime).toBe('soon')
    expect(() => parseConfig(input)).toThrow(/tickTime \(got "soon"\)/)
  })
})

describe('local sessions: flags and config', () => {
  it('--local-sessions turns them on, and upgrading with them; --local-sessions-upgrading off turns that off', () => {
    expect(parseConfig(parseServerArgs([]).input)).toMatchObject({
      localSessions: false,
      localSessionsUpgrading: false,
    })
    expect(parseConfig(parseServerArgs(['--local-sessions']).input)).toMatchObject({
      localSessions: true,
      localSessionsUpgrading: true,
    })
    const off = parseServerArgs(['--local-sessions', '--local-sessions-upgrading', 'off'])
    expect(parseConfig(off.input)).toMatchObject({ localSessions: true, localSessionsUpgrading: false })
  })

  it('refuses a value that is not on or off, and upgrading without local sessions, naming the flag', () => {
    expect(
      usageError(() => parseServerArgs(['--local-sessions', '--local-sessions-upgrading', 'maybe'])),
    ).toBe('option --local-sessions-upgrading takes on or off (got "maybe")')
    const alone = parseServerArgs(['--local-sessions-upgrading', 'on'])
    expect(() => parseConfig(alone.input)).toThrow(/localSessionsUpgrading \(got true\): needs localSessions/)
  })

  it("reads ZooKeeper's names in a key=value file (localSessionsEnabled, localSessionsUpgradingEnabled)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-local-'))
    try {
      const file = join(dir, 'zoo.cfg')
      writeFileSync(file, 'localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=false\n')
      expect(parseConfig(readConfigFile(file))).toMatchObject({
        localSessions: true,
        localSessionsUpgrading: false,
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
