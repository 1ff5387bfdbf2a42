/**
 * RequestProbe: the request path's instruments, so a server can be watched
 * without the request path knowing how: request latency by operation, the
 * statistics of each connection (ZooKeeper's `cons`), proposals and
 * commits (commit latency on the leader), sessions opened and expired,
 * watch notifications, role changes (election time). The server's
 * implementation is server/admin/server-metrics.ts; the simulation and unit
 * tests leave the no-op one in place.
 *
 * Invariants: a probe only observes; it never changes what the request path
 * does. Marks and times are the probe's own (its clock), opaque here, so
 * the request path still reads no clock (architecture.test.ts).
 * Imports nothing.
 */

/** One connection's counters and latencies, as ZooKeeper's `cons` reports them (reset by `crst`). */
export class ConnectionStats {
  /** Packets received (requests, pings, the ConnectRequest). */
  received = 0
  /** Packets sent (replies and watch notifications). */
  sent = 0
  /** The last operation answered, as ZooKeeper abbreviates it (`GETD`, `CREA`, …); `NA` before any. */
  lastOp = 'NA'
  lastCxid = -1
  lastZxid = -1
  /** The probe's clock when the connection was made, and when its last reply left (0: none yet). */
  establishedAt = 0
  lastResponseAt = 0
  /** Latencies of the replies since the last reset, in ms. */
  lastLatencyMs = 0
  minLatencyMs = Number.POSITIVE_INFINITY
  maxLatencyMs = 0
  totalLatencyMs = 0
  count = 0

  /** ZooKeeper's resetStats (`crst`): everything but when the connection was made. */
  reset(): void {
    this.received = 0
    this.sent = 0
    this.lastOp = 'NA'
    this.lastCxid = -1
    this.lastZxid = -1
    this.lastResponseAt = 0
    this.lastLatencyMs = 0
    this.minLatencyMs = Number.POSITIVE_INFINITY
    this.maxLatencyMs = 0
    this.totalLatencyMs = 0
    this.count = 0
  }
}

export interface RequestProbe {
  /** A connection was made. */
  connected(stats: ConnectionStats): void
  /** A request arrived; returns its mark, handed back to `replied`. */
  received(): number
  /** The reply to a request (opcode `op`, xid `cxid`) that arrived at `mark` left, at `zxid`. */
  replied(stats: ConnectionStats, op: number, cxid: number, zxid: number, mark: number): void
  /** A watch notification was sent to a client. */
  notified(): void
  /** Leader or standalone: a Txn was proposed at `zxid`. */
  proposed(zxid: number): void
  /** A Txn was committed and applied at `zxid` (on every server). */
  committed(zxid: number): void
  /** A session was created for a client of this server. */
  sessionOpened(): void
  /** Leader or standalone: a session expired (its closeSession is proposed). */
  sessionExpired(): void
  /** The server's role changed (standalone, leading, following, observing or looking). */
  roleChanged(role: string): void
}

/** The probe that observes nothing (the simulation, unit tests, before a server wires its own). */
export const NO_PROBE: RequestProbe = {
  connected: () => {},
  received: () => 0,
  replied: () => {},
  notified: () => {},
  proposed: () => {},
  committed: () => {},
  sessionOpened: () => {},
  sessionExpired: () => {},
  roleChanged: () => {},
}
