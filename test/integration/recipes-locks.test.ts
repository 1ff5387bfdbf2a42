/**
 * Lock, ReadWriteLock, Semaphore, MultiLock and fencing (recipes/) against
 * real servers (every target of test/helpers/targets.ts): mutual exclusion
 * under contention with no lost update, strictly increasing fencing tokens,
 * hand-over when a holder's session dies, no herd effect, timeouts and
 * aborts that leave no node, protected mode after CONNECTION_LOSS, and the
 * paused-client fencing story.
 *
 * Invariants: no mocks of the server; every wait has a deadline; loops are bounded.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { Client, ErrorCode, ZkError } from '../../client/index.js'
import {
  FencedResource,
  Lock,
  MultiLock,
  ReadWriteLock,
  Semaphore,
  StaleTokenError,
} from '../../recipes/index.js'
import { startConclave, stopAllConclave } from '../helpers/conclave.js'
import { waitFor } from '../helpers/wait.js'
import { children, countingClient, dec, forEachTarget, SHORT_SESSION_MS } from '../unit/recipes/harness.js'

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

/** A client whose deletes fail with CONNECTION_LOSS, before they reach the server, while `link.down`. */
function lossyDeletes(zk: Client): { lossy: Client; link: { down: boolean } } {
  const link = { down: false }
  const lossy = new Proxy(zk, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (prop !== 'delete') return typeof value === 'function' ? value.bind(target) : value
      return (...args: Parameters<Client['delete']>) =>
        link.down
          ? Promise.reject(new ZkError(ErrorCode.CONNECTION_LOSS, args[0], 'CONNECTION_LOSS: test hook'))
          : target.delete(...args)
    },
  })
  return { lossy, link }
}

