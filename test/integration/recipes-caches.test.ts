/**
 * NodeCache and TreeCache (recipes/) against real servers: a node cache
 * follows create, change, delete and re-create; a tree cache converges to
 * the server's tree after 1,000 seeded random changes (and its 'change'
 * events, replayed, give the same tree); a tree cache repairs itself after
 * a disconnection during which it missed events — from the replayed events
 * alone against Conclave (its watch resumes: no walk, no getChildren), by
 * walking the subtree again ('resynced') against ZooKeeper.
 *
 * Invariants: no mocks of the server; every wait has a deadline; loops are
 * bounded; the random changes come from a seeded generator (the seed is in
 * the test name) so a failure can be replayed.
 */
import { describe, expect, it } from 'vitest'
import type { Client } from '../../client/index.js'
import { type CachedNode, NodeCache, TreeCache } from '../../recipes/index.js'
import { waitFor } from '../helpers/wait.js'
import { dec, forEachTarget } from '../unit/recipes/harness.js'

/** mulberry32: a small seeded generator, so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The subtree as the server has it: path -> data. */
async function readTree(zk: Client, root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const visit = async (p: string): Promise<void> => {
    try {
      const [{ data }, kids] = await Promise.all([zk.getData(p), zk.getChildren(p)])
      out.set(p, dec(data))
      await Promise.all(kids.map((k) => visit(`${p}/${k}`)))
    } catch {
      // Deleted while we looked: absent.
    }
  }
  await visit(root)
  return out
}

const asText = (m: Map<string, CachedNode>): Map<string, string> =>
  new Map([...m].map(([p, n]) => [p, dec(n.data)]))

const sorted = (m: Map<string, string>): string[] => [...m].map(([p, d]) => `${p}=${d}`).sort()

/** Applies random creates, sets and deletes under `root` (depth <= 3, a few names per level). */
async function randomChanges(zk: Client, root: string, seed: number, count: number): Promise<void> {
  const rnd = prng(seed)
  const live = new Set<string>([root])
  for (let i = 0; i < count; i++) {
    const nodes = [...live]
    const node = nodes[Math.floor(rnd() * nodes.length)]!
    const r = rnd()
    const depth = node.split('/').length - root.split('/').length
    try {
      if (r < 0.5 && depth < 3) {
        const child = `${node}/n${Math.floor(rnd() * 5)}`
        await zk.create(child, `v${i}`)
        live.add(child)
      } else if (r < 0.8 || node === root) {
        await zk.setData(node, `v${i}`)
      } else {
        await zk.delete(node)
        live.delete(node)
      }
    } catch {
      // NODE_EXISTS or NOT_EMPTY: a no-op change; the next one differs.
    }
  }
}

forEachTarget('Cache recipes', (env) => {
  describe('NodeCache', () => {
    it('follows create, change, delete and re-create', async () => {
      const writer = await env.connect()
      const path = env.root('node-cache')
      const cache = new NodeCache(await env.connect(), path)
      const seen: (string | null)[] = []
      cache.on('change', (n) => seen.push(n === null ? null : dec(n.data)))
      await cache.start()
      expect(cache.current).toBe(null)
      await writer.create(path, 'one')
      await waitFor(() => cache.current?.data !== undefined, { what: 'the create' })
      await writer.setData(path, 'two')
      await waitFor(() => seen.at(-1) === 'two', { what: 'the change' })
      await writer.delete(path)
      await waitFor(() => cache.current === null, { what: 'the delete' })
      await writer.create(path, 'three')
      await waitFor(() => seen.at(-1) === 'three', { what: 'the re-create' })
      expect(seen).toEqual(['one', 'two', null, 'three'])
      await cache.close()
    })
  })

  describe('TreeCache', () => {
    const SEED = 0x5eed
    it(`converges to the tree after 1,000 random changes (seed ${SEED})`, async () => {
      const writer = await env.connect()
      const root = env.root('tree-cache')
      await writer.create(root, 'root')
      await writer.create(`${root}/pre`, 'existing')
      const cache = new TreeCache(await env.connect(), root)
      const mirror = new Map<string, string>()
      cache.on('change', (ev) => {
        if (ev.type === 'removed') mirror.delete(ev.path)
        else mirror.set(ev.path, dec(ev.node!.data))
      })
      await cache.start()
      expect(dec(cache.get(`${root}/pre`)!.data)).toBe('existing')
      await randomChanges(writer, root, SEED, 1_000)
      const truth = sorted(await readTree(writer, root))
      await waitFor(() => sorted(asText(cache.snapshot())).join() === truth.join(), {
        timeoutMs: 20_000,
        what: 'the cache to converge',
      })
      expect(sorted(mirror)).toEqual(truth)
      const top = truth.filter((l) => l.split('=')[0]!.split('/').length === root.split('/').length + 1)
      expect(cache.children(root).map((n) => `${root}/${n}`)).toEqual(top.map((l) => l.split('=')[0]).sort())
      await cache.close()
    })

    it('repairs itself after a disconnection in which it missed events', async () => {
      const writer = await env.connect()
      const root = env.root('tree-resync')
      await writer.create(root, 'r')
      await writer.create(`${root}/a`, 'a0')
      await writer.create(`${root}/b`, 'b0')
      const { zk, proxy } = await env.connectProxied()
      // Counts the cache's listings (a walk of the subtree lists every node).
      let listings = 0
      const counted = new Proxy(zk, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target)
          if (prop === 'getChildren' || prop === 'getChildrenWithStat') listings++
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
      const cache = new TreeCache(counted, root)
      let resynced = 0
      cache.on('resynced', () => resynced++)
      await cache.start()
      expect(cache.size).toBe(3)
      const listingsBefore = listings
      proxy.stall()
      await waitFor(() => zk.state === 'disconnected', { what: 'the cache client to notice' })
      await writer.setData(`${root}/a`, 'a1')
      await writer.delete(`${root}/b`)
      await writer.create(`${root}/c`, 'c0')
      await writer.create(`${root}/c/d`, 'd0')
      proxy.resume()
      const resumes = env.target === 'conclave'
      if (!resumes) await waitFor(() => resynced > 0, { timeoutMs: 15_000, what: 'a resync' })
      const truth = sorted(await readTree(writer, root))
      await waitFor(() => sorted(asText(cache.snapshot())).join() === truth.join(), {
        timeoutMs: 15_000,
        what: 'repair',
      })
      expect(truth).toEqual([`${root}/a=a1`, `${root}/c/d=d0`, `${root}/c=c0`, `${root}=r`].sort())
      if (resumes) {
        // The missed events were replayed: the cache read just those nodes, and listed nothing.
        expect(resynced).toBe(0)
        expect(listings).toBe(listingsBefore)
      }
      await cache.close()
    })
  })
})
