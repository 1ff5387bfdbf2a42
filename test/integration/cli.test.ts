/**
 * The `conclave` command as a process: `--help` for every command (exit 0,
 * every option with its default), usage errors that name the flag (exit 2),
 * and the server's log as people and collectors see it — JSON lines when
 * stdout is a pipe, readable lines with `--log-format pretty`, and readable,
 * coloured lines on a terminal (a pseudo-terminal from util-linux `script`),
 * where Ctrl-C typed right after the ready line stops the server cleanly.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { canRun } from '../helpers/prerequisites.js'
import { freePort, tempDir, waitFor } from '../helpers/wait.js'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'conclave.js')
const PRETTY = /^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /
const ANSI = /\x1b\[[0-9;]*m/g

function conclave(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 })
}

const dirs: { remove(): void }[] = []
const children = new Set<ChildProcess>()

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const d of dirs) d.remove()
})

describe('conclave --help and usage errors', () => {
  it('conclave server --help lists every option with its default and exits 0', () => {
    const r = conclave('server', '--help')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/^usage: conclave server \[options\]/)
    for (const flag of ['--port N', '--data-dir DIR', '--tick-time MS', '--servers LIST', '--config FILE'])
      expect(r.stdout).toContain(flag)
    expect(r.stdout).toMatch(/--log-format FORMAT .*\[default: auto\]/)
    expect(r.stdout).toMatch(/--port N .*\[default: 2181\]/)
  })

  it.each(['cluster', 'status'])(
    'conclave %s --help prints its help, as conclave help <command> does',
    (cmd) => {
      const a = conclave(cmd, '--help')
      const b = conclave('help', cmd)
      expect(a.status).toBe(0)
      expect(a.stdout).toMatch(new RegExp(`^usage: conclave ${cmd} `))
      expect(b.stdout).toBe(a.stdout)
    },
  )

  it('conclave --help lists the commands; no command is a usage error', () => {
    const r = conclave('--help')
    expect(r.status).toBe(0)
    for (const c of ['server', 'cluster', 'shell', 'status'])
      expect(r.stdout).toMatch(new RegExp(`^ {2}${c} `, 'm'))
    expect(conclave().status).toBe(2)
    const u = conclave('serve')
    expect(u.status).toBe(2)
    expect(u.stderr).toMatch(/^conclave: unknown command 'serve'/)
  })

  it('names the flag of an unknown option, a missing value, a malformed value (exit 2)', () => {
    const unknown = conclave('server', '--prot', '2181')
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toBe(
      "conclave server: unknown option --prot; did you mean --port? ('conclave server --help' lists the options)\n",
    )
    const missing = conclave('server', '--data-dir')
    expect(missing.status).toBe(2)
    expect(missing.stderr).toBe('conclave server: option --data-dir needs a value: --data-dir DIR\n')
    const malformed = conclave('server', '--port', 'abc')
    expect(malformed.status).toBe(2)
    expect(malformed.stderr).toMatch(/^conclave server: --port: clientPort \(got "abc"\): /)
    const range = conclave('server', '--port', '70000')
    expect(range.stderr).toMatch(/^conclave server: --port: clientPort \(got 70000\): /)
    const format = conclave('server', '--log-format', 'fancy')
    expect(format.status).toBe(2)
    expect(format.stderr).toBe('conclave server: --log-format (got "fancy"): expected auto, json, pretty\n')
    const cluster = conclave('cluster', '--size', '4')
    expect(cluster.status).toBe(2)
    expect(cluster.stderr).toBe('conclave cluster: --size (got "4"): expected 1, 3, 5, 7\n')
  })
})

interface Run {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

function start(cmd: string, args: string[]): Run {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(child)
  let out = ''
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()))
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)))
  return { child, output: () => out, exited }
}

async function serverArgs(...extra: string[]): Promise<string[]> {
  const dir = tempDir('conclave-cli-')
  dirs.push(dir)
  return ['server', '--port', String(await freePort()), '--data-dir', join(dir.path, 'data'), ...extra]
}

/** Starts a server, waits for its ready line, stops it with `stop`, returns its output and exit code. */
async function runServer(run: Run, stop: () => void): Promise<{ out: string; code: number | null }> {
  await waitFor(() => /conclave server ready/.test(run.output()), {
    timeoutMs: 30_000,
    what: `the ready line in:\n${run.output()}`,
  })
  stop()
  const code = await run.exited
  return { out: run.output(), code }
}

