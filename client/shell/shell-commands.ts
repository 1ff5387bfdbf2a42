/**
 * The shell's command table and parser: from tokens to a typed `Command`.
 * Each command has zkCli's name, usage line and single-letter flags. Flags
 * may be combined (`ls -Rs /`), a value flag takes the rest of its token or
 * the next one (`-v3`, `-v 3`), `--` ends the flags, and flags may follow
 * the path (`ls / -s`); a token starting with '-' that is not one of the
 * command's flags is an argument once an argument has been seen (so `set /a
 * -1` writes "-1"), and a usage error before that.
 * Invariants: pure, no I/O; every rejection is a ShellUsageError naming the
 * command's usage; paths are checked with ZooKeeper's own rules here, so a
 * bad path never reaches the server.
 * Imports only shared/ and the shell's pure modules.
 */
import type { Acl } from '../../shared/acl.js'
import type { CreateMode } from '../../shared/opcodes.js'
import { pathError } from '../../shared/paths.js'
import { parseAclText } from './shell-acl.js'
import { ShellUsageError } from './shell-tokenize.js'

export type WatchKind = 'any' | 'data' | 'children'

export type Command =
  | { name: 'ls'; path: string; recursive: boolean; stat: boolean; watch: boolean }
  | { name: 'get'; path: string; stat: boolean; watch: boolean }
  | { name: 'set'; path: string; data: string; version: number; stat: boolean }
  | { name: 'create'; path: string; data: string; mode: CreateMode; ttlMs?: number; acl?: Acl[] }
  | { name: 'delete'; path: string; version: number }
  | { name: 'deleteall'; path: string }
  | { name: 'stat'; path: string; watch: boolean }
  | { name: 'getAcl'; path: string; stat: boolean }
  | { name: 'setAcl'; path: string; acl: Acl[]; version: number; recursive: boolean; stat: boolean }
  | { name: 'addauth'; scheme: string; auth: string }
  | { name: 'sync'; path: string }
  | { name: 'addWatch'; path: string; mode: 'persistent' | 'persistentRecursive' }
  | { name: 'removewatches'; path: string; kind: WatchKind; local: boolean }
  | { name: 'getEphemerals'; path: string }
  | { name: 'getAllChildrenNumber'; path: string }
  | { name: 'whoami' }
  | { name: 'close' }
  | { name: 'connect'; server?: string }
  | { name: 'history' }
  | { name: 'redo'; index: number }
  | { name: 'help'; topic?: string }
  | { name: 'quit' }

export type CommandName = Command['name']

interface CommandSpec {
  usage: string
  summary: string
  /** Flag letter → whether it takes a value. */
  flags: Record<string, boolean>
  args: [min: number, max: number]
}

