/**
 * The console server: serves the web console (the assets
 * scripts/build-browser.mjs writes to dist/browser/console, and the SDK's
 * browser build dist/browser/conclave.js) and answers, as JSON, what a
 * browser cannot ask the members itself (console/api.ts). consoleRoutes()
 * is mounted by `conclave console` (startConsoleServer: its own HTTP server,
 * at /) and by a server's admin port with adminConsole (at /console/):
 *
 *   GET /api/config     the connect string, the page's origin, the members
 *   GET /api/ensemble   each member's srvr and mntr: from its admin port's JSON
 *                       (/commands/srvr, /commands/mntr) when the console was
 *                       given one and it answers, else the four-letter words
 *   GET /api/sessions   each member's dump and connections (admin port's dump and
 *                       connections, else the words dump and cons, if whitelisted)
 *   GET /api/origin     whether each member accepts a WebSocket handshake that
 *                       carries this page's Origin (its allowedOrigins)
 *
 * The browser talks to the ensemble directly (the SDK over WebSocket); the
 * console server never relays client traffic. It talks only to the members
 * it was started with (no address comes from a request), answers GET only,
 * and, on a loopback address, only requests whose Host is that address (a
 * page on another site cannot read it through DNS rebinding: hostAllowed).
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { join } from 'node:path'
import type {
  EnsembleReport,
  MemberReport,
  MemberSessions,
  OriginReport,
  ReportSource,
  SessionsReport,
} from '../../console/api.js'
import { fourLetterWord } from '../cli/status-command.js'

export interface ConsoleServerOptions extends ConsoleRoutesOptions {
  host: string
  /** 0 picks a free port. */
  port: number
}

export interface ConsoleServer {
  port: number
  /** http://host:port/ */
  url: string
  /** The origin a browser sends from the printed URL. */
  origin: string
  members: Member[]
  close(): Promise<void>
}

export interface Member {
  /** host:port of the client port. */
  address: string
  host: string
  port: number
  admin: string | undefined
}

/** The members of a connect string (ws://, wss://, tcp:// or bare host:port; port 2181 by default). */
export function membersOf(servers: string, admin: readonly string[] = []): Member[] {
  return servers
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s, i) => {
      const withScheme = /^[a-z]+:\/\//i.test(s) ? s : `ws://${s}`
      const u = new URL(withScheme)
      const host = u.hostname.replace(/^\[|\]$/g, '')
      const port = u.port === '' ? 2181 : Number(u.port)
      const a = admin[i]?.trim()
      return {
        address: `${host.includes(':') ? `[${host}]` : host}:${port}`,
        host,
        port,
        admin: a === undefined || a === '' ? undefined : a.replace(/\/+$/, ''),
      }
    })
}

/** `Key: value` lines (srvr) or `key<TAB>value` lines (mntr) as an object; numbers as numbers. */
export function parseWordLines(text: string): Record<string, string | number> {
  const out: Record<string, string | number> = {}
  for (const line of text.split('\n')) {
    const m = /^([^:\t]+?)(?::\s|\t)(.*)$/.exec(line.trimEnd())
    if (m === null) continue
    const v = m[2]!.trim()
    out[m[1]!.trim()] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v
  }
  return out
}

/** The word `dump`'s text: sessions (with timeouts where it says), ephemerals by session. */
export function parseDump(text: string): Pick<MemberSessions, 'sessions' | 'ephemerals'> {
  const sessions: Record<string, number | undefined> = {}
  const ephemerals: Record<string, string[]> = {}
  let part: 'sessions' | 'ephemerals' | 'other' = 'sessions'
  let owner: string | undefined
  for (const line of text.split('\n')) {
    if (line.startsWith('ephemeral nodes dump:')) part = 'ephemerals'
    else if (line.startsWith('Connections dump:')) part = 'other'
    if (part === 'sessions') {
      const global = /^(0x[0-9a-f]+)\t(\d+)ms$/.exec(line)
      const bucket = /^\t(0x[0-9a-f]+)$/.exec(line)
      if (global !== null) sessions[global[1]!] = Number(global[2])
      else if (bucket !== null) sessions[bucket[1]!] = undefined
    } else if (part === 'ephemerals') {
      const head = /^(0x[0-9a-f]+):$/.exec(line)
      if (head !== null) {
        owner = head[1]!
        ephemerals[owner] = []
      } else if (owner !== undefined && line.startsWith('\t')) ephemerals[owner]!.push(line.slice(1))
    }
  }
  return { sessions, ephemerals }
}

