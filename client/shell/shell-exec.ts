/**
 * Runs one parsed znode command against a ShellClient and prints its
 * result through `ctx.out`, in zkCli's formats. Session-level commands
 * (connect, close, history, redo, help, quit) are the session's, not here.
 * Invariants: a failure rejects (ZkError from the SDK, Error for a missing
 * SDK extra) and prints nothing, so the caller owns error reporting and
 * exit codes; tree walks (ls -R, deleteall, setAcl -R) are iterative with an
 * explicit stack, bounded by the tree's size, and skip nodes deleted
 * concurrently (NO_NODE) below the root.
 * Imports shared/ and the shell's modules; never the SDK itself (it works on
 * the ShellClient interface) nor node:*.
 */
import { ErrorCode, ZkError } from '../../shared/errors.js'
import { joinPath } from '../../shared/paths.js'
import { formatAclList } from './shell-acl.js'
import type { ShellClient, ShellWatcher } from './shell-client.js'
import type { Command } from './shell-commands.js'
import { formatData, formatList, formatStat } from './shell-format.js'
import { ShellUsageError } from './shell-tokenize.js'

export interface ExecContext {
  client: ShellClient
  out: (text: string) => void
  /** Prints a watch event (one-shot or persistent). */
  watcher: ShellWatcher
  /** Stop functions of the persistent watches this shell added, by path. */
  persistentWatches: Map<string, Array<() => Promise<void>>>
  /** Time zone for Stat dates; undefined = local. */
  timeZone?: string
}

type ZnodeCommand = Exclude<Command, { name: 'connect' | 'close' | 'history' | 'redo' | 'help' | 'quit' }>

/** Every path of the subtree at `root`, parents before children, siblings in order. */
export async function listSubtree(client: ShellClient, root: string): Promise<string[]> {
  const out: string[] = []
  const stack = [root]
  while (stack.length > 0) {
    const path = stack.pop()!
    let children: string[]
    try {
      children = await client.getChildren(path)
    } catch (err) {
      if (path !== root && ZkError.is(err, ErrorCode.NO_NODE)) continue
      throw err
    }
    out.push(path)
    for (let i = children.length - 1; i >= 0; i--) stack.push(joinPath(path, children[i]!))
  }
  return out
}

async function runLs(ctx: ExecContext, cmd: Extract<Command, { name: 'ls' }>): Promise<void> {
  const watch = cmd.watch ? { watch: ctx.watcher } : {}
  if (cmd.recursive) {
    const paths = await listSubtree(ctx.client, cmd.path)
    if (cmd.watch) await ctx.client.getChildren(cmd.path, watch)
    ctx.out(paths.map((p) => `${p}\n`).join(''))
    return
  }
  if (cmd.stat) {
    const { children, stat } = await ctx.client.getChildrenWithStat(cmd.path, watch)
    ctx.out(`${formatList(children)}\n${formatStat(stat, ctx.timeZone)}`)
    return
  }
  ctx.out(`${formatList(await ctx.client.getChildren(cmd.path, watch))}\n`)
}

async function runDeleteAll(ctx: ExecContext, path: string): Promise<void> {
  if (path === '/') throw new ShellUsageError('refusing to delete the root znode /')
  const paths = await listSubtree(ctx.client, path)
  // Pre-order reversed: every node comes after all of its descendants.
  for (let i = paths.length - 1; i >= 0; i--) {
    try {
      await ctx.client.delete(paths[i]!)
    } catch (err) {
      if (!ZkError.is(err, ErrorCode.NO_NODE)) throw err
    }
  }
}

async function runSetAcl(ctx: ExecContext, cmd: Extract<Command, { name: 'setAcl' }>): Promise<void> {
  const stat = await ctx.client.setACL(cmd.path, cmd.acl, cmd.version)
  if (cmd.recursive) {
    const paths = await listSubtree(ctx.client, cmd.path)
    for (const p of paths.slice(1)) {
      try {
        await ctx.client.setACL(p, cmd.acl, -1)
      } catch (err) {
        if (!ZkError.is(err, ErrorCode.NO_NODE)) throw err
      }
    }
  }
  if (cmd.stat) ctx.out(formatStat(stat, ctx.timeZone))
}