export const COMMANDS: Record<CommandName, CommandSpec> = {
  ls: {
    usage: 'ls [-s] [-w] [-R] path',
    summary: 'list children (-R: the whole subtree)',
    flags: { s: false, w: false, R: false },
    args: [1, 1],
  },
  get: {
    usage: 'get [-s] [-w] path',
    summary: 'print the data',
    flags: { s: false, w: false },
    args: [1, 1],
  },
  set: {
    usage: 'set [-s] [-v version] path data',
    summary: 'write the data',
    flags: { s: false, v: true },
    args: [2, 2],
  },
  create: {
    usage: 'create [-s] [-e] [-c] [-t ttl] path [data] [acl]',
    summary: 'create a znode',
    flags: { s: false, e: false, c: false, t: true },
    args: [1, 3],
  },
  delete: {
    usage: 'delete [-v version] path',
    summary: 'delete a znode without children',
    flags: { v: true },
    args: [1, 1],
  },
  deleteall: {
    usage: 'deleteall path',
    summary: 'delete a znode and its whole subtree',
    flags: {},
    args: [1, 1],
  },
  stat: { usage: 'stat [-w] path', summary: 'print the Stat', flags: { w: false }, args: [1, 1] },
  getAcl: { usage: 'getAcl [-s] path', summary: 'print the ACL', flags: { s: false }, args: [1, 1] },
  setAcl: {
    usage: 'setAcl [-s] [-v version] [-R] path acl',
    summary: 'set the ACL (e.g. world:anyone:cdrwa)',
    flags: { s: false, v: true, R: false },
    args: [2, 2],
  },
  addauth: {
    usage: 'addauth scheme auth',
    summary: 'add credentials (e.g. addauth digest user:pass)',
    flags: {},
    args: [2, 2],
  },
  sync: { usage: 'sync path', summary: 'catch this server up with the leader', flags: {}, args: [1, 1] },
  addWatch: {
    usage: 'addWatch [-m mode] path',
    summary: 'persistent watch; mode persistent or persistent_recursive (default)',
    flags: { m: true },
    args: [1, 1],
  },
  removewatches: {
    usage: 'removewatches path [-c|-d|-a] [-l]',
    summary: 'remove watches (-c child, -d data, -a any; -l local only)',
    flags: { c: false, d: false, a: false, l: false },
    args: [1, 1],
  },
  getEphemerals: {
    usage: 'getEphemerals [path]',
    summary: "list this session's ephemeral znodes under path",
    flags: {},
    args: [0, 1],
  },
  getAllChildrenNumber: {
    usage: 'getAllChildrenNumber path',
    summary: 'count every descendant',
    flags: {},
    args: [1, 1],
  },
  whoami: { usage: 'whoami', summary: 'print the identities of this session', flags: {}, args: [0, 0] },
  close: { usage: 'close', summary: 'end the session', flags: {}, args: [0, 0] },
  connect: {
    usage: 'connect [host:port,...]',
    summary: 'open a new session (closing the current one)',
    flags: {},
    args: [0, 1],
  },
  history: { usage: 'history', summary: 'list recent commands', flags: {}, args: [0, 0] },
  redo: { usage: 'redo cmdno', summary: 'run a command from history again', flags: {}, args: [1, 1] },
  help: { usage: 'help [command]', summary: 'this list', flags: {}, args: [0, 1] },
  quit: { usage: 'quit', summary: 'leave the shell', flags: {}, args: [0, 0] },
}

export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[]

const ALIASES: Record<string, CommandName> = { exit: 'quit', rmr: 'deleteall', '?': 'help' }

/** The canonical name for what the user typed (case-insensitive), or undefined. */
export function lookupCommand(word: string): CommandName | undefined {
  const lower = word.toLowerCase()
  return COMMAND_NAMES.find((n) => n.toLowerCase() === lower) ?? ALIASES[lower]
}

export interface ParsedOptions {
  flags: Map<string, string | true>
  args: string[]
}

/** Reads one `-abc` token into `flags`; returns how many extra tokens it consumed. */
function readFlagToken(tokens: string[], i: number, spec: CommandSpec, out: ParsedOptions): number {
  const tok = tokens[i]!
  for (let j = 1; j < tok.length; j++) {
    const letter = tok[j]!
    const takesValue = spec.flags[letter]
    if (takesValue === undefined) throw new ShellUsageError(`unknown option -${letter}`)
    if (!takesValue) {
      out.flags.set(letter, true)
      continue
    }
    const rest = tok.slice(j + 1)
    if (rest !== '') {
      out.flags.set(letter, rest)
      return 0
    }
    const next = tokens[i + 1]
    if (next === undefined) throw new ShellUsageError(`option -${letter} needs a value`)
    out.flags.set(letter, next)
    return 1
  }
  return 0
}

