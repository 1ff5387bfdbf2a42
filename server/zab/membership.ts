/**
 * Membership: who votes, who observes, and what a quorum is, as one server
 * knows it — the configuration history ZAB reconfiguration runs on.
 *
 * A configuration is a replicated log entry (a "config entry": MAGIC then
 * ZooKeeper's dynamic-config text, `server.N=host:peer:election:role;client`
 * lines), so its version is its zxid. A server's view is the last config it
 * knows committed plus every config entry after it in its log (accepted,
 * not known committed). A set of servers is a quorum of the view when it is
 * a majority of the voters of EVERY config in it: while a reconfig is in
 * flight that is the joint quorum (old and new), once its commit is known
 * only the new one. One reconfig is in flight at a time (the leader refuses
 * a second while its view holds an uncommitted one), so a view holds at
 * most a couple of configs.
 *
 * Why that is safe (docs/architecture.md, design notes): any two views'
 * quorums either share a config, or the older view's quorum contains a
 * server that durably holds the next config entry (it acked it as part of
 * a quorum of the older config), so a leader elected on the older view
 * finds a learner ahead of it in discovery and never establishes.
 *
 * Invariants: every config has at least one voter; voters and observers are
 * disjoint; pending zxids are strictly increasing and above committed.zxid.
 *
 * Must not import anything but shared/, server/core and server/zab (pure).
 */
import { assert } from '../../shared/assert.js'
import type { ServerId } from './types.js'

/** One configuration: its voters and observers, and its text (addresses for the server; opaque to ZAB). */
export interface MemberConfig {
  readonly voters: readonly ServerId[]
  readonly observers: readonly ServerId[]
  /** ZooKeeper dynamic-config lines (no `version=` line). */
  readonly text: string
}

/** A configuration and the zxid of the entry that made it (0: the static one from the config file). */
export interface ConfigAt {
  readonly zxid: number
  readonly config: MemberConfig
}

/** The first bytes of a config entry's data: no Txn (int format version 1 or 2) and no sim KV write starts so. */
const MAGIC = [0xff, 0x43, 0x46, 0x47] as const // 0xff 'C' 'F' 'G'

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Most members one configuration may name. */
export const CONFIG_MEMBERS_MAX = 255

const LINE = /^server\.(\d+)=([^;]*)(?:;(.*))?$/

/**
 * Parses dynamic-config text: one `server.N=host:peer:election[:role][;clientAddr]`
 * line per member (role `participant`, the default, or `observer`); blank
 * lines and a `version=` line are ignored. Throws ConfigError on anything else.
 */
export function parseConfigText(text: string): MemberConfig {
  const voters: ServerId[] = []
  const observers: ServerId[] = []
  const seen = new Set<ServerId>()
  const lines: string[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('version=')) continue
    const { id, role } = splitServerLine(line)
    if (seen.has(id)) throw new ConfigError(`server.${id} appears twice`)
    seen.add(id)
    if (role === 'participant') voters.push(id)
    else observers.push(id)
    lines.push(line)
  }
  if (seen.size > CONFIG_MEMBERS_MAX) throw new ConfigError(`more than ${CONFIG_MEMBERS_MAX} servers`)
  if (voters.length === 0) throw new ConfigError('a configuration needs at least one participant')
  voters.sort((a, b) => a - b)
  observers.sort((a, b) => a - b)
  lines.sort((a, b) => idOf(a) - idOf(b))
  return { voters, observers, text: lines.join('\n') }
}

/** One server line's parts, checked for shape only (addresses are the host's to check: config.ts). */
export interface ServerLineParts {
  id: ServerId
  host: string
  quorumPort: string
  electionPort: string
  role: 'participant' | 'observer'
  /** What follows `;` (the client address), trimmed; undefined: none. */
  client: string | undefined
}

/**
 * Splits `server.N=host:quorumPort:electionPort[:role][;client]` (ZooKeeper's
 * form) into its parts; throws ConfigError when the line has another shape.
 * The one reader of the line's shape: parseConfigText here, and config.ts's
 * parseMemberLine, which checks the addresses on top.
 */
