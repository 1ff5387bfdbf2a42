/**
 * Parses a connect string: comma-separated servers, each `ws://host:port`
 * (the default when no scheme is given), `wss://host:port` or
 * `tcp://host:port` (ZooKeeper's TCP framing, Node only). A ws URL may carry
 * a path; a tcp entry may not. `tcp://` and bare entries default to port 2181.
 *
 * Invariants: the result is non-empty and every entry has a host and a port
 * in 1..65535; anything else throws ZkError(BAD_ARGUMENTS). Pure (a parse is
 * remembered for the last few strings, and every call returns fresh objects).
 * Imports only shared/ and bounded-memo.ts (no node:*).
 */
import { ErrorCode, ZkError } from '../shared/errors.js'
import { boundedMemo } from './bounded-memo.js'

export type EndpointKind = 'ws' | 'tcp'

export interface Endpoint {
  kind: EndpointKind
  /** For ws/wss: the URL to open. For tcp: `tcp://host:port`. */
  url: string
  /** Host name or address, IPv6 without brackets. */
  host: string
  port: number
}

export const DEFAULT_PORT = 2181

function bad(entry: string, why: string): ZkError {
  return new ZkError(ErrorCode.BAD_ARGUMENTS, undefined, `bad server '${entry}' in connect string: ${why}`)
}

function parseEntry(raw: string): Endpoint {
  const entry = raw.trim()
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(entry)
  const text = hasScheme ? entry : `ws://${entry}`
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw bad(entry, 'not a URL')
  }
  const scheme = url.protocol.toLowerCase()
  if (scheme !== 'ws:' && scheme !== 'wss:' && scheme !== 'tcp:')
    throw bad(entry, `unsupported scheme ${scheme} (use ws://, wss:// or tcp://)`)
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  if (host === '') throw bad(entry, 'no host')
  const defaultPort = scheme === 'tcp:' || !hasScheme ? DEFAULT_PORT : scheme === 'wss:' ? 443 : 80
  const port = url.port === '' ? defaultPort : Number(url.port)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(entry, `bad port ${url.port}`)
  if (scheme === 'tcp:') {
    if (url.pathname !== '' && url.pathname !== '/') throw bad(entry, 'a tcp:// server takes no path')
    return endpointOf('tcp:', host, port, '')
  }
  return endpointOf(scheme, host, port, `${url.pathname === '' ? '/' : url.pathname}${url.search}`)
}

/** An endpoint from its parts: scheme 'ws:', 'wss:' or 'tcp:', a host (IPv6 without brackets), a port, a ws path. */
function endpointOf(scheme: string, host: string, port: number, path: string): Endpoint {
  const hostText = host.includes(':') ? `[${host}]` : host
  if (scheme === 'tcp:') return { kind: 'tcp', url: `tcp://${hostText}:${port}`, host, port }
  return { kind: 'ws', url: `${scheme}//${hostText}:${port}${path}`, host, port }
}

/**
 * The endpoint of another server reached the way `template` is: the same
 * scheme (ws, wss or tcp) and, for ws, the same path and query.
 */
export function endpointLike(template: Endpoint, host: string, port: number): Endpoint {
  const m = /^([a-z]+:)\/\/(?:\[[^\]]*\]|[^/]*?):\d+(.*)$/.exec(template.url)
  if (m === null) throw new Error(`not an endpoint URL: ${template.url}`)
  return endpointOf(m[1]!, host, port, m[2]!)
}

/** Host (case-insensitive) and port: what says two endpoints are the same server. */
export function addressKey(e: { host: string; port: number }): string {
  return `${e.host.toLowerCase()}:${e.port}`
}

/** Index in `list` of the server at `e`'s address (addressKey), -1 if none. */
export function indexOfAddress(list: readonly Endpoint[], e: { host: string; port: number }): number {
  const key = addressKey(e)
  return list.findIndex((x) => addressKey(x) === key)
}

// A client per session, as the session bench opens them, parsed its URLs for every one (3-4% of its CPU).
const parseServers = boundedMemo(64, (connectString: string): readonly Endpoint[] => {
  const parts = connectString.split(',').filter((p) => p.trim() !== '')
  if (parts.length === 0) throw new ZkError(ErrorCode.BAD_ARGUMENTS, undefined, 'connect string is empty')
  return parts.map(parseEntry)
})

/** Parses every server of a connect string, in the order given. */
export function parseConnectString(connectString: string): Endpoint[] {
  if (typeof connectString !== 'string' || connectString.trim() === '')
    throw new ZkError(ErrorCode.BAD_ARGUMENTS, undefined, 'connect string is empty')
  // Copies: callers own what they get (and may keep or change it).
  return parseServers(connectString).map((e) => ({ ...e }))
}

/** A copy of `items` in random order (Fisher-Yates), using `random` in [0, 1). */
export function shuffled<T>(items: readonly T[], random: () => number = Math.random): T[] {
  const out = items.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = out[i]!
    out[i] = out[j]!
    out[j] = t
  }
  return out
}
