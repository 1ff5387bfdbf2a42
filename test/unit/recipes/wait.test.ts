/**
 * Unit tests of recipes/wait.ts and recipes/session-guard.ts: a wait ends at
 * its deadline, on abort (with the signal's reason), or when the session
 * ends, and removes its timer and listeners; bounded() hands an abandoned
 * request to its undo hook; the guard turns client states into end,
 * suspect and reconnected. The client is a minimal stand-in with the real
 * SDK Emitter (only `state`, `sessionTimeoutMs` and `on` are used).
 */
import { describe, expect, it, vi } from 'vitest'
import { type Client, type ClientState, Emitter, ErrorCode, ZkError } from '../../../client/index.js'
import { SessionGuard } from '../../../recipes/session-guard.js'
import { bounded, contextOf, type EndSource, Latch, waitLatch } from '../../../recipes/wait.js'

function fakeClient(): { zk: Client; set: (s: ClientState) => void } {
  const events = new Emitter<{ state: [ClientState] }>()
  let state: ClientState = 'connected'
  const zk = {
    get state() {
      return state
    },
    sessionTimeoutMs: 300,
    on: (e: 'state', fn: (s: ClientState) => void) => events.on(e, fn),
  } as unknown as Client
  return {
    zk,
    set: (s) => {
      state = s
      events.emit('state', s)
    },
  }
}

describe('waitLatch', () => {
  it('resolves opened, or timeout at the deadline', async () => {
    const l = new Latch()
    setTimeout(l.open, 10)
    expect(await waitLatch(l, contextOf({ timeoutMs: 5_000 }))).toBe('opened')
    const t0 = performance.now()
    expect(await waitLatch(new Latch(), contextOf({ timeoutMs: 50 }))).toBe('timeout')
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45)
  })

  it('rejects with the abort reason and with the end of the session', async () => {
    const ac = new AbortController()
    const p = waitLatch(new Latch(), contextOf({ signal: ac.signal }))
    ac.abort(new Error('why'))
    await expect(p).rejects.toThrow('why')
    const { zk, set } = fakeClient()
    const guard = new SessionGuard(zk)
    const q = waitLatch(new Latch(), contextOf({}), guard)
    set('expired')
    await expect(q).rejects.toMatchObject({ code: ErrorCode.SESSION_EXPIRED })
    await expect(waitLatch(new Latch(), contextOf({}), guard)).rejects.toMatchObject({
      code: 'SESSION_EXPIRED',
    })
    guard.dispose()
  })

  it('rejects a negative timeout', () => {
    expect(() => contextOf({ timeoutMs: -1 })).toThrow(/BAD_ARGUMENTS/)
  })
})

describe('bounded', () => {
  it('gives up at the deadline and hands the late request to onAbandon', async () => {
    let release!: (v: string) => void
    const slow = new Promise<string>((r) => (release = r))
    const abandoned: Promise<string>[] = []
    const p = bounded(slow, contextOf({ timeoutMs: 20 }), undefined, 'slow op', (x) => abandoned.push(x))
    await expect(p).rejects.toMatchObject({ code: ErrorCode.OPERATION_TIMEOUT })
    expect(abandoned).toHaveLength(1)
    release('late')
    expect(await abandoned[0]).toBe('late')
    const end: EndSource = { endError: undefined, onEnd: () => () => {} }
    expect(await bounded(Promise.resolve(1), contextOf({ timeoutMs: 1_000 }), end, 'fast')).toBe(1)
    await expect(
      bounded(Promise.reject(new ZkError('NO_NODE')), contextOf({}), end, 'x'),
    ).rejects.toMatchObject({
      code: 'NO_NODE',
    })
  })
})

describe('SessionGuard', () => {
  it('reports suspect after a long disconnection, reconnected, and end once', () => {
    // The guard's timer runs on a clock the test moves: exact, whatever the machine's load.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const { zk, set } = fakeClient()
      const guard = new SessionGuard(zk, 30)
      const seen: string[] = []
      guard.on('suspect', (e) => seen.push(`suspect:${e.code}`))
      guard.on('reconnected', () => seen.push('reconnected'))
      guard.onEnd((e) => seen.push(`end:${e.code}`))
      // A short disconnection: its timer is cleared, so it cannot cut the next one short.
      set('disconnected')
      set('connected')
      vi.advanceTimersByTime(20)
      expect(seen).toEqual(['reconnected'])
      // A long one: suspect 30 ms after it began, not before.
      set('disconnected')
      vi.advanceTimersByTime(29)
      expect(seen).toEqual(['reconnected'])
      vi.advanceTimersByTime(1)
      expect(seen).toEqual(['reconnected', 'suspect:SESSION_EXPIRED'])
      set('connected')
      set('closed')
      set('expired')
      expect(seen).toEqual(['reconnected', 'suspect:SESSION_EXPIRED', 'reconnected', 'end:SESSION_EXPIRED'])
      guard.dispose()
      set('connected')
      expect(seen).toHaveLength(4)
    } finally {
      vi.useRealTimers()
    }
  })
})
