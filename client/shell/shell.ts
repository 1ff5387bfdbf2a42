/**
 * `conclave shell`: Conclave's zkCli. Entry point runShell(argv, io), where
 * argv follows `shell`: `[servers] [-c "command"] [--timeout ms]
 * [--connect-timeout ms] [-server servers] [command words…]`. With a
 * command (-c, or words after the server list as zkCli takes them) it runs
 * that one command and returns 0 ok, 1 failed, 2 usage error; otherwise it
 * reads commands from `io.input` (readline, prompt, history, completion)
 * until `quit` or end of input and returns 0.
 * Invariants: returns an exit code and never throws for user or connection
 * errors; a command line's usage error is reported before connecting; the
 * client it opened is closed before it returns; parsing stays pure
 * (parseShellArgs) and I/O stays here and in shell-session.ts.
 * Loads the SDK lazily (shell-sdk.ts), only when it opens a real session.
 */
import { createInterface, type Interface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { type ConnectFn, DEFAULT_SERVER, parseServerList, type ServerList } from './shell-client.js'
import { type Command, lookupCommand, parseCommand, parseInteger } from './shell-commands.js'
import { describeError } from './shell-format.js'
import { defaultHistoryFile, HISTORY_LINES_MAX, ShellHistory } from './shell-history.js'
import { ShellSession } from './shell-session.js'
import { ShellUsageError, tokenize } from './shell-tokenize.js'

export const SESSION_TIMEOUT_MS_DEFAULT = 30_000
export const CONNECT_TIMEOUT_MS_DEFAULT = 5_000

export interface ShellIo {
  input?: Readable
  output?: Writable
  error?: Writable
  /** History file; null keeps none; default ~/.conclave_history. */
  historyFile?: string | null
  /** How to open a session (tests may pass a fake); default the SDK. */
  connect?: ConnectFn
  /** Time zone for Stat dates; default the local one. */
  timeZone?: string
}

export interface ShellArgs {
  servers: string
  /** The one command to run (tokens), or undefined for an interactive shell. */
  command?: string[]
  sessionTimeoutMs: number
  connectTimeoutMs: number
  help: boolean
}

const USAGE = `usage: conclave shell [ws://host:port,...[/chroot]] [-c "command"] [--timeout ms] [--connect-timeout ms]\n`

function takeValue(argv: string[], i: number, name: string): string {
  const v = argv[i + 1]
  if (v === undefined) throw new ShellUsageError(`option ${name} needs a value`)
  return v
}

/** Parses the shell's own arguments. Pure; throws ShellUsageError. */
export function parseShellArgs(argv: string[]): ShellArgs {
  const out: ShellArgs = {
    servers: DEFAULT_SERVER,
    sessionTimeoutMs: SESSION_TIMEOUT_MS_DEFAULT,
    connectTimeoutMs: CONNECT_TIMEOUT_MS_DEFAULT,
    help: false,
  }
  let serverGiven = false
  let commandText: string | undefined
  const words: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (words.length > 0) words.push(a)
    else if (a === '-h' || a === '--help') out.help = true
    else if (a === '-c' || a === '--command') commandText = takeValue(argv, i++, a)
    else if (a === '--timeout' || a === '-timeout')
      out.sessionTimeoutMs = parseInteger('timeout', takeValue(argv, i++, a), 1)
    else if (a === '--connect-timeout')
      out.connectTimeoutMs = parseInteger('connect timeout', takeValue(argv, i++, a), 1)
    else if (a === '-server' || a === '--server') {
      out.servers = takeValue(argv, i++, a)
      serverGiven = true
    } else if (a.startsWith('-') && a.length > 1) throw new ShellUsageError(`unknown option ${a}`)
    else if (!serverGiven && lookupCommand(a) === undefined) {
      out.servers = a
      serverGiven = true
    } else words.push(a)
  }
  if (commandText !== undefined) out.command = [...tokenize(commandText), ...words]
  else if (words.length > 0) out.command = words
  out.connectTimeoutMs = Math.min(out.connectTimeoutMs, out.sessionTimeoutMs)
  return out
}

