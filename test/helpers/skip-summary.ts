/**
 * vitest globalSetup: a summary, at the end of the run, of every suite that
 * was skipped because a prerequisite is not installed (prerequisites.ts).
 * Setup makes a temporary directory and names a file in it in
 * CONCLAVE_SKIPPED_FILE, which every test process (pool 'forks') inherits
 * and appends its one line per skipped suite to; teardown prints the lines
 * (each once) and removes the directory. Under CI=true nothing is skipped:
 * a missing prerequisite fails its file instead.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SKIPPED_FILE_ENV } from './prerequisites.js'

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-skipped-'))
  const file = join(dir, 'skipped.txt')
  process.env[SKIPPED_FILE_ENV] = file
  return () => {
    let lines: string[] = []
    try {
      lines = [
        ...new Set(
          readFileSync(file, 'utf8')
            .split('\n')
            .filter((l) => l !== ''),
        ),
      ]
    } catch {
      // No file: nothing was skipped.
    }
    rmSync(dir, { recursive: true, force: true })
    if (lines.length === 0) return
    console.log(
      `\n${lines.length} suite(s) skipped for a missing prerequisite (under CI=true each would fail):\n` +
        lines.map((l) => `  ${l}`).join('\n'),
    )
  }
}