describe('the server log', () => {
  it('is JSON lines when stdout is a pipe', async () => {
    const run = start(process.execPath, [BIN, ...(await serverArgs())])
    const { out, code } = await runServer(run, () => run.child.kill('SIGTERM'))
    expect(code).toBe(0)
    const lines = out.trimEnd().split('\n')
    const events = lines.map((l) => JSON.parse(l) as { msg: string; level: number; server: number })
    expect(events.map((e) => e.msg)).toEqual(
      expect.arrayContaining(['conclave server ready', 'stopping', 'stopped']),
    )
    expect(events.every((e) => e.server === 1 && typeof e.level === 'number')).toBe(true)
  })

  it('is readable lines without colours with --log-format pretty on a pipe', async () => {
    const run = start(process.execPath, [BIN, ...(await serverArgs('--log-format', 'pretty'))])
    const { out, code } = await runServer(run, () => run.child.kill('SIGTERM'))
    expect(code).toBe(0)
    const lines = out.trimEnd().split('\n')
    expect(lines.filter((l) => !PRETTY.test(l))).toEqual([])
    expect(out).not.toMatch(ANSI)
    expect(out).toMatch(/ INFO {2}server 1: conclave server ready {2}port=\d+ dataDir=\S+ zxid=0x0 /)
    expect(out).toMatch(/ INFO {2}server 1: stopping {2}signal=SIGTERM\n/)
  })

  const hasScript = canRun('the log on a terminal (util-linux script)', scriptMissing())

  it.runIf(hasScript)(
    'is readable, coloured lines on a terminal, and Ctrl-C stops the server cleanly',
    async () => {
      const args = await serverArgs()
      const run = start('script', [
        '-qefc',
        `exec ${[process.execPath, BIN, ...args].join(' ')}`,
        '/dev/null',
      ])
      // Ctrl-C typed at the terminal right after the ready line: the pty sends SIGINT.
      const { out, code } = await runServer(run, () => run.child.stdin!.write('\x03'))
      expect(code).toBe(0)
      expect(out).toMatch(ANSI)
      const lines = out
        .replace(ANSI, '')
        .replace(/\^C/g, '')
        .split(/\r?\n/)
        .filter((l) => l !== '')
      expect(lines.filter((l) => !PRETTY.test(l))).toEqual([])
      expect(lines).toContainEqual(expect.stringMatching(/ INFO {2}server 1: conclave server ready {2}port=/))
      expect(lines).toContainEqual(expect.stringMatching(/ INFO {2}server 1: stopping {2}signal=SIGINT$/))
      expect(lines.at(-1)).toMatch(/ INFO {2}server 1: stopped$/)
    },
  )

  it.runIf(hasScript)('is JSON on a terminal with --log-format json', async () => {
    const args = await serverArgs('--log-format', 'json')
    const run = start('script', ['-qefc', `exec ${[process.execPath, BIN, ...args].join(' ')}`, '/dev/null'])
    const { out, code } = await runServer(run, () => run.child.stdin!.write('\x03'))
    expect(code).toBe(0)
    const lines = out
      .replace(/\^C/g, '')
      .split(/\r?\n/)
      .filter((l) => l !== '')
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('conclave server ready')
  })
})

function scriptMissing() {
  const r = spawnSync('script', ['--version'], { encoding: 'utf8' })
  return r.status === 0 ? undefined : { what: 'util-linux script', apt: 'bsdutils' }
}
