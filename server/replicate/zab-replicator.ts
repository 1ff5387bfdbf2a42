/**
 * ZabReplicator: an ensemble member's Replicator. It is ZabDriver (the one
 * driver of the ZAB state machine, shared with the simulation) wired to the
 * real world: SQLite storage (server/storage), TCP peer links
 * (server/net/peer-transport.ts), the event loop's timers and a tick every
 * ZAB_TICK_MS. It translates the driver's role events into the server's
 * roles and routes application payloads: to the leader they are forwarded
 * requests, to a learner the leader's answers. The peer links follow the
 * membership view: the other members and their addresses are those of the
 * configurations the view holds (the newest naming each), so a restarted
 * server follows the configuration on its disk, not a stale --servers, and
 * a reconfig that adds a server or moves one is carried out.
 *
 * Must not: step the peer itself (the driver does), or read storage beyond
 * the history a DIFF needs.
 */
import type { Logger } from 'pino'
import { assert } from '../../shared/assert.js'
import { StallMonitor } from '../admin/stall-monitor.js'
import {
  type MemberLine,
  type PeerSpec,
  parseMemberLine,
  type ServerConfig,
  staticMemberConfig,
} from '../config.js'
import { Prng } from '../core/prng.js'
import { eventLoopTimers } from '../event-loop.js'
import { type PeerAddress, PeerTransport } from '../net/peer-transport.js'
import type { ReloadingSecureContext } from '../net/reloading-secure-context.js'
import type { Storage } from '../storage/index.js'
import {
  type ConfigAt,
  ConfigError,
  type LogEntry,
  type MemberConfig,
  type PeerMessage,
  parseConfigText,
  ZabPeer,
} from '../zab/index.js'
import { DriverReplicator } from './driver-replicator.js'
import type { ReplicatorEvents } from './replicator.js'
import { type RestoreJob, STATIC_CONFIG_META_KEY, ZabDriver } from './zab-driver.js'

/** ZAB's clock: a tick every 50 ms, whatever tickTime is, so elections take milliseconds, not seconds. */
export const ZAB_TICK_MS = 50
/** The longest a SNAP stream holds the event loop at a time. */
const SNAP_SLICE_MS = 5
/**
 * Most bytes a DIFF reads from the txn log at once, on the event loop
 * (reading 10,000 entries of 1 KiB took 60-260 ms here; 2 MiB, 12-50 ms).
 * A learner further behind gets a SNAP, which is streamed.
 */
const HISTORY_DIFF_BYTES_MAX = 2 * 1024 * 1024

export interface ZabHost {
  storage: Storage
  /** Durable log entries after the snapshot the tree was rebuilt from. */
  log: LogEntry[]
  snapshotZxid: number
  /** The application's snapshot at its last applied entry; chunks may be produced lazily (fuzzy). */
  takeSnapshot(): { zxid: number; chunks: Iterable<Uint8Array> }
  /** See DriverHost.reflectsThrough. */
  reflectsThrough(): number
  /** Abandons the application's own snapshot being written (a SNAP is about to be installed). */
  cancelSnapshot(): void
  /** A SNAP after `zxid` arrives: builds its state aside as chunks come, then switches in steps (RestoreJob). */
  beginRestore(zxid: number): RestoreJob
  /** The membership config the recovered state holds (/zookeeper/config); undefined: none committed yet. */
  memberConfig(): ConfigAt | undefined
}

/** The members a membership view names, by id: each at the address of the newest config naming it. */
export function viewMembers(configs: readonly ConfigAt[]): Map<number, MemberLine> {
  const out = new Map<number, MemberLine>()
  for (const c of configs) {
    for (const line of c.config.text.split('\n')) {
      const m = parseMemberLine(line)
      if (typeof m !== 'string') out.set(m.id, m)
    }
  }
  return out
}

/** The other members' peer addresses in a view. */
function peerAddresses(members: ReadonlyMap<number, MemberLine>, selfId: number): PeerAddress[] {
  const out: PeerAddress[] = []
  for (const m of members.values())
    if (m.id !== selfId) out.push({ id: m.id, host: m.host, port: m.peerPort })
  return out
}

/** `host:port` of a peer address, for logs. */
const where = (a: { host: string; port?: number; peerPort?: number }) => `${a.host}:${a.port ?? a.peerPort}`

/** What differs between two sets of peer addresses: added, removed, moved ids. */
interface AddressChanges {
  added: string[]
  removed: string[]
  moved: string[]
}

