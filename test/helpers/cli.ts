/**
 * Runs the `conclave` command (node bin/conclave.js …) as the CLI tests do:
 * to completion with the event loop blocked (runCli), to completion without
 * blocking it (runCliAsync: the test's own clients keep working), or left
 * running with its output gathered (startCli: `migrate --follow`). Each run
 * is killed after 60 s.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { BIN as CLI_BIN } from './conclave.js'

export { CLI_BIN }

const RUN_TIMEOUT_MS = 60_000

export interface CliResult {
  status: number | null
  stdout: string
  stderr: string
}

export function runCli(...args: string[]) {
  return spawnSync(process.execPath, [CLI_BIN, ...args], { encoding: 'utf8', timeout: RUN_TIMEOUT_MS })
}

export interface RunningCli {
  child: ChildProcess
  /** Its stdout so far. */
  stdout(): string
  stderr(): string
  /** Its exit code (null if killed by a signal). */
  exited: Promise<number | null>
}

/** Starts the command and returns at once; the caller stops it (or it exits by itself). */
export function startCli(...args: string[]): RunningCli {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString()
  })
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

export async function runCliAsync(...args: string[]): Promise<CliResult> {
  const run = startCli(...args)
  const timer = setTimeout(() => run.child.kill('SIGKILL'), RUN_TIMEOUT_MS)
  const status = await run.exited
  clearTimeout(timer)
  return { status, stdout: run.stdout(), stderr: run.stderr() }
}
