/**
 * `conclave console [--port 8080] [--host 127.0.0.1] [--servers ws://127.0.0.1:2181,…]
 * [--admin http://127.0.0.1:8081,…]`: serves the web console (console-server.ts)
 * and prints its URL. The page connects to the servers itself, with the SDK's
 * browser build, so each server must allow the page's origin: the command asks
 * each one (a WebSocket handshake carrying that Origin) and prints the flag to
 * add where one refuses. SIGINT or SIGTERM stops it (exit 0).
 *
 * In a checkout of the repository the assets are rebuilt first when a source
 * is newer (scripts/build-browser.mjs, esbuild); an installed package ships
 * them built (dist/browser).
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { originReport, startConsoleServer } from '../console/console-server.js'
import { type CommandSpec, formatHelp, parseCommandArgs, UsageError } from './args.js'

export const CONSOLE_COMMAND: CommandSpec = {
  name: 'console',
  usage: '[options]',
  summary:
    'Serves the web console: browse and edit the tree, live events, locks, elections, groups and\n' +
    'queues, the ensemble and its sessions. The page connects to the servers from the browser, so\n' +
    "each server must allow the page's origin (--allowed-origins; the command checks and says).",
  options: {
    port: { value: 'N', default: '8080', help: 'the HTTP port to serve the console on (0: a free port)' },
    host: { value: 'ADDR', default: '127.0.0.1', help: 'the address to listen on' },
    servers: {
      value: 'LIST',
      default: 'ws://127.0.0.1:2181',
      help: 'the servers the console connects to (ws://host:port, comma-separated)',
    },
    admin: {
      value: 'LIST',
      default: 'none',
      help: "the servers' admin ports (http://host:port, in the order of --servers) for the ensemble and sessions views",
    },
  },
  footer:
    'Without --admin the ensemble view asks the servers their four-letter words (srvr, mntr), and\n' +
    'the sessions view needs dump and cons in their 4lw.commands.whitelist.',
}

/** The package root: dist/server/cli/ → three levels up. */
function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
}

/** In a checkout (scripts/ present), rebuilds stale assets; an installed package has them built. */
async function ensureAssets(root: string): Promise<string> {
  const script = join(root, 'scripts', 'build-browser.mjs')
  if (existsSync(script) && existsSync(join(root, 'console'))) {
    const build = (await import(pathToFileURL(script).href)) as {
      isStale(): boolean
      buildBrowser(): Promise<unknown>
    }
    if (build.isStale()) {
      process.stderr.write('console: building the browser assets (scripts/build-browser.mjs)\n')
      await build.buildBrowser()
    }
  }
  const dir = join(root, 'dist', 'browser')
  if (!existsSync(join(dir, 'console', 'app.js')))
    throw new Error(`the console's assets are missing (${dir}): run npm run build`)
  return dir
}

export async function runConsole(argv: string[]): Promise<number> {
  const { flags, help } = parseCommandArgs(argv, CONSOLE_COMMAND)
  if (help) {
    process.stdout.write(formatHelp(CONSOLE_COMMAND))
    return 0
  }
  const portText = String(flags.get('port') ?? '8080')
  if (!/^\d+$/.test(portText) || Number(portText) > 65535)
    throw new UsageError(`--port (got ${JSON.stringify(portText)}): expected a port number, 0-65535`)
  const host = String(flags.get('host') ?? '127.0.0.1')
  const servers = String(flags.get('servers') ?? 'ws://127.0.0.1:2181')
  const adminText = flags.get('admin')
  const admin = typeof adminText === 'string' ? adminText.split(',') : []
  for (const a of admin)
    if (a.trim() !== '' && !/^https?:\/\/[^/]+\/?$/.test(a.trim()))
      throw new UsageError(`--admin (got ${JSON.stringify(a)}): expected http://host:port`)
  for (const s of servers.split(','))
    if (s.trim() !== '' && !/^(wss?:\/\/)?[^/]+(:\d+)?\/?$/.test(s.trim()))
      throw new UsageError(`--servers (got ${JSON.stringify(s)}): expected ws://host:port or wss://host:port`)

  let assetsDir: string
  try {
    assetsDir = await ensureAssets(packageRoot())
  } catch (err) {
    process.stderr.write(`conclave console: ${(err as Error).message}\n`)
    return 1
  }
  let server: Awaited<ReturnType<typeof startConsoleServer>>
  try {
    server = await startConsoleServer({ host, port: Number(portText), servers, admin, assetsDir })
  } catch (err) {
    process.stderr.write(
      `conclave console: cannot listen on ${host}:${portText}: ${(err as Error).message}\n`,
    )
    return 1
  }
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      void server.close().then(resolve)
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  process.stdout.write(`console: ${server.url} (servers ${servers})\n`)
  const origins = await originReport(server.members, server.origin)
  for (const m of origins.members) {
    if (m.allowed === false)
      process.stdout.write(
        `console: ${m.address} refuses this console's origin ${origins.origin}: start it with ${origins.flag} ` +
          '(or add the origin to its allowedOrigins)\n',
      )
    else if (m.allowed === undefined)
      process.stdout.write(`console: ${m.address} did not answer (${m.error ?? `HTTP ${m.status}`})\n`)
  }
  await stopped
  return 0
}
