/**
 * Pure-JS SHA-1 and base64 against node:crypto, and ZooKeeper's digest id
 * for user:password (the value ZooKeeper's generateDigest prints).
 */
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { base64, generateDigest, sha1 } from '../../helpers/sha1.js'

describe('sha1', () => {
  it('matches FIPS 180 vectors', () => {
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
    expect(hex(sha1(''))).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709')
    expect(hex(sha1('abc'))).toBe('a9993e364706816aba3e25717850c26c9cd0d89d')
    expect(hex(sha1('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toBe(
      '84983e441c3bd26ebaae4aa1f95129e5e54670f1',
    )
  })

  it('agrees with node:crypto on random input, across block boundaries', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(Buffer.from(sha1(bytes)).toString('hex')).toBe(createHash('sha1').update(bytes).digest('hex'))
        expect(base64(bytes)).toBe(Buffer.from(bytes).toString('base64'))
      }),
      { numRuns: 300 },
    )
  })

  it("gives ZooKeeper's digest id for user:password", () => {
    expect(generateDigest('user:password')).toBe('user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=')
    expect(generateDigest('super:secret')).toBe(
      `super:${createHash('sha1').update('super:secret').digest('base64')}`,
    )
  })
})