/** The word `cons`'s lines: each connection's session and remote address. */
export function parseCons(text: string): { session: string; remote: string }[] {
  const out: { session: string; remote: string }[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*\/(\S+?)\[\d\]\(.*\bsid=(0x[0-9a-f]+)/.exec(line)
    if (m !== null) out.push({ remote: m[1]!, session: m[2]! })
  }
  return out
}

async function adminJson(base: string, command: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}/commands/${command}`, { signal: AbortSignal.timeout(timeoutMs) })
  if (!res.ok) throw new Error(`admin port ${base}: HTTP ${res.status} for ${command}`)
  const body = (await res.json()) as Record<string, unknown>
  if (typeof body.error === 'string' && body.error !== '') throw new Error(`${command}: ${body.error}`)
  return body
}

function refused(text: string): boolean {
  return /is not executed because it is not in the whitelist/.test(text)
}

async function memberReport(m: Member, timeoutMs: number): Promise<MemberReport> {
  const at = Date.now()
  let adminError: string | undefined
  if (m.admin !== undefined) {
    try {
      const [srvr, mntr] = await Promise.all([
        adminJson(m.admin, 'server_stats', timeoutMs),
        adminJson(m.admin, 'monitor', timeoutMs),
      ])
      const stats = (srvr.server_stats ?? {}) as Record<string, string | number>
      const metrics: Record<string, string | number> = {}
      for (const [k, v] of Object.entries(mntr))
        if (typeof v === 'number' || typeof v === 'string') metrics[k] = v
      return {
        address: m.address,
        source: 'admin',
        reachable: true,
        srvr: stats,
        mntr: metrics,
        at: Date.now(),
      }
    } catch (err) {
      adminError = (err as Error).message
    }
  }
  try {
    const [srvrText, mntrText] = await Promise.all([
      fourLetterWord(m.host, m.port, 'srvr', timeoutMs),
      fourLetterWord(m.host, m.port, 'mntr', timeoutMs).catch(() => ''),
    ])
    if (srvrText.trim() === '') throw new Error('no answer to srvr')
    return {
      address: m.address,
      source: '4lw',
      reachable: true,
      srvr: parseWordLines(srvrText),
      mntr: refused(mntrText) ? {} : parseWordLines(mntrText),
      at: Date.now(),
      ...(adminError !== undefined ? { error: `admin port: ${adminError}` } : {}),
    }
  } catch (err) {
    const why = (err as Error).message
    return {
      address: m.address,
      source: undefined,
      reachable: false,
      error: adminError !== undefined ? `${why}; admin port: ${adminError}` : why,
      srvr: {},
      mntr: {},
      at,
    }
  }
}

async function memberSessions(m: Member, timeoutMs: number): Promise<MemberSessions> {
  const empty = { sessions: {}, ephemerals: {}, connections: [] }
  const errors: string[] = []
  if (m.admin !== undefined) {
    try {
      const [dump, cons] = await Promise.all([
        adminJson(m.admin, 'dump', timeoutMs),
        adminJson(m.admin, 'connections', timeoutMs),
      ])
      const sessions: Record<string, number | undefined> = {}
      for (const [id, t] of Object.entries((dump.session_id_to_timeout ?? {}) as Record<string, number>))
        sessions[id] = t
      const connections = (
        (cons.connections ?? []) as { session_id?: string; remote_socket_address?: string }[]
      )
        .filter((c) => typeof c.session_id === 'string' && c.session_id !== '0x0')
        .map((c) => ({ session: c.session_id!, remote: c.remote_socket_address ?? '?' }))
      return {
        address: m.address,
        source: 'admin',
        sessions,
        ephemerals: (dump.session_id_to_ephemeral_paths ?? {}) as Record<string, string[]>,
        connections,
      }
    } catch (err) {
      errors.push(`admin port: ${(err as Error).message}`)
    }
  }
  try {
    const [dump, cons] = await Promise.all([
      fourLetterWord(m.host, m.port, 'dump', timeoutMs),
      fourLetterWord(m.host, m.port, 'cons', timeoutMs),
    ])
    if (refused(dump))
      throw new Error(
        'the word dump is not in its whitelist: give the console its admin port (--admin), or add dump and cons to 4lw.commands.whitelist',
      )
    return {
      address: m.address,
      source: '4lw' as ReportSource,
      ...parseDump(dump),
      connections: refused(cons) ? [] : parseCons(cons),
      ...(errors.length > 0 ? { error: errors.join('; ') } : {}),
    }
  } catch (err) {
    errors.push((err as Error).message)
    return { address: m.address, source: undefined, ...empty, error: errors.join('; ') }
  }
}

/**
 * Opens a WebSocket handshake to a member with `origin` and reads the status:
 * 101 allowed, 403 refused (its allowedOrigins), anything else unknown.
 */
export function probeOrigin(
  m: Pick<Member, 'host' | 'port'>,
  origin: string,
  timeoutMs = 3000,
): Promise<{ allowed: boolean | undefined; status?: number; error?: string }> {
  return new Promise((resolve) => {
    const s = new Socket()
    let head = ''
    const done = (r: { allowed: boolean | undefined; status?: number; error?: string }): void => {
      clearTimeout(timer)
      s.destroy()
      resolve(r)
    }
    const timer = setTimeout(
      () => done({ allowed: undefined, error: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    )
    s.on('error', (err) => done({ allowed: undefined, error: err.message }))
    s.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1')
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head)
      if (m === null) {
        if (head.length > 64 || head.includes('\r\n'))
          done({ allowed: undefined, error: 'not an HTTP answer' })
        return
      }
      const status = Number(m[1])
      done({ allowed: status === 101 ? true : status === 403 ? false : undefined, status })
    })
    s.on('close', () => done({ allowed: undefined, error: 'closed without an answer' }))
    s.connect(m.port, m.host, () => {
      const key = randomBytes(16).toString('base64')
      s.write(
        `GET / HTTP/1.1\r\nHost: ${m.host}:${m.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nOrigin: ${origin}\r\n\r\n`,
      )
    })
  })
}

export async function originReport(members: readonly Member[], origin: string): Promise<OriginReport> {
  const results = await Promise.all(members.map((m) => probeOrigin(m, origin)))
  return {
    origin,
    flag: `--allowed-origins ${origin}`,
    members: members.map((m, i) => ({ address: m.address, ...results[i]! })),
  }
}

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'console/index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'console/index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'console/app.js', type: 'text/javascript; charset=utf-8' },
  '/console.css': { file: 'console/console.css', type: 'text/css; charset=utf-8' },
  '/conclave.js': { file: 'conclave.js', type: 'text/javascript; charset=utf-8' },
  '/conclave.d.ts': { file: 'conclave.d.ts', type: 'text/plain; charset=utf-8' },
}

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1'])

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, ...SECURITY_HEADERS })
  res.end(body)
}

function json(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body))
}

/**
 * Whether a request may be answered: on a loopback address, only with a Host
 * of that address and port (a page elsewhere cannot read the answers through
 * DNS rebinding); elsewhere, any Host.
 */
export function hostAllowed(listenHost: string, port: number, hostHeader: string | undefined): boolean {
  if (!LOOPBACK.has(listenHost)) return true
  const h = listenHost.includes(':') ? `[${listenHost}]` : listenHost
  return new Set([`${h}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]).has(
    hostHeader ?? '',
  )
}