forEachTarget('Lock recipes', (env) => {
  describe('Lock', () => {
    it('5 sessions x 50 acquisitions: no lost update, fencing tokens strictly increasing', async () => {
      const root = env.root('lock-counter')
      const zks = await Promise.all([1, 2, 3, 4, 5].map(() => env.connect()))
      await zks[0]!.create(root, '')
      await zks[0]!.create(`${root}/counter`, '0')
      const tokens: number[] = []
      const guard = new FencedResource()
      let holders = 0
      let maxHolders = 0
      const worker = async (zk: Client): Promise<void> => {
        const lock = new Lock(zk, `${root}/lock`)
        for (let i = 0; i < 50; i++) {
          const { fencingToken } = await lock.acquire({ timeoutMs: 60_000 })
          maxHolders = Math.max(maxHolders, ++holders)
          tokens.push(fencingToken)
          guard.check('counter', fencingToken)
          const { data } = await zk.getData(`${root}/counter`)
          await zk.setData(`${root}/counter`, String(Number(dec(data)) + 1))
          holders--
          await lock.release()
        }
      }
      await Promise.all(zks.map(worker))
      expect(dec((await zks[0]!.getData(`${root}/counter`)).data)).toBe('250')
      expect(maxHolders).toBe(1)
      expect(tokens).toHaveLength(250)
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!)
      expect(await children(zks[0]!, `${root}/lock`)).toEqual([])
    })

    it('is re-entrant for the same object, with one token per holding', async () => {
      const zk = await env.connect()
      const lock = new Lock(zk, `${env.root('reentrant')}/lock`)
      const a = await lock.acquire()
      const b = await lock.acquire()
      expect(b.fencingToken).toBe(a.fencingToken)
      await lock.release()
      expect(lock.isHeld).toBe(true)
      await lock.release()
      expect(lock.isHeld).toBe(false)
      expect(a.signal.aborted).toBe(true)
      expect(await children(zk, lock.lockPath)).toEqual([])
      const err = await rejection(lock.release())
      expect(ZkError.is(err, ErrorCode.API_ERROR)).toBe(true)
    })

    it('each release wakes exactly one waiter (no herd)', async () => {
      const path = `${env.root('herd')}/lock`
      const holderZk = await env.connect()
      const holder = new Lock(holderZk, path)
      await holder.acquire()
      const waiters = await Promise.all(
        [1, 2, 3, 4].map(async () => {
          const counted = countingClient(await env.connect())
          return { ...counted, lock: new Lock(counted.client, path), done: false }
        }),
      )
      const pending = waiters.map((w) => w.lock.acquire({ timeoutMs: 30_000 }).then(() => (w.done = true)))
      // Queued and watching its predecessor (else a release could beat the watch: fine, but no test);
      // the first watch each sets is on its own node (with the create's Stat read-back).
      await waitFor(() => waiters.every((w) => w.armed() >= 2), { what: 'all waiters watching' })
      expect(await children(holderZk, path)).toHaveLength(5)
      let current: Lock = holder
      for (let round = 0; round < 4; round++) {
        for (const w of waiters) w.reset()
        const releasing = current
        await releasing.release()
        const next = await waitFor(
          () => waiters.find((w) => w.done && w.lock !== releasing && w.lock.isHeld),
          {
            what: `waiter ${round} to take the lock`,
          },
        )
        // A round trip on every waiter's connection delivers any event sent before it.
        await Promise.all(waiters.map((w) => w.client.exists('/')))
        const woken = waiters.filter((w) => w.lock !== releasing).reduce((n, w) => n + w.fired(), 0)
        expect(woken).toBe(1)
        expect(next.fired()).toBe(1)
        current = next.lock
      }
      await Promise.all(pending)
      await current.release()
    })

    it('acquire times out with OPERATION_TIMEOUT, or aborts, and leaves no node', async () => {
      const path = `${env.root('timeout')}/lock`
      const a = await env.connect()
      const b = await env.connect()
      await new Lock(a, path).acquire()
      const waiter = new Lock(b, path)
      const patient = new Lock(await env.connect(), path)
      // Ordered, not timed: the 300 ms waiter gives up first, while one queued just after it still
      // waits, whose signal aborts after 10 s (another mechanism: a Lock that ignored or stretched
      // timeoutMs would lose the race; a wall-time bound would fail on a loaded machine).
      const settled: string[] = []
      const timedOut = rejection(waiter.acquire({ timeoutMs: 300 })).finally(() => settled.push('300 ms'))
      const ac = new AbortController()
      const signal = AbortSignal.any([ac.signal, AbortSignal.timeout(10_000)])
      const aborted = rejection(patient.acquire({ signal })).finally(() => settled.push('10 s signal'))
      await Promise.race([timedOut, aborted])
      expect(settled).toEqual(['300 ms'])
      expect(ZkError.is(await timedOut, ErrorCode.OPERATION_TIMEOUT)).toBe(true)
      // The timed-out waiter left no node: the holder's and the patient waiter's are left.
      await waitFor(
        async () => {
          const owners = await Promise.all(
            (await children(a, path)).map(async (n) => (await a.exists(`${path}/${n}`))?.ephemeralOwner),
          )
          return owners.length === 2 && !owners.includes(b.sessionId)
        },
        { what: 'no node of the timed-out waiter’s session left' },
      )
      ac.abort(new Error('stop waiting'))
      expect(((await aborted) as Error).message).toBe('stop waiting')
      // The waiter's node goes (once in a full run against ZooKeeper it was still listed at the
      // instant of the rejection; the cleanup delete is sent before the rejection, so wait for it).
      await waitFor(async () => (await children(a, path)).length === 1, {
        what: 'the aborted waiter’s node to go',
      })
      expect(waiter.isHeld).toBe(false)
      expect(patient.isHeld).toBe(false)
    })

    // The paused-client story (Kleppmann; Jepsen etcd 3.4.3): A holds the lock and pauses past its
    // session timeout; B takes the lock and writes; A wakes and writes with its old token.
    // B's acquire has a deadline (30 s), not a wall-time bound checked afterwards.
    it('paused-client story: the lock passes on once the paused holder’s session expires and the stale write is fenced', async () => {
      const path = `${env.root('expiry')}/lock`
      const { zk: aZk, proxy } = await env.connectProxied({ sessionTimeoutMs: SHORT_SESSION_MS })
      const bZk = await env.connect()
      // The storage service: it checks the token atomically with each write.
      const fence = new FencedResource()
      const rows = new Map<string, string>()
      const write = (token: number, value: string): void => {
        fence.run('orders', token, () => rows.set('orders', value))
      }
      const a = new Lock(aZk, path)
      const lost: ZkError[] = []
      a.on('lost', (err) => lost.push(err))
      const aToken = (await a.acquire()).fencingToken
      write(aToken, 'A1')
      const b = new Lock(bZk, path)
      const bTaking = b.acquire({ timeoutMs: 30_000 })
      await waitFor(async () => (await children(bZk, path)).length === 2, { what: 'B to queue' })
      // A "pauses": nothing it sends reaches the server any more.
      proxy.stall()
      const { fencingToken: bToken } = await bTaking
      expect(bToken).toBeGreaterThan(aToken)
      write(bToken, 'B1')
      // A wakes up and writes with the token it still has: the storage refuses it.
      expect(() => write(aToken, 'A2 (stale)')).toThrow(StaleTokenError)
      expect(rows.get('orders')).toBe('B1')
      await waitFor(() => lost.length > 0, { what: "A's lost event" })
      expect(a.isHeld).toBe(false)
      expect(lost[0]!.code).toBe(ErrorCode.SESSION_EXPIRED)
      proxy.resume()
      await waitFor(() => aZk.state === 'expired', { timeoutMs: 15_000, what: 'A to learn it expired' })
      expect(ZkError.is(await rejection(a.release()), ErrorCode.SESSION_EXPIRED)).toBe(true)
      await b.release()
    })

    // The paused waiter (chaos run 220): the listing that makes a waiter the holder is answered,
    // then its process freezes past its session; the session expires and its node goes, another
    // contender is granted; the waiter wakes and reads the old answer. Here the answer is held
    // (a proxy over the real client) while the node is deleted: the late answer must be asked
    // again after a sync, and the acquire must fail instead of granting a node that is gone.
    // A middle contender sits between them, so the waiter's turn comes from a listing, not
    // from the deletion of its only predecessor (the next test).
    it('a winning answer that came back late is asked again after a sync: a waiter whose node went meanwhile is not granted', async () => {
      const path = `${env.root('late-answer')}/lock`
      const admin = await env.connect()
      const holder = new Lock(await env.connect(), path)
      await holder.acquire()
      const middle = new Lock(await env.connect(), path)
      const middleTaking = middle.acquire({ timeoutMs: 30_000 })
      await waitFor(async () => (await children(admin, path)).length === 2, { what: 'the middle to queue' })
      const zk = await env.connect({ sessionTimeoutMs: SHORT_SESSION_MS })
      let holdAnswer: (() => Promise<void>) | undefined
      const late = new Proxy(zk, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target)
          if (prop !== 'getChildren') return typeof value === 'function' ? value.bind(target) : value
          return async (...args: unknown[]) => {
            const answer = await (value as (...a: unknown[]) => Promise<string[]>).apply(target, args)
            const hold = holdAnswer
            holdAnswer = undefined
            if (hold !== undefined) await hold()
            return answer
          }
        },
      })
      const waiter = new Lock(late, path)
      const before = await children(admin, path)
      const taking = rejection(waiter.acquire({ timeoutMs: 30_000 }))
      await waitFor(async () => (await children(admin, path)).length === 3, { what: 'the waiter to queue' })
      const waiterName = (await children(admin, path)).find((n) => !before.includes(n))!
      holdAnswer = async () => {
        await admin.delete(`${path}/${waiterName}`)
        await new Promise((r) => setTimeout(r, SHORT_SESSION_MS / 3 + 200))
      }
      await holder.release()
      await middleTaking
      await middle.release()
      const err = await taking
      expect(ZkError.is(err, ErrorCode.NO_NODE)).toBe(true)
      expect(holdAnswer).toBeUndefined()
      expect(waiter.isHeld).toBe(false)
    })

    it('a waiter whose only predecessor is deleted takes the lock on the event, without listing again', async () => {
      const path = `${env.root('hand-off')}/lock`
      const holder = new Lock(await env.connect(), path)
      await holder.acquire()
      const zk = await env.connect()
      const counted = countingClient(zk)
      const waiter = new Lock(counted.client, path)
      const taking = waiter.acquire({ timeoutMs: 30_000 })
      await waitFor(() => counted.armed('getData') === 1, { what: 'the waiter to watch the holder' })
      await holder.release()
      const grant = await taking
      expect(counted.calls('getChildren')).toBe(1)
      expect(waiter.isHeld).toBe(true)
      expect(grant.path).toBe(waiter.nodePath)
      await waiter.release()
      expect(await children(zk, path)).toEqual([])
    })

    it("a waiter whose own node was deleted is not granted on its predecessor's deletion", async () => {
      const path = `${env.root('own-gone')}/lock`
      const admin = await env.connect()
      const holder = new Lock(await env.connect(), path)
      await holder.acquire()
      const before = await children(admin, path)
      const zk = await env.connect()
      const counted = countingClient(zk)
      const waiter = new Lock(counted.client, path)
      const taking = rejection(waiter.acquire({ timeoutMs: 30_000 }))
      await waitFor(() => counted.armed('getData') === 1, { what: 'the waiter to watch the holder' })
      const waiterName = (await children(admin, path)).find((n) => !before.includes(n))!
      await admin.delete(`${path}/${waiterName}`)
      // A round trip on the waiter's connection delivers the deletion's event before the release.
      await zk.exists('/')
      await holder.release()
      const err = await taking
      expect(ZkError.is(err, ErrorCode.NO_NODE)).toBe(true)
      expect(waiter.isHeld).toBe(false)
    })

    // The paused waiter again, on the event path: the predecessor's deletion is read after a
    // pause past a third of the session (its own node deleted meanwhile, that event read only
    // after, as a paused process reads its socket in order): no grant on the event, a listing.
    it("a predecessor's deletion read late is not a grant: the waiter lists again and fails with NO_NODE", async () => {
      const path = `${env.root('late-event')}/lock`
      const admin = await env.connect()
      const holder = new Lock(await env.connect(), path)
      await holder.acquire()
      const before = await children(admin, path)
      const zk = await env.connect({ sessionTimeoutMs: SHORT_SESSION_MS })
      let pause: (() => Promise<void>) | undefined
      let paused = false
      let watching = 0
      const queued: (() => void)[] = []
      type Read = (p: string, o?: { watch?: (ev: unknown) => void }) => Promise<unknown>
      const late = new Proxy(zk, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target)
          if (prop !== 'getData' && prop !== 'exists')
            return typeof value === 'function' ? value.bind(target) : value
          return (p: string, o?: { watch?: (ev: unknown) => void }) => {
            const w = o?.watch
            if (w === undefined) return (value as Read).call(target, p, o)
            if (prop === 'getData') watching++
            const watch = (ev: unknown): void => {
              // Events that come while "paused" are read after it, in order.
              if (paused) return void queued.push(() => w(ev))
              const hold = prop === 'getData' ? pause : undefined
              if (hold === undefined) return w(ev)
              pause = undefined
              paused = true
              void hold().then(() => {
                paused = false
                w(ev)
                setTimeout(() => {
                  for (const q of queued.splice(0)) q()
                })
              })
            }
            return (value as Read).call(target, p, { ...o, watch })
          }
        },
      })
      const waiter = new Lock(late as Client, path)
      const taking = rejection(waiter.acquire({ timeoutMs: 30_000 }))
      await waitFor(async () => (await children(admin, path)).length === 2, { what: 'the waiter to queue' })
      // Sent after the waiter's getData: answered (its watch set) before the release below.
      await waitFor(() => watching === 1, { what: 'the waiter to watch the holder' })
      await zk.sync(path)
      const waiterName = (await children(admin, path)).find((n) => !before.includes(n))!
      pause = async () => {
        await admin.delete(`${path}/${waiterName}`)
        await new Promise((r) => setTimeout(r, SHORT_SESSION_MS / 3 + 200))
      }
      await holder.release()
      const err = await taking
      expect(ZkError.is(err, ErrorCode.NO_NODE)).toBe(true)
      expect(pause).toBeUndefined()
      expect(waiter.isHeld).toBe(false)
    })

    it('serialises concurrent acquire calls on one object, each with its own deadline', async () => {
      const path = `${env.root('same-object')}/lock`
      const other = new Lock(await env.connect(), path)
      await other.acquire()
      const zk = await env.connect()
      const lock = new Lock(zk, path)
      const first = lock.acquire({ timeoutMs: 20_000 })
      const second = rejection(lock.acquire({ timeoutMs: 100 }))
      expect(ZkError.is(await second, ErrorCode.OPERATION_TIMEOUT)).toBe(true)
      const third = lock.acquire({ timeoutMs: 20_000 })
      await other.release()
      const [g1, g3] = await Promise.all([first, third])
      expect(g3.fencingToken).toBe(g1.fencingToken)
      expect(await children(zk, path)).toHaveLength(1)
      await lock.release()
      await lock.release()
      expect(await children(zk, path)).toEqual([])
    })

    it('reports lost when the session ends, and rejects waiters with SESSION_EXPIRED', async () => {
      const path = `${env.root('killed')}/lock`
      const other = await env.connect()
      const zk = await env.connect()
      const held = new Lock(zk, path)
      const lost = new Promise<ZkError>((resolve) => held.on('lost', resolve))
      await held.acquire()
      const waiterZk = await env.connect()
      const blocker = new Lock(other, `${path}-2`)
      await blocker.acquire()
      const waiter = new Lock(waiterZk, `${path}-2`)
      const waiting = rejection(waiter.acquire())
      await waitFor(async () => (await children(other, `${path}-2`)).length === 2, { what: 'waiter queued' })
      await env.killSession(zk)
      await env.killSession(waiterZk)
      expect((await lost).code).toBe(ErrorCode.SESSION_EXPIRED)
      expect(held.isHeld).toBe(false)
      expect(ZkError.is(await rejection(held.release()), ErrorCode.SESSION_EXPIRED)).toBe(true)
      expect(ZkError.is(await waiting, ErrorCode.SESSION_EXPIRED)).toBe(true)
      expect(await children(other, path)).toEqual([])
    })

    it('reports lost when its node is deleted behind its back', async () => {
      const path = `${env.root('deleted')}/lock`
      const zk = await env.connect()
      const admin = await env.connect()
      const lock = new Lock(zk, path)
      const lost = new Promise<ZkError>((resolve) => lock.on('lost', resolve))
      const grant = await lock.acquire()
      await admin.delete(grant.path)
      expect((await lost).code).toBe(ErrorCode.NO_NODE)
      expect(grant.signal.aborted).toBe(true)
      expect(ZkError.is(await rejection(lock.release()), ErrorCode.NO_NODE)).toBe(true)
    })

    it('after CONNECTION_LOSS on create, finds its own node by GUID instead of creating a second', async () => {
      const path = `${env.root('protected')}/lock`
      const zk = await env.connect()
      let lossesLeft = 1
      // The create reaches the server, but its reply is "lost".
      const lossy = new Proxy(zk, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target)
          if (prop !== 'create') return typeof value === 'function' ? value.bind(target) : value
          return async (...args: Parameters<Client['create']>) => {
            const created = await target.create(...args)
            if (args[0].startsWith(path) && lossesLeft-- > 0)
              throw new ZkError(
                ErrorCode.CONNECTION_LOSS,
                args[0],
                `CONNECTION_LOSS: reply lost (${created})`,
              )
            return created
          }
        },
      })
      const lock = new Lock(lossy, path)
      const grant = await lock.acquire({ timeoutMs: 10_000 })
      expect(lossesLeft).toBeLessThan(0)
      const names = await children(zk, path)
      expect(names).toHaveLength(1)
      expect(names[0]).toMatch(/^_c_[0-9a-f-]{36}-lock-\d{10}$/)
      expect(grant.path).toBe(`${path}/${names[0]}`)
      await lock.release()
      expect(await children(zk, path)).toEqual([])
    })
    it('a release whose delete meets CONNECTION_LOSS leaves the lock neither held nor stuck (CURATOR-678)', async () => {
      const path = `${env.root('release-loss')}/lock`
      const zk = await env.connect()
      const { lossy, link } = lossyDeletes(zk)
      const lock = new Lock(lossy, path)
      await lock.acquire()
      link.down = true
      const released = await lock.release().then(
        () => 'resolved',
        (err: unknown) => err,
      )
      expect(lock.isHeld).toBe(false)
      expect(released).toBe('resolved')
      link.down = false
      // The same object takes the lock again: its old node goes as soon as a delete gets through.
      const again = await lock.acquire({ timeoutMs: 8_000 })
      expect(lock.isHeld).toBe(true)
      await lock.release()
      const other = new Lock(await env.connect(), path)
      await other.acquire({ timeoutMs: 8_000 })
      expect(other.fencingToken).toBeGreaterThan(again.fencingToken)
      await other.release()
      expect(await children(zk, path)).toEqual([])
    })
  })

  describe('ReadWriteLock', () => {
    it('readers share, writers exclude, readers wait only for earlier writers', async () => {
      const path = `${env.root('rw')}/lock`
      const [z1, z2, z3, z4] = await Promise.all([1, 2, 3, 4].map(() => env.connect()))
      const r1 = new ReadWriteLock(z1!, path).readLock()
      const r2 = new ReadWriteLock(z2!, path).readLock()
      const w = new ReadWriteLock(z3!, path).writeLock()
      const r3 = new ReadWriteLock(z4!, path).readLock()
      await r1.acquire()
      await r2.acquire({ timeoutMs: 5_000 })
      let wHeld = false
      const wTaking = w.acquire({ timeoutMs: 20_000 }).then(() => (wHeld = true))
      await waitFor(async () => (await children(z1!, path)).length === 3, { what: 'the writer to queue' })
      let r3Held = false
      const r3Taking = r3.acquire({ timeoutMs: 20_000 }).then(() => (r3Held = true))
      await waitFor(async () => (await children(z1!, path)).length === 4, {
        what: 'the late reader to queue',
      })
      await r1.release()
      expect(wHeld).toBe(false)
      await r2.release()
      await wTaking
      expect(r3Held).toBe(false)
      await w.release()
      await r3Taking
      await r3.release()
      expect(await children(z1!, path)).toEqual([])
    })

    it('lets the write holder take the read lock (downgrade)', async () => {
      const path = `${env.root('rw-down')}/lock`
      const rw = new ReadWriteLock(await env.connect(), path)
      await rw.writeLock().acquire()
      await rw.readLock().acquire({ timeoutMs: 2_000 })
      await rw.writeLock().release()
      expect(rw.readLock().isHeld).toBe(true)
      await rw.readLock().release()
    })
  })

  describe('Semaphore', () => {
    it('never grants more than its permits; leases end with the session', async () => {
      const path = env.root('sem')
      const zks = await Promise.all([1, 2, 3, 4, 5].map(() => env.connect()))
      let inside = 0
      let most = 0
      await Promise.all(
        zks.map(async (zk) => {
          const sem = new Semaphore(zk, path, 2)
          for (let i = 0; i < 5; i++) {
            const lease = await sem.acquire({ timeoutMs: 30_000 })
            most = Math.max(most, ++inside)
            for (let k = 0; k < 5; k++) await zk.exists('/')
            inside--
            await lease.release()
          }
        }),
      )
      expect(most).toBeGreaterThan(0)
      expect(most).toBeLessThanOrEqual(2)
      const a = new Semaphore(zks[0]!, path, 2)
      const b = new Semaphore(zks[1]!, path, 2)
      await a.acquire()
      const bLease = await b.acquire()
      const bLost = new Promise<ZkError>((resolve) => b.on('lost', (_lease, err) => resolve(err)))
      expect(await a.participants()).toHaveLength(2)
      const c = new Semaphore(zks[2]!, path, 2)
      expect(ZkError.is(await rejection(c.acquire({ timeoutMs: 200 })), ErrorCode.OPERATION_TIMEOUT)).toBe(
        true,
      )
      expect(await a.participants()).toHaveLength(2)
      const waiting = c.acquire({ timeoutMs: 20_000 })
      await env.killSession(zks[1]!)
      expect((await bLost).code).toBe(ErrorCode.SESSION_EXPIRED)
      expect(bLease.signal.aborted).toBe(true)
      const lease = await waiting
      expect(lease.fencingToken).toBeGreaterThan(0)
      await c.release(lease)
      await a.release()
      expect(await a.participants()).toEqual([])
    })
    it('a lease whose release meets CONNECTION_LOSS does not keep its permit once the connection is back', async () => {
      const path = env.root('sem-release-loss')
      const zk = await env.connect()
      const { lossy, link } = lossyDeletes(zk)
      const sem = new Semaphore(lossy, path, 1)
      const lease = await sem.acquire({ timeoutMs: 8_000 })
      link.down = true
      await lease.release()
      expect(lease.signal.aborted).toBe(true)
      expect(sem.leases).toEqual([])
      link.down = false
      const other = new Semaphore(await env.connect(), path, 1)
      const next = await other.acquire({ timeoutMs: 8_000 })
      await next.release()
      expect(await other.participants()).toEqual([])
    })
  })

  describe('MultiLock', () => {
    it('takes all locks or none, and releases in reverse', async () => {
      const root = env.root('multi')
      const a = await env.connect()
      const b = await env.connect()
      const c = await env.connect()
      const first = new MultiLock(a, [`${root}/x`, `${root}/y`])
      const { fencingTokens } = await first.acquire()
      expect(fencingTokens).toHaveLength(2)
      const blocker = new Lock(c, `${root}/y`)
      const second = new MultiLock([new Lock(b, `${root}/x`), new Lock(b, `${root}/y`)])
      await first.release()
      await blocker.acquire()
      const err = await rejection(second.acquire({ timeoutMs: 300 }))
      expect(ZkError.is(err, ErrorCode.OPERATION_TIMEOUT)).toBe(true)
      // It gave back x: only the blocker's node remains.
      expect(await children(a, `${root}/x`)).toEqual([])
      expect(second.isHeld).toBe(false)
      await blocker.release()
      await second.acquire({ timeoutMs: 5_000 })
      await second.release()
      expect(await children(a, `${root}/y`)).toEqual([])
    })
  })
})

