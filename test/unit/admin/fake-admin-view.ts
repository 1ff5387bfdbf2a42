/**
 * A fake server view (AdminView, which the four-letter words read as their
 * FourLetterSource) for the admin unit tests: a follower in epoch 4 with a
 * little of everything (sessions, connections, znodes, watches, watch
 * history, exactly-once memory) and no connection, session or ephemeral to
 * list. `over` replaces any part of it.
 */
import type { AdminView } from '../../../server/admin/admin-view.js'
import { parseConfig } from '../../../server/config.js'

export function fakeAdminView(over: Partial<AdminView> = {}): AdminView {
  return {
    version: '9.9.9',
    serverId: () => 3,
    treeBytesMax: () => 1 << 30,
    role: () => 'following',
    serving: () => true,
    ready: () => true,
    epoch: () => 4,
    lastZxid: () => 0x400000007,
    sessionCount: () => 2,
    localSessionCount: () => 0,
    connectionCount: () => 5,
    nodeCount: () => 11,
    watchCount: () => 6,
    digest: () => 'abcdef0123456789',
    treeBytesEstimate: () => 4096,
    packetsReceived: () => 99,
    writesInFlight: () => 1,
    writesDeferred: () => 0,
    readingPaused: () => false,
    watchHistory: () => ({ changes: 12, bytes: 1500, startZxid: 0x400000001 }),
    watchResumes: () => ({ resumed: 3, compacted: 1, replayedEvents: 40 }),
    exactlyOnce: () => ({
      remembered: 2,
      inFlight: 1,
      forgotten: 0,
      memorySessions: 1,
      memoryResults: 5,
      memoryBytes: 700,
    }),
    replication: () => ({ Leader: 1 }),
    config: () => parseConfig({ dataDir: '/nonexistent-conclave-dir' }),
    connections: () => [],
    sessions: () => [],
    sessionDeadlines: () => undefined,
    ephemerals: () => [],
    watches: () => [],
    statsTimeToEpochMs: (t) => t,
    resetConnectionStats: () => {},
    ...over,
  }
}
