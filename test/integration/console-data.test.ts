/**
 * The console's work on a real server, through the SDK in Node (the same
 * code the page runs): the coordination scan decodes live recipes (Lock,
 * ReadWriteLock, Semaphore, LeaderElection, GroupMembership, Queue,
 * PriorityQueue) and follows them as holders and leaders change; a subtree
 * exports to JSON (text and binary data, ephemerals marked) and imports
 * elsewhere (existing nodes kept or overwritten, ephemerals skipped); a
 * recursive delete removes exactly the count it announced.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import { type Structure, scan } from '../../console/app/coordination.js'
import {
  deleteRecursive,
  exportSubtree,
  importSubtree,
  type SubtreeDocument,
  subtreeSize,
} from '../../console/app/subtree.js'
import {
  GroupMembership,
  LeaderElection,
  Lock,
  PriorityQueue,
  Queue,
  ReadWriteLock,
  Semaphore,
} from '../../recipes/index.js'
import { type ConclaveProcess, startConclave } from '../helpers/conclave.js'
import { waitFor } from '../helpers/wait.js'

let server: ConclaveProcess
const clients: Client[] = []

async function connect(): Promise<Client> {
  const zk = await Client.connect(server.connectString, { sessionTimeoutMs: 10_000 })
  clients.push(zk)
  return zk
}

beforeAll(async () => {
  server = await startConclave()
})

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {})
  await server?.stop()
  server?.remove()
})

function find<T extends Structure['type']>(
  all: Structure[],
  type: T,
  path: string,
): Extract<Structure, { type: T }> | undefined {
  return all.find((s): s is Extract<Structure, { type: T }> => s.type === type && s.path === path)
}

describe('the coordination scan on live recipes', () => {
  it('finds holders, waiters, leaders, members and depths, and follows changes', async () => {
    const a = await connect()
    const b = await connect()
    const lockA = new Lock(a, '/coord/locks/orders')
    const { fencingToken } = await lockA.acquire()
    const lockB = new Lock(b, '/coord/locks/orders')
    const waiting = lockB.acquire({ timeoutMs: 20_000 })
    const rw = new ReadWriteLock(a, '/coord/rw')
    await rw.readLock().acquire()
    const sem = new Semaphore(b, '/coord/sem', 2)
    await sem.acquire()
    const e1 = new LeaderElection(a, '/coord/election', 'node-a')
    await e1.start()
    const e2 = new LeaderElection(b, '/coord/election', 'node-b')
    await e2.start()
    const group = new GroupMembership(b, '/coord/group')
    await group.join('api-1', '{"port":8080}')
    const q = new Queue(a, '/coord/queue')
    for (let i = 0; i < 3; i++) await q.put(`job ${i}`)
    const pq = new PriorityQueue(a, '/coord/pq')
    await pq.put('urgent', 1)

    const viewer = await connect()
    const r = await waitFor(
      async () => {
        const r = await scan(viewer, '/coord')
        return find(r.structures, 'lock', '/coord/locks/orders')?.waiters.length === 1 ? r : undefined
      },
      { what: 'the waiter to show' },
    )
    const lock = find(r.structures, 'lock', '/coord/locks/orders')!
    expect(lock.holders.map((c) => [c.session, c.fencingToken])).toEqual([[a.sessionId, fencingToken]])
    expect(lock.waiters[0]!.session).toBe(b.sessionId)
    expect(find(r.structures, 'rwlock', '/coord/rw')?.holders.map((c) => c.kind)).toEqual(['read'])
    expect(find(r.structures, 'semaphore', '/coord/sem')?.leases.map((c) => c.session)).toEqual([b.sessionId])
    // The semaphore's mutex is a lock of its own, free between acquisitions.
    const election = find(r.structures, 'election', '/coord/election')!
    expect(election.leader?.id).toBe('node-a')
    expect(election.candidates.map((c) => c.id)).toEqual(['node-a', 'node-b'])
    expect(find(r.structures, 'group', '/coord/group')?.members).toEqual([
      { id: 'api-1', session: b.sessionId, data: '{"port":8080}' },
    ])
    expect(find(r.structures, 'queue', '/coord/queue')).toMatchObject({ kind: 'fifo', depth: 3 })
    expect(find(r.structures, 'queue', '/coord/pq')).toMatchObject({ kind: 'priority', depth: 1 })
    expect(r.truncated).toBe(false)

    // The holder's session ends: the waiter holds the lock, and the election has a new leader.
    await a.close()
    const grant = await waiting
    const after = await waitFor(
      async () => {
        const r = await scan(viewer, '/coord')
        return find(r.structures, 'election', '/coord/election')?.leader?.id === 'node-b' ? r : undefined
      },
      { what: 'node-b to lead' },
    )
    const lock2 = find(after.structures, 'lock', '/coord/locks/orders')!
    expect(lock2.holders.map((c) => [c.session, c.fencingToken])).toEqual([[b.sessionId, grant.fencingToken]])
    expect(grant.fencingToken).toBeGreaterThan(fencingToken)
    expect(lock2.waiters).toEqual([])
    expect(find(after.structures, 'queue', '/coord/queue')).toMatchObject({ depth: 3 })
    await lockB.release()
  })

  it('stops at the node limit and says so', async () => {
    const zk = await connect()
    await zk.create('/wide', '')
    await Promise.all(Array.from({ length: 30 }, (_, i) => zk.create(`/wide/n${i}`, '')))
    const r = await scan(zk, '/wide', 10)
    expect(r.truncated).toBe(true)
    expect(r.visited).toBe(10)
  })
})

describe('subtrees', () => {
  it('export, import elsewhere, and recursive delete with the announced count', async () => {
    const zk = await connect()
    await zk.create('/src', 'root')
    await zk.create('/src/config', '{"color":"blue"}')
    await zk.create('/src/bin', new Uint8Array([0, 1, 0xff]))
    await zk.create('/src/config/deep', 'x')
    await zk.create('/src/eph', 'mine', { mode: 'ephemeral' })
    const doc = await exportSubtree(zk, '/src')
    expect(doc.root.children.config?.data).toBe('{"color":"blue"}')
    expect(doc.root.children.bin).toMatchObject({ encoding: 'base64', data: 'AAH/' })
    expect(doc.root.children.eph?.ephemeral).toBe(true)
    // Through JSON, as a file would carry it.
    const copy = JSON.parse(JSON.stringify(doc)) as SubtreeDocument
    expect(await importSubtree(zk, '/dst', copy)).toEqual({
      created: 4,
      updated: 0,
      unchanged: 0,
      skippedEphemeral: 1,
    })
    expect((await zk.getData('/dst/bin')).data).toEqual(new Uint8Array([0, 1, 0xff]))
    expect(new TextDecoder().decode((await zk.getData('/dst/config/deep')).data)).toBe('x')
    expect(await zk.exists('/dst/eph')).toBeNull()
    // Again: existing nodes are kept, or overwritten when asked.
    await zk.setData('/dst/config', 'changed')
    expect(await importSubtree(zk, '/dst', copy)).toMatchObject({ created: 0, unchanged: 4 })
    expect(new TextDecoder().decode((await zk.getData('/dst/config')).data)).toBe('changed')
    expect(await importSubtree(zk, '/dst', copy, { overwrite: true })).toMatchObject({ updated: 4 })
    expect(new TextDecoder().decode((await zk.getData('/dst/config')).data)).toBe('{"color":"blue"}')

    expect(await subtreeSize(zk, '/dst')).toBe(4)
    expect(await deleteRecursive(zk, '/dst')).toBe(4)
    expect(await zk.exists('/dst')).toBeNull()
    await expect(exportSubtree(zk, '/dst')).rejects.toMatchObject({ code: 'NO_NODE' })
  })
})
