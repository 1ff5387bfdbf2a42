/**
 * Measures heap bytes per znode of the DataTree: N znodes of 100 bytes of
 * data each (distinct data, 100 parents, ~22-character paths), created
 * through real create Txns (DataTree.apply). Reports V8 heap and
 * ArrayBuffer memory (the NodeStore's typed-array columns live there), per
 * znode, after full GCs. ZooKeeper's figure to beat: ~460 bytes per
 * 100-byte znode.
 *
 * Run: npx tsc -p tsconfig.json && node --expose-gc dist/test/bench/measure-memory.js [N…]
 *
 * An entry point run by hand, not part of the pure core (the architecture
 * test skips measure-* files): it reads process.memoryUsage.
 */

import { DataTree } from '../../server/tree/data-tree.js'
import { OPEN_ACL_UNSAFE } from '../../shared/acl.js'

const gc = (globalThis as { gc?: () => void }).gc

function used(): { heap: number; buffers: number } {
  gc!()
  gc!()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, buffers: m.arrayBuffers }
}

function build(n: number): DataTree {
  const tree = new DataTree()
  let zxid = 2 ** 32
  const timeMs = 1_700_000_000_000
  const acl = [...OPEN_ACL_UNSAFE]
  const txn = (path: string, data: Uint8Array, parentCversion: number) => ({
    sessionId: 1n,
    cxid: 0,
    zxid: ++zxid,
    timeMs: timeMs + zxid,
    type: 'create' as const,
    path,
    data,
    acl,
    mode: 'persistent' as const,
    ttlMs: 0,
    parentCversion,
  })
  tree.apply(txn('/m', new Uint8Array(0), 1))
  const parents = 100
  for (let p = 0; p < parents; p++)
    tree.apply(txn(`/m/p${String(p).padStart(4, '0')}`, new Uint8Array(0), p + 1))
  const data = new Uint8Array(100)
  for (let i = 0; i < n; i++) {
    // Distinct bytes per znode, so nothing is shared by accident.
    for (let j = 0; j < 100; j++) data[j] = (i * 31 + j * 7) & 0xff
    const parent = `/m/p${String(i % parents).padStart(4, '0')}`
    tree.apply(txn(`${parent}/n-${String(i).padStart(10, '0')}`, data, Math.floor(i / parents) + 1))
  }
  return tree
}

function measure(n: number): void {
  const before = used()
  const tree = build(n)
  const after = used()
  const heap = (after.heap - before.heap) / n
  const buffers = (after.buffers - before.buffers) / n
  const line = [
    `znodes=${n}`,
    `heap=${heap.toFixed(1)} B/znode`,
    `arrayBuffers=${buffers.toFixed(1)} B/znode`,
    `total=${(heap + buffers).toFixed(1)} B/znode`,
    `(count ${tree.nodeCount()}, digest ${tree.digest()})`,
  ]
  console.log(line.join('  '))
}

if (gc === undefined) {
  console.error('run with node --expose-gc')
  process.exitCode = 2
} else {
  const sizes = process.argv.slice(2).map(Number)
  for (const n of sizes.length > 0 ? sizes : [100_000, 1_000_000]) measure(n)
}
