/**
 * Reads the client addresses out of an ensemble's configuration as
 * /zookeeper/config holds it (ZooKeeper's dynamic-config format, which
 * Conclave writes too): `server.N=host:peerPort:electionPort[:role][;clientAddr]`
 * lines, then `version=<hex>`. The client address is `[host:]port` (host may be
 * a bracketed IPv6 literal); a wildcard host (0.0.0.0, ::) or none means the
 * server listens everywhere, so its quorum host is used (as Curator's
 * EnsembleTracker does); a server line with no client address serves no
 * clients from the config's point of view and is skipped.
 *
 * Invariants: the result is 'empty' (no configuration: a standalone server),
 * 'malformed' with a reason (nothing of it is used), or the servers'
 * addresses in id order, at most `serversMax`, each with a host and a port in
 * 1..65535, no address twice. Participants and observers alike (both serve
 * clients). `group.N` / `weight.N` lines (hierarchical quorums) are ignored.
 * Pure. Imports nothing of ours but the connect string's address key.
 */
import { addressKey } from './connect-string.js'

/** Most servers the SDK takes from a configuration (Conclave's CONFIG_MEMBERS_MAX). */
export const SERVERS_MAX = 255

/** One server's client address as the configuration gives it. */
export interface ClientAddress {
  /** The server's id (server.N). */
  id: number
  /** Host name or address, IPv6 without brackets. */
  host: string
  port: number
}

export type EnsembleConfig =
  | { kind: 'servers'; addresses: ClientAddress[]; version: number | undefined }
  | { kind: 'empty' }
  | { kind: 'malformed'; why: string }

const SERVER_LINE = /^server\.(\d+)=([^;]*)(?:;(.*))?$/
const OTHER_LINE = /^(?:group|weight)\.\d+=/
const WILDCARD = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0'])
/** Longest line quoted in a reason. */
const QUOTE_CHARS_MAX = 80

const quote = (s: string): string =>
  JSON.stringify(s.length > QUOTE_CHARS_MAX ? `${s.slice(0, QUOTE_CHARS_MAX)}…` : s)

/** `host:port` or `[v6]:port` (port required) → parts; undefined if malformed. */
function hostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(text)
  if (m === null) return undefined
  const port = Number(m[3])
  if (port < 1 || port > 65535) return undefined
  return { host: m[1] ?? m[2]!, port }
}

/**
 * The quorum host of `host:peer:election[:role]` (host may be `[v6]`; ZooKeeper
 * 3.6's multi-address form `a:1:2|b:1:2[:role]` gives the first one's).
 */
function quorumHost(text: string): string | undefined {
  const addresses = text.replace(/:(?:participant|observer)$/, '').split('|')
  let first: string | undefined
  for (const a of addresses) {
    const m = /^(?:\[([^\]]*)\]|([^:[\]]+)):(\d{1,5}):(\d{1,5})$/.exec(a)
    if (m === null) return undefined
    first ??= m[1] ?? m[2]
  }
  return first
}

/** The client address of one server line's parts; undefined: none; a string: why it is malformed. */
function clientAddress(
  id: number,
  quorum: string,
  client: string | undefined,
): ClientAddress | undefined | string {
  const qHost = quorumHost(quorum.trim())
  if (qHost === undefined || qHost === '')
    return `server.${id} needs host:peerPort:electionPort[:role], got ${quote(quorum)}`
  if (client === undefined || client.trim() === '') return undefined
  const text = client.trim()
  // `port` alone means every interface (ZooKeeper's 0.0.0.0:port).
  const parsed = /^\d{1,5}$/.test(text) ? hostPort(`0.0.0.0:${text}`) : hostPort(text)
  if (parsed === undefined) return `server.${id} has a bad client address ${quote(text)}`
  const host = parsed.host === '' || WILDCARD.has(parsed.host) ? qHost : parsed.host
  return { id, host, port: parsed.port }
}

/** The servers' client addresses from /zookeeper/config's data. Never throws. */
export function parseEnsembleConfig(data: Uint8Array | string, serversMax = SERVERS_MAX): EnsembleConfig {
  let text: string
  try {
    text = typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data)
  } catch {
    return { kind: 'malformed', why: 'the configuration is not UTF-8' }
  }
  if (text.trim() === '') return { kind: 'empty' }
  const ids = new Set<number>()
  const keys = new Set<string>()
  const addresses: ClientAddress[] = []
  let version: number | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || OTHER_LINE.test(line)) continue
    if (line.startsWith('version=')) {
      const v = line.slice('version='.length)
      if (!/^[0-9a-f]{1,13}$/i.test(v)) return { kind: 'malformed', why: `bad version line ${quote(line)}` }
      version = Number.parseInt(v, 16)
      continue
    }
    const m = SERVER_LINE.exec(line)
    if (m === null) return { kind: 'malformed', why: `not a server line: ${quote(line)}` }
    const id = Number(m[1])
    if (!Number.isSafeInteger(id) || ids.has(id))
      return { kind: 'malformed', why: `bad or repeated server id in ${quote(line)}` }
    ids.add(id)
    if (ids.size > serversMax)
      return { kind: 'malformed', why: `more than ${serversMax} servers (the SDK's limit)` }
    const a = clientAddress(id, m[2]!, m[3])
    if (typeof a === 'string') return { kind: 'malformed', why: a }
    if (a === undefined || keys.has(addressKey(a))) continue
    keys.add(addressKey(a))
    addresses.push(a)
  }
  if (ids.size === 0) return { kind: 'malformed', why: 'no server line' }
  addresses.sort((a, b) => a.id - b.id)
  return { kind: 'servers', addresses, version }
}
