/**
 * Synchronisation scenarios: planSync's choice (DIFF/TRUNC/SNAP), TRUNC of
 * uncommitted entries of an old epoch, SNAP streamed in bounded chunks, and
 * the NEWLEADER ordering of ZOOKEEPER-3911/-4646 (history, then
 * currentEpoch, then ACK, which waits for durability).
 */
import { describe, expect, it } from 'vitest'
import { Prng } from '../../../server/core/prng.js'
import { configOfIds } from '../../../server/zab/membership.js'
import type { PeerMessage } from '../../../server/zab/messages.js'
import { planSync } from '../../../server/zab/sync-plan.js'
import { ZabLog } from '../../../server/zab/zab-log.js'
import { LOOKING_TRACE, ZabPeer } from '../../../server/zab/zab-peer.js'
import { entry, Harness, zx } from './harness.js'

/** The config a SNAP carries: the static 3-voter one. */
const CFG = { configZxid: 0, config: configOfIds([1, 2, 3]).text }

describe('planSync', () => {
  const log = new ZabLog(zx(1, 2), [entry(1, 3), entry(1, 4), entry(2, 1), entry(2, 2)])
  it('sends an empty DIFF to a learner at our last zxid', () => {
    expect(planSync(log, zx(2, 2), zx(2, 2))).toEqual({ kind: 'DIFF', from: zx(2, 2) })
  })
  it('DIFFs from a known zxid, including the base', () => {
    expect(planSync(log, zx(1, 4), zx(2, 2))).toEqual({ kind: 'DIFF', from: zx(1, 4) })
    expect(planSync(log, zx(1, 2), zx(2, 2))).toEqual({ kind: 'DIFF', from: zx(1, 2) })
  })
  it('TRUNCs entries of an older epoch we never had, and a tail past ours', () => {
    expect(planSync(log, zx(1, 7), zx(2, 2))).toEqual({ kind: 'TRUNC', to: zx(1, 4) })
    expect(planSync(log, zx(2, 5), zx(2, 2))).toEqual({ kind: 'TRUNC', to: zx(2, 2) })
  })
  it('SNAPs a learner older than the in-memory log', () => {
    expect(planSync(log, zx(1, 1), zx(2, 2))).toEqual({ kind: 'SNAP' })
  })
  it('bounds observers by the commit point', () => {
    expect(planSync(log, zx(1, 4), zx(2, 1))).toEqual({ kind: 'DIFF', from: zx(1, 4) })
  })
})

/** Three voters (SNAP chunks of 40 bytes, 3 entries kept); a follower restarted 12 writes behind: it needs a SNAP. */
function restartedBehind(restoreSteps?: number) {
  const h = new Harness({
    voters: [1, 2, 3],
    commitLogCount: 3,
    snapChunkBytesMax: 40,
    ...(restoreSteps === undefined ? {} : { restoreSteps }),
  })
  const leader = h.settle()
  const lagger = [1, 2, 3].find((id) => id !== leader)!
  h.crash(lagger)
  for (let i = 0; i < 12; i++) h.propose(`w:${i}:k${i % 4}:value-${i}`)
  h.deliver()
  h.tick()
  h.restart(lagger)
  return { h, leader, lagger }
}

/** restartedBehind, the follower installing its SNAP (6 job steps, a slice each). */
function installingSnap() {
  const { h, leader, lagger } = restartedBehind(6)
  const driver = h.drivers.get(lagger)!
  h.until(() => driver.restoringSnapshot)
  return { h, leader, lagger, driver }
}

