/**
 * RequestRateLimits (server/request/request-rate.ts): a token bucket per
 * session and per address, a second's worth of burst, refilled at the rate;
 * a refusal takes no token from either bucket; pings and closeSession always
 * pass; off when both rates are 0; quiet addresses are forgotten.
 */
import { describe, expect, it } from 'vitest'
import { RequestRateLimits } from '../../../server/request/request-rate.js'
import { OpCode } from '../../../shared/opcodes.js'

const admitted = (r: RequestRateLimits, s: object, ip: string, n: number, nowMs: number) => {
  let ok = 0
  for (let i = 0; i < n; i++) if (r.admit(s, ip, OpCode.exists, nowMs)) ok++
  return ok
}

describe('RequestRateLimits', () => {
  it('is off with both rates 0', () => {
    const r = new RequestRateLimits({ perSessionPerSecond: 0, perIpPerSecond: 0 })
    expect(admitted(r, {}, 'a', 100_000, 0)).toBe(100_000)
  })

  it("gives a session a second's worth at once, then its rate", () => {
    const r = new RequestRateLimits({ perSessionPerSecond: 100, perIpPerSecond: 0 })
    const s = {}
    expect(admitted(r, s, 'a', 500, 0)).toBe(100)
    expect(admitted(r, s, 'a', 500, 500)).toBe(50)
    expect(admitted(r, s, 'a', 500, 10_000)).toBe(100)
    // Another session has its own bucket.
    expect(admitted(r, {}, 'a', 500, 10_000)).toBe(100)
  })

  it('shares an address among its sessions, and a refusal by one bucket takes nothing from the other', () => {
    const r = new RequestRateLimits({ perSessionPerSecond: 100, perIpPerSecond: 150 })
    const a = {}
    const b = {}
    expect(admitted(r, a, 'ip', 500, 0)).toBe(100)
    expect(admitted(r, b, 'ip', 500, 0)).toBe(50)
    // b was refused by the address, not by its own bucket: it still has 50 tokens for when the address refills.
    expect(admitted(r, b, 'other', 500, 0)).toBe(50)
  })

  it('lets pings and closeSession through whatever the buckets hold', () => {
    const r = new RequestRateLimits({ perSessionPerSecond: 1, perIpPerSecond: 1 })
    const s = {}
    expect(r.admit(s, 'a', OpCode.exists, 0)).toBe(true)
    expect(r.admit(s, 'a', OpCode.exists, 0)).toBe(false)
    expect(r.admit(s, 'a', OpCode.ping, 0)).toBe(true)
    expect(r.admit(s, 'a', OpCode.closeSession, 0)).toBe(true)
  })

  it('forgets an address once its bucket is full again', () => {
    const r = new RequestRateLimits({ perSessionPerSecond: 0, perIpPerSecond: 10 })
    admitted(r, {}, 'x', 5, 0)
    r.sweep(100)
    expect(r.ipCount).toBe(1)
    r.sweep(1000)
    expect(r.ipCount).toBe(0)
  })
})
