/**
 * Reconfiguration in the pure ZAB core: the membership view (membership.ts:
 * config text, config entries, joint quorums, commits and truncations of
 * config entries, adopting a committed config) and, through the harness,
 * peers changing membership: a joiner added, a refused second reconfig, a
 * new config without a synced quorum, a malformed one, a commit that waits
 * for the old quorum, a leader that removes itself, and the config
 * recovered after everyone restarts.
 */
import { describe, expect, it } from 'vitest'
import { encodeTxn } from '../../../server/txn/codec.js'
import {
  ConfigError,
  configOfIds,
  decodeConfigEntry,
  encodeConfigEntry,
  isConfigEntry,
  Membership,
  parseConfigText,
} from '../../../server/zab/membership.js'
import { encodeWrite } from '../../sim/kv-state-machine.js'
import { Harness } from './harness.js'

describe('membership: config text and entries', () => {
  it('parses ZooKeeper dynamic-config lines, roles defaulting to participant', () => {
    const c = parseConfigText(
      [
        'server.3=h3:2888:3888:observer;0.0.0.0:2181',
        'server.1=h1:2888:3888:participant;2181',
        'server.2=h2:2888:3888',
        'version=100000000',
        '',
      ].join('\n'),
    )
    expect(c.voters).toEqual([1, 2])
    expect(c.observers).toEqual([3])
    expect(c.text.split('\n')[0]).toBe('server.1=h1:2888:3888:participant;2181')
  })

  it('refuses what is not a config, naming the problem', () => {
    const bad: [string, RegExp][] = [
      ['', /at least one participant/],
      ['server.1=h:1:2:observer', /at least one participant/],
      ['server.1=h:1:2\nserver.1=h:3:4', /appears twice/],
      ['server.1=h:1:2:leader', /participant or observer/],
      ['server.1=h:1', /host:peerPort:electionPort/],
      ['server.0=h:1:2', /bad server id/],
      ['clientPort=2181', /not a server line/],
    ]
    for (const [text, re] of bad) {
      expect(() => parseConfigText(text)).toThrow(ConfigError)
      expect(() => parseConfigText(text)).toThrow(re)
    }
  })

  it('config entries round-trip, and no Txn or simulated write looks like one', () => {
    const c = configOfIds([1, 2, 3], [4])
    const data = encodeConfigEntry(c)
    expect(isConfigEntry(data)).toBe(true)
    expect(decodeConfigEntry(data)).toEqual(c)
    const txn = encodeTxn({ type: 'delete', path: '/a', sessionId: 1n, cxid: 1, zxid: 1, timeMs: 0 })
    expect(isConfigEntry(txn)).toBe(false)
    expect(decodeConfigEntry(txn)).toBeUndefined()
    expect(isConfigEntry(encodeWrite({ writeId: 1, key: 'k', value: 'v' }))).toBe(false)
    // The magic with text that is no config: a config entry, and a malformed one.
    expect(() => decodeConfigEntry(Uint8Array.of(0xff, 0x43, 0x46, 0x47, 0x78))).toThrow(ConfigError)
  })
})

