/**
 * Model-based property test of the replicated state, through the server's
 * own write path (TreeDb): random requests (every create mode, versions,
 * ACLs and auth, multis that fail part-way, sessions, reaping) are prepped
 * by TreeDb.prep (several before any is applied: its outstanding changes),
 * encoded, then applied by TreeDb.apply in zxid order; now and then the
 * leader changes (dropOutstanding; the Txns in flight committed or
 * truncated) or the tree is rebuilt from its own snapshot. A Map-based model
 * (model.ts) executes the same requests one at a time. They must agree on
 * every prep outcome (a refusal's code and a multi's per-op codes; a
 * refused write takes no zxid), every reply (created paths with their
 * sequence suffixes, Stats), every watch change, the session bookkeeping of
 * each applied Txn, and — whenever nothing is outstanding — on every node
 * (all Stat fields, data, ACL, sorted children), the sessions, the
 * ephemerals index, what is reapable and the size estimate; and then
 * TreeDb's outstanding changes are empty.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { dumpTree, expectSameDump, sizeFromContents } from '../tree/compare.js'
import { type Cmd, cmdsArb, Driver, runs } from './workload.js'

function checkIdle(d: Driver): void {
  expectSameDump(dumpTree(d.tree), d.model.dump())
  expect(d.tree.reapable(d.timeMs).sort()).toEqual(d.model.reapable(d.timeMs))
  expect(d.tree.sizeEstimateBytes()).toBe(sizeFromContents(d.tree))
  expect(d.overlaySize()).toBe(0)
}

function runAndCompare(cmds: Cmd[]): Driver {
  const d: Driver = new Driver(
    (step, expected) => {
      const what = `prep of ${describeReq(step.req)}`
      if (expected.result.type === 'error') {
        // Refused at prep: its code (and a multi's per-op codes) must match; no zxid is taken.
        expect(step.out, what).toEqual({
          ok: false,
          err: expected.result.code,
          ...(expected.result.results === undefined ? {} : { multi: expected.result.results }),
        })
        expect(d.zxid, what).toBe(step.ctx.zxid - 1)
      } else {
        expect(step.out.ok, what).toBe(true)
        expect(d.zxid, what).toBe(step.ctx.zxid)
      }
    },
    (p, out) => {
      expect(out.result, `result of zxid ${p.zxid}`).toEqual(p.expected.result)
      expect(out.changes, `changes of zxid ${p.zxid}`).toEqual(p.expected.changes)
      expect(out.sessionId).toBe(p.ctx.sessionId)
      expect(out.cxid).toBe(p.ctx.cxid)
      expect(out.sessionCreated).toEqual(
        p.req.type === 'createSession' ? { id: p.ctx.sessionId, timeoutMs: p.req.timeoutMs } : undefined,
      )
      expect(out.sessionClosed).toBe(p.req.type === 'closeSession' ? p.ctx.sessionId : undefined)
      expect(d.tree.lastZxid).toBe(p.zxid)
    },
  )
  for (const c of cmds) {
    d.step(c)
    if (d.pending.length === 0) checkIdle(d)
  }
  d.applyAll()
  checkIdle(d)
  expect(d.tree.lastZxid).toBe(d.log.at(-1)?.zxid ?? 0)
  return d
}

function describeReq(req: unknown): string {
  return JSON.stringify(req, (_, v) =>
    typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? [...v] : v,
  )
}

describe('TreeDb vs reference model', () => {
  it('agrees on prep outcomes, results, Stats, children, changes and sessions for random pipelined workloads', () => {
    let succeeded = 0
    let total = 0
    fc.assert(
      fc.property(cmdsArb(150), (cmds) => {
        const d = runAndCompare(cmds)
        succeeded += d.succeeded
        total++
      }),
      { numRuns: runs(300) },
    )
    // The workload must exercise success paths, not only refusals.
    expect(succeeded / total).toBeGreaterThan(10)
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
