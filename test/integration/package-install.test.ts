/**
 * SLOW (25 to 60 s; every step bounded, 240 s in all): the two npm
 * packages, packed and installed as a user would (docs/packaging.md).
 *
 * `npm pack` (whose prepack builds the code) makes `conclave` from the
 * repository root and `conclave-client` from packages/client into a temporary
 * directory; each tarball goes into a fresh temporary project with
 * `npm install <tarball> --prefer-offline`. Then:
 *  - the client-only project holds conclave-client and nothing else (no
 *    better-sqlite3, no dependency at all), and imports the SDK, the recipes
 *    and shared with a module hook that refuses every node:* import (the same
 *    hook does refuse `conclave/server`, so the check can fail);
 *  - the server project's `npx conclave server --help` works and every export
 *    of `conclave` imports;
 *  - `npx conclave console` serves the web console from the installed package,
 *    its page and the SDK bundle shipped built;
 *  - `npx conclave server`, started from the installed package, serves a
 *    script of the client-only project that connects, creates, watches and
 *    takes a lock with the installed SDK and recipes; SIGTERM stops it (0).
 *
 * The native module: compiling better-sqlite3 from source takes minutes on
 * this machine (no prebuilt binary can be downloaded here), so the server
 * project is installed with --ignore-scripts, with better-sqlite3 pinned to
 * the repository's version, and gets the binary `npm ci` compiled for the
 * repository. CONCLAVE_PACKAGE_TEST_NATIVE=1 installs it as a user would,
 * compiling (allow 10 minutes).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, tempDir, waitFor, waitForPort } from '../helpers/wait.js'

const ROOT = join(import.meta.dirname, '..', '..')
const NATIVE = process.env.CONCLAVE_PACKAGE_TEST_NATIVE === '1'
const STEP_MS = NATIVE ? 600_000 : 120_000

interface Ran {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** The environment without npm's lifecycle variables (vitest may run under `npm test`). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v
  return { ...env, ...extra }
}

/** Runs a command in its own process group; past timeoutMs the whole group is killed. */
function run(cmd: string, args: string[], cwd: string, timeoutMs = STEP_MS): Promise<Ran> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: cleanEnv(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - started })
    })
  })
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal)
  } catch {
    // The group is gone already.
  }
}

/** Whether any process of the group is left. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

async function ok(cmd: string, args: string[], cwd: string, timeoutMs?: number): Promise<Ran> {
  const r = await run(cmd, args, cwd, timeoutMs)
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.code}:\n${r.stdout}\n${r.stderr}`)
  return r
}

interface Packed {
  file: string
  bytes: number
  unpackedBytes: number
  entries: number
  paths: string[]
  ms: number
}

async function pack(dir: string, dest: string): Promise<Packed> {
  const r = await ok('npm', ['pack', '--json', '--pack-destination', dest], dir)
  const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as {
    filename: string
    size: number
    unpackedSize: number
    entryCount: number
    files: { path: string }[]
  }[]
  const p = json[0]!
  return {
    file: join(dest, p.filename),
    bytes: p.size,
    unpackedBytes: p.unpackedSize,
    entries: p.entryCount,
    paths: p.files.map((f) => f.path),
    ms: r.ms,
  }
}

/** Bytes of the files under dir (what an install puts on disk, before block rounding). */
function bytesUnder(dir: string): number {
  let total = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) total += bytesUnder(p)
    else if (e.isFile()) total += statSync(p).size
  }
  return total
}

function project(dir: string): string {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  return dir
}

const NPM_QUIET = ['--no-audit', '--no-fund', '--no-update-notifier', '--prefer-offline']

/** A module hook that refuses node:* (and bare builtin) imports: `node --import ./refuse-node.mjs`. */
function writeRefuseNodeHook(dir: string): void {
  writeFileSync(
    join(dir, 'refuse-node-hooks.mjs'),
    `import { builtinModules } from 'node:module'
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('node:') || builtinModules.includes(specifier))
    throw new Error('refused import of ' + specifier + ' from ' + context.parentURL)
  return next(specifier, context)
}
`,
  )
  writeFileSync(
    join(dir, 'refuse-node.mjs'),
    `import { register } from 'node:module'
register('./refuse-node-hooks.mjs', import.meta.url)
`,
  )
}

const CLIENT_SCRIPT = `import { Client } from 'conclave-client'
import { Lock } from 'conclave-client/recipes'

const zk = await Client.connect(process.argv[2], { connectTimeoutMs: 10_000 })
await zk.create('/pkg', 'v1')
let onEvent
const event = new Promise((resolve) => (onEvent = resolve))
await zk.getData('/pkg', { watch: (e) => onEvent(e) })
await zk.setData('/pkg', 'v2')
const fired = await event
const lock = new Lock(zk, '/locks/pkg')
const { fencingToken } = await lock.acquire({ timeoutMs: 10_000 })
const held = lock.isHeld
await lock.release()
const { data } = await zk.getData('/pkg')
await zk.close()
console.log(JSON.stringify({ fired, fencingToken, held, data: new TextDecoder().decode(data) }))
`

