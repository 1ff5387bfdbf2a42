/**
 * The HTTP admin port (off unless `adminPort` is set), on clientPortAddress:
 *
 * - `GET /livez`: 200 while the process answers at all.
 * - `GET /readyz`: 200 while in a quorum and synced with it (or
 *   standalone), else 503: a follower whose leader is gone is not ready,
 *   read-only mode or not. For load balancers and Kubernetes readiness.
 * - `GET /health`: 200 while serving clients (read-only included), else 503.
 * - `GET /metrics`: Prometheus text format (server-metrics.ts).
 * - `GET /commands`: the command names; `GET /commands/<name>`: a command's
 *   answer as JSON (admin-commands.ts), by ZooKeeper's AdminServer name or
 *   its four-letter word; a command that changes something only by POST.
 * - `GET /stat`: `srvr` as a JSON object (kept from before /commands).
 * - `GET /console/`: the web console and its JSON API (console-server.ts's
 *   consoleRoutes), when the server was given it (adminConsole; off by default).
 *
 * Data never changes through this port; connection_stat_reset (POST) resets
 * statistics. Any other method is 405, any other path 404.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { ADMIN_COMMANDS, adminCommand, runAdminCommand } from './admin-commands.js'
import type { AdminView } from './admin-view.js'
import { describe } from './four-letter-words.js'

export interface AdminSource {
  readonly view: AdminView
  /** The Prometheus text and its content type. */
  metrics(): Promise<{ text: string; contentType: string }>
  /**
   * The web console, mounted at /console/: answers a GET for a path below it
   * (`/`, `/app.js`, `/api/…`) with the page's origin, false for another path.
   */
  console?: {
    handle(path: string, origin: string, res: ServerResponse): Promise<boolean>
    /** Whether a request with this Host header may be answered (DNS rebinding). */
    hostAllowed(host: string | undefined): boolean
  }
}

const MODE_KEY = 'Mode'

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(`${JSON.stringify(body)}\n`)
}

export class AdminServer {
  private readonly server: Server

  constructor(private readonly source: AdminSource) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        if (!res.headersSent) json(res, 500, { error: err.message })
        else res.destroy(err)
      })
    })
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://admin').pathname
    const command = /^\/commands\/([a-z_]+)$/.exec(path)
    if (command !== null) return this.command(req, res, command[1]!)
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end('method not allowed\n')
      return
    }
    const web = this.source.console
    if (web !== undefined && (path === '/console' || path.startsWith('/console/'))) {
      if (!web.hostAllowed(req.headers.host)) {
        res.writeHead(421, { 'content-type': 'text/plain' }).end('unexpected Host\n')
        return
      }
      // The page's relative URLs (app.js, api/…) need the trailing slash.
      if (path === '/console') {
        res.writeHead(301, { location: '/console/' }).end()
        return
      }
      if (await web.handle(path.slice('/console'.length), `http://${req.headers.host}`, res)) return
    }
    const view = this.source.view
    const mode = () => describe(view)[MODE_KEY]
    switch (path) {
      case '/livez':
        return json(res, 200, { status: 'ok' })
      case '/readyz': {
        const ready = view.ready()
        return json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', mode: mode() })
      }
      case '/health': {
        const ok = view.serving()
        return json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'not serving', mode: mode() })
      }
      case '/metrics': {
        const { text, contentType } = await this.source.metrics()
        res.writeHead(200, { 'content-type': contentType }).end(text)
        return
      }
      case '/stat':
        return json(res, 200, describe(view))
      case '/commands':
        return json(res, 200, {
          commands: ADMIN_COMMANDS.map((c) => ({
            name: c.name,
            aliases: c.aliases,
            method: c.changes ? 'POST' : 'GET',
          })),
        })
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    }
  }

  private command(req: IncomingMessage, res: ServerResponse, name: string): void {
    const c = adminCommand(name)
    if (c === undefined) return json(res, 404, { command: name, error: `Unknown command: ${name}` })
    const method = c.changes ? 'POST' : 'GET'
    if (req.method !== method)
      return json(res, 405, { command: c.name, error: `${c.name} takes ${method}` }, { allow: method })
    json(res, 200, runAdminCommand(c, this.source.view))
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        const a = this.server.address()
        resolve(typeof a === 'object' && a !== null ? a.port : port)
      })
    })
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((r) => this.server.close(() => r()))
  }
}