describe('membership: the view and its quorums', () => {
  const at = (zxid: number, voters: number[], observers: number[] = []) => ({
    zxid,
    config: configOfIds(voters, observers),
  })

  it('while a config is accepted and not known committed, a quorum is one of the old AND the new voters', () => {
    const m = new Membership(at(0, [1, 2, 3]))
    expect(m.hasQuorum((id) => id === 1 || id === 2)).toBe(true)
    m.appended(at(10, [3, 4, 5]))
    expect(m.voters).toEqual(new Set([1, 2, 3, 4, 5]))
    expect(m.hasQuorum((id) => id === 1 || id === 2)).toBe(false)
    expect(m.hasQuorum((id) => id === 4 || id === 5)).toBe(false)
    expect(m.hasQuorum((id) => [2, 3, 4].includes(id))).toBe(true)
    // The commit point: the least of each config's quorum-th highest ack.
    const acks = new Map([
      [1, 30],
      [2, 20],
      [3, 10],
      [4, 25],
      [5, 5],
    ])
    expect(m.quorumZxid((id) => acks.get(id))).toBe(10)
    acks.delete(3)
    acks.delete(5)
    expect(m.quorumZxid((id) => acks.get(id))).toBe(0)
    m.committedThrough(10)
    expect(m.pending).toEqual([])
    expect(m.hasQuorum((id) => id === 4 || id === 5)).toBe(true)
    expect(m.isVoter(1)).toBe(false)
    expect(m.isMember(1)).toBe(false)
  })

  it('a truncation drops accepted configs past it; a commit elsewhere is adopted, superseding older ones', () => {
    const m = new Membership(at(0, [1, 2, 3]))
    m.appended(at(10, [1, 2], [3]))
    expect(m.isObserver(3)).toBe(false) // still a voter of the committed config
    m.truncatedAfter(9)
    expect(m.latest.zxid).toBe(0)
    m.appended(at(12, [1, 2, 3, 4]))
    expect(m.adoptCommitted(at(20, [5]))).toBe(true)
    expect(m.committed.zxid).toBe(20)
    expect(m.pending).toEqual([])
    expect(m.adoptCommitted(at(15, [1]))).toBe(false)
  })
})

const READY = 60

function reconfig(h: Harness, voters: number[], observers: number[] = []) {
  const l = h.leader()!
  return h.step(l, { kind: 'propose', data: encodeConfigEntry(configOfIds(voters, observers)) })?.proposed
}

