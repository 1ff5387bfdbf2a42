/**
 * The SDK's typed emitter: order, unsubscribe, once, snapshot semantics
 * during an emit, and isolation of a throwing listener.
 */
import { describe, expect, it } from 'vitest'
import { Emitter } from '../../../client/emitter.js'

type Events = { a: [n: number]; b: [s: string, t: string] }

describe('Emitter', () => {
  it('calls listeners in order with typed arguments; on() returns an unsubscribe', () => {
    const e = new Emitter<Events>()
    const log: string[] = []
    const off = e.on('a', (n) => log.push(`1:${n}`))
    e.on('a', (n) => log.push(`2:${n}`))
    e.on('b', (s, t) => log.push(`${s}${t}`))
    e.emit('a', 7)
    e.emit('b', 'x', 'y')
    off()
    off()
    e.emit('a', 8)
    expect(log).toEqual(['1:7', '2:7', 'xy', '2:8'])
    expect(e.listenerCount('a')).toBe(1)
  })

  it('once() runs a listener a single time', () => {
    const e = new Emitter<Events>()
    let n = 0
    e.once('a', () => n++)
    e.emit('a', 1)
    e.emit('a', 2)
    expect(n).toBe(1)
    expect(e.listenerCount('a')).toBe(0)
  })

  it('keeps the snapshot of an emit in progress', () => {
    const e = new Emitter<Events>()
    const log: string[] = []
    const offB = (): void => e.off('a', b)
    const a = (): void => {
      log.push('a')
      e.on('a', () => log.push('added'))
      offB()
    }
    const b = (): void => {
      log.push('b')
    }
    e.on('a', a)
    e.on('a', b)
    e.emit('a', 0)
    expect(log).toEqual(['a', 'b'])
    log.length = 0
    e.off('a', a)
    e.emit('a', 0)
    expect(log).toEqual(['added'])
  })

  it('isolates a throwing listener and reports its error', () => {
    const e = new Emitter<Events>()
    const errors: unknown[] = []
    e.onListenerError = (err) => errors.push(err)
    let after = 0
    e.on('a', () => {
      throw new Error('boom')
    })
    e.on('a', () => after++)
    e.emit('a', 1)
    expect(after).toBe(1)
    expect(errors).toHaveLength(1)
    e.onListenerError = undefined
    expect(() => e.emit('a', 1)).not.toThrow()
    e.removeAllListeners()
    expect(e.listenerCount('a')).toBe(0)
  })
})
