/**
 * zkCli-style output: Stat, Java dates, data (text or escaped), lists,
 * watch and state events, error messages.
 */
import { describe, expect, it } from 'vitest'
import {
  describeError,
  escapeBytes,
  formatData,
  formatJavaDate,
  formatList,
  formatStat,
  formatStateEvent,
  formatWatchEvent,
} from '../../../client/shell/shell-format.js'
import { ShellUsageError } from '../../../client/shell/shell-tokenize.js'
import { ZkError } from '../../../shared/errors.js'
import type { Stat } from '../../../shared/stat.js'

const STAT: Stat = {
  czxid: 0x100000002,
  mzxid: 0x100000005,
  pzxid: 0x100000002,
  ctime: 0,
  mtime: Date.UTC(2024, 1, 29, 13, 4, 5),
  version: 3,
  cversion: 0,
  aversion: 1,
  ephemeralOwner: '0x1000abc',
  dataLength: 5,
  numChildren: 2,
}

describe('formatStat', () => {
  it("prints zkCli's StatPrinter fields in order", () => {
    expect(formatStat(STAT, 'UTC')).toBe(
      [
        'cZxid = 0x100000002',
        'ctime = Thu Jan 01 00:00:00 UTC 1970',
        'mZxid = 0x100000005',
        'mtime = Thu Feb 29 13:04:05 UTC 2024',
        'pZxid = 0x100000002',
        'cversion = 0',
        'dataVersion = 3',
        'aclVersion = 1',
        'ephemeralOwner = 0x1000abc',
        'dataLength = 5',
        'numChildren = 2',
        '',
      ].join('\n'),
    )
  })

  it('prints dates in the given zone, midnight as 00', () => {
    expect(formatJavaDate(Date.UTC(2024, 0, 1, 8, 0, 0), 'America/Los_Angeles')).toBe(
      'Mon Jan 01 00:00:00 PST 2024',
    )
    expect(formatJavaDate(Date.now())).toMatch(/^\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} \S+ \d{4}$/)
  })
})

describe('formatData', () => {
  const enc = (s: string) => new TextEncoder().encode(s)

  it('prints UTF-8 text as is', () => {
    expect(formatData(enc('héllo wörld\nline 2\t✓'))).toBe('héllo wörld\nline 2\t✓')
    expect(formatData(new Uint8Array())).toBe('')
  })

  it('escapes invalid UTF-8 and control bytes', () => {
    expect(formatData(new Uint8Array([0x41, 0xff, 0x00, 0x5c]))).toBe('A\\xff\\x00\\\\')
    expect(formatData(enc('bell\u0007'))).toBe('bell\\x07')
    expect(escapeBytes(enc('é'))).toBe('\\xc3\\xa9')
  })
})

describe('lists and events', () => {
  it("prints Java's List.toString", () => {
    expect(formatList([])).toBe('[]')
    expect(formatList(['a', 'b'])).toBe('[a, b]')
  })

  it('prints watch and state events like zkCli', () => {
    expect(formatWatchEvent({ type: 'dataChanged', path: '/a' }, 'connected')).toBe(
      '\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/a\n',
    )
    expect(formatWatchEvent({ type: 'childrenChanged', path: '/' }, 'connected')).toContain(
      'type:NodeChildrenChanged path:/',
    )
    expect(formatStateEvent('disconnected')).toContain('state:Disconnected type:None path:null')
    expect(formatStateEvent('expired')).toContain('state:Expired')
  })
})

describe('describeError', () => {
  it("uses zkCli's messages", () => {
    expect(describeError(new ZkError('NO_NODE', '/a'))).toBe('Node does not exist: /a')
    expect(describeError(new ZkError('NODE_EXISTS', '/a'))).toBe('Node already exists: /a')
    expect(describeError(new ZkError('BAD_VERSION', '/a'))).toBe('version No is not valid : /a')
    expect(describeError(new ZkError('NOT_EMPTY', '/a'))).toBe('Node not empty: /a')
    expect(describeError(new ZkError('NO_CHILDREN_FOR_EPHEMERALS', '/e/x'))).toBe(
      'Ephemerals cannot have children: /e/x',
    )
    expect(describeError(new ZkError('NO_AUTH', '/s'))).toBe('Insufficient permission : /s')
  })

  it('falls back to the command path, then to KeeperErrorCode', () => {
    expect(describeError(new ZkError('NO_NODE'), '/b')).toBe('Node does not exist: /b')
    expect(describeError(new ZkError('CONNECTION_LOSS'), '/b')).toBe(
      'KeeperErrorCode = ConnectionLoss for /b',
    )
    expect(describeError(new ZkError('SESSION_EXPIRED'))).toBe('KeeperErrorCode = SessionExpired')
  })

  it('passes usage errors and other errors through', () => {
    expect(describeError(new ShellUsageError('missing argument'))).toBe('missing argument')
    expect(describeError(new Error('boom'))).toBe('boom')
    expect(describeError('odd')).toBe('odd')
  })
})
