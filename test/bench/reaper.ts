/**
 * Every server process and temporary directory the bench creates, so that
 * they are all reaped on exit: normally, on an error, and on Ctrl-C.
 * killAllSync() may run inside process.on('exit'), so it is synchronous
 * (SIGKILL is sent at once; the kernel reaps).
 * Bench-only: imports node:* freely, nothing of server/.
 */
import type { ChildProcess } from 'node:child_process'

/** Something whose current child process may change (a restarted server). */
export interface HasChild {
  readonly child: ChildProcess
}

const children = new Set<HasChild>()
const dirs = new Set<() => void>()

export function trackChild(c: HasChild): void {
  children.add(c)
}

export function trackDir(remove: () => void): () => void {
  dirs.add(remove)
  return () => {
    dirs.delete(remove)
    remove()
  }
}

export function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

export function exited(child: ChildProcess): Promise<void> {
  if (!alive(child)) return Promise.resolve()
  return new Promise((r) => child.once('exit', () => r()))
}

/** SIGKILLs every tracked process still running and removes every tracked directory. */
export function killAllSync(): void {
  for (const c of children) {
    try {
      if (alive(c.child)) c.child.kill('SIGKILL')
    } catch {
      // Already gone.
    }
  }
  children.clear()
  for (const remove of dirs) {
    try {
      remove()
    } catch {
      // Best effort: a temp dir left behind is not worth failing the exit for.
    }
  }
  dirs.clear()
}