function addressChanges(before: readonly PeerAddress[], after: readonly PeerAddress[]): AddressChanges {
  const old = new Map(before.map((p) => [p.id, p]))
  const added: string[] = []
  const moved: string[] = []
  for (const p of after) {
    const o = old.get(p.id)
    if (o === undefined) added.push(`${p.id}@${where(p)}`)
    else if (where(o) !== where(p)) moved.push(`${p.id}@${where(o)}->${where(p)}`)
    old.delete(p.id)
  }
  const removed = [...old.values()].map((p) => `${p.id}@${where(p)}`)
  return { added, removed, moved }
}

export class ZabReplicator extends DriverReplicator {
  private readonly transport: PeerTransport
  /** Quorum TLS: this server's certificate and key and the ensemble's CA, reloaded when the files change. */
  private readonly quorumTls: ReloadingSecureContext | undefined
  private timer: NodeJS.Timeout | undefined
  /** Sees every message to a peer as it leaves (metrics: DIFF, TRUNC, SNAP and its bytes). */
  onSending: ((msg: PeerMessage) => void) | undefined

  constructor(
    readonly config: ServerConfig,
    private readonly host: ZabHost,
    events: ReplicatorEvents,
    private readonly logger: Logger,
    /** Quorum TLS (this replicator closes it); undefined: plaintext peer links. */
    quorumTls: ReloadingSecureContext | undefined,
  ) {
    super(events)
    const epochs = host.storage.epochs
    const ticks = (n: number) => Math.max(2, Math.ceil((n * config.tickTime) / ZAB_TICK_MS))
    const peer = new ZabPeer({
      id: config.serverId,
      initialConfig: this.staticConfig(host.storage),
      initLimitTicks: ticks(config.initLimit),
      syncLimitTicks: ticks(config.syncLimit),
      finalizeWaitTicks: 2,
      prng: new Prng((config.serverId * 2654435761 + Date.now()) >>> 0),
      persisted: {
        acceptedEpoch: epochs.acceptedEpoch,
        currentEpoch: epochs.currentEpoch,
        snapshotZxid: host.snapshotZxid,
        log: host.log,
        // The config committed as of the recovered tree; accepted ones follow in the log.
        config: host.memberConfig(),
      },
      snapshots: { takeSnapshot: () => host.takeSnapshot() },
      history: { read: (from, max) => this.readHistory(from, max) },
    })
    const self = config.servers.find((s) => s.id === config.serverId)
    assert(self !== undefined, 'this server is not in the servers list')
    this.quorumTls = quorumTls
    this.transport = new PeerTransport({
      selfId: config.serverId,
      listenHost: self.host,
      listenPort: self.peerPort,
      peers: this.startingPeers(peer, self),
      outsiderLinksMax: config.peerOutsiderLinksMax,
      handshakesMax: config.peerHandshakesMax,
      secret: config.ensembleSecret,
      tls:
        quorumTls === undefined
          ? undefined
          : { context: () => quorumTls.current(), allowedNames: config.quorumTlsAllowedNames },
      messageBytesMax: config.frameBytesMax * 2,
      onMessage: (from, payload) => this.driver.receive(from, payload),
      onUp: (peer, conn) => {
        this.logger.debug({ peer, conn }, 'peer link up')
        this.driver.peerConnected(peer, conn)
      },
      onDown: (peer) => {
        this.logger.debug({ peer }, 'peer link down')
        this.driver.peerDisconnected(peer)
      },
      onWarn: (msg, detail) => this.logger.warn({ component: 'peer', ...detail }, msg),
    })
    const storage = host.storage
    this.driver = new ZabDriver({
      peer,
      storage,
      transport: {
        send: (to, bytes, conn) => this.transport.send(to, bytes, conn),
        drop: (to) => this.transport.drop(to),
        bufferedBytes: (to) => this.transport.bufferedBytes(to),
        pauseReceiving: (from, paused) => this.transport.pauseReceiving(from, paused),
      },
      timers: eventLoopTimers,
      host: {
        reflectsThrough: () => host.reflectsThrough(),
        cancelSnapshot: () => host.cancelSnapshot(),
        beginRestore: (zxid) => host.beginRestore(zxid),
        commit: (e) => events.commit(e.zxid, e.data),
        app: (from, payload) => this.app(from, payload),
        syncDone: (id) => events.syncDone(id),
        syncFailed: (id) => events.syncFailed?.(id),
        role: (ev) => this.roleChanged(ev),
        viewChanged: () => this.followView(),
        fatal: (err) => events.fatal(err),
      },
      logger,
      probes: { measureStalls: () => new StallMonitor(), sending: (_to, msg) => this.onSending?.(msg) },
      snapSliceMs: SNAP_SLICE_MS,
    })
    storage.onDurable((upTo) => this.driver.entriesDurable(upTo))
    storage.onDrain(() => this.driver.drained())
  }

