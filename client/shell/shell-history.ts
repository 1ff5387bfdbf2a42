/**
 * Command history: the session's numbered list (for `history` and `redo`)
 * and the persisted file (`~/.conclave_history`, one command a line, the
 * last HISTORY_LINES_MAX kept).
 * Invariants: the file is best-effort: any I/O error is swallowed and never
 * fails the shell; it is written with mode 0600; lines that carry
 * credentials (`addauth …`) are kept in the session but never written to
 * disk; the in-memory list is bounded too.
 * Imports node:fs, node:os and node:path only.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

export const HISTORY_LINES_MAX = 1000
/** How many entries `history` prints, as zkCli does. */
export const HISTORY_SHOWN = 10

export function defaultHistoryFile(): string {
  return join(homedir(), '.conclave_history')
}

/** Whether a line may be written to the history file. */
export function isPersistable(line: string): boolean {
  return !/^\s*addauth\b/i.test(line)
}

/** The file's lines, oldest first, at most `max`; [] if it cannot be read. */
export function loadHistoryFile(file: string, max = HISTORY_LINES_MAX): string[] {
  try {
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
    return lines.slice(-max)
  } catch {
    return []
  }
}

export interface HistoryEntry {
  index: number
  line: string
}

/** The session history plus its file. `file` null: keep nothing on disk. */
export class ShellHistory {
  private readonly entries: HistoryEntry[] = []
  private readonly fileLines: string[]
  private next = 0

  constructor(
    private readonly file: string | null,
    private readonly max = HISTORY_LINES_MAX,
  ) {
    this.fileLines = file === null ? [] : loadHistoryFile(file, max)
  }

  /** Lines from earlier sessions, oldest first (for readline's up-arrow). */
  persisted(): readonly string[] {
    return this.fileLines
  }

  /** The number the next command gets (shown in the prompt). */
  get nextIndex(): number {
    return this.next
  }

  add(line: string): void {
    this.entries.push({ index: this.next++, line })
    if (this.entries.length > this.max) this.entries.shift()
    if (this.file === null || !isPersistable(line)) return
    this.fileLines.push(line)
    if (this.fileLines.length > this.max) this.fileLines.splice(0, this.fileLines.length - this.max)
    this.save()
  }

  get(index: number): string | undefined {
    return this.entries.find((e) => e.index === index)?.line
  }

  /** zkCli's `history` output: the last few commands, `N - command`. */
  format(count = HISTORY_SHOWN): string {
    return this.entries
      .slice(-count)
      .map((e) => `${e.index} - ${e.line}\n`)
      .join('')
  }

  private save(): void {
    if (this.file === null) return
    try {
      writeFileSync(this.file, `${this.fileLines.join('\n')}\n`, { mode: 0o600 })
      chmodSync(this.file, 0o600)
    } catch {
      // Best-effort: a read-only home must not break the shell.
    }
  }
}
