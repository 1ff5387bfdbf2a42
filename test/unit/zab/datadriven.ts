/**
 * The datadriven text format of the ZAB scenario files (testdata/*.txt), in
 * the manner of etcd-raft's interaction tests: a file is a sequence of
 * cases, each a command line, optional input lines, a `----` line and the
 * expected output, which ends at the first blank line (or the end of the
 * file). Lines starting with `#` between cases are comments.
 *
 *   # what this shows
 *   new voters=1,2,3
 *   1: accepted=1 current=1 log=1.1,1.2
 *   ----
 *   ok
 *
 * A command line is a name, then positional words and key=value words
 * (`crash 3`, `tick n=5`, `new voters=1,2,3 observers=4`); values hold no
 * spaces. Output never contains a blank line (the runner prints `ok` for
 * nothing), so no other delimiter is needed.
 *
 * Invariants: rewrite(file, outputs) changes nothing but the expected
 * blocks, so comments, commands and inputs survive UPDATE=1 byte for byte.
 *
 * Imports nothing of ours.
 */

export interface Command {
  readonly name: string
  /** Words without `=`, after the name. */
  readonly positional: readonly string[]
  /** key=value words; a repeated key is an error. */
  readonly args: ReadonlyMap<string, string>
  /** Lines between the command and `----`. */
  readonly input: readonly string[]
}

export interface Case {
  readonly command: Command
  /** The command line as written. */
  readonly text: string
  /** 1-based line number of the command. */
  readonly line: number
  readonly expected: string
  /** Index of the first expected line, and one past the last. */
  readonly start: number
  readonly end: number
}

export const SEPARATOR = '----'

export function parseCommand(text: string, input: readonly string[]): Command {
  const [name, ...words] = text.trim().split(/\s+/)
  if (name === undefined || name === '') throw new Error('empty command')
  const positional: string[] = []
  const args = new Map<string, string>()
  for (const w of words) {
    const eq = w.indexOf('=')
    if (eq < 0) {
      positional.push(w)
      continue
    }
    const key = w.slice(0, eq)
    if (args.has(key)) throw new Error(`${name}: ${key}= given twice`)
    args.set(key, w.slice(eq + 1))
  }
  return { name, positional, args, input }
}

/** Splits a scenario file into its cases; throws, naming the line, on a malformed file. */
export function parseCases(file: string, source: string): Case[] {
  const lines = source.split('\n')
  const cases: Case[] = []
  let i = 0
  while (i < lines.length) {
    const text = lines[i]!
    if (text.trim() === '' || text.startsWith('#')) {
      i++
      continue
    }
    const line = i + 1
    const input: string[] = []
    for (i++; i < lines.length && lines[i] !== SEPARATOR; i++) {
      if (lines[i]!.trim() === '') throw new Error(`${file}:${line}: no ${SEPARATOR} after "${text}"`)
      input.push(lines[i]!)
    }
    if (i >= lines.length) throw new Error(`${file}:${line}: no ${SEPARATOR} after "${text}"`)
    const start = ++i
    while (i < lines.length && lines[i]!.trim() !== '') i++
    cases.push({
      command: parseCommand(text, input),
      text,
      line,
      expected: lines.slice(start, i).join('\n'),
      start,
      end: i,
    })
  }
  return cases
}

/** The file with each case's expected block replaced by its actual output, everything else kept. */
export function rewrite(source: string, cases: readonly Case[], actual: readonly string[]): string {
  const lines = source.split('\n')
  const out: string[] = []
  let pos = 0
  cases.forEach((c, k) => {
    out.push(...lines.slice(pos, c.start), ...actual[k]!.split('\n'))
    pos = c.end
  })
  out.push(...lines.slice(pos))
  return out.join('\n')
}

/** A line diff of two outputs (longest common subsequence), `-` expected and `+` actual. */
export function diffLines(expected: string, actual: string): string {
  const a = expected.split('\n')
  const b = actual.split('\n')
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0))
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
    }
  }
  const out: string[] = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(`  ${a[i++]}`)
      j++
    } else if (i < a.length && (j >= b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      out.push(`- ${a[i++]}`)
    } else {
      out.push(`+ ${b[j++]}`)
    }
  }
  return out.join('\n')
}
