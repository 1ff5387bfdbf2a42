/**
 * ReconfigChecker: the invariant of membership changes (reconfiguration).
 *
 *  - reconfig-quorums: when a config entry is committed for the first time
 *    anywhere, it is durable on a majority of the voters of the config
 *    committed before it AND on a majority of its own voters. That is what
 *    makes any later quorum — of either config, and of every view a server
 *    may hold meanwhile — contain a server that has it (membership.ts).
 *
 * The existing invariants (one leader per epoch, prefix agreement, no lost
 * acknowledged write, digests) keep running under membership changes; this
 * one watches the step that makes them hold across a change. Its planted
 * bug (mutations.ts, oneConfigQuorum) is a leader that counts only the new
 * config's voters when it commits.
 *
 * Invariants of this file: it reads only durable disk images (a crash
 * cannot make a checked ack disappear) and the global commit order.
 */
import { decodeConfigEntry, type MemberConfig } from '../../server/zab/index.js'
import type { SimNode } from './sim-node.js'

const hex = (z: number) => `0x${z.toString(16)}`

export class ReconfigChecker {
  private current: MemberConfig
  private readonly seen = new Set<number>()
  /** Config entries committed (first commits), and of those, ones that changed the voters. */
  committed = 0
  votersChanged = 0

  constructor(
    private readonly nodes: readonly SimNode[],
    initial: MemberConfig,
    private readonly fail: (invariant: string, detail: string) => never,
    /** Off only for the lying-disk mutation: its durable images lie, the end-to-end checks must catch it. */
    private readonly check = true,
  ) {
    this.current = initial
  }

  onCommit(node: SimNode, zxid: number, data: Uint8Array): void {
    if (this.seen.has(zxid)) return
    this.seen.add(zxid)
    const next = decodeConfigEntry(data)
    if (next === undefined) return
    if (this.check) {
      this.checkQuorum(node, zxid, next, 'old', this.current)
      this.checkQuorum(node, zxid, next, 'new', next)
    }
    if (next.voters.join() !== this.current.voters.join()) this.votersChanged++
    this.committed++
    this.current = next
  }

  private checkQuorum(node: SimNode, zxid: number, next: MemberConfig, name: string, c: MemberConfig): void {
    const holders = c.voters.filter((v) => this.durableAt(v, zxid))
    if (holders.length >= Math.floor(c.voters.length / 2) + 1) return
    this.fail(
      'reconfig-quorums',
      `config ${hex(zxid)} (voters ${next.voters}) committed by n${node.id} while durable on only ` +
        `[${holders}] of the ${name} voters [${c.voters}]`,
    )
  }

  private durableAt(id: number, zxid: number): boolean {
    const n = this.nodes[id - 1]
    if (n === undefined) return false
    const d = n.disk
    if (d.snapshot !== undefined && d.snapshot.zxid >= zxid) return true
    return d.log.some((e) => e.zxid === zxid)
  }
}
