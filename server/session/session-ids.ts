/**
 * Session ids, as ZooKeeper makes them: the server id in the top byte, and
 * below it a counter seeded from the clock when the server starts leading,
 * so ids from different servers and different runs do not collide. The
 * clock value is passed in; this module reads none.
 * Pure: imports nothing of ours.
 */

const LOW_56 = (1n << 56n) - 1n

export class SessionIdGenerator {
  private next: bigint

  constructor(serverId: number, nowMs: number) {
    this.next = (BigInt(serverId) << 56n) | ((BigInt(Math.floor(nowMs)) << 24n) & LOW_56)
    this.next = BigInt.asIntN(64, this.next)
  }

  /** The next id not in `taken` (ids restored from a snapshot may be ahead of the clock-seeded counter). */
  take(taken: (id: bigint) => boolean): bigint {
    let id = this.next
    while (id === 0n || taken(id)) id = BigInt.asIntN(64, id + 1n)
    this.next = BigInt.asIntN(64, id + 1n)
    return id
  }
}

/** The id of the server that made a session id (its top byte). */
export function sessionServerId(id: bigint): number {
  return Number(BigInt.asUintN(64, id) >> 56n)
}
