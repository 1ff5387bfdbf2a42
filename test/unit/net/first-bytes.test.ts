/**
 * The client port's first steps, without sockets (issue 15): telling HTTP,
 * a four-letter word and ZooKeeper framing apart only once the first bytes
 * tell (a first read of `G` waits), and reading a WebSocket upgrade head in
 * one pass however it is cut, refusing bare LF and bare CR lines at once
 * and a head past 8 KiB.
 */
import { describe, expect, it } from 'vitest'
import { sniffFirstBytes } from '../../../server/net/client-listener.js'
import { REQUEST_HEAD_BYTES_MAX, RequestHeadReader } from '../../../server/net/ws-connection.js'

const bytes = (s: string) => new TextEncoder().encode(s)

describe('sniffFirstBytes', () => {
  it.each([
    ['', 'more'],
    ['G', 'more'],
    ['GE', 'more'],
    ['GET', 'more'],
    ['GET ', 'http'],
    ['GET / HTTP/1.1', 'http'],
    ['OPTIONS', 'more'],
    ['OPTIONS ', 'http'],
    ['GXT ', 'zookeeper'],
    ['r', 'more'],
    ['ruo', 'more'],
    ['ruok', 'four-letter'],
    ['srvr\n', 'four-letter'],
    ['r1', 'zookeeper'],
    ['\u0000\u0000', 'zookeeper'],
    ['\u0016\u0003\u0001', 'zookeeper'],
  ])('%j is %s', (first, kind) => {
    expect(sniffFirstBytes(bytes(first))).toBe(kind)
  })
})

const HEAD =
  'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'

describe('RequestHeadReader', () => {
  it('finds the end of a head cut at any point, and hands back what follows', () => {
    const all = Buffer.from(`${HEAD}\u0082\u0080`, 'latin1')
    for (let cut = 1; cut < all.length; cut++) {
      const r = new RequestHeadReader()
      const first = r.push(all.subarray(0, cut))
      // Ended in the first chunk: the rest is what that chunk held past the head.
      const rest = first === undefined ? all.subarray(HEAD.length) : all.subarray(HEAD.length, cut)
      expect(first ?? r.push(all.subarray(cut)), `cut at ${cut}`).toEqual({ head: HEAD.slice(0, -4), rest })
    }
  })

  it.each([
    ['a bare LF', 'GET / HTTP/1.1\n'],
    ['a bare CR', 'GET / HTTP/1.1\rH'],
  ])('refuses %s at once, without waiting for a blank line', (_what, start) => {
    expect(new RequestHeadReader().push(Buffer.from(start))).toMatchObject({ status: 400 })
  })

  it('refuses a head longer than REQUEST_HEAD_BYTES_MAX, even a byte at a time', () => {
    const r = new RequestHeadReader()
    const long = Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(REQUEST_HEAD_BYTES_MAX)}`)
    let result: ReturnType<RequestHeadReader['push']>
    for (let i = 0; i < long.length && result === undefined; i++) result = r.push(long.subarray(i, i + 1))
    expect(result).toMatchObject({ status: 431 })
  })
})
