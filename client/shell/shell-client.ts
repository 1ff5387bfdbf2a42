/**
 * What the shell needs from the SDK (`ShellClient`, a structural subset of
 * client/index.ts's Client, so tests may pass a fake) and the server list
 * the user types: `ws://h:p`, `wss://h:p`, `tcp://h:p` or bare `h:p` (→
 * ws://), comma-separated, with an optional chroot after the last one
 * (`ws://a:1,ws://b:2/app`), as zkCli accepts `host:port/chroot`.
 * Invariants: parseServerList is pure and rejects anything it cannot turn
 * into a connect string (ShellUsageError); the SDK's optional extras are
 * optional here, so the shell says "not supported" instead of crashing when
 * a client lacks one.
 * Imports only shared/ and the tokenizer (its error class); never the SDK
 * (shell-sdk.ts does), so these types load without it.
 */
import type { Acl } from '../../shared/acl.js'
import type { CreateMode } from '../../shared/opcodes.js'
import { pathError } from '../../shared/paths.js'
import type { Stat } from '../../shared/stat.js'
import { ShellUsageError } from './shell-tokenize.js'

export interface ShellWatchEvent {
  type: string
  path: string
}

export type ShellWatcher = (event: ShellWatchEvent) => void

export interface ShellClient {
  readonly state: string
  readonly sessionId: string
  on(event: 'state', listener: (state: string) => void): unknown
  close(): Promise<void>
  create(
    path: string,
    data?: Uint8Array | string,
    opts?: { mode?: CreateMode; acl?: Acl[]; ttlMs?: number },
  ): Promise<string>
  getData(path: string, opts?: { watch?: ShellWatcher }): Promise<{ data: Uint8Array; stat: Stat }>
  setData(path: string, data: Uint8Array | string, version?: number): Promise<Stat>
  delete(path: string, version?: number): Promise<void>
  exists(path: string, opts?: { watch?: ShellWatcher }): Promise<Stat | null>
  getChildren(path: string, opts?: { watch?: ShellWatcher }): Promise<string[]>
  getChildrenWithStat(
    path: string,
    opts?: { watch?: ShellWatcher },
  ): Promise<{ children: string[]; stat: Stat }>
  sync(path: string): Promise<unknown>
  addWatch(
    path: string,
    mode: 'persistent' | 'persistentRecursive',
    listener: ShellWatcher,
  ): Promise<() => Promise<void>>
  getACL(path: string): Promise<{ acl: Acl[]; stat: Stat }>
  setACL(path: string, acl: Acl[], version?: number): Promise<Stat>
  addAuth(scheme: string, auth: string): Promise<void>
  getEphemerals?(path?: string): Promise<string[]>
  getAllChildrenNumber?(path: string): Promise<number>
  whoAmI?(): Promise<unknown>
  /** Removes every watch of this client on a path (NO_WATCHER if none). */
  removeAllWatches?(path: string): Promise<void>
}

export interface ServerList {
  /** What Client.connect takes: `ws://h:p,tcp://h:p`. */
  connectString: string
  /** What the prompt shows: `h:p,h:p` (and the chroot). */
  display: string
  chroot?: string
}

export const DEFAULT_SERVER = 'ws://127.0.0.1:2181'
const DEFAULT_PORT = 2181
const ADDRESS = /^(?:(ws|wss|tcp):\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/

function parseAddress(text: string): { url: string; hostPort: string } {
  const m = ADDRESS.exec(text)
  if (m === null) throw new ShellUsageError(`bad server address '${text}': expected ws://host:port`)
  const port = m[3] === undefined ? DEFAULT_PORT : Number(m[3])
  if (port < 1 || port > 65535) throw new ShellUsageError(`bad port in '${text}'`)
  const hostPort = `${m[2]}:${port}`
  return { url: `${m[1] ?? 'ws'}://${hostPort}`, hostPort }
}

/** Parses `ws://a:1,b:2/chroot` into a connect string, a display form and a chroot. */
export function parseServerList(text: string): ServerList {
  let list = text.trim()
  let chroot: string | undefined
  // The chroot starts at the first '/' after the last address's scheme.
  const lastStart = list.lastIndexOf(',') + 1
  const schemeEnd = list.indexOf('://', lastStart)
  const slash = list.indexOf('/', schemeEnd < 0 ? lastStart : schemeEnd + 3)
  if (slash >= 0) {
    chroot = list.slice(slash)
    list = list.slice(0, slash)
    if (chroot === '/') chroot = undefined
    else if (pathError(chroot) !== null)
      throw new ShellUsageError(`bad chroot '${chroot}': ${pathError(chroot)}`)
  }
  const parts = list.split(',').map((s) => s.trim())
  if (parts.length === 0 || parts.some((p) => p === ''))
    throw new ShellUsageError(`bad server list '${text}'`)
  const addrs = parts.map(parseAddress)
  const display = addrs.map((a) => a.hostPort).join(',') + (chroot ?? '')
  const out: ServerList = { connectString: addrs.map((a) => a.url).join(','), display }
  if (chroot !== undefined) out.chroot = chroot
  return out
}

export interface ConnectOptions {
  sessionTimeoutMs: number
  connectTimeoutMs: number
}

export type ConnectFn = (servers: ServerList, opts: ConnectOptions) => Promise<ShellClient>
