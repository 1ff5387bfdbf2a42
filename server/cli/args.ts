/**
 * Arguments of the `conclave` subcommands, on node:util's parseArgs. Each
 * command declares its options once — name, value placeholder, default, one
 * line of help — and gets from that table the parsing, its `--help` text and
 * the error messages.
 *
 * Invariants: every option of a command appears in its help with its default;
 * an unknown option, a missing value, a value given to a switch and an
 * unexpected argument are UsageErrors (exit 2) that name the flag as typed.
 * `-h`/`--help` is accepted by every command. A repeated option: the last wins
 * (a script may append overrides). Imports node:util only.
 */
import { parseArgs as parseNodeArgs } from 'node:util'

export class UsageError extends Error {
  override name = 'UsageError'
}

export interface OptionSpec {
  /** The value's placeholder in help (`N`, `MS`, `DIR`); absent for a switch (no value). */
  value?: string
  /** The default as help shows it (`2181`, `2 × --tick-time`, `off`). */
  default?: string
  /** One line of help. */
  help: string
  /** A one-letter alias (`o` for `-o`). */
  short?: string
}

export interface CommandSpec {
  /** `server`, `cluster`, … */
  name: string
  /** What follows `conclave <name>` in the usage line, e.g. `[options] [ws://host:port,...]`. */
  usage: string
  /** A paragraph printed after the usage line. */
  summary: string
  options: Record<string, OptionSpec>
  /** Whether the command takes positional arguments. */
  positionals?: boolean
  /** Printed after the options (notes, examples). */
  footer?: string
}

export interface ParsedArgs {
  /** Options given, as typed, in the order given (the last of a repeated option wins). */
  flags: Map<string, string | true>
  positionals: string[]
  /** `-h` or `--help` was given. */
  help: boolean
}

const HELP_OPTION: OptionSpec = { help: 'print this help and exit' }

/** Parses argv against the command's options; throws UsageError naming the offending flag. */
export function parseCommandArgs(argv: string[], spec: CommandSpec): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  }
  for (const [name, o] of Object.entries(spec.options))
    options[name] = {
      type: o.value === undefined ? 'boolean' : 'string',
      ...(o.short === undefined ? {} : { short: o.short }),
    }
  // strict: false, then our own checks on the tokens: Node's strict-mode messages do not
  // say how to fix the mistake, and ours name the command's help.
  const { tokens } = parseNodeArgs({
    args: argv,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  })
  const flags = new Map<string, string | true>()
  const positionals: string[] = []
  let help = false
  for (const t of tokens) {
    if (t.kind === 'positional') {
      positionals.push(t.value)
      continue
    }
    if (t.kind !== 'option') continue
    if (t.name === 'help') {
      help = true
      continue
    }
    const o = spec.options[t.name]
    if (o === undefined) throw unknownOption(t.rawName, spec)
    if (o.value === undefined) {
      if (t.value !== undefined)
        throw new UsageError(`option ${t.rawName} takes no value (got ${JSON.stringify(t.value)})`)
      flags.set(t.name, true)
      continue
    }
    // `--port --host x`: parseArgs took the next option as the value; a value that
    // starts with a dash can still be given inline (`--name=-x`).
    if (t.value === undefined || (!t.inlineValue && /^--?[A-Za-z]/.test(t.value)))
      throw new UsageError(`option ${t.rawName} needs a value: ${t.rawName} ${o.value}`)
    flags.set(t.name, t.value)
  }
  if (positionals.length > 0 && spec.positionals !== true && !help)
    throw new UsageError(`unexpected argument '${positionals[0]}' (conclave ${spec.name} takes only options)`)
  return { flags, positionals, help }
}

function unknownOption(raw: string, spec: CommandSpec): UsageError {
  const name = raw.replace(/^--?/, '')
  const near = Object.keys(spec.options).filter(
    (o) => editDistance(o, name) <= 2 || (name.length >= 3 && o.startsWith(name)),
  )
  const hint = near.length > 0 ? `; did you mean ${near.map((o) => `--${o}`).join(' or ')}?` : ''
  return new UsageError(`unknown option ${raw}${hint} ('conclave ${spec.name} --help' lists the options)`)
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = row
  }
  return prev[b.length]!
}

/** The command's help: usage, summary, every option with its default, footer. */
export function formatHelp(spec: CommandSpec): string {
  const rows = Object.entries({ ...spec.options, help: HELP_OPTION }).map(([name, o]) => {
    const short = name === 'help' ? 'h' : o.short
    const left = `--${name}${short === undefined ? '' : `, -${short}`}${o.value === undefined ? '' : ` ${o.value}`}`
    return { left, right: o.default === undefined ? o.help : `${o.help} [default: ${o.default}]` }
  })
  const width = Math.min(34, Math.max(...rows.map((r) => r.left.length)) + 2)
  const lines = rows.map((r) =>
    r.left.length + 2 > width
      ? `  ${r.left}\n  ${' '.repeat(width)}${r.right}`
      : `  ${r.left.padEnd(width)}${r.right}`,
  )
  const footer = spec.footer === undefined ? '' : `\n${spec.footer.trimEnd()}\n`
  return `usage: conclave ${spec.name} ${spec.usage}\n\n${spec.summary.trimEnd()}\n\noptions:\n${lines.join('\n')}\n${footer}`
}

/** A flag's value as a number for the config (left as text if not an integer, so zod names the bad value). */
export function numberOrText(v: string): number | string {
  return /^-?\d+$/.test(v) ? Number(v) : v
}

/**
 * A flag that must be a positive integer: `fallback` when absent, else its
 * value; a UsageError naming the flag otherwise (`unit` says what it counts,
 * as in "(ms)").
 */
export function positiveIntFlag(
  flag: string,
  v: string | true | undefined,
  fallback: number,
  unit?: string,
): number {
  if (v === undefined) return fallback
  if (typeof v !== 'string' || !/^\d+$/.test(v) || Number(v) < 1)
    throw new UsageError(
      `${flag} (got ${JSON.stringify(v)}): expected a positive integer${unit === undefined ? '' : ` (${unit})`}`,
    )
  return Number(v)
}

/** An --auth-style flag, scheme:credentials (digest:user:password), as the SDK's auth list ([] when absent). */
export function authFlag(
  flag: string,
  v: string | true | undefined,
): { scheme: string; credentials: string }[] {
  if (v === undefined) return []
  const text = String(v)
  const at = text.indexOf(':')
  if (at <= 0 || at === text.length - 1)
    throw new UsageError(`${flag} '${text}': expected scheme:credentials (digest:user:password)`)
  return [{ scheme: text.slice(0, at), credentials: text.slice(at + 1) }]
}