/** Splits a command's tokens (without its name) into flags and arguments, per `spec`. */
export function parseOptions(tokens: string[], spec: CommandSpec): ParsedOptions {
  const out: ParsedOptions = { flags: new Map(), args: [] }
  let flagsEnded = false
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!
    const looksLikeFlag = !flagsEnded && tok.length > 1 && tok.startsWith('-')
    if (looksLikeFlag && tok === '--') {
      flagsEnded = true
    } else if (looksLikeFlag && (out.args.length === 0 || tok[1]! in spec.flags)) {
      i += readFlagToken(tokens, i, spec, out)
    } else {
      out.args.push(tok)
    }
  }
  const [min, max] = spec.args
  if (out.args.length < min) throw new ShellUsageError('missing argument')
  if (out.args.length > max) throw new ShellUsageError(`too many arguments: ${out.args.slice(max).join(' ')}`)
  return out
}

export function parseInteger(what: string, text: string, min = Number.MIN_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(text)) throw new ShellUsageError(`${what} must be an integer, not '${text}'`)
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min) throw new ShellUsageError(`${what} out of range: ${text}`)
  return n
}

export function checkPath(path: string, sequential = false): string {
  const problem = pathError(path, sequential)
  if (problem !== null) throw new ShellUsageError(`Path '${path}' is invalid: ${problem}`)
  return path
}

function versionOf(o: ParsedOptions): number {
  const v = o.flags.get('v')
  return typeof v === 'string' ? parseInteger('version', v, -1) : -1
}

function createModeOf(o: ParsedOptions): { mode: CreateMode; ttlMs?: number } {
  const seq = o.flags.has('s')
  const eph = o.flags.has('e')
  const ttl = o.flags.get('t')
  if (o.flags.has('c')) {
    if (seq || eph || ttl !== undefined) throw new ShellUsageError('-c cannot be combined with -s, -e or -t')
    return { mode: 'container' }
  }
  if (typeof ttl === 'string') {
    if (eph) throw new ShellUsageError('-t cannot be combined with -e')
    const ttlMs = parseInteger('ttl', ttl, 1)
    return { mode: seq ? 'persistentSequentialWithTtl' : 'persistentWithTtl', ttlMs }
  }
  if (eph) return { mode: seq ? 'ephemeralSequential' : 'ephemeral' }
  return { mode: seq ? 'persistentSequential' : 'persistent' }
}

function buildCreate(o: ParsedOptions): Command {
  const { mode, ttlMs } = createModeOf(o)
  const sequential = o.flags.has('s')
  const [path, data, aclText] = o.args as [string, string?, string?]
  const cmd: Command = { name: 'create', path: checkPath(path, sequential), data: data ?? '', mode }
  if (ttlMs !== undefined) cmd.ttlMs = ttlMs
  if (aclText !== undefined) cmd.acl = parseAclText(aclText)
  return cmd
}

function addWatchMode(o: ParsedOptions): 'persistent' | 'persistentRecursive' {
  const m = o.flags.get('m')
  if (m === undefined) return 'persistentRecursive'
  const norm = String(m).toLowerCase().replace(/_/g, '')
  if (norm === 'persistent') return 'persistent'
  if (norm === 'persistentrecursive') return 'persistentRecursive'
  throw new ShellUsageError(`mode must be persistent or persistent_recursive, not '${m}'`)
}

function watchKindOf(o: ParsedOptions): WatchKind {
  const picked = (['c', 'd', 'a'] as const).filter((f) => o.flags.has(f))
  if (picked.length > 1) throw new ShellUsageError('use only one of -c, -d, -a')
  return picked[0] === 'c' ? 'children' : picked[0] === 'd' ? 'data' : 'any'
}

type Builder = (o: ParsedOptions) => Command