describe('Lock release while the server is down (Conclave, server process stopped)', () => {
  afterAll(stopAllConclave)

  // Without exactly-once writes the delete meets CONNECTION_LOSS and release() resolves while the
  // server is down (the delete goes on in the background); with them (the default) a write issued
  // while disconnected is not failed but waits for the connection: release() resolves once the
  // server is back. Either way the node goes and the lock is not stuck.
  it.each([false, true])(
    'a release while the server is down deletes the node once the server is back; the lock is not stuck (CURATOR-678); exactlyOnce %s',
    async (exactlyOnce) => {
      // tickTime 2000: sessions of up to 40 s, so the session outlives the server's absence.
      const server = await startConclave({ tickTime: 2_000 })
      const zks: Client[] = []
      try {
        const connect = async (): Promise<Client> => {
          const c = await Client.connect(server.connectString, {
            sessionTimeoutMs: 40_000,
            connectTimeoutMs: 15_000,
            reconnectDelayMs: 200,
            exactlyOnce,
          })
          zks.push(c)
          return c
        }
        const zk = await connect()
        const path = '/locks/release-while-down'
        const lock = new Lock(zk, path)
        const grant = await lock.acquire()
        await server.stop()
        const released = lock.release().then(
          () => 'resolved',
          (err: unknown) => err,
        )
        expect(lock.isHeld).toBe(false)
        expect(grant.signal.aborted).toBe(true)
        if (!exactlyOnce) expect(await released).toBe('resolved')
        await server.restart()
        expect(await released).toBe('resolved')
        await waitFor(() => zk.state === 'connected', { timeoutMs: 20_000, what: 'the client to reconnect' })
        // Same session, so its old node would still be there if nobody deleted it.
        const again = await lock.acquire({ timeoutMs: 10_000 })
        expect(again.fencingToken).toBeGreaterThan(grant.fencingToken)
        await lock.release()
        const other = new Lock(await connect(), path)
        await other.acquire({ timeoutMs: 10_000 })
        await other.release()
        expect(await children(zk, path)).toEqual([])
      } finally {
        await Promise.all(zks.map((c) => c.close().catch(() => {})))
        await server.stop()
        server.remove()
      }
    },
  )
})
