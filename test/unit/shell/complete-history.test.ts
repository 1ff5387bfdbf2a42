/**
 * Tab completion (target detection, path listing with a deadline) and the
 * history file (bounded, best-effort, no credentials on disk).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { completeLine, completePath, completionTarget } from '../../../client/shell/shell-complete.js'
import { loadHistoryFile, ShellHistory } from '../../../client/shell/shell-history.js'
import { tempDir } from '../../helpers/wait.js'

const tree: Record<string, string[]> = { '/': ['app', 'apple', 'zoo'], '/app': ['b', 'a'] }
const list = async (p: string): Promise<string[]> => {
  const c = tree[p]
  if (c === undefined) throw new Error('NO_NODE')
  return c
}

describe('completion', () => {
  it('finds what the cursor is on', () => {
    expect(completionTarget('')).toEqual({ kind: 'command', word: '' })
    expect(completionTarget('  ge')).toEqual({ kind: 'command', word: 'ge' })
    expect(completionTarget('get ')).toEqual({ kind: 'path', word: '' })
    expect(completionTarget('get -s /ap')).toEqual({ kind: 'path', word: '/ap' })
    expect(completionTarget('set /a da')).toEqual({ kind: 'none', word: 'da' })
  })

  it('completes command names', async () => {
    expect(await completeLine('get', null)).toEqual([
      ['get', 'getAcl', 'getEphemerals', 'getAllChildrenNumber'],
      'get',
    ])
    expect(await completeLine('SETa', null)).toEqual([['setAcl'], 'SETa'])
  })

  it("completes the last path component from the parent's children", async () => {
    expect(await completePath('/ap', list)).toEqual(['/app', '/apple'])
    expect(await completePath('/app/', list)).toEqual(['/app/a', '/app/b'])
    expect(await completePath('/z', list)).toEqual(['/zoo'])
    expect(await completePath('', list)).toEqual(['/'])
    expect(await completePath('/nope/x', list)).toEqual([])
    expect(await completeLine('ls /ap', list)).toEqual([['/app', '/apple'], '/ap'])
    expect(await completeLine('ls /ap', null)).toEqual([[], '/ap'])
  })

  it('gives up on a slow server', async () => {
    const never = () => new Promise<string[]>(() => {})
    expect(await completePath('/a', never, 20)).toEqual([])
  })
})

describe('ShellHistory', () => {
  let dir: ReturnType<typeof tempDir> | undefined
  afterEach(() => dir?.remove())

  it('persists commands, bounded, without credentials, mode 0600', () => {
    dir = tempDir('shell-history-')
    const file = join(dir.path, 'hist')
    const h = new ShellHistory(file, 3)
    for (const l of ['ls /', 'addauth digest u:p', 'get /a', 'set /a 1', 'stat /a']) h.add(l)
    expect(readFileSync(file, 'utf8')).toBe('get /a\nset /a 1\nstat /a\n')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(h.get(1)).toBeUndefined()
    expect(h.get(2)).toBe('get /a')
    const mem = new ShellHistory(null)
    mem.add('addauth digest u:p')
    expect(mem.get(0)).toBe('addauth digest u:p')
    expect(h.format(2)).toBe('3 - set /a 1\n4 - stat /a\n')
    expect(new ShellHistory(file, 3).persisted()).toEqual(['get /a', 'set /a 1', 'stat /a'])
  })

  it('loads only the last lines and survives unreadable files', () => {
    dir = tempDir('shell-history-')
    const file = join(dir.path, 'hist')
    writeFileSync(file, 'a\n\nb\nc\n')
    expect(loadHistoryFile(file, 2)).toEqual(['b', 'c'])
    expect(loadHistoryFile(join(dir.path, 'missing'))).toEqual([])
    const h = new ShellHistory(join(dir.path, 'no-such-dir', 'hist'))
    h.add('ls /')
    expect(h.format()).toBe('0 - ls /\n')
  })
})
