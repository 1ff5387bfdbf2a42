/**
 * Connect-string parsing: schemes, default ports, IPv6, ws paths, and the
 * BAD_ARGUMENTS cases; the random server order is a permutation.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { boundedMemo } from '../../../client/bounded-memo.js'
import { parseConnectString, shuffled } from '../../../client/connect-string.js'
import { ZkError } from '../../../shared/errors.js'

describe('parseConnectString', () => {
  it('parses ws, wss, tcp and bare entries', () => {
    expect(
      parseConnectString('ws://127.0.0.1:2181, tcp://zk1:2182 ,localhost:5,wss://h.example/zk?x=1'),
    ).toEqual([
      { kind: 'ws', url: 'ws://127.0.0.1:2181/', host: '127.0.0.1', port: 2181 },
      { kind: 'tcp', url: 'tcp://zk1:2182', host: 'zk1', port: 2182 },
      { kind: 'ws', url: 'ws://localhost:5/', host: 'localhost', port: 5 },
      { kind: 'ws', url: 'wss://h.example:443/zk?x=1', host: 'h.example', port: 443 },
    ])
  })

  it('defaults tcp and bare entries to port 2181, ws to the URL default', () => {
    expect(parseConnectString('tcp://zk')[0]).toMatchObject({ port: 2181, url: 'tcp://zk:2181' })
    expect(parseConnectString('zk')[0]).toMatchObject({ kind: 'ws', port: 2181 })
    expect(parseConnectString('ws://zk')[0]).toMatchObject({ port: 80 })
  })

  it('handles IPv6 literals', () => {
    expect(parseConnectString('tcp://[::1]:2181')[0]).toEqual({
      kind: 'tcp',
      url: 'tcp://[::1]:2181',
      host: '::1',
      port: 2181,
    })
    expect(parseConnectString('ws://[::1]:9')[0]?.url).toBe('ws://[::1]:9/')
  })

  it.each([[''], [' , '], ['http://zk:1'], ['tcp://zk:1/path'], ['ws://zk:99999'], ['ws://:1']])(
    'refuses %j with BAD_ARGUMENTS',
    (s) => {
      let err: unknown
      try {
        parseConnectString(s)
      } catch (e) {
        err = e
      }
      expect(ZkError.is(err, 'BAD_ARGUMENTS')).toBe(true)
    },
  )
})

describe('parseConnectString, parsed again', () => {
  it('gives every call its own endpoints: changing one changes no later parse', () => {
    const a = parseConnectString('ws://127.0.0.1:2181,tcp://zk1:2182')
    a[0]!.port = 1
    a.pop()
    expect(parseConnectString('ws://127.0.0.1:2181,tcp://zk1:2182')).toEqual([
      { kind: 'ws', url: 'ws://127.0.0.1:2181/', host: '127.0.0.1', port: 2181 },
      { kind: 'tcp', url: 'tcp://zk1:2182', host: 'zk1', port: 2182 },
    ])
  })
})

describe('boundedMemo', () => {
  it('computes once per key, remembers no throw, and holds at most max keys', () => {
    const calls: string[] = []
    const f = boundedMemo(2, (k: string) => {
      calls.push(k)
      if (k === 'bad') throw new Error('bad key')
      return k.length
    })
    expect([f('a'), f('bb'), f('a'), f('bb')]).toEqual([1, 2, 1, 2])
    expect(calls).toEqual(['a', 'bb'])
    expect(() => f('bad')).toThrow('bad key')
    expect(() => f('bad')).toThrow('bad key')
    expect(calls).toEqual(['a', 'bb', 'bad', 'bad'])
    // A third key: the memo starts again, so 'a' is computed anew.
    f('ccc')
    f('a')
    expect(calls).toEqual(['a', 'bb', 'bad', 'bad', 'ccc', 'a'])
  })
})

describe('shuffled', () => {
  it('returns a permutation and leaves its input alone', () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), fc.double({ min: 0, max: 0.999999, noNaN: true }), (xs, r) => {
        const copy = xs.slice()
        const out = shuffled(xs, () => r)
        expect(xs).toEqual(copy)
        expect(out.slice().sort()).toEqual(copy.slice().sort())
      }),
    )
  })
})
