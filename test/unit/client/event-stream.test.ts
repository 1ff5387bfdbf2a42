/**
 * EventStream (client/event-stream.ts): the bounded async queue under
 * zk.watch() and the recipes' iterators. Order, the overflow rewrite, end,
 * failure, close with onClose once, break in for-await, abort signals and
 * several pending next() calls.
 */
import { describe, expect, it } from 'vitest'
import { EventStream } from '../../../client/index.js'

describe('EventStream', () => {
  it('hands events over in order, to waiting and later next() calls', async () => {
    const s = new EventStream<number>({ bufferSize: 10 })
    const first = s.next()
    const second = s.next()
    s.push(1)
    s.push(2)
    s.push(3)
    expect(await first).toEqual({ value: 1, done: false })
    expect(await second).toEqual({ value: 2, done: false })
    expect(await s.next()).toEqual({ value: 3, done: false })
    s.end()
    expect(await s.next()).toEqual({ value: undefined, done: true })
  })

  it('keeps at most bufferSize events; the overflow rewrite decides what a slow consumer gets', async () => {
    const newest = new EventStream<number>({ bufferSize: 3 })
    for (let i = 1; i <= 10; i++) newest.push(i)
    expect(newest.buffered).toBe(3)
    newest.end()
    const got: number[] = []
    for await (const n of newest) got.push(n)
    expect(got).toEqual([8, 9, 10])

    const marker = new EventStream<string>({ bufferSize: 4, overflow: (_b, x) => [`resync@${x}`] })
    for (let i = 1; i <= 10; i++) marker.push(`e${i}`)
    marker.end()
    const seen: string[] = []
    for await (const e of marker) seen.push(e)
    // e1..e4 buffered, e5 collapses them, e6..e8 follow, e9 collapses again, e10 follows.
    expect(seen).toEqual(['resync@e9', 'e10'])
  })

  it('fail() throws after the buffered events, once; end() finishes after them', async () => {
    const s = new EventStream<number>({ bufferSize: 5 })
    s.push(1)
    s.fail(new Error('boom'))
    s.push(2)
    expect(await s.next()).toEqual({ value: 1, done: false })
    await expect(s.next()).rejects.toThrow('boom')
    expect(await s.next()).toEqual({ value: undefined, done: true })
    const pending = new EventStream<number>({ bufferSize: 5 })
    const waiting = pending.next()
    pending.fail(new Error('late'))
    await expect(waiting).rejects.toThrow('late')
  })

  it('close(), break and an aborted signal stop it, run onClose once, and settle a pending next()', async () => {
    let closes = 0
    const onClose = async (): Promise<void> => {
      await Promise.resolve()
      closes++
    }
    const s = new EventStream<number>({ bufferSize: 5, onClose })
    s.push(1)
    const closed = s.close()
    await s.close()
    await closed
    expect(closes).toBe(1)
    expect(await s.next()).toEqual({ value: undefined, done: true })

    closes = 0
    const b = new EventStream<number>({ bufferSize: 5, onClose })
    b.push(1)
    b.push(2)
    for await (const n of b) if (n === 1) break
    expect(closes).toBe(1)
    expect(b.open).toBe(false)

    closes = 0
    const ac = new AbortController()
    const a = new EventStream<number>({ bufferSize: 5, onClose, signal: ac.signal })
    const waiting = a.next()
    ac.abort(new Error('stop'))
    expect(await waiting).toEqual({ value: undefined, done: true })
    await a.close()
    expect(closes).toBe(1)

    const pre = new EventStream<number>({ bufferSize: 1, signal: AbortSignal.abort() })
    expect(pre.open).toBe(false)
    expect(await pre.next()).toEqual({ value: undefined, done: true })
    expect(() => new EventStream<number>({ bufferSize: 0 })).toThrow(RangeError)
  })
})
