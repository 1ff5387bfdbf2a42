/**
 * The real write path (prep against outstanding changes, then live apply,
 * in batches: pipelining) against a Map-based reference model applied one
 * request at a time: same results (codes, paths, every Stat field), same
 * tree (stats, data, ACLs, children), same sessions and ephemerals, same
 * reap candidates.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Txn } from '../../../server/txn/txn.js'
import { dumpTree, Leader } from '../tree/harness.js'
import { type Ctx, Model } from '../tree/model.js'
import { ALICE, type Step, workload } from '../tree/workload.js'

function modelDump(m: Model) {
  const nodes: Record<string, unknown> = {}
  for (const p of [...m.nodes.keys()].sort()) {
    const n = m.nodes.get(p)!
    nodes[p] = {
      stat: m.stat(p),
      data: n.data === null ? null : Buffer.from(n.data).toString('hex'),
      acl: n.acl,
      children: m.children(p),
    }
  }
  const sessions = [...m.sessions]
    .map(([sessionId, timeoutMs]) => ({ sessionId, timeoutMs }))
    .sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1))
  const ephemerals: Record<string, string[]> = {}
  for (const s of sessions)
    ephemerals[s.sessionId.toString()] = [...m.nodes]
      .filter(([, n]) => n.kind === 'ephemeral' && n.owner === s.sessionId)
      .map(([p]) => p)
      .sort()
  return { nodes, sessions, ephemerals }
}

/** Runs a workload through both; returns the number of requests that succeeded. */
function runAgainstModel(steps: Step[]): number {
  const l = new Leader()
  const m = new Model()
  m.sessions.set(1n, 10_000)
  let pending: { txn: Txn; expected: unknown }[] = []
  let ok = 0
  const flush = () => {
    for (const { txn, expected } of pending) {
      const res = l.commit(txn)
      expect(res.result).toEqual(expected)
      if (res.result.type !== 'error') ok++
    }
    pending = []
    expect(l.changes.size).toBe(0)
    expect(dumpTree(l.tree)).toEqual(modelDump(m))
    expect(l.tree.reapable(l.timeMs).sort()).toEqual(m.reapable(l.timeMs))
  }
  for (const s of steps) {
    const authIds = s.alice ? [ALICE] : []
    const txn = l.prep(s.req, { sessionId: s.sessionId, authIds, dtMs: s.dtMs })
    const ctx: Ctx = { zxid: txn.zxid, timeMs: txn.timeMs, sessionId: s.sessionId, authIds }
    pending.push({ txn, expected: m.exec(s.req, ctx) })
    if (s.flush) flush()
  }
  flush()
  return ok
}

describe('prep + apply against the reference model', () => {
  it('agree on every result, stat, child list, session and reap candidate', () => {
    let succeeded = 0
    fc.assert(
      fc.property(workload, (steps) => {
        succeeded += runAgainstModel(steps)
      }),
      { numRuns: 400 },
    )
    // The workload must actually exercise success paths, not only errors.
    expect(succeeded).toBeGreaterThan(2000)
  })
})