  /**
   * The static config (in force until a reconfig commits one): the one a
   * leader gave this server (a joiner's own --servers names itself, the
   * ensemble's does not), else --servers'.
   */
  private staticConfig(storage: Storage): MemberConfig {
    const flags = staticMemberConfig(this.config.servers)
    const saved = storage.getMeta(STATIC_CONFIG_META_KEY)
    if (saved === undefined) return flags
    try {
      return parseConfigText(saved)
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e
      this.logger.warn(
        { reason: e.message },
        'the static config taken from a leader is unreadable: using --servers',
      )
      return flags
    }
  }

  /**
   * The peers to link with at startup: the members of the view recovered from
   * disk (the static --servers config when no reconfig has been seen). Says
   * so when that differs from --servers, and when the view puts this server
   * somewhere other than where it listens (a moved server, until a reconfig
   * names its new address).
   */
  private startingPeers(peer: ZabPeer, self: PeerSpec): PeerAddress[] {
    const members = viewMembers(peer.membership.configs)
    const peers = peerAddresses(members, this.config.serverId)
    const flags = this.config.servers
      .filter((s) => s.id !== self.id)
      .map((s) => ({ id: s.id, host: s.host, port: s.peerPort }))
    const diff = addressChanges(flags, peers)
    const version = `0x${peer.membership.latest.zxid.toString(16)}`
    if (diff.added.length + diff.removed.length + diff.moved.length > 0)
      this.logger.warn(
        { version, ...diff },
        'the membership on disk differs from --servers: following the configuration on disk',
      )
    const named = members.get(self.id)
    if (named !== undefined && (named.host !== self.host || named.peerPort !== self.peerPort))
      this.logger.warn(
        { version, configured: where(named), listening: where(self) },
        'this server listens at another peer address than its configuration names: reconfig its address (server.N=host:port:port;client)',
      )
    return peers
  }

  /** The membership view changed: the peer links follow its members and addresses. */
  private followView(): void {
    const m = this.driver.peer.membership
    const next = peerAddresses(viewMembers(m.configs), this.config.serverId)
    const diff = addressChanges(this.transport.peers(), next)
    if (diff.added.length + diff.removed.length + diff.moved.length === 0) return
    this.logger.info({ view: m.describe(), ...diff }, 'peer links follow the membership')
    this.transport.setPeers(next)
  }

  async start(): Promise<void> {
    await this.transport.start()
    this.timer = setInterval(() => this.driver.tick(), ZAB_TICK_MS)
    this.driver.tick()
  }

  /** Test hook (CONCLAVE_FAULTS): partition this server from some peers. */
  setBlockedPeers(ids: number[]): void {
    this.transport.setBlocked(ids)
  }

  /** Test hook: drop what these peers send here, links kept up (a one-way partition). */
  setDeafPeers(ids: number[]): void {
    this.transport.setDeafTo(ids)
  }

  /**
   * Durable log entries from `from` on, for a DIFF older than the in-memory
   * log: only where the log is one stretch of history (after the newest
   * snapshot's start). Synchronous SQLite reads, bounded by `max`. A failed
   * read costs a SNAP, not the leadership.
   */
  private readHistory(from: number, max: number): readonly LogEntry[] {
    const storage = this.host.storage
    try {
      if (from < storage.contiguousLogFrom()) return []
      return storage.readLogFrom(from, max, HISTORY_DIFF_BYTES_MAX)
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message },
        'could not read the txn log for a DIFF; sending a snapshot',
      )
      return []
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.driver.close()
    this.quorumTls?.close()
    await this.transport.close()
  }

  describe(): Record<string, string | number> {
    const st = this.driver.peer.status()
    return {
      Leader: st.leaderId ?? 'none',
      'Accepted epoch': st.acceptedEpoch,
      'Current epoch': st.currentEpoch,
      'Commit zxid': `0x${st.commitZxid.toString(16)}`,
      'Election round': st.round,
    }
  }
}