export function splitServerLine(line: string): ServerLineParts {
  const m = LINE.exec(line.trim())
  if (!m) throw new ConfigError(`not a server line: ${JSON.stringify(line.slice(0, 80))}`)
  const id = Number(m[1])
  if (!Number.isSafeInteger(id) || id < 1 || id > 0xffffffff)
    throw new ConfigError(`bad server id in ${line}`)
  const parts = m[2]!.split(':')
  const role = parts.length >= 4 ? parts[3] : 'participant'
  if (parts.length < 3 || parts.length > 4 || parts.slice(0, 3).some((p) => p === ''))
    throw new ConfigError(`server.${id} needs host:peerPort:electionPort[:role], got ${JSON.stringify(m[2])}`)
  if (role !== 'participant' && role !== 'observer')
    throw new ConfigError(`server.${id}: role must be participant or observer, got ${JSON.stringify(role)}`)
  const client = m[3]?.trim()
  return {
    id,
    host: parts[0]!,
    quorumPort: parts[1]!,
    electionPort: parts[2]!,
    role,
    client: client === '' ? undefined : client,
  }
}

function idOf(line: string): number {
  return Number(LINE.exec(line)?.[1] ?? 0)
}

/** A config for ids only (tests and the simulation): placeholder addresses. */
export function configOfIds(voters: readonly ServerId[], observers: readonly ServerId[] = []): MemberConfig {
  const line = (id: ServerId, role: string) => `server.${id}=127.0.0.1:${id}:${id}:${role};127.0.0.1:${id}`
  return parseConfigText(
    [...voters.map((v) => line(v, 'participant')), ...observers.map((o) => line(o, 'observer'))].join('\n'),
  )
}

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

export function encodeConfigEntry(c: MemberConfig): Uint8Array {
  const text = enc.encode(c.text)
  const out = new Uint8Array(MAGIC.length + text.length)
  out.set(MAGIC, 0)
  out.set(text, MAGIC.length)
  return out
}

export function isConfigEntry(data: Uint8Array): boolean {
  return (
    data.length >= MAGIC.length &&
    data[0] === MAGIC[0] &&
    data[1] === MAGIC[1] &&
    data[2] === MAGIC[2] &&
    data[3] === MAGIC[3]
  )
}

/** The config an entry carries, undefined if it is not a config entry; ConfigError if it is one but malformed. */
export function decodeConfigEntry(data: Uint8Array): MemberConfig | undefined {
  if (!isConfigEntry(data)) return undefined
  let text: string
  try {
    text = dec.decode(data.subarray(MAGIC.length))
  } catch {
    throw new ConfigError('config entry is not UTF-8')
  }
  return parseConfigText(text)
}

/** The quorum of a config with `n` voters. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1
}

/** Voters and observers of one config, as sets. */
interface Compiled {
  readonly at: ConfigAt
  readonly voters: ReadonlySet<ServerId>
  readonly observers: ReadonlySet<ServerId>
  readonly quorum: number
}

function compile(at: ConfigAt): Compiled {
  const voters = new Set(at.config.voters)
  return { at, voters, observers: new Set(at.config.observers), quorum: majority(voters.size) }
}

export class Membership {
  private committedC: Compiled
  private pendingC: Compiled[] = []
  private all: Compiled[]
  private votersUnion: Set<ServerId> = new Set()
  /** Counts changes of the view (a driver compares it to follow the view: the peer links' addresses). */
  private changes = 0

  constructor(committed: ConfigAt) {
    this.committedC = compile(committed)
    this.all = [this.committedC]
    this.recompute()
  }

  get committed(): ConfigAt {
    return this.committedC.at
  }

  /** Config entries in the log after the committed one, oldest first. */
  get pending(): readonly ConfigAt[] {
    return this.pendingC.map((c) => c.at)
  }

  /** The newest config of the view (committed or not). */
  get latest(): ConfigAt {
    return this.all[this.all.length - 1]!.at
  }

  /** Every config of the view, oldest (the committed one) first. */
  get configs(): readonly ConfigAt[] {
    return this.all.map((c) => c.at)
  }

  /** A number that changes whenever the view does. */
  get version(): number {
    return this.changes
  }

  /** Voters of any config of the view. */
  get voters(): ReadonlySet<ServerId> {
    return this.votersUnion
  }

