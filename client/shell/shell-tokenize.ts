/**
 * The shell's line tokenizer and its usage error. Splits a command line on
 * whitespace, honouring "double quotes" (with backslash escapes \" \\ \n \t
 * \r \0 \xHH \uHHHH), 'single quotes' (literal, no escapes) and a backslash
 * outside quotes (escapes the next character). Adjacent quoted and bare parts
 * join into one token (`a"b c"` → `ab c`); `""` is an empty token.
 * Invariants: pure, no I/O; never loops past the end of the input; an
 * unterminated quote or a dangling backslash is a ShellUsageError.
 * Imports nothing.
 */

/** A mistake in what the user typed: bad syntax, unknown option, missing argument (exit code 2). */
export class ShellUsageError extends Error {
  override name = 'ShellUsageError'
}

const SIMPLE_ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '0': '\0',
  '\\': '\\',
  '"': '"',
  "'": "'",
  ' ': ' ',
  $: '$',
}

/** Reads one escape inside double quotes at `line[i]` (the char after the backslash). */
function readEscape(line: string, i: number): { text: string; next: number } {
  const c = line[i]
  if (c === undefined) throw new ShellUsageError('unterminated escape at end of line')
  const simple = SIMPLE_ESCAPES[c]
  if (simple !== undefined) return { text: simple, next: i + 1 }
  const hexLen = c === 'x' ? 2 : c === 'u' ? 4 : 0
  if (hexLen > 0) {
    const hex = line.slice(i + 1, i + 1 + hexLen)
    if (!new RegExp(`^[0-9a-fA-F]{${hexLen}}$`).test(hex))
      throw new ShellUsageError(`bad escape \\${c}${hex}: expected ${hexLen} hex digits`)
    return { text: String.fromCharCode(Number.parseInt(hex, 16)), next: i + 1 + hexLen }
  }
  // An unknown escape keeps the backslash, as POSIX shells do inside double quotes.
  return { text: `\\${c}`, next: i + 1 }
}

function readQuoted(line: string, start: number, quote: string): { text: string; next: number } {
  let text = ''
  let i = start
  while (i < line.length) {
    const c = line[i]!
    if (c === quote) return { text, next: i + 1 }
    if (c === '\\' && quote === '"') {
      const esc = readEscape(line, i + 1)
      text += esc.text
      i = esc.next
      continue
    }
    text += c
    i++
  }
  throw new ShellUsageError(`unterminated ${quote === '"' ? 'double' : 'single'} quote`)
}

/** Splits a command line into arguments. */
export function tokenize(line: string): string[] {
  const tokens: string[] = []
  let current: string | null = null
  let i = 0
  while (i < line.length) {
    const c = line[i]!
    if (/\s/.test(c)) {
      if (current !== null) tokens.push(current)
      current = null
      i++
    } else if (c === '"' || c === "'") {
      const q = readQuoted(line, i + 1, c)
      current = (current ?? '') + q.text
      i = q.next
    } else if (c === '\\') {
      const next = line[i + 1]
      if (next === undefined) throw new ShellUsageError('dangling backslash at end of line')
      current = (current ?? '') + next
      i += 2
    } else {
      current = (current ?? '') + c
      i++
    }
  }
  if (current !== null) tokens.push(current)
  return tokens
}

/** Quotes an argument so that tokenize() gives it back unchanged (for history and redo). */
export function quoteArg(arg: string): string {
  if (arg !== '' && /^[\w@%+=:,./-]+$/.test(arg)) return arg
  return `'${arg.replace(/'/g, `'"'"'`)}'`
}
