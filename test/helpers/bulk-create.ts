/**
 * Fills a parent with many znodes quickly (a snapshot large enough to
 * stream over many slices): `${parent}/n0` .. `${parent}/n${n - 1}`, each
 * holding `data`, created in multis of MULTI_OPS.
 */
import type { Client } from '../../client/index.js'

const MULTI_OPS = 500

export async function createChildren(c: Client, parent: string, n: number, data: string): Promise<void> {
  for (let b = 0; b < n; b += MULTI_OPS) {
    const ops = []
    for (let i = b; i < Math.min(n, b + MULTI_OPS); i++)
      ops.push({ op: 'create' as const, path: `${parent}/n${i}`, data })
    await c.multi(ops)
  }
}
