/**
 * A small argv parser for the `conclave` subcommands: `--name value`,
 * `--name=value`, boolean `--flag`, positionals. Unknown flags are errors
 * (exit 2) with the flag named.
 */

export class UsageError extends Error {
  override name = 'UsageError'
}

export interface ParsedArgs {
  flags: Map<string, string | true>
  positionals: string[]
}

/** `spec` maps each accepted flag name to whether it takes a value. */
export function parseArgs(argv: string[], spec: Record<string, boolean>): ParsedArgs {
  const flags = new Map<string, string | true>()
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!a.startsWith('--')) {
      positionals.push(a)
      continue
    }
    const eq = a.indexOf('=')
    const name = a.slice(2, eq < 0 ? undefined : eq)
    if (!(name in spec)) throw new UsageError(`unknown option --${name}`)
    if (!spec[name]) {
      if (eq >= 0) throw new UsageError(`option --${name} takes no value`)
      flags.set(name, true)
      continue
    }
    const value = eq >= 0 ? a.slice(eq + 1) : argv[++i]
    if (value === undefined) throw new UsageError(`option --${name} needs a value`)
    flags.set(name, value)
  }
  return { flags, positionals }
}

/** A flag's value as a number for the config (left as text if not numeric, so zod names the bad value). */
export function numberOrText(v: string): number | string {
  return /^-?\d+$/.test(v) ? Number(v) : v
}