describe('reconfiguration between peers', () => {
  it("adds two joiners as voters: they sync as non-voting followers first (serving, as ZooKeeper's do), then vote", () => {
    const h = new Harness({ voters: [1, 2, 3], spares: [4, 5] })
    const l = h.settle()
    h.tick(READY)
    h.deliver()
    for (const j of [4, 5]) {
      expect(h.role(j)?.role).toBe('FOLLOWING')
      expect(h.role(j)?.serving).toBe(true)
      expect(h.peers.get(j)!.membership.isMember(j)).toBe(false)
    }
    const r = reconfig(h, [1, 2, 3, 4, 5])
    expect(r?.ok).toBe(true)
    h.deliver()
    h.tick(2)
    h.deliver()
    for (const id of [1, 2, 3, 4, 5]) {
      expect(h.peers.get(id)!.membership.committed.zxid).toBe(r?.ok ? r.zxid : -1)
      expect(h.role(id)?.serving).toBe(true)
    }
    expect(h.leader()).toBe(l)
    // A write now needs three of five.
    h.propose('after')
    h.deliver()
    expect(h.committed.get(5)!.at(-1)?.zxid).toBe(h.committed.get(l)!.at(-1)?.zxid)
  })

  it('refuses a second reconfig while one is in flight, one without a synced quorum, and a malformed one', () => {
    const h = new Harness({ voters: [1, 2, 3], spares: [4] })
    h.settle()
    h.tick(READY)
    h.deliver()
    // 5 does not exist: of [4, 5, 6] only 4 is synced, no majority.
    expect(reconfig(h, [4, 5, 6])).toEqual({ ok: false, reason: 'new-config-no-quorum' })
    expect(reconfig(h, [1, 2, 3, 4])?.ok).toBe(true)
    expect(reconfig(h, [1, 2, 3])).toEqual({ ok: false, reason: 'reconfig-in-progress' })
    h.deliver()
    h.tick(2)
    h.deliver()
    const bad = Uint8Array.of(0xff, 0x43, 0x46, 0x47, ...new TextEncoder().encode('server.1=x'))
    expect(h.step(h.leader()!, { kind: 'propose', data: bad })?.proposed).toEqual({
      ok: false,
      reason: 'bad-config',
    })
  })

  it('commits a reconfig only once a quorum of the old voters has it too', () => {
    const h = new Harness({ voters: [1, 2, 3], spares: [4, 5] })
    const l = h.settle()
    h.tick(READY)
    h.deliver()
    const others = [1, 2, 3].filter((id) => id !== l)
    for (const id of others) h.hold(id)
    const r = reconfig(h, [l, 4, 5])
    expect(r?.ok).toBe(true)
    h.deliver()
    // 4 and 5 (and the leader) have it: a quorum of the new config, not of the old one.
    expect(h.peers.get(l)!.status().commitZxid).toBeLessThan(r?.ok ? r.zxid : 0)
    h.flush(others[0]!)
    h.deliver()
    expect(h.peers.get(l)!.status().commitZxid).toBe(r?.ok ? r.zxid : -1)
    h.flush(others[1]!)
  })

  it('an observer made a voter follows, as its leader tells it, and its ACKs count', () => {
    const h = new Harness({ voters: [1, 2, 3], observers: [4] })
    const l = h.settle()
    expect(h.role(4)?.role).toBe('OBSERVING')
    const r = reconfig(h, [1, 2, 3, 4])
    expect(r?.ok).toBe(true)
    h.deliver()
    h.tick(2)
    h.deliver()
    expect(h.peers.get(l)!.membership.committed.config.voters).toEqual([1, 2, 3, 4])
    h.settle()
    expect(h.role(4)?.role).toBe('FOLLOWING')
    expect(h.role(4)?.serving).toBe(true)
    // Three of four must have a write now: with two followers' disks held, the leader and 4 are not enough.
    const others = [1, 2, 3].filter((id) => id !== h.leader())
    for (const id of others) h.hold(id)
    const z = h.propose('needs 4')
    h.deliver()
    expect(h.peers.get(h.leader()!)!.status().commitZxid).toBeLessThan(z)
    h.flush(others[0]!)
    h.deliver()
    expect(h.peers.get(h.leader()!)!.status().commitZxid).toBe(z)
    h.flush(others[1]!)
  })

  it('a leader that removes itself commits, steps down and follows a voter of the new config', () => {
    const h = new Harness({ voters: [1, 2, 3], spares: [4] })
    const l = h.settle()
    h.tick(READY)
    h.deliver()
    const rest = [1, 2, 3, 4].filter((id) => id !== l)
    expect(reconfig(h, rest)?.ok).toBe(true)
    h.deliver()
    // Committed; it leaves at its next tick.
    expect(h.peers.get(l)!.membership.pending).toEqual([])
    expect(h.role(l)?.role).toBe('LEADING')
    h.tick()
    expect(h.role(l)?.role).not.toBe('LEADING')
    const next = h.settle()
    expect(rest).toContain(next)
    expect(h.peers.get(l)!.membership.isVoter(l)).toBe(false)
    h.tick(READY)
    h.deliver()
    // A non-voting follower now: it serves, as ZooKeeper's do, with the new config, which does not name it.
    expect(h.role(l)?.role).toBe('FOLLOWING')
    expect(h.role(l)?.serving).toBe(true)
    expect(h.peers.get(l)!.membership.isMember(l)).toBe(false)
    h.propose('under the new leader')
    h.deliver()
  })

  it('after everyone restarts, the config is the one in the log (joint until a leader commits it again)', () => {
    const h = new Harness({ voters: [1, 2, 3], spares: [4, 5] })
    h.settle()
    h.tick(READY)
    h.deliver()
    const r = reconfig(h, [3, 4, 5])
    expect(r?.ok).toBe(true)
    h.deliver()
    h.tick(2)
    h.deliver()
    for (const id of [1, 2, 3, 4, 5]) h.crash(id)
    for (const id of [1, 2, 3, 4, 5]) h.restart(id)
    for (const id of [1, 2, 3, 4, 5]) {
      const m = h.peers.get(id)!.membership
      expect(m.latest.config.voters).toEqual([3, 4, 5])
    }
    const l = h.settle()
    expect([3, 4, 5]).toContain(l)
    expect(h.peers.get(l)!.membership.pending).toEqual([])
  })
})

