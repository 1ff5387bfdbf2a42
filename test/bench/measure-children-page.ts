/**
 * What a paginated getChildren costs in the tree, for one parent of N
 * children (created in an order that is not the name order, through real
 * create Txns): a znode's children are an unordered set of slots, so a page
 * without an index would sort all N names (timed here as "sort all";
 * getChildren, which reads the index too, is timed as well). The tree keeps an ordered index of every parent of
 * ORDERED_MIN children or more, so a page is O(log N + page). Reports the
 * pages (1,000 names each: median and slowest), a create and a delete with
 * the index, and, on the same tree loaded from its snapshot (no index until
 * the first page), that first page (the index built: one sort) and the
 * index's heap bytes per child (after full GCs).
 *
 * Run: npx tsc -p tsconfig.json && node --expose-gc dist/test/bench/measure-children-page.js [N…]
 *
 * An entry point run by hand (the architecture test skips measure-* files).
 */

import { DataTree } from '../../server/tree/data-tree.js'
import { OPEN_ACL_UNSAFE } from '../../shared/acl.js'

const gc = (globalThis as { gc?: () => void }).gc
const PAGE = 1000

function heap(): number {
  gc!()
  gc!()
  return process.memoryUsage().heapUsed
}

let zxid = 2 ** 32

function create(tree: DataTree, path: string, parentCversion: number): void {
  tree.apply({
    sessionId: 1n,
    cxid: 0,
    zxid: ++zxid,
    timeMs: 1_700_000_000_000,
    type: 'create',
    path,
    data: new Uint8Array(0),
    acl: [...OPEN_ACL_UNSAFE],
    mode: 'persistent',
    ttlMs: 0,
    parentCversion,
  })
}

const ms = (t0: number): number => performance.now() - t0

function measure(n: number): void {
  const tree = new DataTree()
  create(tree, '/q', 1)
  for (let i = 0; i < n; i++) create(tree, `/q/item-${String((i * 7919) % n).padStart(10, '0')}`, i + 1)
  let t0 = performance.now()
  const all = tree.getChildren('/q')!
  const getChildren = ms(t0)
  // What a page would cost without the index: a sort of every name (as getChildren did).
  const shuffled = all.map((name, i) => all[(i * 7919) % all.length]!.slice(0) || name)
  t0 = performance.now()
  shuffled.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const sortAll = ms(t0)
  const times: number[] = []
  let page = { names: [] as string[], more: true }
  let listed = 0
  while (page.more) {
    t0 = performance.now()
    page = tree.childrenPage('/q', page.names.at(-1) ?? '', PAGE, 1 << 20)!
    times.push(ms(t0))
    listed += page.names.length
  }
  if (listed !== all.length) throw new Error(`listed ${listed} of ${all.length}`)
  times.sort((a, b) => a - b)
  t0 = performance.now()
  create(tree, '/q/item-0000000000x', n + 1)
  const createMs = ms(t0)
  t0 = performance.now()
  tree.apply({
    sessionId: 1n,
    cxid: 0,
    zxid: ++zxid,
    timeMs: 1_700_000_000_000,
    type: 'delete',
    path: '/q/item-0000000000x',
  })
  const deleteMs = ms(t0)
  const snap = tree.snapshot()
  const loaded = DataTree.fromSnapshot(snap.chunks)
  const before = heap()
  t0 = performance.now()
  loaded.childrenPage('/q', '', PAGE, 1 << 20)
  const first = ms(t0)
  const indexBytes = (heap() - before) / n
  console.log(
    [
      `children=${n}`,
      `sort all=${sortAll.toFixed(1)} ms`,
      `getChildren=${getChildren.toFixed(1)} ms (from the index)`,
      `pages: median ${times[times.length >> 1]?.toFixed(3) ?? '-'} ms, max ${times.at(-1)?.toFixed(2) ?? '-'} ms`,
      `create ${createMs.toFixed(2)} ms, delete ${deleteMs.toFixed(2)} ms with the index`,
      `after a snapshot load: first page ${first.toFixed(1)} ms (builds the index), index ${indexBytes.toFixed(1)} B/child`,
    ].join('  '),
  )
}

if (gc === undefined) {
  console.error('run with node --expose-gc')
  process.exitCode = 2
} else {
  const sizes = process.argv.slice(2).map(Number)
  for (const n of sizes.length > 0 ? sizes : [10_000, 100_000, 1_000_000]) measure(n)
}