export interface ConsoleRoutesOptions {
  /** The connect string the page connects to by default. */
  servers: string
  /** The members the reports are about (host:port of their client ports); default: those of `servers`. */
  members?: string
  /** The members' admin ports, in the order of the members. */
  admin: string[]
  /** dist/browser: conclave.js and console/. */
  assetsDir: string
  timeoutMs?: number
}

export interface ConsoleRoutes {
  members: Member[]
  /**
   * Answers a GET for `path` (relative to where the console is mounted: `/`,
   * `/app.js`, `/api/ensemble`, …) with the page's `origin`; false when the
   * path is not the console's.
   */
  handle(path: string, origin: string, res: ServerResponse): Promise<boolean>
}

/** The console's files and JSON API, for `conclave console` and the admin port. */
export function consoleRoutes(opts: ConsoleRoutesOptions): ConsoleRoutes {
  const members = membersOf(opts.members ?? opts.servers, opts.admin)
  const timeoutMs = opts.timeoutMs ?? 2000
  return {
    members,
    async handle(path, origin, res) {
      switch (path) {
        case '/api/config':
          json(res, 200, { servers: opts.servers, origin, members: members.map((m) => m.address) })
          return true
        case '/api/ensemble': {
          const report: EnsembleReport = {
            members: await Promise.all(members.map((m) => memberReport(m, timeoutMs))),
            at: Date.now(),
          }
          json(res, 200, report)
          return true
        }
        case '/api/sessions': {
          const report: SessionsReport = {
            members: await Promise.all(members.map((m) => memberSessions(m, timeoutMs))),
            at: Date.now(),
          }
          json(res, 200, report)
          return true
        }
        case '/api/origin':
          json(res, 200, await originReport(members, origin))
          return true
      }
      const asset = ASSETS[path]
      if (asset === undefined) return false
      try {
        send(res, 200, asset.type, await readFile(join(opts.assetsDir, asset.file)))
      } catch {
        send(res, 500, 'text/plain; charset=utf-8', `missing ${asset.file}: run npm run build\n`)
      }
      return true
    },
  }
}

/** Serves the console at the root of its own HTTP server (`conclave console`). */
export async function startConsoleServer(opts: ConsoleServerOptions): Promise<ConsoleServer> {
  const routes = consoleRoutes(opts)
  let port = opts.port
  const urlHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const hostHeader = req.headers.host ?? ''
    if (!hostAllowed(opts.host, port, hostHeader))
      return send(res, 421, 'text/plain; charset=utf-8', `unexpected Host ${JSON.stringify(hostHeader)}\n`)
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'text/plain; charset=utf-8', 'GET only\n')
    const url = new URL(req.url ?? '/', 'http://console')
    if (!(await routes.handle(url.pathname, `http://${hostHeader}`, res)))
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n')
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: (err as Error).message })
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const a = server.address()
  port = typeof a === 'object' && a !== null ? a.port : opts.port
  return {
    port,
    url: `http://${urlHost}:${port}/`,
    origin: `http://${urlHost}:${port}`,
    members: routes.members,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