describe('synchronisation', () => {
  it('TRUNCates uncommitted entries of an older epoch the leader never had', () => {
    // 3 had proposals 1.3-1.5 that never reached a quorum; 1 and 2 moved on to epoch 2.
    const common = [entry(1, 1), entry(1, 2)]
    const h = new Harness({
      voters: [1, 2, 3],
      persisted: {
        1: { acceptedEpoch: 2, currentEpoch: 2, snapshotZxid: 0, log: [...common, entry(2, 1)] },
        2: { acceptedEpoch: 2, currentEpoch: 2, snapshotZxid: 0, log: [...common, entry(2, 1)] },
        3: {
          acceptedEpoch: 1,
          currentEpoch: 1,
          snapshotZxid: 0,
          log: [...common, entry(1, 3), entry(1, 4), entry(1, 5)],
        },
      },
    })
    expect(h.settle()).toBe(2)
    expect(h.sentOfType('TRUNC').map((s) => [s.to, s.msg.zxid])).toEqual([[3, zx(1, 2)]])
    const zxids = (id: number) => h.committed.get(id)!.map((e) => e.zxid)
    expect(zxids(3)).toEqual([zx(1, 1), zx(1, 2), zx(2, 1)])
    expect(h.disks.get(3)!.log.map((e) => e.zxid)).toEqual([zx(1, 1), zx(1, 2), zx(2, 1)])
    expect(h.sms.get(3)!.digest()).toBe(h.sms.get(2)!.digest())
  })

  it('SNAPs a far-behind follower in bounded chunks', () => {
    const { h, leader, lagger } = restartedBehind()
    h.until(() => h.role(lagger)?.serving === true)
    const snaps = h.sentOfType('SNAP').filter((s) => s.to === lagger)
    expect(snaps).toHaveLength(1)
    const chunks = h.sentOfType('SNAPCHUNK').filter((s) => s.to === lagger)
    const ends = h.sentOfType('SNAPEND').filter((s) => s.to === lagger)
    expect(ends).toHaveLength(1)
    expect(chunks.length).toBe(ends[0]!.msg.chunkCount)
    expect(chunks.map((c) => c.msg.index)).toEqual(chunks.map((_, i) => i))
    // The harness sends a stream whole, before any later commit is applied: not fuzzy.
    expect(ends[0]!.msg.endZxid).toBe(snaps[0]!.msg.zxid)
    expect(chunks.length).toBeGreaterThan(1)
    for (const c of chunks) expect(c.msg.data.length).toBeLessThanOrEqual(40)
    expect(h.sms.get(lagger)!.appliedZxid).toBe(h.sms.get(leader)!.appliedZxid)
    expect(h.sms.get(lagger)!.digest()).toBe(h.sms.get(leader)!.digest())
    expect(h.disks.get(lagger)!.snapshot?.zxid).toBe(snaps[0]!.msg.zxid)
  })

  it('installs a SNAP over several slices: until its state is in place the follower steps nothing (no ACK of NEWLEADER), applies nothing and does not serve; its old state stays as it was', () => {
    const { h, leader, lagger, driver } = installingSnap()
    const sm = h.sms.get(lagger)!
    const old = { applied: sm.appliedZxid, digest: sm.digest() }
    const sentBefore = h.sent.filter((s) => s.from === lagger).length
    const at = h.sent.length
    let slices = 0
    while (driver.restoringSnapshot) {
      expect(sm.appliedZxid).toBe(old.applied)
      expect(sm.digest()).toBe(old.digest)
      expect(h.role(lagger)?.serving).not.toBe(true)
      // The peer is not stepped: no PING answered, no ACK (of NEWLEADER or anything else) sent.
      expect(h.sent.filter((s) => s.from === lagger)).toHaveLength(sentBefore)
      // Bounded: the chunks not read yet when SNAPEND came (one a slice here), then the job's 6 steps.
      expect(slices++).toBeLessThan(500)
      h.tick()
    }
    expect(slices).toBeGreaterThanOrEqual(4)
    h.until(() => h.role(lagger)?.serving === true)
    expect(sm.appliedZxid).toBe(h.sms.get(leader)!.appliedZxid)
    expect(sm.digest()).toBe(h.sms.get(leader)!.digest())
    const acks = h.sent
      .slice(at)
      .filter((s) => s.from === lagger && s.msg.type === 'ACK' && s.msg.newLeaderEpoch > 0)
    expect(acks).toHaveLength(1)
  })

  it("a driver closed during a SNAP install stops the install's stall measurement", () => {
    const { h, lagger, driver } = installingSnap()
    driver.close()
    for (const [id, d] of h.drivers) if (id !== lagger) d.close()
    expect(h.stallMeasures.started).toBeGreaterThanOrEqual(2)
    expect(h.stallMeasures.stopped).toBe(h.stallMeasures.started)
  })

  it('DIFFs a learner older than the in-memory log from durable history; SNAPs when that is not enough', () => {
    const h = new Harness({ voters: [1, 2, 3], commitLogCount: 3, history: true })
    const leader = h.settle()
    const lagger = [1, 2, 3].find((id) => id !== leader)!
    h.propose('w:0:k0:before')
    h.deliver()
    h.crash(lagger)
    for (let i = 1; i <= 12; i++) h.propose(`w:${i}:k${i % 4}:value-${i}`)
    h.deliver()
    h.tick()
    const before = { DIFF: h.sentOfType('DIFF').length, PROPOSAL: h.sentOfType('PROPOSAL').length }
    h.restart(lagger)
    h.until(() => h.role(lagger)?.serving === true)
    const toLagger = (type: 'DIFF' | 'PROPOSAL' | 'SNAP') =>
      h
        .sentOfType(type)
        .slice(type === 'SNAP' ? 0 : before[type])
        .filter((s) => s.to === lagger)
    expect(toLagger('SNAP')).toHaveLength(0)
    expect(toLagger('DIFF')).toHaveLength(1)
    // Twelve entries behind, with three in memory: most came from durable history.
    expect(toLagger('PROPOSAL').length).toBeGreaterThanOrEqual(12)
    expect(h.sms.get(lagger)!.digest()).toBe(h.sms.get(leader)!.digest())

    // Limited to fewer entries than it lags: a SNAP after all.
    const g = new Harness({ voters: [1, 2, 3], commitLogCount: 3, history: true, historyDiffEntriesMax: 5 })
    const l2 = g.settle()
    const f2 = [1, 2, 3].find((id) => id !== l2)!
    g.propose('w:0:k0:before')
    g.deliver()
    g.crash(f2)
    for (let i = 1; i <= 12; i++) g.propose(`w:${i}:k${i % 4}:value-${i}`)
    g.deliver()
    g.tick()
    g.restart(f2)
    g.until(() => g.role(f2)?.serving === true)
    expect(g.sentOfType('SNAP').filter((s) => s.to === f2)).toHaveLength(1)
    expect(g.sms.get(f2)!.digest()).toBe(g.sms.get(l2)!.digest())
  })

  /** Server 2 (one entry, epoch 1), following server 3 after an election; LEADERINFO not yet seen. */
  function followerOf3(): ZabPeer {
    const f = new ZabPeer({
      id: 2,
      initialConfig: configOfIds([1, 2, 3]),
      initLimitTicks: 10,
      syncLimitTicks: 5,
      prng: new Prng(1),
      persisted: { acceptedEpoch: 1, currentEpoch: 1, snapshotZxid: 0, log: [entry(1, 1)] },
      snapshots: { takeSnapshot: () => ({ zxid: 0, chunks: [] }) },
    })
    const vote = {
      type: 'NOTIFICATION',
      leader: 3,
      zxid: zx(1, 1),
      peerEpoch: 1,
      round: 1,
      configZxid: 0,
      config: CFG.config,
      viewZxid: 0,
    } as const
    f.step({ kind: 'message', from: 1, msg: { ...vote, state: 'FOLLOWING' } })
    f.step({ kind: 'message', from: 3, msg: { ...vote, state: 'LEADING' } })
    return f
  }

  it('ACKs NEWLEADER only after the synced history, then currentEpoch, are durable (ZOOKEEPER-4646)', () => {
    const f = followerOf3()
    const from = 3
    expect(f.status().role).toBe('FOLLOWING')
    const info = f.step({ kind: 'message', from, msg: { type: 'LEADERINFO', newEpoch: 2, observer: false } })
    expect(info.persist?.meta).toEqual({ acceptedEpoch: 2 })
    expect(info.sendNow.filter((e) => e.msg.type === 'ACKEPOCH')).toEqual([])
    expect(info.sendAfterDurable.map((e) => e.msg.type)).toEqual(['ACKEPOCH'])
    expect(info.afterSeq).toBe(info.persist?.seq)
    f.step({ kind: 'message', from, msg: { type: 'DIFF', lastZxid: zx(1, 2) } })
    const prop = f.step({
      kind: 'message',
      from,
      msg: { type: 'PROPOSAL', zxid: zx(1, 2), data: new Uint8Array([1]) },
    })
    expect(prop.persist?.entries.map((e) => e.zxid)).toEqual([zx(1, 2)])
    expect(prop.sendAfterDurable).toEqual([]) // no ACK before NEWLEADER
    const nl = f.step({
      kind: 'message',
      from,
      msg: { type: 'NEWLEADER', epoch: 2, configZxid: 0, config: CFG.config },
    })
    // currentEpoch goes in a later batch than the history it vouches for.
    expect(nl.persist?.meta).toEqual({ currentEpoch: 2 })
    expect(nl.persist!.seq).toBeGreaterThan(prop.persist!.seq)
    expect(nl.sendNow.filter((e) => e.msg.type === 'ACK')).toEqual([])
    expect(nl.sendAfterDurable.map((e) => e.msg)).toEqual([
      { type: 'ACK', zxid: zx(1, 2), newLeaderEpoch: 2 },
    ])
    expect(nl.afterSeq).toBe(nl.persist!.seq)
  })

  /** A follower of leader 3 in the sync phase (LEADERINFO accepted). */
  function syncingFollower(): ZabPeer {
    const f = followerOf3()
    f.step({ kind: 'message', from: 3, msg: { type: 'LEADERINFO', newEpoch: 2, observer: false } })
    return f
  }

  it('installs a streamed SNAP at its SNAPEND, with the fuzzy end it reports; its chunks leave as they arrive (issue 21)', () => {
    const f = syncingFollower()
    const a = new Uint8Array([1, 2])
    const b = new Uint8Array([3])
    const received: unknown[] = []
    for (const msg of [
      { type: 'SNAP', zxid: zx(1, 3), ...CFG },
      { type: 'SNAPCHUNK', index: 0, data: a },
      { type: 'SNAPCHUNK', index: 1, data: b },
    ] as const) {
      const out = f.step({ kind: 'message', from: 3, msg })
      expect(out.restore).toBeUndefined()
      expect(out.persist?.snapshot).toBeUndefined()
      received.push(...out.snapshotIn)
    }
    // Each chunk is handed over in the step it arrived in: the core keeps none of them.
    expect(received).toEqual([
      { kind: 'begin', zxid: zx(1, 3), from: 3 },
      { kind: 'chunk', data: a },
      { kind: 'chunk', data: b },
    ])
    const end = f.step({
      kind: 'message',
      from: 3,
      msg: { type: 'SNAPEND', chunkCount: 2, endZxid: zx(1, 5) },
    })
    expect(end.snapshotIn).toEqual([])
    const snap = {
      zxid: zx(1, 3),
      chunkCount: 2,
      endZxid: zx(1, 5),
      config: { zxid: 0, config: configOfIds([1, 2, 3]) },
    }
    expect(end.restore).toEqual(snap)
    expect(end.persist?.snapshot).toEqual(snap)
    expect(f.protocolErrors).toBe(0)
    expect(f.status().role).toBe('FOLLOWING')
    // The log restarts after the snapshot: entries from the leader follow it.
    const prop = f.step({ kind: 'message', from: 3, msg: { type: 'PROPOSAL', zxid: zx(1, 4), data: a } })
    expect(prop.persist?.entries.map((e) => e.zxid)).toEqual([zx(1, 4)])
  })

  it('a learner not synchronised within initLimit while taking a SNAP says how much it got and what to raise', () => {
    const f = syncingFollower()
    f.step({ kind: 'message', from: 3, msg: { type: 'SNAP', zxid: zx(1, 3), ...CFG } })
    f.step({ kind: 'message', from: 3, msg: { type: 'SNAPCHUNK', index: 0, data: new Uint8Array(100) } })
    for (let i = 0; i < 12 && f.status().role !== 'LOOKING'; i++) {
      f.step({ kind: 'tick' })
      f.step({ kind: 'message', from: 3, msg: { type: 'PING', round: i } })
    }
    expect(f.status().role).toBe('LOOKING')
    expect(f.events.find((e) => e.startsWith(LOOKING_TRACE))).toBe(
      `${LOOKING_TRACE}not synchronised with 3 within initLimit (with a snapshot, 100 bytes received: a tree this large needs a larger initLimit)`,
    )
  })

  it('abandons a SNAP cut off before its SNAPEND (the leader lost): nothing of it is installed', () => {
    const f = syncingFollower()
    f.step({ kind: 'message', from: 3, msg: { type: 'SNAP', zxid: zx(1, 3), ...CFG } })
    f.step({ kind: 'message', from: 3, msg: { type: 'SNAPCHUNK', index: 0, data: new Uint8Array(1) } })
    const out = f.step({ kind: 'peerDisconnected', peer: 3 })
    expect(out.snapshotIn).toEqual([{ kind: 'abandon' }])
    expect(out.restore).toBeUndefined()
    expect(out.persist?.snapshot).toBeUndefined()
    expect(f.status().role).toBe('LOOKING')
  })

  it('refuses a SNAP stream that is out of order, short, long or ends before it began', () => {
    const bad: (readonly PeerMessage[])[] = [
      [{ type: 'SNAPCHUNK', index: 0, data: new Uint8Array(1) }],
      [
        { type: 'SNAP', zxid: zx(1, 3), ...CFG },
        { type: 'SNAPCHUNK', index: 1, data: new Uint8Array(1) },
      ],
      [
        { type: 'SNAP', zxid: zx(1, 3), ...CFG },
        { type: 'SNAPCHUNK', index: 0, data: new Uint8Array(1) },
        { type: 'SNAPEND', chunkCount: 2, endZxid: zx(1, 3) },
      ],
      [
        { type: 'SNAP', zxid: zx(1, 3), ...CFG },
        { type: 'SNAPEND', chunkCount: 1, endZxid: zx(1, 3) },
      ],
      [
        { type: 'SNAP', zxid: zx(1, 3), ...CFG },
        { type: 'SNAPEND', chunkCount: 0, endZxid: zx(1, 2) },
      ],
      [{ type: 'SNAPEND', chunkCount: 0, endZxid: zx(1, 3) }],
    ]
    for (const msgs of bad) {
      const f = syncingFollower()
      const outs = msgs.map((msg) => f.step({ kind: 'message', from: 3, msg }))
      expect(outs.some((o) => o.restore !== undefined)).toBe(false)
      // A SNAP begun and then refused is abandoned in the same step.
      const began = outs.some((o) => o.snapshotIn.some((e) => e.kind === 'begin'))
      expect(outs.at(-1)!.snapshotIn.some((e) => e.kind === 'abandon')).toBe(began)
      expect(f.protocolErrors).toBe(1)
      expect(f.status().role).toBe('LOOKING')
    }
  })

  it('refuses a leader epoch below its acceptedEpoch', () => {
    const f = new ZabPeer({
      id: 2,
      initialConfig: configOfIds([1, 2, 3]),
      initLimitTicks: 10,
      syncLimitTicks: 5,
      prng: new Prng(1),
      persisted: { acceptedEpoch: 5, currentEpoch: 4, snapshotZxid: 0, log: [] },
      snapshots: { takeSnapshot: () => ({ zxid: 0, chunks: [] }) },
    })
    const vote = {
      type: 'NOTIFICATION',
      leader: 3,
      zxid: 0,
      peerEpoch: 4,
      round: 1,
      configZxid: 0,
      config: CFG.config,
      viewZxid: 0,
    } as const
    f.step({ kind: 'message', from: 1, msg: { ...vote, state: 'FOLLOWING' } })
    f.step({ kind: 'message', from: 3, msg: { ...vote, state: 'LEADING' } })
    expect(f.status().role).toBe('FOLLOWING')
    const out = f.step({
      kind: 'message',
      from: 3,
      msg: { type: 'LEADERINFO', newEpoch: 4, observer: false },
    })
    expect(f.status().role).toBe('LOOKING')
    expect(f.status().acceptedEpoch).toBe(5)
    expect(out.persist).toBeUndefined()
    expect(out.disconnect).toEqual([3])
    expect([...out.sendNow, ...out.sendAfterDurable].some((e) => e.msg.type === 'ACKEPOCH')).toBe(false)
  })

  it('keeps acceptedEpoch and currentEpoch across restarts, never lower', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    const leader = h.settle()
    const epoch = h.role(leader)!.epoch
    for (const id of [1, 2, 3]) h.crash(id)
    for (const id of [1, 2, 3]) h.restart(id)
    const leader2 = h.settle()
    expect(h.role(leader2)!.epoch).toBeGreaterThan(epoch)
    for (const id of [1, 2, 3]) {
      expect(h.disks.get(id)!.acceptedEpoch).toBe(h.role(leader2)!.epoch)
      expect(h.disks.get(id)!.currentEpoch).toBe(h.role(leader2)!.epoch)
    }
  })
})
