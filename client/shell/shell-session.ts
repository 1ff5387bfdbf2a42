/**
 * One shell session: the current client (or none after `close`), its
 * server list, the command history and the persistent watches it added.
 * Turns a typed line into output and a status: 0 ok, 1 the command failed,
 * 2 the line was not understood; handles the session commands (connect,
 * close, history, redo, help, quit) and hands znode commands to
 * executeCommand.
 * Invariants: runLine never rejects (every failure becomes a message on the
 * error writer and a status); at most one client is open at a time (connect
 * closes the old one first); close() and shutdown() are bounded by
 * CLOSE_TIMEOUT_MS even if the server is gone.
 * Imports shared/ and the shell's modules; no streams or readline (those are
 * shell.ts's), and the SDK only through the ConnectFn it is given.
 */
import { ErrorCode, ZkError } from '../../shared/errors.js'
import {
  type ConnectFn,
  type ConnectOptions,
  parseServerList,
  type ServerList,
  type ShellClient,
  type ShellWatchEvent,
} from './shell-client.js'
import { type Command, helpText, parseCommand } from './shell-commands.js'
import { type ChildLister, completeLine } from './shell-complete.js'
import { executeCommand } from './shell-exec.js'
import { describeError, formatStateEvent, formatWatchEvent } from './shell-format.js'
import type { ShellHistory } from './shell-history.js'
import { ShellUsageError, tokenize } from './shell-tokenize.js'

export const CLOSE_TIMEOUT_MS = 3000

export interface LineResult {
  status: 0 | 1 | 2
  quit: boolean
}

export interface SessionOptions {
  servers: ServerList
  connect: ConnectFn
  connectOptions: ConnectOptions
  out: (text: string) => void
  err: (text: string) => void
  history: ShellHistory
  /** Print connection state changes (interactive mode). */
  announceStates: boolean
  timeZone?: string
}

const OK: LineResult = { status: 0, quit: false }

function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    p.then(
      () => resolve(),
      () => resolve(),
    ).finally(() => clearTimeout(timer))
  })
}

export class ShellSession {
  private client: ShellClient | null = null
  private servers: ServerList
  private readonly persistentWatches = new Map<string, Array<() => Promise<void>>>()
  private asyncOutputHook: (() => void) | undefined

  constructor(private readonly opts: SessionOptions) {
    this.servers = opts.servers
  }

  get connected(): boolean {
    return this.client !== null
  }

  /** zkCli's prompt: `[conclave: 127.0.0.1:2181(CONNECTED) 3] `. */
  prompt(): string {
    const state = this.client === null ? 'CLOSED' : stateWord(this.client.state)
    return `[conclave: ${this.servers.display}(${state}) ${this.opts.history.nextIndex}] `
  }

  /** Opens a session to the current server list; rejects with a message naming the servers if it cannot. */
  async open(): Promise<void> {
    let client: ShellClient
    try {
      client = await this.opts.connect(this.servers, this.opts.connectOptions)
    } catch (err) {
      throw new Error(connectFailure(this.servers, err, this.opts.connectOptions.connectTimeoutMs))
    }
    this.client = client
    client.on('state', (state) => {
      if (this.client !== client || !this.opts.announceStates || state === 'connecting') return
      this.asyncOut(formatStateEvent(state))
    })
  }

  /** Closes the current session, if any (bounded; never rejects). */
  async close(): Promise<void> {
    const client = this.client
    this.client = null
    this.persistentWatches.clear()
    if (client !== null) await bounded(client.close(), CLOSE_TIMEOUT_MS)
  }

  /** Lists a znode's children for completion; rejects when there is no session. */
  readonly listChildren: ChildLister = (path) =>
    this.client === null ? Promise.reject(new Error('not connected')) : this.client.getChildren(path)

  /** readline's completer. */
  complete(line: string): Promise<[string[], string]> {
    return completeLine(line, this.client === null ? null : this.listChildren)
  }

  /** Called after output that arrives between commands (a watch event), e.g. to redraw the prompt. */
  setAsyncOutputHook(hook: (() => void) | undefined): void {
    this.asyncOutputHook = hook
  }

  private asyncOut(text: string): void {
    this.opts.out(text)
    this.asyncOutputHook?.()
  }

  private readonly watcher = (event: ShellWatchEvent): void => {
    this.asyncOut(formatWatchEvent(event, this.client?.state ?? 'connected'))
  }

  /** Runs one typed line; `record` adds it to the history. */
  async runLine(line: string, record = false): Promise<LineResult> {
    const text = line.trim()
    if (text === '' || text.startsWith('#')) return OK
    if (record) this.opts.history.add(text)
    let cmd: Command
    try {
      cmd = parseCommand(tokenize(text))
    } catch (err) {
      this.opts.err(`${describeError(err)}\n`)
      return { status: 2, quit: false }
    }
    return this.runCommand(cmd)
  }

  /** Runs a parsed command. */
  async runCommand(cmd: Command): Promise<LineResult> {
    try {
      return await this.dispatch(cmd)
    } catch (err) {
      this.opts.err(`${describeError(err, 'path' in cmd ? cmd.path : undefined)}\n`)
      return { status: err instanceof ShellUsageError ? 2 : 1, quit: false }
    }
  }

  private async dispatch(cmd: Command): Promise<LineResult> {
    switch (cmd.name) {
      case 'quit':
        return { status: 0, quit: true }
      case 'help':
        this.opts.out(helpText(cmd.topic))
        return OK
      case 'history':
        this.opts.out(this.opts.history.format())
        return OK
      case 'redo':
        return this.redo(cmd.index)
      case 'close':
        await this.close()
        return OK
      case 'connect':
        return this.reconnect(cmd.server)
      default: {
        if (this.client === null) throw new Error('Not connected: use connect host:port')
        const ctx = {
          client: this.client,
          out: this.opts.out,
          watcher: this.watcher,
          persistentWatches: this.persistentWatches,
          ...(this.opts.timeZone === undefined ? {} : { timeZone: this.opts.timeZone }),
        }
        await executeCommand(ctx, cmd)
        return OK
      }
    }
  }

  private async redo(index: number): Promise<LineResult> {
    const line = this.opts.history.get(index)
    if (line === undefined) throw new ShellUsageError(`no command ${index} in history`)
    const cmd = parseCommand(tokenize(line))
    if (cmd.name === 'redo') throw new ShellUsageError('redo cannot repeat a redo')
    this.opts.history.add(line)
    return this.runCommand(cmd)
  }

  private async reconnect(server: string | undefined): Promise<LineResult> {
    const servers = server === undefined ? this.servers : parseServerList(server)
    await this.close()
    this.servers = servers
    await this.open()
    return OK
  }
}

/** Why no session could be opened, in words a user can act on. */
export function connectFailure(servers: ServerList, err: unknown, connectTimeoutMs: number): string {
  const why = ZkError.is(err, ErrorCode.CONNECTION_LOSS)
    ? `no session established within ${connectTimeoutMs} ms (is a server listening there?)`
    : describeError(err)
  return `Unable to connect to ${servers.display}: ${why}`
}

/** An SDK state as zkCli's prompt shows it: connected → CONNECTED, authFailed → AUTH_FAILED. */
export function stateWord(state: string): string {
  return state.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()
}