function writerOf(stream: Writable): (text: string) => void {
  return (text) => {
    stream.write(text)
  }
}

/** Runs the shell; resolves to the process exit code. */
export async function runShell(argv: string[], io: ShellIo = {}): Promise<number> {
  const output = io.output ?? process.stdout
  const error = io.error ?? process.stderr
  const err = writerOf(error)
  let args: ShellArgs
  let servers: ServerList
  let oneCommand: Command | undefined
  try {
    args = parseShellArgs(argv)
    servers = parseServerList(args.servers)
    if (args.command !== undefined) oneCommand = parseCommand(args.command)
  } catch (e) {
    err(
      `${describeError(e)}\n${e instanceof ShellUsageError && !/usage:/.test(describeError(e)) ? USAGE : ''}`,
    )
    return 2
  }
  if (args.help) {
    output.write(USAGE)
    return 0
  }
  const interactive = oneCommand === undefined
  const history = new ShellHistory(interactive ? historyFileOf(io) : null)
  const session = new ShellSession({
    servers,
    connect: io.connect ?? (await sdkConnect()),
    connectOptions: { sessionTimeoutMs: args.sessionTimeoutMs, connectTimeoutMs: args.connectTimeoutMs },
    out: writerOf(output),
    err,
    history,
    announceStates: interactive,
    ...(io.timeZone === undefined ? {} : { timeZone: io.timeZone }),
  })
  if (oneCommand !== undefined && !needsSession(oneCommand))
    return (await session.runCommand(oneCommand)).status
  try {
    await session.open()
  } catch (e) {
    err(`${describeError(e)}\n`)
    return 1
  }
  try {
    if (oneCommand !== undefined) return (await session.runCommand(oneCommand)).status
    await repl(session, history, io.input ?? process.stdin, output)
    return 0
  } finally {
    await session.close()
  }
}

/** The real SDK, loaded only when a session is opened without a test double. */
async function sdkConnect(): Promise<ConnectFn> {
  return (await import('./shell-sdk.js')).connectWithSdk
}

function historyFileOf(io: ShellIo): string | null {
  return io.historyFile === undefined ? defaultHistoryFile() : io.historyFile
}

function needsSession(cmd: Command): boolean {
  return cmd.name !== 'help' && cmd.name !== 'quit'
}

function isTty(stream: Readable | Writable): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true
}

function makeReadline(
  session: ShellSession,
  history: ShellHistory,
  input: Readable,
  output: Writable,
): Interface {
  return createInterface({
    input,
    output,
    terminal: isTty(input) && isTty(output),
    historySize: HISTORY_LINES_MAX,
    // readline wants newest first.
    history: [...history.persisted()].reverse(),
    completer: (line: string, done: (err: Error | null, result: [string[], string]) => void) => {
      session.complete(line).then(
        (r) => done(null, r),
        () => done(null, [[], line]),
      )
    },
  })
}

/** The interactive loop: one command at a time, in order, until quit or end of input. */
async function repl(
  session: ShellSession,
  history: ShellHistory,
  input: Readable,
  output: Writable,
): Promise<void> {
  const rl = makeReadline(session, history, input, output)
  // Create the iterator before anything awaits, so no early line is lost.
  const lines = rl[Symbol.asyncIterator]()
  let busy = false
  const terminal = rl.terminal
  session.setAsyncOutputHook(() => {
    if (terminal && !busy) rl.prompt(true)
  })
  rl.on('SIGINT', () => rl.close())
  try {
    for (;;) {
      rl.setPrompt(session.prompt())
      rl.prompt()
      const next = await lines.next()
      if (next.done === true) break
      busy = true
      const r = await session.runLine(next.value, true)
      busy = false
      if (r.quit) break
    }
  } finally {
    session.setAsyncOutputHook(undefined)
    rl.close()
  }
  if (!terminal) output.write('\n')
}
