/**
 * Tab completion: the first word completes to command names; a word that
 * starts with '/' completes its last component by listing the parent's
 * children on the server (asynchronously, with a short deadline); an empty
 * word after a command offers '/'.
 * Invariants: never rejects and never hangs: a failed or slow listing
 * (no session, NO_NODE, timeout) completes to nothing; the returned pair is
 * readline's [candidates, the substring being completed].
 * Imports only shared/ and the command table; lists through a ChildLister,
 * never the SDK directly.
 */
import { joinPath } from '../../shared/paths.js'
import { COMMAND_NAMES } from './shell-commands.js'

export type ChildLister = (path: string) => Promise<string[]>

export const COMPLETION_TIMEOUT_MS = 1000

export type CompletionTarget =
  | { kind: 'command'; word: string }
  | { kind: 'path'; word: string }
  | { kind: 'none'; word: string }

/** What the cursor is on: the word being typed and what kind of thing it is. Pure. */
export function completionTarget(line: string): CompletionTarget {
  const start = Math.max(line.lastIndexOf(' '), line.lastIndexOf('\t')) + 1
  const word = line.slice(start)
  if (line.slice(0, start).trim() === '') return { kind: 'command', word }
  if (word === '' || word.startsWith('/')) return { kind: 'path', word }
  return { kind: 'none', word }
}

function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms)
    p.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      () => {
        clearTimeout(timer)
        resolve(fallback)
      },
    )
  })
}

/** Full paths under `word`'s parent whose last component starts with `word`'s last component. */
export async function completePath(
  word: string,
  list: ChildLister,
  timeoutMs = COMPLETION_TIMEOUT_MS,
): Promise<string[]> {
  if (word === '') return ['/']
  const slash = word.lastIndexOf('/')
  const parent = slash === 0 ? '/' : word.slice(0, slash)
  const prefix = word.slice(slash + 1)
  const children = await withTimeout(list(parent), timeoutMs, [] as string[])
  return children
    .filter((c) => c.startsWith(prefix))
    .sort()
    .map((c) => joinPath(parent, c))
}

/** readline's completer result for `line`; `list` is null when there is no session. */
export async function completeLine(
  line: string,
  list: ChildLister | null,
  timeoutMs = COMPLETION_TIMEOUT_MS,
): Promise<[string[], string]> {
  const target = completionTarget(line)
  if (target.kind === 'command') {
    const lower = target.word.toLowerCase()
    return [COMMAND_NAMES.filter((n) => n.toLowerCase().startsWith(lower)), target.word]
  }
  if (target.kind === 'path' && list !== null)
    return [await completePath(target.word, list, timeoutMs), target.word]
  return [[], target.word]
}