describe('npm packages (SLOW: packs and installs both tarballs)', () => {
  const tmp = tempDir('conclave-pack-')
  const timings: Record<string, string> = {}
  let server: Packed
  let client: Packed
  let serverDir: string
  let clientDir: string
  let child: ChildProcess | undefined

  beforeAll(async () => {
    const dest = join(tmp.path, 'tarballs')
    mkdirSync(dest)
    server = await pack(ROOT, dest)
    client = await pack(join(ROOT, 'packages', 'client'), dest)
    timings['npm pack conclave'] = `${server.ms} ms`
    timings['npm pack conclave-client'] = `${client.ms} ms`
    clientDir = project(join(tmp.path, 'client-app'))
    const ci = await ok('npm', ['install', client.file, ...NPM_QUIET], clientDir)
    timings['npm install conclave-client'] = `${ci.ms} ms`
    serverDir = project(join(tmp.path, 'server-app'))
    const sqlite = JSON.parse(
      readFileSync(join(ROOT, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8'),
    )
    const args = NATIVE
      ? ['install', server.file, ...NPM_QUIET]
      : ['install', server.file, `better-sqlite3@${sqlite.version}`, '--ignore-scripts', ...NPM_QUIET]
    const si = await ok('npm', args, serverDir)
    timings[`npm install conclave${NATIVE ? ' (compiling better-sqlite3)' : ' (--ignore-scripts)'}`] =
      `${si.ms} ms`
    if (!NATIVE) {
      const binary = join('node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')
      mkdirSync(join(serverDir, 'node_modules', 'better-sqlite3', 'build', 'Release'), { recursive: true })
      copyFileSync(join(ROOT, binary), join(serverDir, binary))
    }
  }, 240_000)

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      killGroup(child, 'SIGKILL')
      await new Promise((r) => child!.once('close', r))
    }
    const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`
    if (server !== undefined && client !== undefined) {
      timings['conclave tarball'] =
        `${kb(server.bytes)} (${kb(server.unpackedBytes)} unpacked, ${server.entries} files)`
      timings['conclave-client tarball'] =
        `${kb(client.bytes)} (${kb(client.unpackedBytes)} unpacked, ${client.entries} files)`
    }
    if (clientDir !== undefined && existsSync(join(clientDir, 'node_modules')))
      timings['client project node_modules'] = kb(bytesUnder(join(clientDir, 'node_modules')))
    if (serverDir !== undefined && existsSync(join(serverDir, 'node_modules')))
      timings['server project node_modules'] = kb(bytesUnder(join(serverDir, 'node_modules')))
    console.log(`package-install numbers:\n${JSON.stringify(timings, null, 2)}`)
    tmp.remove()
  })

  it('packs the compiled code: conclave with its bin and every export, conclave-client with SDK, recipes and shared only', () => {
    for (const p of [
      'bin/conclave.js',
      'dist/server/cli/main.js',
      'dist/server/index.js',
      'dist/server/index.d.ts',
      'dist/client/index.js',
      'dist/client/shell/shell.js',
      'dist/recipes/index.js',
      'dist/shared/index.js',
      // The SDK's browser build and the web console's page (scripts/build-browser.mjs).
      'dist/browser/conclave.js',
      'dist/browser/conclave.d.ts',
      'dist/browser/console/index.html',
      'dist/browser/console/app.js',
      'docs/api.md',
    ])
      expect(server.paths).toContain(p)
    for (const p of [
      'dist/client/index.js',
      'dist/client/index.d.ts',
      'dist/recipes/index.js',
      'dist/shared/index.js',
    ])
      expect(client.paths).toContain(p)
    const outside = (paths: string[], allowed: RegExp) => paths.filter((p) => !allowed.test(p))
    expect(
      outside(
        server.paths,
        /^(bin\/conclave\.js|dist\/(server|client|recipes|shared|browser)\/|docs\/|package\.json|README\.md)/,
      ),
    ).toEqual([])
    expect(outside(client.paths, /^(dist\/(client|recipes|shared)\/|package\.json|README\.md)/)).toEqual([])
    expect(client.paths.filter((p) => p.startsWith('dist/client/shell/'))).toEqual([])
    expect([...server.paths, ...client.paths].filter((p) => p.endsWith('.map'))).toEqual([])
  })

  it('installs conclave-client with no dependency: no better-sqlite3, nothing else in node_modules', () => {
    const installed = readdirSync(join(clientDir, 'node_modules')).filter((n) => !n.startsWith('.'))
    expect(installed).toEqual(['conclave-client'])
    expect(existsSync(join(clientDir, 'node_modules', 'better-sqlite3'))).toBe(false)
    const pkg = JSON.parse(
      readFileSync(join(clientDir, 'node_modules', 'conclave-client', 'package.json'), 'utf8'),
    )
    expect(pkg.dependencies).toBeUndefined()
    expect(
      statSync(join(clientDir, 'node_modules', 'conclave-client', 'dist', 'client', 'index.js')).isFile(),
    ).toBe(true)
  })

  it('imports the SDK, the recipes and shared with nothing from node:* (a hook that refuses node:* imports)', async () => {
    writeRefuseNodeHook(clientDir)
    writeFileSync(
      join(clientDir, 'imports.mjs'),
      `const sdk = await import('conclave-client')
const recipes = await import('conclave-client/recipes')
const shared = await import('conclave-client/shared')
console.log(typeof sdk.Client, typeof recipes.Lock, typeof shared.ErrorCode)
`,
    )
    const r = await ok(process.execPath, ['--import', './refuse-node.mjs', 'imports.mjs'], clientDir, 30_000)
    expect(r.stdout.trim()).toBe('function function object')
    // The same hook refuses the server, which needs node:* at once: the check can fail.
    writeRefuseNodeHook(serverDir)
    const refused = await run(
      process.execPath,
      ['--import', './refuse-node.mjs', '--input-type=module', '-e', "await import('conclave/server')"],
      serverDir,
      30_000,
    )
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/refused import of node:/)
  })

  it('installs conclave with a working bin and every export', async () => {
    const help = await ok('npx', ['--no', 'conclave', 'server', '--help'], serverDir, 30_000)
    expect(help.stdout).toMatch(/usage: conclave server/)
    expect(help.stdout).toMatch(/--log-format FORMAT/)
    const r = await ok(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const [c, r, s, sh] = await Promise.all(['client', 'recipes', 'server', 'shared'].map((e) => import('conclave/' + e)))
console.log(typeof c.Client, typeof r.Lock, typeof s.startServer, typeof sh.ErrorCode)`,
      ],
      serverDir,
      30_000,
    )
    expect(r.stdout.trim()).toBe('function function function object')
    const pkg = JSON.parse(readFileSync(join(serverDir, 'node_modules', 'conclave', 'package.json'), 'utf8'))
    expect(pkg.engines.node).toBe('^20.15.0 || >=22.2.0')
  })

  it('serves the installed SDK and recipes from `npx conclave server`: connect, create, watch, lock', async () => {
    const port = await freePort()
    const data = join(tmp.path, 'data')
    let out = ''
    child = spawn(
      'npx',
      ['--no', 'conclave', 'server', '--port', String(port), '--data-dir', data, '--log-format', 'json'],
      { cwd: serverDir, env: cleanEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()))
    const exited = new Promise<number | null>((r) => child!.once('close', (code) => r(code)))
    const started = Date.now()
    await Promise.race([
      waitForPort(port, 60_000),
      exited.then((code) => {
        throw new Error(`npx conclave server exited (${code}) before it listened:\n${out}`)
      }),
    ])
    timings['npx conclave server: listening after'] = `${Date.now() - started} ms`
    writeFileSync(join(clientDir, 'check.mjs'), CLIENT_SCRIPT)
    const r = await ok(process.execPath, ['check.mjs', `ws://127.0.0.1:${port}`], clientDir, 60_000)
    const result = JSON.parse(r.stdout.trim())
    expect(result).toMatchObject({ fired: { type: 'dataChanged', path: '/pkg' }, held: true, data: 'v2' })
    expect(result.fencingToken).toBeGreaterThan(0)
    expect(out).toMatch(/"msg":"conclave server ready"/)
    // As Ctrl-C at a terminal does: the signal goes to the process group (npm exec does not
    // pass a SIGTERM of its own on to the server, which would be left running).
    killGroup(child, 'SIGTERM')
    await exited
    expect(out).toMatch(/"msg":"stopped"/)
    const pgid = child.pid!
    await waitFor(() => !groupAlive(pgid), {
      timeoutMs: 15_000,
      what: 'every process of npx conclave server to exit',
    })
  })

  it('serves the web console from the installed package, built (`npx conclave console`)', async () => {
    const port = await freePort()
    let out = ''
    const c = spawn(
      'npx',
      ['--no', 'conclave', 'console', '--port', String(port), '--servers', 'ws://127.0.0.1:1'],
      { cwd: serverDir, env: cleanEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    c.stdout!.on('data', (b: Buffer) => (out += b.toString()))
    c.stderr!.on('data', (b: Buffer) => (out += b.toString()))
    const exited = new Promise<number | null>((r) => c.once('close', (code) => r(code)))
    try {
      await waitFor(() => out.includes(`console: http://127.0.0.1:${port}/`), {
        timeoutMs: 60_000,
        what: `npx conclave console to listen:\n${out}`,
      })
      // The page and the SDK bundle ship built: nothing is built in an installed package.
      expect(out).not.toContain('building the browser assets')
      for (const path of ['/', '/app.js', '/console.css', '/conclave.js']) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`)
        expect(res.status, path).toBe(200)
      }
    } finally {
      killGroup(c, 'SIGTERM')
      await exited
    }
    const pgid = c.pid!
    await waitFor(() => !groupAlive(pgid), { timeoutMs: 15_000, what: 'npx conclave console to exit' })
  })
})