async function runRemoveWatches(
  ctx: ExecContext,
  cmd: Extract<Command, { name: 'removewatches' }>,
): Promise<void> {
  // The SDK removes watches by path only (ZooKeeper's WatcherType.Any, on the server too).
  if (cmd.kind !== 'any' || cmd.local) unsupported('removewatches -c, -d or -l')
  let removed = false
  const stops = ctx.persistentWatches.get(cmd.path)
  if (stops !== undefined) {
    ctx.persistentWatches.delete(cmd.path)
    for (const stop of stops) await stop()
    removed = true
  }
  if (ctx.client.removeAllWatches !== undefined) {
    try {
      await ctx.client.removeAllWatches(cmd.path)
      removed = true
    } catch (err) {
      if (!removed || !ZkError.is(err, ErrorCode.NO_WATCHER)) throw err
    }
  }
  if (!removed) throw new ZkError(ErrorCode.NO_WATCHER, cmd.path)
}

async function runAddWatch(ctx: ExecContext, cmd: Extract<Command, { name: 'addWatch' }>): Promise<void> {
  const stop = await ctx.client.addWatch(cmd.path, cmd.mode, ctx.watcher)
  const list = ctx.persistentWatches.get(cmd.path) ?? []
  list.push(stop)
  ctx.persistentWatches.set(cmd.path, list)
}

function unsupported(what: string): never {
  throw new Error(`${what} is not supported by this client`)
}

/** zkCli's whoami output for whatever shape the SDK returns (a list of {scheme, id} or similar). */
export function formatWhoAmI(info: unknown): string {
  const list = Array.isArray(info) ? info : [info]
  const lines = list.map((entry: unknown) => {
    if (typeof entry === 'object' && entry !== null) {
      const e = entry as Record<string, unknown>
      const scheme = e['scheme'] ?? e['authScheme']
      const id = e['id'] ?? e['user']
      if (scheme !== undefined) return `${String(scheme)}: ${String(id)}`
    }
    return String(entry)
  })
  return `Auth scheme: User\n${lines.map((l) => `${l}\n`).join('')}`
}

async function runWhoAmI(ctx: ExecContext): Promise<void> {
  if (ctx.client.whoAmI === undefined) unsupported('whoami')
  ctx.out(formatWhoAmI(await ctx.client.whoAmI()))
}

/** Runs a znode command; session commands are rejected (the session handles them). */
export async function executeCommand(ctx: ExecContext, cmd: ZnodeCommand): Promise<void> {
  const c = ctx.client
  const watch = 'watch' in cmd && cmd.watch ? { watch: ctx.watcher } : {}
  switch (cmd.name) {
    case 'ls':
      return runLs(ctx, cmd)
    case 'get': {
      const { data, stat } = await c.getData(cmd.path, watch)
      return ctx.out(`${formatData(data)}\n${cmd.stat ? formatStat(stat, ctx.timeZone) : ''}`)
    }
    case 'set': {
      const stat = await c.setData(cmd.path, cmd.data, cmd.version)
      return cmd.stat ? ctx.out(formatStat(stat, ctx.timeZone)) : undefined
    }
    case 'create': {
      const opts = {
        mode: cmd.mode,
        ...(cmd.acl && { acl: cmd.acl }),
        ...(cmd.ttlMs && { ttlMs: cmd.ttlMs }),
      }
      return ctx.out(`Created ${await c.create(cmd.path, cmd.data, opts)}\n`)
    }
    case 'delete':
      return c.delete(cmd.path, cmd.version)
    case 'deleteall':
      return runDeleteAll(ctx, cmd.path)
    case 'stat': {
      const stat = await c.exists(cmd.path, watch)
      if (stat === null) throw new ZkError(ErrorCode.NO_NODE, cmd.path)
      return ctx.out(formatStat(stat, ctx.timeZone))
    }
    case 'getAcl': {
      const { acl, stat } = await c.getACL(cmd.path)
      return ctx.out(formatAclList(acl) + (cmd.stat ? formatStat(stat, ctx.timeZone) : ''))
    }
    case 'setAcl':
      return runSetAcl(ctx, cmd)
    case 'addauth':
      return c.addAuth(cmd.scheme, cmd.auth)
    case 'sync':
      await c.sync(cmd.path)
      return ctx.out('Sync is OK\n')
    case 'addWatch':
      return runAddWatch(ctx, cmd)
    case 'removewatches':
      return runRemoveWatches(ctx, cmd)
    case 'getEphemerals':
      if (c.getEphemerals === undefined) unsupported('getEphemerals')
      return ctx.out(`${formatList(await c.getEphemerals(cmd.path))}\n`)
    case 'getAllChildrenNumber':
      if (c.getAllChildrenNumber === undefined) unsupported('getAllChildrenNumber')
      return ctx.out(`${await c.getAllChildrenNumber(cmd.path)}\n`)
    case 'whoami':
      return runWhoAmI(ctx)
  }
}
