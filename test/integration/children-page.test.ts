/**
 * Paginated getChildren against a real Conclave server: 100,000 children
 * listed page by page (getChildrenPage and the children() iterator) equal
 * getChildren's list, in its order; the listing stays ordered and
 * duplicate-free across concurrent creates and deletes; the page's Stat
 * tells that the children changed; the child watch set with a page fires;
 * the server refuses bad input (raw packets the SDK would not send) with
 * BAD_ARGUMENTS and the SDK refuses it before sending; against Apache
 * ZooKeeper, the SDK rejects UNIMPLEMENTED without sending the opcode.
 * Timings of the pages of the 100,000-child parent are logged.
 *
 * Invariants: one server per describe; every client closed; every wait has a deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client, type WatchEvent, ZkError } from '../../client/index.js'
import { ErrorCode, errorCodeOf } from '../../shared/errors.js'
import { ConclaveOpCode } from '../../shared/opcodes.js'
import type { ChildrenPageRequest } from '../../shared/records.js'
import { type ConclaveProcess, startConclave } from '../helpers/conclave.js'
import { RawClient } from '../helpers/raw-client.js'
import { waitFor } from '../helpers/wait.js'
import { startZooKeeper, zookeeperAvailable } from '../helpers/zookeeper.js'

const N = 100_000
const name = (i: number): string => `c${String(i).padStart(5, '0')}`

describe('getChildrenPage on Conclave', () => {
  let server: ConclaveProcess
  let zk: Client

  beforeAll(async () => {
    server = await startConclave()
    zk = await Client.connect(server.connectString, { connectTimeoutMs: 15_000 })
    await zk.create('/big')
    // In an order that is not the name order, 1,000 creates a multi.
    for (let b = 0; b < N / 1000; b++) {
      const ops = []
      for (let i = 0; i < 1000; i++)
        ops.push({ op: 'create' as const, path: `/big/${name(((b * 1000 + i) * 7919) % N)}` })
      await zk.multi(ops)
    }
  }, 180_000)

  afterAll(async () => {
    await zk?.close()
    await server?.stop()
    server?.remove()
  })

  it('lists 100,000 children in pages equal to getChildren, and logs what a page costs', async () => {
    const g0 = performance.now()
    const all = await zk.getChildren('/big')
    const whole = performance.now() - g0
    expect(all.length).toBe(N)
    const times: number[] = []
    const paged: string[] = []
    let after: string | undefined
    let cversion: number | undefined
    for (;;) {
      const t0 = performance.now()
      const page = await zk.getChildrenPage('/big', { limit: 1000, after })
      times.push(performance.now() - t0)
      expect(page.children.length).toBeGreaterThan(0)
      expect(page.children.length).toBeLessThanOrEqual(1000)
      cversion ??= page.stat.cversion
      expect(page.stat.cversion).toBe(cversion)
      expect(page.stat.numChildren).toBe(N)
      paged.push(...page.children)
      if (page.next === undefined) break
      after = page.next
    }
    expect(paged).toEqual(all)
    expect(times.length).toBe(N / 1000)
    const rest = times.slice(1).sort((a, b) => a - b)
    const median = rest[rest.length >> 1]!
    console.log(
      `children-page: ${N} children, 1,000 a page: first page ${times[0]!.toFixed(1)} ms, ` +
        `later pages median ${median.toFixed(2)} ms, max ${rest[rest.length - 1]!.toFixed(2)} ms; ` +
        `one getChildren of all of them ${whole.toFixed(1)} ms`,
    )
    // The iterator yields the same, with maxBytes-bounded pages too.
    const iterated: string[] = []
    for await (const n of zk.children('/big', { pageSize: 5000 })) iterated.push(n)
    expect(iterated).toEqual(all)
    const small = await zk.getChildrenPage('/big', { limit: 10_000, maxBytes: 100 })
    expect(small.children).toEqual(all.slice(0, 10)) // 10 bytes a name: 4 + 'cNNNNN'
    expect(small.next).toBe(all[9])
  }, 120_000)

  it('stays ordered and duplicate-free across concurrent creates and deletes; the Stat shows the change', async () => {
    await zk.create('/live')
    for (let b = 0; b < 5; b++)
      await zk.multi(
        Array.from({ length: 1000 }, (_, i) => ({
          op: 'create' as const,
          path: `/live/${name(b * 2000 + i * 2)}`,
        })),
      )
    const first = await zk.getChildrenPage('/live', { limit: 2000 })
    const cursor = first.next!
    expect(cursor).toBe(name(3998))
    // Behind the cursor (not seen), ahead of it (seen), and a deletion ahead of it (not listed).
    await zk.create(`/live/${name(1)}`)
    await zk.create(`/live/${name(5001)}`)
    await zk.delete(`/live/${name(6000)}`)
    const rest: string[] = []
    let after: string | undefined = cursor
    let stat = first.stat
    while (after !== undefined) {
      const page = await zk.getChildrenPage('/live', { limit: 777, after })
      rest.push(...page.children)
      stat = page.stat
      after = page.next
    }
    expect(stat.cversion).not.toBe(first.stat.cversion)
    expect(stat.pzxid).toBeGreaterThan(first.stat.pzxid)
    const listed = [...first.children, ...rest]
    expect(new Set(listed).size).toBe(listed.length)
    expect(listed).toEqual([...listed].sort())
    expect(listed).toContain(name(5001))
    expect(listed).not.toContain(name(1))
    expect(listed).not.toContain(name(6000))
    expect(listed.length).toBe(5000 + 1 - 1)
  })

  it('sets a child watch with the page that asks for one', async () => {
    await zk.create('/w')
    await zk.create('/w/a')
    const events: WatchEvent[] = []
    const page = await zk.getChildrenPage('/w', { watch: (e) => events.push(e) })
    expect(page.children).toEqual(['a'])
    expect(page.next).toBeUndefined()
    await zk.create('/w/b')
    await waitFor(() => events.length === 1, { timeoutMs: 10_000, what: 'the child watch' })
    expect(events[0]).toMatchObject({ type: 'childrenChanged', path: '/w' })
    // children() sets it with its first page.
    const more: WatchEvent[] = []
    const names: string[] = []
    for await (const n of zk.children('/w', { pageSize: 1, watch: (e) => more.push(e) })) names.push(n)
    expect(names).toEqual(['a', 'b'])
    await zk.delete('/w/a')
    await waitFor(() => more.length === 1, { timeoutMs: 10_000, what: "children()'s child watch" })
  })

  it('answers NO_NODE and NO_AUTH as getChildren does', async () => {
    await expect(zk.getChildrenPage('/missing')).rejects.toMatchObject({ code: 'NO_NODE' })
    await zk.create('/secret', '', { acl: [{ perms: 0, id: { scheme: 'world', id: 'anyone' } }] })
    await expect(zk.getChildrenPage('/secret')).rejects.toMatchObject({ code: 'NO_AUTH' })
  })

  it('the SDK refuses bad options before sending anything', async () => {
    for (const opts of [{ limit: 0 }, { limit: -1 }, { limit: 1.5 }, { after: 'a/b' }, { maxBytes: -1 }]) {
      const err = await zk.getChildrenPage('/big', opts).catch((e: unknown) => e)
      expect(ZkError.is(err, ErrorCode.BAD_ARGUMENTS), JSON.stringify(opts)).toBe(true)
    }
    await expect(zk.getChildrenPage('bad')).rejects.toMatchObject({ code: 'BAD_ARGUMENTS' })
  })

  it('the server refuses bad input with BAD_ARGUMENTS, sets no watch, and serves the next request', async () => {
    const raw = await RawClient.session(server.port)
    try {
      const base: ChildrenPageRequest = {
        op: ConclaveOpCode.getChildrenPage,
        path: '/big',
        after: '',
        maxCount: 10,
        maxBytes: 0,
        watch: true,
      }
      const bad: Partial<ChildrenPageRequest>[] = [
        { maxCount: 0 },
        { maxCount: -5 },
        { maxCount: 10_001 }, // over the default childrenPageMax
        { maxBytes: -1 },
        { after: 'x/y' },
        { after: '..' },
        { path: 'relative' },
      ]
      let xid = 1
      for (const b of bad) {
        raw.sendRequest(xid, { ...base, ...b })
        const r = await raw.reply(xid++)
        expect(errorCodeOf(r.err), JSON.stringify(b)).toBe('BAD_ARGUMENTS')
      }
      raw.sendRequest(xid, { ...base, maxCount: 10_000, watch: false })
      const ok = await raw.reply(xid++)
      expect(ok.err).toBe(0)
      expect(ok.body.vector((r) => r.string('name'), 4)?.length).toBe(10_000)
    } finally {
      raw.close()
    }
  })
})

describe.runIf(zookeeperAvailable())('getChildrenPage against Apache ZooKeeper', () => {
  it('rejects UNIMPLEMENTED without sending the opcode (ZooKeeper would drop it unanswered)', async () => {
    const zoo = await startZooKeeper()
    const zk = await Client.connect(zoo.connectString, { connectTimeoutMs: 30_000 })
    try {
      const err = await zk.getChildrenPage('/').catch((e: unknown) => e)
      expect(ZkError.is(err, ErrorCode.UNIMPLEMENTED)).toBe(true)
      expect(await zk.getChildren('/')).toContain('zookeeper') // the connection is fine
    } finally {
      await zk.close()
      await zoo.stop()
    }
  }, 90_000)
})
