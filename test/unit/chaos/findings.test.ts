/**
 * The anomalies chaos runs found, kept as minimised histories in
 * test/chaos/findings/ (docs/chaos.md tells each story), and the checkers
 * still flagging them:
 *
 * - conclave-201-queue-duplicate: Queue.put's protected create made an item
 *   twice — a consumer took the first copy before the put's own check that
 *   its node exists, which found it gone and created it again (the same on
 *   ZooKeeper: zookeeper-104-queue-duplicate).
 * - zookeeper-101-ephemeral-stale-read: on Apache ZooKeeper, `sync` +
 *   `exists` on one server found an ephemeral gone 4–30 ms after its create
 *   was acknowledged, right after that server woke from a 2.6-s SIGSTOP —
 *   a stale read after sync (ZOOKEEPER-1675's kind); later reads elsewhere
 *   found it.
 */
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { readHistory } from '../../chaos/history.js'
import { checkEphemerals } from '../../chaos/workloads/ephemeral.js'
import { checkQueue } from '../../chaos/workloads/queue.js'

const finding = (name: string) =>
  readHistory(fileURLToPath(new URL(`../../chaos/findings/${name}.jsonl`, import.meta.url))).events

describe('kept chaos findings', () => {
  it('a queue item put once and taken twice (Conclave run 201, ZooKeeper run 104)', () => {
    const c = checkQueue(finding('conclave-201-queue-duplicate'))
    expect(c.valid).toBe(false)
    expect(c.problems.join()).toMatch(/c15-25 taken 2 times .*taken before its put returned/)
    const z = checkQueue(finding('zookeeper-104-queue-duplicate'))
    expect(z.problems.filter((p) => /taken 2 times/.test(p))).toHaveLength(4)
  })

  it('a stale sync + exists on ZooKeeper after a pause (run 101)', () => {
    const v = checkEphemerals(finding('zookeeper-101-ephemeral-stale-read'))
    expect(v.valid).toBe(false)
    expect(v.problems.join()).toMatch(/e-16-2: read c20 \[17506, 17507\] ms found it gone/)
  })
})
