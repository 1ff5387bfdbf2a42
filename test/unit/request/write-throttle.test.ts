/**
 * WriteThrottle: writes run at once until the log is behind, then wait in
 * arrival order and run once half the backlog is gone (a write admitted
 * while the queue drains joins its end); a role change runs them all; the
 * in-flight limit pauses reading at the limit and resumes at half.
 */
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { WriteThrottle } from '../../../server/request/write-throttle.js'

function setup(limit = 4) {
  const host = {
    logger: pino({ level: 'silent' }),
    pendingBytes: 0,
    logThrottleBytes: 1000,
    leader: true,
    pauses: [] as boolean[],
    logPendingBytes() {
      return host.pendingBytes
    },
    proposes() {
      return host.leader
    },
    readingChanged() {
      host.pauses.push(t.paused)
    },
    now() {
      return 0
    },
  }
  const t = new WriteThrottle(limit, host)
  return { host, t }
}

describe('WriteThrottle', () => {
  it('runs writes at once while the log keeps up', () => {
    const { t } = setup()
    const ran: number[] = []
    t.admit(() => ran.push(1))
    t.admit(() => ran.push(2))
    expect(ran).toEqual([1, 2])
    expect(t.deferred).toBe(0)
  })

  it('defers writes in arrival order while the log is behind, and runs them once under half', () => {
    const { host, t } = setup()
    const ran: number[] = []
    host.pendingBytes = 1000
    for (let i = 1; i <= 3; i++) t.admit(() => ran.push(i))
    expect(ran).toEqual([])
    expect(t.deferred).toBe(3)
    // Below the throttle point but not below half: still waiting, and a new write queues behind.
    host.pendingBytes = 600
    t.release()
    t.admit(() => ran.push(4))
    expect(ran).toEqual([])
    host.pendingBytes = 499
    t.release()
    expect(ran).toEqual([1, 2, 3, 4])
    expect(t.deferred).toBe(0)
    t.admit(() => ran.push(5))
    expect(ran).toEqual([1, 2, 3, 4, 5])
  })

  it('a write admitted while the queue drains runs after every write deferred before it', () => {
    const { host, t } = setup()
    const ran: string[] = []
    host.pendingBytes = 1000
    t.admit(() => {
      ran.push('a1')
      // Answering a1 lets its session submit its next write at once.
      t.admit(() => ran.push('a3'))
    })
    t.admit(() => ran.push('a2'))
    host.pendingBytes = 0
    t.release()
    expect(ran).toEqual(['a1', 'a2', 'a3'])
  })

  it('a server that does not propose never defers; a role change runs what waited', () => {
    const { host, t } = setup()
    const ran: number[] = []
    host.pendingBytes = 5000
    host.leader = false
    t.admit(() => ran.push(1))
    expect(ran).toEqual([1])
    host.leader = true
    t.admit(() => ran.push(2))
    t.admit(() => ran.push(3))
    expect(ran).toEqual([1])
    t.flush()
    expect(ran).toEqual([1, 2, 3])
    expect(t.deferred).toBe(0)
  })

  it('pauses reading at the in-flight limit and resumes at half of it', () => {
    const { host, t } = setup(4)
    for (let i = 0; i < 3; i++) t.started()
    expect(t.paused).toBe(false)
    t.started()
    expect(t.paused).toBe(true)
    t.started()
    expect(host.pauses).toEqual([true])
    t.finished()
    t.finished()
    expect(t.paused).toBe(true)
    t.finished()
    expect(t.paused).toBe(false)
    expect(host.pauses).toEqual([true, false])
    expect(t.inFlight).toBe(2)
  })
})
