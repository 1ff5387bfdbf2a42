/**
 * Model-based property test of the whole data core: random requests (every
 * create mode, versions, ACLs and auth, multis that fail part-way, sessions,
 * reaping) go through prepAndRecord (the OutstandingChanges overlay: several are
 * prepped before any is applied) → encodeTxn → decodeTxn → DataTree.apply,
 * and a Map-based model (model.ts) executes the same requests one at a
 * time. They must agree on every prep outcome (codes, multi results), every
 * reply body (created paths with their sequence suffixes, Stats), every
 * watch change, and — whenever nothing is outstanding — on every node
 * (all Stat fields, data, ACL, sorted children), the sessions, the
 * ephemerals index and what is reapable.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { sizeFromContents } from '../tree/harness.js'
import { dumpModel, dumpTree } from './compare.js'
import { type Cmd, cmdsArb, Driver, runs } from './workload.js'

function runAndCompare(cmds: Cmd[]): Driver {
  const d: Driver = new Driver(
    (step, expected) => {
      // A failed request is an error Txn; its code (and a multi's per-op codes) must match.
      if (expected.result.type === 'error') {
        expect(step.txn, `prep of ${describeReq(step.req)}`).toMatchObject({
          type: 'error',
          code: expected.result.code,
        })
        expect((step.txn as { results?: unknown }).results).toEqual(expected.result.results)
      } else {
        expect(step.txn.type, `prep of ${describeReq(step.req)}`).not.toBe('error')
      }
    },
    (p, out) => {
      expect(out.result, `result of zxid ${p.zxid}`).toEqual(p.expected.result)
      expect(out.events, `changes of zxid ${p.zxid}`).toEqual(p.expected.changes)
    },
  )
  for (const c of cmds) {
    d.run(c)
    if (d.pending.length === 0) {
      expect(dumpTree(d.db.tree)).toEqual(dumpModel(d.model))
      expect(d.db.tree.reapable(d.time).sort()).toEqual(d.model.reapable(d.time))
      expect(d.db.tree.sizeEstimateBytes()).toBe(sizeFromContents(d.db.tree))
    }
  }
  d.applyAll()
  expect(dumpTree(d.db.tree)).toEqual(dumpModel(d.model))
  expect(d.db.tree.reapable(d.time).sort()).toEqual(d.model.reapable(d.time))
  expect(d.db.tree.lastZxid).toBe(d.zxid)
  expect(d.db.tree.sizeEstimateBytes()).toBe(sizeFromContents(d.db.tree))
  return d
}

function describeReq(req: unknown): string {
  return JSON.stringify(req, (_, v) =>
    typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? [...v] : v,
  )
}

describe('data core vs reference model', () => {
  it('agrees on results, Stats, children, changes and sessions for random pipelined workloads', () => {
    fc.assert(
      fc.property(cmdsArb(150), (cmds) => {
        runAndCompare(cmds)
      }),
      { numRuns: runs(300) },
    )
  })

  it('agrees on long workloads (deep sequence counters, many sessions coming and going)', () => {
    fc.assert(
      fc.property(cmdsArb(600), (cmds) => {
        runAndCompare(cmds)
      }),
      { numRuns: runs(25) },
    )
  })
})
