/**
 * The web console's pure parts: data formats (text, JSON, hex) and the line
 * diff of the conflict view; the recipes' layouts decoded from listings; the
 * console server's parsers of srvr/mntr, dump and cons text and of connect
 * strings.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Stat } from '../../../client/index.js'
import { type ChildInfo, classify, stripProtected } from '../../../console/app/coordination.js'
import {
  editable,
  encode,
  hexDump,
  jsonView,
  lineDiff,
  parseHex,
  render,
  toHex,
  utf8Bytes,
} from '../../../console/app/format.js'
import { checkDocument } from '../../../console/app/subtree.js'
import { membersOf, parseCons, parseDump, parseWordLines } from '../../../server/console/console-server.js'

function stat(over: Partial<Stat> = {}): Stat {
  return {
    czxid: 1,
    mzxid: 1,
    pzxid: 1,
    ctime: 0,
    mtime: 0,
    version: 0,
    cversion: 0,
    aversion: 0,
    ephemeralOwner: '0x0',
    dataLength: 0,
    numChildren: 0,
    ...over,
  }
}

const UUID = '0f8fad5b-d9cb-469f-a165-70867728950e'

describe('data formats', () => {
  it('shows JSON formatted, and says why text is not JSON', () => {
    expect(render(utf8Bytes('{"a":[1,2]}'), 'json').text).toBe('{\n  "a": [\n    1,\n    2\n  ]\n}')
    const bad = render(utf8Bytes('{"a":'), 'json')
    expect(bad.text).toBe('{"a":')
    expect(bad.note).toMatch(/^not valid JSON/)
    expect(jsonView(new Uint8Array([0xff, 0xfe]))).toEqual({ ok: false, error: 'not UTF-8 text' })
  })

  it('shows bytes that are not UTF-8 as hex, in every format', () => {
    const bytes = new Uint8Array([0, 1, 0xff, 0x41])
    expect(render(bytes, 'text').note).toMatch(/not UTF-8/)
    expect(render(bytes, 'hex').text).toBe(`00000000  00 01 ff 41${' '.repeat(36)}  ...A`)
    expect(editable(bytes, 'text')).toBe('00 01 ff 41')
  })

  it('round-trips bytes through the hex editor', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(parseHex(toHex(bytes))).toEqual(bytes)
        expect(encode(editable(bytes, 'hex'), 'hex')).toEqual(bytes)
      }),
    )
    expect(parseHex('0x41 0x42\n43')).toEqual(new Uint8Array([0x41, 0x42, 0x43]))
    expect(() => parseHex('4')).toThrow(/odd number/)
    expect(() => parseHex('zz')).toThrow(/hex digits only/)
  })

  it('refuses to save invalid JSON in the JSON editor', () => {
    expect(() => encode('{bad', 'json')).toThrow(/not valid JSON/)
    expect(encode('{"ok":true}', 'json')).toEqual(utf8Bytes('{"ok":true}'))
    expect(encode('{bad', 'text')).toEqual(utf8Bytes('{bad'))
  })

  it('hex dumps stop at the limit and say how much is left', () => {
    const dump = hexDump(new Uint8Array(100), 32)
    expect(dump.split('\n')).toHaveLength(3)
    expect(dump).toMatch(/… 68 more bytes$/)
  })
})

describe('line diff', () => {
  it('marks removed and added lines', () => {
    expect(lineDiff('a\nb\nc', 'a\nx\nc')).toEqual([
      { op: ' ', line: 'a' },
      { op: '-', line: 'b' },
      { op: '+', line: 'x' },
      { op: ' ', line: 'c' },
    ])
  })

  it('keeps every line of both sides, in order', () => {
    const lines = fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 30 }).map((l) => l.join('\n'))
    fc.assert(
      fc.property(lines, lines, (a, b) => {
        const d = lineDiff(a, b)
        expect(
          d
            .filter((x) => x.op !== '+')
            .map((x) => x.line)
            .join('\n'),
        ).toBe(a)
        expect(
          d
            .filter((x) => x.op !== '-')
            .map((x) => x.line)
            .join('\n'),
        ).toBe(b)
        if (a === b) expect(d.every((x) => x.op === ' ')).toBe(true)
      }),
    )
  })

  it('compares large inputs as a whole', () => {
    const big = Array.from({ length: 3000 }, (_, i) => String(i)).join('\n')
    const d = lineDiff(big, 'x')
    expect(d.filter((x) => x.op === '-')).toHaveLength(3000)
    expect(d.at(-1)).toEqual({ op: '+', line: 'x' })
  })
})

describe('recipes decoded from a listing', () => {
  const node = (name: string, czxid: number, owner = '0x1', data?: string): ChildInfo => ({
    name,
    stat: stat({ czxid, ephemeralOwner: owner }),
    ...(data === undefined ? {} : { data }),
  })

  it('a lock: the lowest sequence holds it, the others wait in order, tokens are czxids', () => {
    const s = classify('/locks/a', [
      node(`_c_${UUID}-lock-0000000007`, 70, '0x3'),
      node(`_c_${UUID}-lock-0000000002`, 20, '0x1'),
      node('lock-0000000005', 50, '0x2'),
    ])
    expect(s).toHaveLength(1)
    const lock = s[0]!
    expect(lock.type).toBe('lock')
    if (lock.type !== 'lock') return
    expect(lock.holders.map((c) => [c.session, c.fencingToken])).toEqual([['0x1', 20]])
    expect(lock.waiters.map((c) => [c.session, c.fencingToken])).toEqual([
      ['0x2', 50],
      ['0x3', 70],
    ])
  })

  it('a read-write lock: readers before the first writer hold it', () => {
    const s = classify('/rw', [
      node('__READ__0000000001', 1, '0x1'),
      node('__READ__0000000002', 2, '0x2'),
      node('__WRIT__0000000003', 3, '0x3'),
      node('__READ__0000000004', 4, '0x4'),
    ])[0]!
    if (s.type !== 'rwlock') throw new Error(s.type)
    expect(s.holders.map((c) => c.session)).toEqual(['0x1', '0x2'])
    expect(s.waiters.map((c) => `${c.kind}:${c.session}`)).toEqual(['write:0x3', 'read:0x4'])
    const w = classify('/rw', [
      node('__WRIT__0000000001', 1, '0x1'),
      node('__READ__0000000002', 2, '0x2'),
    ])[0]!
    if (w.type !== 'rwlock') throw new Error(w.type)
    expect(w.holders.map((c) => c.session)).toEqual(['0x1'])
  })

  it('an election: the lowest latch leads, with the id its node holds', () => {
    const s = classify('/e', [
      node('latch-0000000003', 3, '0x2', 'node-b'),
      node('latch-0000000001', 1, '0x1', 'node-a'),
    ])[0]!
    if (s.type !== 'election') throw new Error(s.type)
    expect(s.leader?.id).toBe('node-a')
    expect(s.candidates.map((c) => c.id)).toEqual(['node-a', 'node-b'])
  })

  it('a semaphore: the leases under <path>/leases', () => {
    const s = classify('/sem/db/leases', [
      node(`_c_${UUID}-lease-0000000000`, 1),
      node('lease-0000000001', 2),
    ])
    expect(s).toEqual([expect.objectContaining({ type: 'semaphore', path: '/sem/db' })])
  })

  it('queues: persistent sequential items counted, claims in progress', () => {
    const s = classify('/q', [
      node(`_c_${UUID}-qn-0000000001`, 1, '0x0'),
      node(`_c_${UUID}-qn-0000000002`, 2, '0x0'),
      { name: '_claims', stat: stat({ numChildren: 1 }) },
    ])
    expect(s).toEqual([{ type: 'queue', path: '/q', kind: 'fifo', depth: 2, claims: 1 }])
    expect(classify('/pq', [node('qp-0000000001', 1, '0x0')])).toEqual([
      { type: 'queue', path: '/pq', kind: 'priority', depth: 1, claims: 0 },
    ])
  })

  it('a group: ephemeral children without sequence numbers; not a plain directory', () => {
    expect(classify('/g', [node('api-1', 1, '0x1', '{"port":1}'), node('api-2', 2, '0x2')])).toEqual([
      {
        type: 'group',
        path: '/g',
        members: [
          { id: 'api-1', session: '0x1', data: '{"port":1}' },
          { id: 'api-2', session: '0x2', data: '' },
        ],
      },
    ])
    expect(classify('/plain', [node('a', 1, '0x0'), node('b', 2, '0x1')])).toEqual([])
    expect(classify('/empty', [])).toEqual([])
  })

  it('strips only a real protected prefix', () => {
    expect(stripProtected(`_c_${UUID}-lock-0000000001`)).toBe('lock-0000000001')
    expect(stripProtected('_c_nope-lock-0000000001')).toBe('_c_nope-lock-0000000001')
  })
})

describe('subtree documents', () => {
  it('accepts the export format and names the first problem of another', () => {
    const ok = {
      format: 'conclave-subtree',
      version: 1,
      path: '/a',
      exported: '',
      root: {
        data: '',
        encoding: 'utf8',
        children: { b: { data: 'AAE=', encoding: 'base64', children: {} } },
      },
    }
    expect(checkDocument(ok)).toBe(ok)
    expect(() => checkDocument({ ...ok, format: 'x' })).toThrow(/not a conclave-subtree/)
    expect(() =>
      checkDocument({ ...ok, root: { data: '', encoding: 'utf8', children: { 'x/y': ok.root } } }),
    ).toThrow(/bad child name/)
    expect(() => checkDocument({ ...ok, root: { data: 1, encoding: 'utf8', children: {} } })).toThrow(
      /"data" is not a string/,
    )
  })
})

describe('the console server reads the members’ words', () => {
  it('srvr and mntr lines', () => {
    expect(
      parseWordLines('Conclave version: 0.1.0\nMode: follower\nZxid: 0x100000003\nNode count: 5\n'),
    ).toEqual({
      'Conclave version': '0.1.0',
      Mode: 'follower',
      Zxid: '0x100000003',
      'Node count': 5,
    })
    expect(parseWordLines('conclave_znode_count\t7\nconclave_server_state\tleading\n')).toEqual({
      conclave_znode_count: 7,
      conclave_server_state: 'leading',
    })
  })

  it('dump, on a leader (expiry buckets) and elsewhere (timeouts)', () => {
    const leader =
      'SessionTracker dump:\nSession Sets (1)/(2):\n2 expire at Tue Mar 05 14:03:22 UTC 2024:\n\t0x1a\n\t0x1b\n' +
      'ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x1a:\n\t/locks/x/lock-0000000001\n\t/g/a\nConnections dump:\n'
    expect(parseDump(leader)).toEqual({
      sessions: { '0x1a': undefined, '0x1b': undefined },
      ephemerals: { '0x1a': ['/locks/x/lock-0000000001', '/g/a'] },
    })
    const follower =
      'SessionTracker dump:\nGlobal Sessions(1):\n0x1a\t30000ms\nephemeral nodes dump:\nSessions with Ephemerals (0):\nConnections dump:\n'
    expect(parseDump(follower)).toEqual({ sessions: { '0x1a': 30000 }, ephemerals: {} })
  })

  it('cons', () => {
    const text =
      ' /127.0.0.1:5000[1](queued=0,recved=3,sent=3,sid=0x1a,lop=PING,est=1,to=30000,lzxid=0x5,lresp=1,llat=0,minlat=0,avglat=0,maxlat=1)\n\n'
    expect(parseCons(text)).toEqual([{ remote: '127.0.0.1:5000', session: '0x1a' }])
  })

  it('connect strings, with admin ports in the same order', () => {
    expect(membersOf('ws://127.0.0.1:2181, wss://zk2:2182,zk3', ['http://127.0.0.1:8081/'])).toEqual([
      { address: '127.0.0.1:2181', host: '127.0.0.1', port: 2181, admin: 'http://127.0.0.1:8081' },
      { address: 'zk2:2182', host: 'zk2', port: 2182, admin: undefined },
      { address: 'zk3:2181', host: 'zk3', port: 2181, admin: undefined },
    ])
  })
})