describe("a joiner takes the leader's config with the sync (issue 19)", () => {
  /** A harness whose server 4 was started, as an operator adds one, with a static config naming itself too. */
  function joining(opts: { commitLogCount?: number } = {}) {
    const syncs: string[] = []
    const h = new Harness({
      voters: [1, 2, 3],
      spares: [4],
      configs: { 4: configOfIds([1, 2, 3, 4]) },
      ...opts,
      onEvent: (ev) => {
        if (ev.kind !== 'sent' || ev.sent.to !== 4) return
        const t = ev.sent.msg.type
        if (t === 'DIFF' || t === 'TRUNC' || t === 'SNAP') syncs.push(t)
      },
    })
    return { h, syncs }
  }

  function expectLeaders(h: Harness, j: number): void {
    const leader = h.peers.get(h.leader()!)!.membership.committed
    const joiner = h.peers.get(j)!.membership
    expect(leader).toEqual({ zxid: 0, config: configOfIds([1, 2, 3]) })
    expect(joiner.committed).toEqual(leader)
    expect(joiner.isMember(j)).toBe(false)
  }

  it('DIFF-synced, it ends with the leader’s static config, persisted, and keeps it across a restart', () => {
    const { h, syncs } = joining()
    expect(h.peers.get(4)!.membership.isVoter(4)).toBe(true) // its own view, before any sync
    const l = h.settle()
    h.propose('w1')
    h.tick(READY)
    h.deliver()
    expect(syncs).toContain('DIFF')
    expect(syncs).not.toContain('SNAP')
    expect(h.role(4)).toMatchObject({ role: 'FOLLOWING', leaderId: l, serving: true })
    expectLeaders(h, 4)
    expect(h.disks.get(4)!.staticConfig).toBe(configOfIds([1, 2, 3]).text)
    // The voters' own static config is the leader's: nothing to take, nothing written.
    for (const id of [1, 2, 3]) expect(h.disks.get(id)!.staticConfig).toBeUndefined()
    h.crash(4)
    h.restart(4)
    expect(h.peers.get(4)!.membership.committed.config).toEqual(configOfIds([1, 2, 3]))
    h.tick(READY)
    h.deliver()
    expect(h.role(4)).toMatchObject({ role: 'FOLLOWING', serving: true })
    // A reconfig then names it: it votes, and every server holds that config.
    const r = h.step(h.leader()!, {
      kind: 'propose',
      data: encodeConfigEntry(configOfIds([1, 2, 3, 4])),
    })?.proposed
    expect(r?.ok).toBe(true)
    h.deliver()
    h.tick(2)
    h.deliver()
    for (const id of [1, 2, 3, 4])
      expect(h.peers.get(id)!.membership.committed.config.voters).toEqual([1, 2, 3, 4])
  })

  it('SNAP-synced, it takes the config the SNAP carries and persists it too', () => {
    const { h, syncs } = joining({ commitLogCount: 2 })
    h.isolate(4)
    h.settle()
    for (let i = 0; i < 6; i++) h.propose(`w${i}`)
    h.deliver()
    for (const o of [1, 2, 3]) h.heal(4, o)
    h.tick(READY)
    h.deliver()
    expect(syncs).toContain('SNAP')
    expect(h.role(4)).toMatchObject({ role: 'FOLLOWING', serving: true })
    expectLeaders(h, 4)
    expect(h.disks.get(4)!.staticConfig).toBe(configOfIds([1, 2, 3]).text)
  })

  it('a NEWLEADER whose config contradicts ours at the same version is a protocol error', () => {
    const h = new Harness({ voters: [1, 2, 3] })
    h.settle()
    const p = h.peers.get(1)!
    expect(p.adoptLeaderConfig({ zxid: 0, config: configOfIds([1, 2, 3]) })).toBe(true)
    const errors = p.protocolErrors
    // A config entry's zxid names one text: a different one there is another history.
    p.membership.appended({ zxid: 0x100000001, config: configOfIds([1, 2]) })
    p.membership.committedThrough(0x100000001)
    expect(p.adoptLeaderConfig({ zxid: 0x100000001, config: configOfIds([1, 2, 3]) })).toBe(false)
    expect(p.protocolErrors).toBe(errors + 1)
  })
})
