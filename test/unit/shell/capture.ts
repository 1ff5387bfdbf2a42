/**
 * Test helpers for the shell: a Writable that collects what is written, and
 * runShell with in-memory streams (input fed from a list of lines).
 */
import { PassThrough, Writable } from 'node:stream'
import { runShell, type ShellIo } from '../../../client/shell/shell.js'

export class Capture extends Writable {
  text = ''
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.text += chunk.toString()
    done()
  }
}

export interface ShellRun {
  code: number
  out: string
  err: string
}

/** Runs the shell with `lines` as its input (ending the input after them unless `keepOpen`). */
export async function runWithInput(
  argv: string[],
  lines: string[] | null,
  io: Partial<ShellIo> = {},
): Promise<ShellRun> {
  const input = new PassThrough()
  const output = new Capture()
  const error = new Capture()
  if (lines !== null) input.end(lines.map((l) => `${l}\n`).join(''))
  const code = await runShell(argv, { historyFile: null, timeZone: 'UTC', ...io, input, output, error })
  return { code, out: output.text, err: error.text }
}