  isVoter(id: ServerId): boolean {
    return this.votersUnion.has(id)
  }

  /** A voter or an observer of some config of the view. */
  isMember(id: ServerId): boolean {
    return this.votersUnion.has(id) || this.all.some((c) => c.observers.has(id))
  }

  /** An observer (in the newest config) that votes in no config of the view. */
  isObserver(id: ServerId): boolean {
    return !this.votersUnion.has(id) && this.all[this.all.length - 1]!.observers.has(id)
  }

  /** Whether the servers `has` accepts are a majority of the voters of every config of the view. */
  hasQuorum(has: (id: ServerId) => boolean): boolean {
    for (const c of this.all) {
      let n = 0
      for (const v of c.voters) if (has(v)) n++
      if (n < c.quorum) return false
    }
    return true
  }

  /**
   * The highest zxid acknowledged by a quorum of the view: for each config
   * the quorum-th highest ack of its voters (`ackOf` undefined: none), the
   * least of those. 0 when some config has no quorum of acks.
   */
  quorumZxid(ackOf: (id: ServerId) => number | undefined, scratch: number[] = []): number {
    let result = Number.POSITIVE_INFINITY
    for (const c of this.all) {
      let n = 0
      for (const v of c.voters) {
        const a = ackOf(v)
        if (a === undefined) continue
        let i = n++
        while (i > 0 && scratch[i - 1]! < a) {
          scratch[i] = scratch[i - 1]!
          i--
        }
        scratch[i] = a
      }
      if (n < c.quorum) return 0
      result = Math.min(result, scratch[c.quorum - 1]!)
    }
    return result
  }

  /** A config entry was appended to the log. */
  appended(at: ConfigAt): void {
    assert(at.zxid > this.latest.zxid, 'config entries out of order')
    this.pendingC.push(compile(at))
    this.recompute()
  }

  /** The log was truncated after `zxid`: config entries past it are gone. */
  truncatedAfter(zxid: number): void {
    const before = this.pendingC.length
    this.pendingC = this.pendingC.filter((c) => c.at.zxid <= zxid)
    if (this.pendingC.length !== before) this.recompute()
  }

  /** Everything up to `zxid` is committed; true if that committed a pending config (the view changed). */
  committedThrough(zxid: number): boolean {
    let last: Compiled | undefined
    while (this.pendingC.length > 0 && this.pendingC[0]!.at.zxid <= zxid) last = this.pendingC.shift()
    if (last === undefined) return false
    this.committedC = last
    this.recompute()
    return true
  }

  /**
   * Another server says `at` is committed (a notification): a commit is a
   * fact, so it becomes our committed config if newer, and accepted configs
   * at or below it are superseded. Its entry may not be in our log yet (we
   * are behind): a sync brings it. Not persisted: after a restart we know
   * less again, which is safe (a stale view cannot establish a leader).
   */
  adoptCommitted(at: ConfigAt): boolean {
    if (at.zxid <= this.committedC.at.zxid) return false
    this.committedC = compile(at)
    this.pendingC = this.pendingC.filter((c) => c.at.zxid > at.zxid)
    this.recompute()
    return true
  }

  /**
   * The leader's static config (zxid 0: no reconfig committed yet) differs
   * from ours (our config file's): it replaces ours; accepted configs stay.
   */
  replaceStatic(at: ConfigAt): void {
    assert(at.zxid === 0 && this.committedC.at.zxid === 0, 'only a static config is replaced')
    this.committedC = compile(at)
    this.recompute()
  }

  /** A snapshot replaced the log: `committed` is the config as of it. */
  reset(committed: ConfigAt): void {
    this.committedC = compile(committed)
    this.pendingC = []
    this.recompute()
  }

  /** A short description for traces: `v[1,2,3] o[4]` per config, oldest first. */
  describe(): string {
    return this.all
      .map((c) => `0x${c.at.zxid.toString(16)}:v[${c.at.config.voters}]o[${c.at.config.observers}]`)
      .join(' + ')
  }

  private recompute(): void {
    this.changes++
    this.all = [this.committedC, ...this.pendingC]
    this.votersUnion = new Set()
    for (const c of this.all) for (const v of c.voters) this.votersUnion.add(v)
  }
}
