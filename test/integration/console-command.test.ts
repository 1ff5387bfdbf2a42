/**
 * `conclave console` as a process, without a browser: its help and usage
 * errors; against a server that does not allow its origin it prints the
 * flag to add, and /api/origin says 403; against one that does (with an
 * admin port), the ensemble and sessions come from the admin port's JSON,
 * and without one from the four-letter words (dump refused by the default
 * whitelist, and said so); the assets are served with their types and a
 * CSP; a foreign Host (DNS rebinding), another method or path is refused;
 * SIGTERM stops it with exit code 0.
 */
import { spawnSync } from 'node:child_process'
import { request } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import type { EnsembleReport, OriginReport, SessionsReport } from '../../console/api.js'
import { type ConsoleProcess, closeAll, startConsole } from '../helpers/browser.js'
import { type ConclaveProcess, startConclave } from '../helpers/conclave.js'
import { freePort } from '../helpers/wait.js'

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'conclave.js')

function get(
  url: string,
  opts: { method?: string; host?: string } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: opts.method ?? 'GET',
        headers: opts.host === undefined ? {} : { host: opts.host },
      },
      (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('conclave console (the command)', () => {
  let open: ConclaveProcess
  let closed: ConclaveProcess
  let adminPort: number
  let consolePort: number
  let console_: ConsoleProcess
  let zk: Client

  beforeAll(async () => {
    consolePort = await freePort()
    adminPort = await freePort()
    const origin = `http://127.0.0.1:${consolePort}`
    open = await startConclave({
      extraArgs: ['--allowed-origins', origin, '--admin-port', String(adminPort)],
    })
    closed = await startConclave()
    console_ = await startConsole([
      '--port',
      String(consolePort),
      '--servers',
      `${open.connectString},${closed.connectString}`,
      '--admin',
      `http://127.0.0.1:${adminPort}`,
    ])
    zk = await Client.connect(open.connectString)
    await zk.create('/e', 'x', { mode: 'ephemeral' })
  })

  afterAll(async () => {
    await zk?.close().catch(() => {})
    await closeAll()
    for (const s of [open, closed]) {
      await s?.stop()
      s?.remove()
    }
  })

  it('has --help, and usage errors that name the flag', () => {
    const help = spawnSync(process.execPath, [BIN, 'console', '--help'], { encoding: 'utf8' })
    expect(help.status).toBe(0)
    for (const flag of ['--port', '--host', '--servers', '--admin']) expect(help.stdout).toContain(flag)
    const bad = spawnSync(process.execPath, [BIN, 'console', '--port', 'abc'], { encoding: 'utf8' })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain('--port')
    const badAdmin = spawnSync(process.execPath, [BIN, 'console', '--admin', 'ftp://x'], { encoding: 'utf8' })
    expect(badAdmin.status).toBe(2)
    expect(badAdmin.stderr).toContain('--admin')
  })

  it('prints the flag a server that refuses its origin needs, and /api/origin says which', async () => {
    const origin = `http://127.0.0.1:${consolePort}`
    expect(console_.url).toBe(`${origin}/`)
    expect(console_.output()).toContain(
      `127.0.0.1:${closed.port} refuses this console's origin ${origin}: start it with --allowed-origins ${origin}`,
    )
    expect(console_.output()).not.toContain(`127.0.0.1:${open.port} refuses`)
    const r = JSON.parse((await get(`${console_.url}api/origin`)).body) as OriginReport
    expect(r.flag).toBe(`--allowed-origins ${origin}`)
    expect(r.members).toEqual([
      { address: `127.0.0.1:${open.port}`, allowed: true, status: 101 },
      { address: `127.0.0.1:${closed.port}`, allowed: false, status: 403 },
    ])
  })

  it('reports the members from the admin port, else from the four-letter words', async () => {
    const r = JSON.parse((await get(`${console_.url}api/ensemble`)).body) as EnsembleReport
    expect(r.members.map((m) => [m.address, m.source, m.reachable, m.srvr.Mode])).toEqual([
      [`127.0.0.1:${open.port}`, 'admin', true, 'standalone'],
      [`127.0.0.1:${closed.port}`, '4lw', true, 'standalone'],
    ])
    for (const m of r.members) expect(typeof m.mntr.conclave_packets_received).toBe('number')
    const s = JSON.parse((await get(`${console_.url}api/sessions`)).body) as SessionsReport
    const [viaAdmin, viaWords] = s.members
    expect(viaAdmin?.source).toBe('admin')
    expect(viaAdmin?.ephemerals[zk.sessionId]).toEqual(['/e'])
    expect(Object.keys(viaAdmin?.sessions ?? {})).toContain(zk.sessionId)
    expect(viaAdmin?.connections.map((c) => c.session)).toContain(zk.sessionId)
    expect(viaWords?.source).toBeUndefined()
    expect(viaWords?.error).toMatch(/dump is not in its whitelist/)
  })

  it('serves the assets with a CSP, and refuses other hosts, methods and paths', async () => {
    const page = await get(console_.url)
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/)
    expect(page.body).toContain('<script type="module" src="app.js">')
    for (const [path, type] of [
      ['app.js', 'text/javascript'],
      ['console.css', 'text/css'],
      ['conclave.js', 'text/javascript'],
    ])
      expect((await get(`${console_.url}${path}`)).headers['content-type']).toMatch(new RegExp(`^${type}`))
    expect((await get(`${console_.url}api/config`, { host: 'attacker.example' })).status).toBe(421)
    expect((await get(`${console_.url}api/config`, { method: 'POST' })).status).toBe(405)
    expect((await get(`${console_.url}nope`)).status).toBe(404)
    const config = JSON.parse((await get(`${console_.url}api/config`)).body) as {
      servers: string
      origin: string
    }
    expect(config.origin).toBe(`http://127.0.0.1:${consolePort}`)
    expect(config.servers).toBe(`${open.connectString},${closed.connectString}`)
  })

  it('stops on SIGTERM with exit code 0', async () => {
    expect(await console_.stop()).toBe(0)
  })
})
