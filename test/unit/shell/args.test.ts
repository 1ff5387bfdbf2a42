/**
 * The shell's own arguments and server lists: defaults, -c, zkCli-style
 * trailing command words, timeouts, schemes, chroots, usage errors.
 */
import { describe, expect, it } from 'vitest'
import { parseShellArgs } from '../../../client/shell/shell.js'
import { parseServerList } from '../../../client/shell/shell-client.js'
import { ShellUsageError } from '../../../client/shell/shell-tokenize.js'

describe('parseShellArgs', () => {
  it('defaults to ws://127.0.0.1:2181, interactive', () => {
    expect(parseShellArgs([])).toEqual({
      servers: 'ws://127.0.0.1:2181',
      sessionTimeoutMs: 30_000,
      connectTimeoutMs: 5_000,
      help: false,
    })
  })

  it('takes a server list, -c and timeouts', () => {
    expect(parseShellArgs(['ws://a:1,ws://b:2', '-c', 'get "/x y"', '--timeout', '4000'])).toEqual({
      servers: 'ws://a:1,ws://b:2',
      command: ['get', '/x y'],
      sessionTimeoutMs: 4000,
      connectTimeoutMs: 4000,
      help: false,
    })
    expect(parseShellArgs(['--connect-timeout', '100', '-server', 'h:3'])).toMatchObject({
      servers: 'h:3',
      connectTimeoutMs: 100,
    })
  })

  it('takes command words after the server list, as zkCli does', () => {
    expect(parseShellArgs(['h:1', 'create', '/a', 'x y'])).toMatchObject({
      servers: 'h:1',
      command: ['create', '/a', 'x y'],
    })
    expect(parseShellArgs(['ls', '-R', '/'])).toMatchObject({
      servers: 'ws://127.0.0.1:2181',
      command: ['ls', '-R', '/'],
    })
  })

  it('rejects bad arguments', () => {
    expect(() => parseShellArgs(['--bogus'])).toThrow(ShellUsageError)
    expect(() => parseShellArgs(['-c'])).toThrow(/needs a value/)
    expect(() => parseShellArgs(['--timeout', 'soon'])).toThrow(/integer/)
    expect(() => parseShellArgs(['-c', 'get "/a'])).toThrow(/unterminated/)
  })
})

describe('parseServerList', () => {
  it('normalizes schemes and bare addresses', () => {
    expect(parseServerList('127.0.0.1:2181')).toEqual({
      connectString: 'ws://127.0.0.1:2181',
      display: '127.0.0.1:2181',
    })
    expect(parseServerList('tcp://h:1, wss://g:2,localhost')).toEqual({
      connectString: 'tcp://h:1,wss://g:2,ws://localhost:2181',
      display: 'h:1,g:2,localhost:2181',
    })
    expect(parseServerList('[::1]:2181').connectString).toBe('ws://[::1]:2181')
  })

  it('splits off a chroot', () => {
    expect(parseServerList('ws://a:1,ws://b:2/app/x')).toEqual({
      connectString: 'ws://a:1,ws://b:2',
      display: 'a:1,b:2/app/x',
      chroot: '/app/x',
    })
    expect(parseServerList('a:1/')).toEqual({ connectString: 'ws://a:1', display: 'a:1' })
  })

  it('rejects what it cannot read', () => {
    expect(() => parseServerList('http://a:1')).toThrow(/bad server address/)
    expect(() => parseServerList('a:1,,b:2')).toThrow(/bad server list/)
    expect(() => parseServerList('a:99999')).toThrow(/bad port/)
    expect(() => parseServerList('a:1/x/')).toThrow(/bad chroot/)
  })
})
