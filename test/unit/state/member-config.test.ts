/**
 * The membership config in the replicated state: a committed config entry
 * sets /zookeeper/config (its lines and `version=<hex zxid>`, watchers see a
 * dataChanged), the tree gives it back (what a restarting server's ZAB peer
 * starts from), a replay over a snapshot that already holds it or a later
 * one changes nothing (so the node's version agrees on every server), and
 * the config file's servers become ZooKeeper dynamic-config text.
 */
import { describe, expect, it } from 'vitest'
import { PeerSpec, staticMemberConfig } from '../../../server/config.js'
import { CONFIG_NODE, TreeDb } from '../../../server/state/tree-db.js'
import { configOfIds, encodeConfigEntry } from '../../../server/zab/index.js'

const text = (db: TreeDb) => new TextDecoder().decode(db.tree.getData(CONFIG_NODE)?.data ?? new Uint8Array())

describe('membership config in the tree', () => {
  it('a config entry sets /zookeeper/config and the tree gives the config back', () => {
    const db = TreeDb.empty()
    expect(db.memberConfig()).toBeUndefined()
    const c = configOfIds([1, 2, 3], [4])
    const out = db.apply(0x100000001, encodeConfigEntry(c))
    expect(out.changes.map((ch) => ch.path)).toContain(CONFIG_NODE)
    expect(text(db)).toBe(`${c.text}\nversion=100000001`)
    expect(db.memberConfig()).toEqual({ zxid: 0x100000001, config: c })
    expect(db.lastZxid).toBe(0x100000001)
    expect(db.tree.stat(CONFIG_NODE)?.version).toBe(1)
  })

  it('replaying an older or the same config entry over a later one changes nothing', () => {
    const db = TreeDb.empty()
    db.apply(0x100000001, encodeConfigEntry(configOfIds([1, 2, 3])))
    db.apply(0x100000005, encodeConfigEntry(configOfIds([1, 2])))
    const before = { text: text(db), version: db.tree.stat(CONFIG_NODE)?.version }
    const replayed = TreeDb.empty()
    replayed.replaceTree(TreeDb.fromSnapshot(db.tree.snapshot().chunks), 0x100000005)
    replayed.replay(0x100000001, encodeConfigEntry(configOfIds([1, 2, 3])))
    replayed.replay(0x100000005, encodeConfigEntry(configOfIds([1, 2])))
    expect({ text: text(replayed), version: replayed.tree.stat(CONFIG_NODE)?.version }).toEqual(before)
    expect(replayed.digest()).toBe(db.digest())
  })

  it("the config file's servers are ZooKeeper dynamic-config lines", () => {
    const servers = [
      PeerSpec.parse({ id: 2, host: 'h2', peerPort: 2889, clientPort: 2182 }),
      PeerSpec.parse({ id: 1, host: 'h1', peerPort: 2888, clientPort: 2181 }),
      PeerSpec.parse({ id: 3, host: 'h3', peerPort: 2890, clientPort: 2183, observer: true }),
    ]
    const c = staticMemberConfig(servers)
    expect(c.voters).toEqual([1, 2])
    expect(c.observers).toEqual([3])
    expect(c.text).toBe(
      [
        'server.1=h1:2888:2888:participant;h1:2181',
        'server.2=h2:2889:2889:participant;h2:2182',
        'server.3=h3:2890:2890:observer;h3:2183',
      ].join('\n'),
    )
  })
})
