/**
 * Browser tests' helpers: Debian's chromium (a prerequisite: `apt-get install
 * chromium`; .ci/run installs it), launched headless by playwright-core with
 * the flags that keep it off the network and quiet; and `conclave console`
 * as a process on a free port (its URL read from its first line), stopped
 * by SIGTERM. Every browser and console process started here is ended by
 * closeAll() (afterAll hooks), after a failed test too.
 *
 * Playwright's launch() gives each browser a fresh temporary profile
 * (--user-data-dir), removed when the browser closes.
 * Test-only: imports node:* freely.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium } from 'playwright-core'
import type { Missing } from './prerequisites.js'
import { waitFor } from './wait.js'

export const CHROMIUM = '/usr/bin/chromium'

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Debian's chromium, which playwright-core drives (its own browser download is not reachable). */
export function chromiumMissing(): Missing | undefined {
  return existsSync(CHROMIUM) ? undefined : { what: `Chromium (${CHROMIUM})`, apt: 'chromium' }
}

const browsers = new Set<Browser>()
const consoles = new Set<ChildProcess>()

export async function launchChromium(): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 })
  browsers.add(browser)
  browser.on('disconnected', () => browsers.delete(browser))
  return browser
}

function root(): string {
  let dir = fileURLToPath(new URL('.', import.meta.url))
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'bin', 'conclave.js'))) return dir
    dir = join(dir, '..')
  }
  throw new Error('cannot find the repository root (bin/conclave.js)')
}

export interface ConsoleProcess {
  url: string
  child: ChildProcess
  output(): string
  stop(): Promise<number | null>
}

/** Runs `conclave console` with `args` and waits for its URL line. */
export async function startConsole(args: string[]): Promise<ConsoleProcess> {
  const child = spawn(process.execPath, [join(root(), 'bin', 'conclave.js'), 'console', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  consoles.add(child)
  const out: string[] = []
  child.stdout?.on('data', (c: Buffer) => out.push(c.toString()))
  child.stderr?.on('data', (c: Buffer) => out.push(c.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  void exited.then(() => consoles.delete(child))
  const url = await waitFor(
    () => {
      if (child.exitCode !== null)
        throw new Error(`conclave console exited ${child.exitCode}:\n${out.join('')}`)
      return /^console: (http:\/\/\S+)/m.exec(out.join(''))?.[1]
    },
    { timeoutMs: 30_000, what: 'the console to listen' },
  )
  return {
    url,
    child,
    output: () => out.join(''),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/** Closes every browser and stops every console process started here. */
export async function closeAll(): Promise<void> {
  await Promise.all([...browsers].map((b) => b.close().catch(() => {})))
  for (const c of consoles) if (c.exitCode === null) c.kill('SIGKILL')
}
