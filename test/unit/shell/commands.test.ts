/**
 * Per-command option parsing: flags (combined, after the path, with
 * values), create modes, versions, ACLs, watch kinds, and usage errors.
 */
import { describe, expect, it } from 'vitest'
import {
  COMMAND_NAMES,
  COMMANDS,
  type Command,
  helpText,
  lookupCommand,
  parseCommand,
} from '../../../client/shell/shell-commands.js'
import { ShellUsageError, tokenize } from '../../../client/shell/shell-tokenize.js'
import { Perms } from '../../../shared/opcodes.js'

const parse = (line: string): Command => parseCommand(tokenize(line))

describe('parseCommand', () => {
  it('parses ls with combined, separate and trailing flags', () => {
    expect(parse('ls /')).toEqual({ name: 'ls', path: '/', recursive: false, stat: false, watch: false })
    expect(parse('ls -Rs /a')).toEqual({ name: 'ls', path: '/a', recursive: true, stat: true, watch: false })
    expect(parse('ls -w -s /a')).toMatchObject({ stat: true, watch: true })
    expect(parse('ls /a -s')).toMatchObject({ path: '/a', stat: true })
  })

  it('parses get and stat', () => {
    expect(parse('get -s -w /a')).toEqual({ name: 'get', path: '/a', stat: true, watch: true })
    expect(parse('stat -w /a')).toEqual({ name: 'stat', path: '/a', watch: true })
  })

  it('parses set with a version in either form, and data that looks like a flag', () => {
    expect(parse('set /a "x y"')).toEqual({ name: 'set', path: '/a', data: 'x y', version: -1, stat: false })
    expect(parse('set -v 3 /a d')).toMatchObject({ version: 3 })
    expect(parse('set -v3 -s /a d')).toMatchObject({ version: 3, stat: true })
    expect(parse('set /a -1')).toMatchObject({ data: '-1', version: -1 })
    expect(parse('set /a -- -v')).toMatchObject({ data: '-v' })
    expect(parse('set /a ""')).toMatchObject({ data: '' })
  })

  it('maps create flags to modes', () => {
    expect(parse('create /a')).toEqual({ name: 'create', path: '/a', data: '', mode: 'persistent' })
    expect(parse('create -e /a d')).toMatchObject({ mode: 'ephemeral', data: 'd' })
    expect(parse('create -s /q/')).toMatchObject({ mode: 'persistentSequential', path: '/q/' })
    expect(parse('create -e -s /q/x')).toMatchObject({ mode: 'ephemeralSequential' })
    expect(parse('create -c /c')).toMatchObject({ mode: 'container' })
    expect(parse('create -t 5000 /t')).toMatchObject({ mode: 'persistentWithTtl', ttlMs: 5000 })
    expect(parse('create -s -t 10 /t')).toMatchObject({ mode: 'persistentSequentialWithTtl', ttlMs: 10 })
  })

  it('parses an ACL on create and setAcl', () => {
    expect(parse('create /a d world:anyone:r')).toMatchObject({
      acl: [{ id: { scheme: 'world', id: 'anyone' }, perms: Perms.READ }],
    })
    expect(parse('setAcl -R -v 2 /a world:anyone:cdrwa,auth::a')).toEqual({
      name: 'setAcl',
      path: '/a',
      acl: [
        { id: { scheme: 'world', id: 'anyone' }, perms: Perms.ALL },
        { id: { scheme: 'auth', id: '' }, perms: Perms.ADMIN },
      ],
      version: 2,
      recursive: true,
      stat: false,
    })
  })

  it('parses the other commands', () => {
    expect(parse('delete -v 0 /a')).toEqual({ name: 'delete', path: '/a', version: 0 })
    expect(parse('deleteall /a')).toEqual({ name: 'deleteall', path: '/a' })
    expect(parse('rmr /a')).toEqual({ name: 'deleteall', path: '/a' })
    expect(parse('getAcl -s /a')).toEqual({ name: 'getAcl', path: '/a', stat: true })
    expect(parse('addauth digest u:p')).toEqual({ name: 'addauth', scheme: 'digest', auth: 'u:p' })
    expect(parse('sync /')).toEqual({ name: 'sync', path: '/' })
    expect(parse('addWatch /a')).toEqual({ name: 'addWatch', path: '/a', mode: 'persistentRecursive' })
    expect(parse('addWatch -m persistent /a')).toMatchObject({ mode: 'persistent' })
    expect(parse('addWatch -m PERSISTENT_RECURSIVE /a')).toMatchObject({ mode: 'persistentRecursive' })
    expect(parse('removewatches /a')).toEqual({
      name: 'removewatches',
      path: '/a',
      kind: 'any',
      local: false,
    })
    expect(parse('removewatches /a -d -l')).toMatchObject({ kind: 'data', local: true })
    expect(parse('removewatches /a -c')).toMatchObject({ kind: 'children' })
    expect(parse('getEphemerals')).toEqual({ name: 'getEphemerals', path: '/' })
    expect(parse('getEphemerals /app')).toEqual({ name: 'getEphemerals', path: '/app' })
    expect(parse('getAllChildrenNumber /')).toEqual({ name: 'getAllChildrenNumber', path: '/' })
    expect(parse('whoami')).toEqual({ name: 'whoami' })
    expect(parse('connect 127.0.0.1:2182')).toEqual({ name: 'connect', server: '127.0.0.1:2182' })
    expect(parse('connect')).toEqual({ name: 'connect' })
    expect(parse('redo 3')).toEqual({ name: 'redo', index: 3 })
    expect(parse('help ls')).toEqual({ name: 'help', topic: 'ls' })
    expect(parse('exit')).toEqual({ name: 'quit' })
  })

  it('looks command names up case-insensitively', () => {
    expect(lookupCommand('GETACL')).toBe('getAcl')
    expect(lookupCommand('getacl')).toBe('getAcl')
    expect(lookupCommand('nope')).toBeUndefined()
  })

  it.each([
    ['', /empty command/],
    ['frob /a', /unknown command 'frob'/],
    ['ls', /missing argument/],
    ['ls /a /b', /too many arguments: \/b/],
    ['ls -x /a', /unknown option -x/],
    ['set /a', /missing argument/],
    ['set -v /a', /missing argument/],
    ['set -v x /a d', /version must be an integer/],
    ['delete -v -2 /a', /version out of range/],
    ['get a', /Path 'a' is invalid: path must start with \//],
    ['get /a/', /must not end with/],
    ['create /q/', /must not end with/],
    ['create -c -e /a', /-c cannot be combined/],
    ['create -e -t 5 /a', /-t cannot be combined with -e/],
    ['create -t 0 /a', /ttl out of range/],
    ['create /a d world:anyone:z', /invalid permission/],
    ['addWatch -m once /a', /mode must be persistent/],
    ['removewatches /a -c -d', /only one of/],
    ['whoami now', /too many arguments/],
    ['redo x', /cmdno must be an integer/],
  ])('rejects %j', (line, message) => {
    expect(() => parse(line)).toThrow(ShellUsageError)
    expect(() => parse(line)).toThrow(message)
  })

  it("names the command's usage in its errors", () => {
    expect(() => parse('set /a')).toThrow(/usage: set \[-s\] \[-v version\] path data/)
  })
})

describe('helpText', () => {
  it('lists every command', () => {
    const text = helpText()
    for (const n of COMMAND_NAMES) expect(text).toContain(COMMANDS[n].usage)
  })

  it('explains one command', () => {
    expect(helpText('create')).toContain('create [-s] [-e] [-c] [-t ttl] path [data] [acl]')
    expect(() => helpText('frob')).toThrow(ShellUsageError)
  })
})