const BUILDERS: Record<CommandName, Builder> = {
  ls: (o) => ({
    name: 'ls',
    path: checkPath(o.args[0]!),
    recursive: o.flags.has('R'),
    stat: o.flags.has('s'),
    watch: o.flags.has('w'),
  }),
  get: (o) => ({ name: 'get', path: checkPath(o.args[0]!), stat: o.flags.has('s'), watch: o.flags.has('w') }),
  set: (o) => ({
    name: 'set',
    path: checkPath(o.args[0]!),
    data: o.args[1]!,
    version: versionOf(o),
    stat: o.flags.has('s'),
  }),
  create: buildCreate,
  delete: (o) => ({ name: 'delete', path: checkPath(o.args[0]!), version: versionOf(o) }),
  deleteall: (o) => ({ name: 'deleteall', path: checkPath(o.args[0]!) }),
  stat: (o) => ({ name: 'stat', path: checkPath(o.args[0]!), watch: o.flags.has('w') }),
  getAcl: (o) => ({ name: 'getAcl', path: checkPath(o.args[0]!), stat: o.flags.has('s') }),
  setAcl: (o) => ({
    name: 'setAcl',
    path: checkPath(o.args[0]!),
    acl: parseAclText(o.args[1]!),
    version: versionOf(o),
    recursive: o.flags.has('R'),
    stat: o.flags.has('s'),
  }),
  addauth: (o) => ({ name: 'addauth', scheme: o.args[0]!, auth: o.args[1]! }),
  sync: (o) => ({ name: 'sync', path: checkPath(o.args[0]!) }),
  addWatch: (o) => ({ name: 'addWatch', path: checkPath(o.args[0]!), mode: addWatchMode(o) }),
  removewatches: (o) => ({
    name: 'removewatches',
    path: checkPath(o.args[0]!),
    kind: watchKindOf(o),
    local: o.flags.has('l'),
  }),
  getEphemerals: (o) => ({ name: 'getEphemerals', path: checkPath(o.args[0] ?? '/') }),
  getAllChildrenNumber: (o) => ({ name: 'getAllChildrenNumber', path: checkPath(o.args[0]!) }),
  whoami: () => ({ name: 'whoami' }),
  close: () => ({ name: 'close' }),
  connect: (o) => (o.args[0] === undefined ? { name: 'connect' } : { name: 'connect', server: o.args[0] }),
  history: () => ({ name: 'history' }),
  redo: (o) => ({ name: 'redo', index: parseInteger('cmdno', o.args[0]!, 0) }),
  help: (o) => (o.args[0] === undefined ? { name: 'help' } : { name: 'help', topic: o.args[0] }),
  quit: () => ({ name: 'quit' }),
}

/** A usage error that also names the command's usage line. */
export class CommandUsageError extends ShellUsageError {
  override name = 'CommandUsageError'
}

/** Parses a tokenized line (`tokens[0]` is the command). Throws ShellUsageError. */
export function parseCommand(tokens: string[]): Command {
  const [word, ...rest] = tokens
  if (word === undefined) throw new ShellUsageError('empty command')
  const name = lookupCommand(word)
  if (name === undefined) throw new ShellUsageError(`unknown command '${word}' (try help)`)
  const spec = COMMANDS[name]
  try {
    return BUILDERS[name](parseOptions(rest, spec))
  } catch (err) {
    if (err instanceof ShellUsageError) throw new CommandUsageError(`${err.message}\nusage: ${spec.usage}`)
    throw err
  }
}

/** The help text: every command's usage, or one command's usage and summary. */
export function helpText(topic?: string): string {
  if (topic !== undefined) {
    const name = lookupCommand(topic)
    if (name === undefined) throw new ShellUsageError(`unknown command '${topic}'`)
    return `${COMMANDS[name].usage}\n\t${COMMANDS[name].summary}\n`
  }
  const width = Math.max(...COMMAND_NAMES.map((n) => COMMANDS[n].usage.length))
  const lines = COMMAND_NAMES.map((n) => `\t${COMMANDS[n].usage.padEnd(width)}  ${COMMANDS[n].summary}`)
  return `conclave shell [ws://host:port,...] [-c "command"] [--timeout ms]\n${lines.join('\n')}\n`
}
