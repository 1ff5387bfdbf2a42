/**
 * MembershipTracker: keeps the session's server list following the
 * ensemble's membership, as ZooKeeper 3.5+'s getConfig + updateServerList
 * (and Curator's EnsembleTracker) do. On every connection it reads
 * /zookeeper/config; once that names servers (an ensemble: a standalone
 * server's is empty) it reads it with a watch, so every reconfig reaches it,
 * and replaces the list with the configuration's client addresses.
 *
 * Invariants:
 * - At most one read in flight; a change or a connection meanwhile makes one
 *   more read after it (never more). A session whose servers have no
 *   configuration (standalone: empty; ZooKeeper 3.4: no node) reads it once.
 * - The list is replaced only by a well-formed configuration that is not
 *   older than one adopted before, that names at least one client address,
 *   and whose addresses are the ones this client reaches servers by: it
 *   shares an address with the list (or an earlier configuration did). So a
 *   client behind port mappings or other names (Docker, a proxy), whose
 *   config names addresses it cannot reach, keeps its given list.
 * - A failure to read (no READ on the node, no node: ZooKeeper 3.4, a lost
 *   connection) or a malformed configuration changes nothing; the session
 *   goes on with the list it has. Warnings go to the host (deduplicated:
 *   the same one is not repeated back to back).
 * Pure policy over the TrackerHost port: no timers, no I/O of its own.
 * Imports only shared/ and client/ (no node:*).
 */
import { ErrorCode, ZkError } from '../shared/errors.js'
import { addressKey, type Endpoint, endpointLike, shuffled } from './connect-string.js'
import { type ClientAddress, parseEnsembleConfig } from './ensemble-config.js'

/** ZooKeeper's node for the membership config. */
export const CONFIG_NODE = '/zookeeper/config'

export interface TrackerHost {
  /** getData of /zookeeper/config (the server's path, no chroot), with a watch if asked. */
  readConfig(watch: boolean): Promise<Uint8Array>
  /** The server list now. */
  servers(): readonly Endpoint[]
  /** The server the session is connected to, if any. */
  connected(): Endpoint | undefined
  /** Replaces the list; the session moves off a server no longer in it. */
  replace(endpoints: Endpoint[]): void
  warn(message: string): void
  random(): number
}

/** What to do with a configuration's addresses. */
export type ListPlan =
  | { kind: 'replace'; endpoints: Endpoint[] }
  /** The list already holds exactly these servers. */
  | { kind: 'same' }
  /** The config names no client address. */
  | { kind: 'none' }
  /** The config shares no address with the list (and none adopted before did): other names. */
  | { kind: 'foreign' }

/**
 * The new list for a configuration's addresses (pure): an address already
 * in the list keeps its endpoint (its scheme and path as given); a new one is
 * reached like `template` (the server connected to). Shuffled, as the given
 * list was (ZooKeeper's StaticHostProvider), so clients spread.
 */
export function planServerList(opts: {
  current: readonly Endpoint[]
  addresses: readonly ClientAddress[]
  template: Endpoint
  trusted: boolean
  random: () => number
}): ListPlan {
  const { current, addresses } = opts
  if (addresses.length === 0) return { kind: 'none' }
  const have = new Map(current.map((e) => [addressKey(e), e]))
  const keys = addresses.map(addressKey)
  if (!opts.trusted && !keys.some((k) => have.has(k))) return { kind: 'foreign' }
  if (keys.length === have.size && keys.every((k) => have.has(k))) return { kind: 'same' }
  const next = addresses.map((a, i) => have.get(keys[i]!) ?? endpointLike(opts.template, a.host, a.port))
  return { kind: 'replace', endpoints: shuffled(next, opts.random) }
}

/** Codes of a failed read that say nothing worth a warning (the session is moving on, or there is no node). */
const QUIET_CODES: ReadonlySet<string> = new Set([
  ErrorCode.CONNECTION_LOSS,
  ErrorCode.SESSION_EXPIRED,
  ErrorCode.AUTH_FAILED,
  ErrorCode.NO_NODE,
])

export class MembershipTracker {
  private reading = false
  private again = false
  /** A configuration's addresses were adopted: they are this client's names for the servers. */
  private trusted = false
  /** The servers' config named servers, so it is read with a watch (a standalone server's is empty). */
  private ensemble = false
  /**
   * The config was empty (a standalone server) or absent (ZooKeeper 3.4):
   * nothing to follow, so the session reads it no more (one read per session,
   * not per connection).
   */
  private nothing = false
  /** The version of the last configuration adopted (its zxid), -1 before. */
  private version = -1
  private lastWarning: string | undefined

  constructor(private readonly host: TrackerHost) {}

  /** A connection (a session established or resumed): read the configuration again. */
  connected(): void {
    if (!this.nothing) this.read()
  }

  /**
   * The application set the list itself (updateServerList): what was learned
   * of the servers (their naming, the config's version, standalone or not)
   * may not hold for the new ones, so the next config is judged afresh.
   */
  forget(): void {
    this.trusted = false
    this.ensemble = false
    this.nothing = false
    this.version = -1
  }

  /** /zookeeper/config changed (its watch fired). */
  changed(): void {
    this.read()
  }

  private read(): void {
    if (this.reading) {
      this.again = true
      return
    }
    // This read serves any that was asked for while none could go (no connection then).
    this.again = false
    this.reading = true
    const watch = this.ensemble
    this.host.readConfig(watch).then(
      (data) => this.settled(() => this.learn(data, watch)),
      (err: unknown) => this.settled(() => this.readFailed(err)),
    )
  }

  private settled(then: () => void): void {
    this.reading = false
    try {
      then()
    } finally {
      if (this.again && this.host.connected() !== undefined) {
        this.again = false
        this.read()
      }
    }
  }

  private readFailed(err: unknown): void {
    const code = ZkError.is(err) ? err.code : undefined
    if (code === ErrorCode.NO_NODE) this.nothing = true
    if (code !== undefined && QUIET_CODES.has(code)) return
    this.warn(`cannot read ${CONFIG_NODE} (${code ?? String(err)}): keeping the server list`)
  }

  private learn(data: Uint8Array, watched: boolean): void {
    const config = parseEnsembleConfig(data)
    if (config.kind === 'empty') {
      this.nothing = !this.ensemble
      return
    }
    if (!watched && !this.ensemble) {
      // An ensemble: from now on the node is read with a watch (this read set none).
      this.ensemble = true
      this.again = true
    }
    if (config.kind === 'malformed') {
      this.warn(`ignoring a malformed ${CONFIG_NODE} (${config.why}): keeping the server list`)
      return
    }
    // A server is never behind what the session has seen; an older config is a stale read.
    if (config.version !== undefined && config.version < this.version) return
    const current = this.host.servers()
    const plan = planServerList({
      current,
      addresses: config.addresses,
      template: this.host.connected() ?? current[0]!,
      trusted: this.trusted,
      random: () => this.host.random(),
    })
    switch (plan.kind) {
      case 'none':
        this.warn(`${CONFIG_NODE} names no client address: keeping the server list`)
        return
      case 'foreign': {
        const named = config.addresses.map((a) => `${a.host}:${a.port}`).join(',')
        this.warn(
          `${CONFIG_NODE} names none of this client's servers (it names ${named}): keeping the given list`,
        )
        return
      }
      case 'same':
        break
      case 'replace':
        this.host.replace(plan.endpoints)
        break
    }
    this.trusted = true
    if (config.version !== undefined) this.version = config.version
  }

  private warn(message: string): void {
    if (message === this.lastWarning) return
    this.lastWarning = message
    this.host.warn(message)
  }
}
