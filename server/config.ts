/**
 * Server configuration: every setting, its default and its limit, validated
 * with zod. Sources: a JSON file, a ZooKeeper-style `key=value` file
 * (`server.N=host:peerPort:clientPort[:observer]` lines), and CLI flags (which
 * win). A wrong value produces a ConfigError naming the field, the value and
 * what was expected.
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { FOUR_LETTER_WORDS, isFourLetterWord } from './admin/four-letter-words.js'
import {
  ConfigError as ConfigShapeError,
  type MemberConfig,
  parseConfigText,
  type ServerLineParts,
  splitServerLine,
} from './zab/index.js'

/** The highest server id Conclave runs: a session id carries its server's id in a byte. */
export const SERVER_ID_MAX = 254

export const PeerSpec = z.object({
  id: z.number().int().min(1).max(SERVER_ID_MAX),
  host: z.string().min(1),
  peerPort: z.number().int().min(1).max(65535),
  clientPort: z.number().int().min(1).max(65535),
  observer: z.boolean().default(false),
})
export type PeerSpec = z.infer<typeof PeerSpec>

/** One server of a dynamic-config line (ZooKeeper's form): its id, role, peer address and client address. */
export interface MemberLine {
  readonly id: number
  readonly role: 'participant' | 'observer'
  readonly host: string
  /** ZooKeeper's quorum port: Conclave's peer port. */
  readonly peerPort: number
  /** ZooKeeper's election port: kept as written (Conclave has one peer port, the one above). */
  readonly electionPort: number
  /** The client address; undefined when the line has none. */
  readonly client: { readonly host: string; readonly port: number } | undefined
}

/** Most characters of a host name in a server line (RFC 1035's name length). */
const MEMBER_HOST_CHARS_MAX = 253

function port(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined
  const n = Number(text)
  return n >= 1 && n <= 65535 ? n : undefined
}

/**
 * Parses one `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]`
 * line as ZooKeeper's QuorumServer reads it (a client port alone listens on
 * 0.0.0.0). Returns the reason it is not one as a string.
 */
export function parseMemberLine(line: string): MemberLine | string {
  let s: ServerLineParts
  try {
    s = splitServerLine(line)
  } catch (err) {
    if (err instanceof ConfigShapeError) return err.message
    throw err
  }
  const { id, host, role } = s
  if (!/^[A-Za-z0-9._-]+$/.test(host) || host.length > MEMBER_HOST_CHARS_MAX)
    return `server.${id}: bad host ${JSON.stringify(host)}`
  const peerPort = port(s.quorumPort)
  const electionPort = port(s.electionPort)
  if (peerPort === undefined || electionPort === undefined)
    return `server.${id}: ports must be 1-65535, got ${JSON.stringify(`${s.quorumPort}:${s.electionPort}`)}`
  let client: MemberLine['client']
  if (s.client !== undefined) {
    const at = s.client.lastIndexOf(':')
    const clientHost = at < 0 ? '0.0.0.0' : s.client.slice(0, at)
    const clientPort = port(s.client.slice(at + 1))
    if (clientPort === undefined || !/^[A-Za-z0-9._-]+$/.test(clientHost))
      return `server.${id}: bad client address ${JSON.stringify(s.client)} (expected [host:]port)`
    client = { host: clientHost, port: clientPort }
  }
  return { id, role, host, peerPort, electionPort, client }
}

/** A server line in ZooKeeper's form (QuorumServer.toString): what /zookeeper/config shows. */
export function formatMemberLine(s: MemberLine): string {
  const client = s.client === undefined ? '' : `;${s.client.host}:${s.client.port}`
  return `server.${s.id}=${s.host}:${s.peerPort}:${s.electionPort}:${s.role}${client}`
}

/**
 * The config file's servers as a membership config: the static one, in
 * force until a reconfig commits one. Each is
 * `server.N=host:peerPort:peerPort:role;host:clientPort` (Conclave has one
 * peer port: it stands for both of ZooKeeper's quorum and election ports).
 */
export function staticMemberConfig(servers: readonly PeerSpec[]): MemberConfig {
  const line = (s: PeerSpec) =>
    formatMemberLine({
      id: s.id,
      role: s.observer ? 'observer' : 'participant',
      host: s.host,
      peerPort: s.peerPort,
      electionPort: s.peerPort,
      client: { host: s.host, port: s.clientPort },
    })
  return parseConfigText(servers.map(line).join('\n'))
}

const ms = (min: number) => z.number().int().min(min)

export const ServerConfig = z
  .object({
    /** The basic time unit in ms; session timeouts and ZAB limits are multiples of it. */
    tickTime: ms(10).max(60_000).default(2000),
    dataDir: z.string().min(1).default('./data'),
    clientPort: z.number().int().min(0).max(65535).default(2181),
    clientPortAddress: z.string().min(1).default('127.0.0.1'),
    /** Defaults to 2 x tickTime. */
    minSessionTimeout: ms(1).optional(),
    /** Defaults to 20 x tickTime. */
    maxSessionTimeout: ms(1).optional(),
    /** Connections from one IP address (ZooKeeper's maxClientCnxns; 0 = unlimited). */
    maxClientCnxns: z.number().int().min(0).default(60),
    sessionsMax: z.number().int().min(1).default(100_000),
    /** Requests one connection may have outstanding before we stop reading from it. */
    outstandingRequestsMax: z.number().int().min(1).max(100_000).default(1000),
    /**
     * Writes this server may have in flight over all its connections
     * (ZooKeeper's name); at the limit it stops reading from clients until
     * half are answered.
     */
    globalOutstandingLimit: z.number().int().min(1).max(1_000_000).default(1000),
    /**
     * The tree's estimated size (per znode 256 bytes plus its path and data)
     * past which writes that would grow it fail with QUOTA_EXCEEDED; deletes,
     * shrinking writes and reads go on. Every server holds the whole tree, so
     * without it one runaway client could exhaust every server's heap at once.
     * Default: half of the heap limit (`--max-old-space-size`).
     */
    treeBytesMax: z
      .number()
      .int()
      .min(1024 * 1024)
      .optional(),
    /** Largest packet accepted: 1 MiB of data plus room for headers, path and ACLs. */
    frameBytesMax: z
      .number()
      .int()
      .min(64 * 1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024 + 64 * 1024),
    /** Bytes queued to a client that does not read before its connection is dropped. */
    sendBufferBytesMax: z
      .number()
      .int()
      .min(1024 * 1024)
      .default(64 * 1024 * 1024),
    /**
     * A client connection whose session handshake (TLS, WebSocket upgrade,
     * ConnectRequest answered) is not done this long after it was accepted
     * is closed, so silent sockets cannot pile up (ZooKeeper's
     * zookeeper.nio.sessionlessCnxnTimeout, 10 s).
     */
    handshakeTimeoutMs: ms(100).max(600_000).default(10_000),
    /**
     * Browser origins allowed to open a WebSocket (`https://app.example.com`,
     * or `*` for any). A handshake without an Origin header (Node, the CLI,
     * every non-browser client) is always accepted; one with an Origin not
     * listed gets 403, so a web page the operator did not list cannot reach
     * the server through a visitor's browser (cross-site WebSocket hijacking).
     */
    allowedOrigins: z.array(z.string().min(1)).default([]),
    /** Watches one session may hold. */
    watchesPerSessionMax: z.number().int().min(1).default(1_000_000),
    /**
     * Most names one page of a paginated getChildren may ask for (its
     * maxCount); a request for more is BAD_ARGUMENTS. A page also stays
     * within frameBytesMax, whatever it asks for.
     */
    childrenPageMax: z.number().int().min(1).max(1_000_000).default(10_000),
    /**
     * The history of recent changes a reconnecting client's watches resume
     * from (server/watch/change-ring.ts): at most this many changes (a
     * znode created, deleted, changed, or its children changed) …
     */
    watchHistoryChangesMax: z.number().int().min(0).max(10_000_000).default(100_000),
    /** … and at most this many estimated bytes of them (each change: 64 plus twice its path's length). */
    watchHistoryBytesMax: z
      .number()
      .int()
      .min(0)
      .max(1024 * 1024 * 1024)
      .default(16 * 1024 * 1024),
    /**
     * Watch resumes one connection may ask for (the SDK asks once per
     * connection); past it, THROTTLED_OP. Each replays up to the whole
     * history, so a client may not loop on it.
     */
    watchResumesPerConnectionMax: z.number().int().min(1).max(1000).default(4),
    /**
     * Requests per second one session may make, and the sessions of one IP
     * address together; past either, a request is answered THROTTLED_OP
     * without being served and its connection is not read for a second
     * (pings and closeSession never count). 0: no limit (the default;
     * ZooKeeper has none).
     */
    requestsPerSecondPerSessionMax: z.number().int().min(0).default(0),
    requestsPerSecondPerIpMax: z.number().int().min(0).default(0),
    /**
     * Identities one connection may hold (its ip, an x509 subject, digest
     * ids from addAuth): every ACL check and forwarded write carries them
     * all, and an `auth` ACL expands to them. One more addAuth gets
     * AUTH_FAILED and the connection is closed.
     */
    authIdsPerConnectionMax: z.number().int().min(2).max(1024).default(16),
    /**
     * Entries an ACL list may have, as sent and after `auth` entries expand;
     * a create or setACL with more gets INVALID_ACL.
     */
    aclEntriesMax: z.number().int().min(1).max(65_536).default(64),
    /**
     * Results of exactly-once writes remembered per session, in the
     * replicated state (the oldest go first: a re-sent write whose result
     * was dropped is answered OUTCOME_UNKNOWN, never applied twice). Results
     * the client has acknowledged go at once, so a session holds about as
     * many as it has writes in flight.
     */
    sessionWriteResultsMax: z.number().int().min(1).max(100_000).default(1000),
    /**
     * … and at most this many bytes of them (each result's bytes plus 64): a
     * multi's result holds a path and a Stat per op, so a session that never
     * acknowledges could otherwise keep sessionWriteResultsMax of them on
     * every server. The newest result always stays. Counted in treeBytesMax.
     */
    sessionWriteResultBytesMax: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    /** `user:base64(sha1(user:password))`: this digest id bypasses ACL checks. */
    superDigest: z.string().optional(),
    /** Txns between snapshots: a random count in [snapCount/2, snapCount] (as ZooKeeper). */
    snapCount: z.number().int().min(10).default(100_000),
    /** Snapshots to keep (ZooKeeper's autopurge.snapRetainCount). */
    snapRetainCount: z.number().int().min(1).default(3),
    serverId: z.number().int().min(1).max(SERVER_ID_MAX).default(1),
    servers: z.array(PeerSpec).default([]),
    initLimit: z.number().int().min(1).default(10),
    syncLimit: z.number().int().min(1).default(5),
    /** Shared secret peers prove on connect, and the key of session passwords. */
    ensembleSecret: z.string().min(8).optional(),
    /**
     * A file holding ensembleSecret (its first line), so the secret is on no
     * command line (`ps` shows those to every user of the machine).
     */
    secretFile: z.string().min(1).optional(),
    /** The client port's TLS certificate (PEM, leaf first, then any intermediates) and key; both or neither. */
    clientTlsCertFile: z.string().min(1).optional(),
    clientTlsKeyFile: z.string().min(1).optional(),
    /** CA certificates (PEM) that client certificates are checked against (the x509 ACL scheme). */
    clientTlsCaFile: z.string().min(1).optional(),
    /**
     * Whether a TLS client is asked for a certificate: `none`; `want` (asked,
     * checked when given); `need` (a client without one is refused).
     * Default: `want` with clientTlsCaFile, else `none`.
     */
    clientTlsClientAuth: z.enum(['none', 'want', 'need']).optional(),
    /** Refuse plaintext clients: only TLS on the client port (four-letter words too go over TLS). */
    clientTlsOnly: z.boolean().default(false),
    /** Quorum TLS: this server's certificate and key, and the ensemble's CA; all three or none. */
    quorumTlsCertFile: z.string().min(1).optional(),
    quorumTlsKeyFile: z.string().min(1).optional(),
    quorumTlsCaFile: z.string().min(1).optional(),
    /**
     * Names a peer's certificate must carry one of, as its subject's CN or a
     * subjectAltName (DNS, IP, URI or email); empty: any certificate the
     * quorum CA issued.
     */
    quorumTlsAllowedNames: z.array(z.string().min(1)).default([]),
    /** How often the TLS certificate, key and CA files are checked for changes (reloaded without a restart). */
    tlsReloadIntervalMs: z.number().int().min(100).max(3_600_000).default(10_000),
    /**
     * ZooKeeper's read-only mode: a server without a quorum gives read-only
     * sessions to the clients that ask for one (ConnectRequest readOnly),
     * serves their reads and answers writes NOT_READ_ONLY (sessions.ts).
     */
    readOnlyMode: z.boolean().default(false),
    /**
     * ZooKeeper's localSessionsEnabled: a new session is made by the server
     * its client connected to, without a createSession Txn, known and expired
     * there alone, closed without a closeSession Txn (server/request/sessions.ts).
     */
    localSessions: z.boolean().default(false),
    /**
     * ZooKeeper's localSessionsUpgradingEnabled: a local session's first
     * ephemeral makes it a global session first (a createSession Txn); off,
     * that create fails EPHEMERAL_ON_LOCAL_SESSION. Default: on with localSessions.
     */
    localSessionsUpgrading: z.boolean().optional(),
    /**
     * ZooKeeper's reconfigEnabled: whether the reconfig request is served
     * (off: RECONFIG_DISABLED). Even on, only the super user or an id with
     * WRITE on /zookeeper/config's ACL may reconfig (server/request/reconfig.ts).
     */
    reconfigEnabled: z.boolean().default(false),
    /**
     * Peer links from servers that no configuration this server knows names
     * (a joining server catching up before a reconfig adds it, a removed
     * one) it keeps at most; one more is refused (and logged). Each proved
     * the ensemble secret (or its quorum TLS certificate).
     */
    peerOutsiderLinksMax: z.number().int().min(0).max(254).default(8),
    /** Incoming peer connections still in their handshake (5 s at most each) at once; more are closed at once. */
    peerHandshakesMax: z.number().int().min(1).max(10_000).default(64),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    /**
     * The four-letter words the client port answers (ZooKeeper's
     * `4lw.commands.whitelist`, its name in a key=value file too); `*`: all.
     * `srvr` is always answered. Default: server/admin/four-letter-words.ts,
     * DEFAULT_WHITELIST.
     */
    fourLetterWordWhitelist: z
      .array(
        z.string().refine((w) => w === '*' || isFourLetterWord(w), {
          message: `expected * or one of ${FOUR_LETTER_WORDS.join(', ')}`,
        }),
      )
      .optional(),
    /** HTTP admin port (health, metrics, stat); 0 = off. */
    adminPort: z.number().int().min(0).max(65535).default(0),
    /**
     * Serve the web console (docs/console.md) on the admin port at /console/;
     * the admin port's origin is then allowed on the client port. Off by default.
     */
    adminConsole: z.boolean().default(false),
  })
  .strict()

export type ServerConfig = z.infer<typeof ServerConfig> & {
  localSessionsUpgrading: boolean
  minSessionTimeout: number
  maxSessionTimeout: number
  clientTlsClientAuth: 'none' | 'want' | 'need'
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

function describeIssues(err: z.ZodError, input: Record<string, unknown>): string {
  return err.issues
    .map((i) => {
      const field = i.path.join('.') || '(config)'
      const value = i.path.reduce<unknown>(
        (v, k) => (v as Record<PropertyKey, unknown> | undefined)?.[k],
        input,
      )
      const shown = value === undefined ? '' : ` (got ${JSON.stringify(value)})`
      return `${field}${shown}: ${i.message}`
    })
    .join('\n')
}

/** Validates and fills defaults; throws ConfigError. */
export function parseConfig(input: Record<string, unknown>): ServerConfig {
  const r = ServerConfig.safeParse(input)
  if (!r.success) throw new ConfigError(describeIssues(r.error, input))
  const c = r.data
  const min = c.minSessionTimeout ?? 2 * c.tickTime
  const max = c.maxSessionTimeout ?? 20 * c.tickTime
  if (min > max)
    throw new ConfigError(`minSessionTimeout (${min}) must not exceed maxSessionTimeout (${max})`)
  if (c.servers.length > 0 && !c.servers.some((s) => s.id === c.serverId))
    throw new ConfigError(`serverId (got ${c.serverId}): not in the servers list`)
  const clientTlsClientAuth = checkTls(c)
  const ensembleSecret = c.secretFile === undefined ? c.ensembleSecret : readSecretFile(c.secretFile)
  if (c.servers.length > 1 && ensembleSecret === undefined && c.quorumTlsCertFile === undefined)
    throw new ConfigError(
      'ensembleSecret: an ensemble needs a shared secret (ensembleSecret, secretFile, --secret-file or ' +
        'CONCLAVE_SECRET), or quorum TLS (quorumTlsCertFile, quorumTlsKeyFile, quorumTlsCaFile)',
    )
  const ids = new Set(c.servers.map((s) => s.id))
  if (ids.size !== c.servers.length) throw new ConfigError('servers: duplicate server id')
  if (c.localSessionsUpgrading === true && !c.localSessions)
    throw new ConfigError(
      'localSessionsUpgrading (got true): needs localSessions (it upgrades local sessions, and there are none without it)',
    )
  return {
    ...c,
    ensembleSecret,
    minSessionTimeout: min,
    maxSessionTimeout: max,
    clientTlsClientAuth,
    localSessionsUpgrading: c.localSessionsUpgrading ?? c.localSessions,
  }
}

/** The TLS settings that only make sense together; returns clientTlsClientAuth with its default filled. */
function checkTls(c: z.infer<typeof ServerConfig>): 'none' | 'want' | 'need' {
  if ((c.clientTlsCertFile === undefined) !== (c.clientTlsKeyFile === undefined))
    throw new ConfigError(
      'clientTlsCertFile and clientTlsKeyFile: give both (the certificate and its key) or neither',
    )
  const clientTls = c.clientTlsCertFile !== undefined
  if (c.adminConsole && c.adminPort === 0)
    throw new ConfigError(
      'adminConsole (got true): needs adminPort (the console is served on the admin port)',
    )
  if (!clientTls && c.clientTlsOnly)
    throw new ConfigError('clientTlsOnly (got true): needs clientTlsCertFile and clientTlsKeyFile')
  if (!clientTls && c.clientTlsCaFile !== undefined)
    throw new ConfigError(
      `clientTlsCaFile (got ${JSON.stringify(c.clientTlsCaFile)}): needs clientTlsCertFile and clientTlsKeyFile`,
    )
  const auth = c.clientTlsClientAuth ?? (c.clientTlsCaFile === undefined ? 'none' : 'want')
  if (auth !== 'none' && c.clientTlsCaFile === undefined)
    throw new ConfigError(
      `clientTlsClientAuth (got ${JSON.stringify(auth)}): client certificates need clientTlsCaFile to be checked against`,
    )
  const quorum = [c.quorumTlsCertFile, c.quorumTlsKeyFile, c.quorumTlsCaFile]
  if (quorum.some((f) => f !== undefined) && quorum.some((f) => f === undefined))
    throw new ConfigError('quorumTlsCertFile, quorumTlsKeyFile and quorumTlsCaFile: give all three or none')
  if (c.quorumTlsAllowedNames.length > 0 && c.quorumTlsCertFile === undefined)
    throw new ConfigError(
      'quorumTlsAllowedNames: needs quorum TLS (quorumTlsCertFile, quorumTlsKeyFile, quorumTlsCaFile)',
    )
  if (c.ensembleSecret !== undefined && c.secretFile !== undefined)
    throw new ConfigError('ensembleSecret and secretFile: give one of them, not both')
  return auth
}

/** The secret in a secretFile: its first line, at least 8 characters. */
function readSecretFile(file: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(
      `secretFile (got ${JSON.stringify(file)}): cannot read it: ${(err as Error).message}`,
    )
  }
  const secret = text.split(/\r?\n/, 1)[0] ?? ''
  if (secret.length < 8)
    throw new ConfigError(
      `secretFile (got ${JSON.stringify(file)}): its first line must hold a secret of at least 8 characters`,
    )
  return secret
}

/** Parses one `id=host:peerPort:clientPort[:observer]` entry. */
export function parseServerSpec(id: string, value: string): Record<string, unknown> {
  const parts = value.trim().split(':')
  if (
    parts.length < 3 ||
    parts.length > 4 ||
    (parts.length === 4 && parts[3] !== 'observer' && parts[3] !== 'participant')
  )
    throw new ConfigError(
      `server.${id} (got ${JSON.stringify(value)}): expected host:peerPort:clientPort[:observer]`,
    )
  const num = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : s)
  return {
    id: num(id),
    host: parts[0],
    peerPort: num(parts[1]),
    clientPort: num(parts[2]),
    observer: parts[3] === 'observer',
  }
}

/** `--servers 1=127.0.0.1:2888:2181,2=…` */
export function parseServersFlag(text: string): Record<string, unknown>[] {
  return text
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((entry) => {
      const at = entry.indexOf('=')
      if (at < 0)
        throw new ConfigError(
          `--servers (got ${JSON.stringify(entry)}): expected id=host:peerPort:clientPort`,
        )
      return parseServerSpec(entry.slice(0, at).trim(), entry.slice(at + 1))
    })
}

const NUMERIC = /^-?\d+$/

/** ZooKeeper's names (zoo.cfg) of keys Conclave names otherwise. */
const ZOOKEEPER_KEYS: Record<string, string> = {
  myid: 'serverId',
  '4lw.commands.whitelist': 'fourLetterWordWhitelist',
  localSessionsEnabled: 'localSessions',
  localSessionsUpgradingEnabled: 'localSessionsUpgrading',
}

/** A comma-separated list (`a, b,c`), empty entries dropped. */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '')
}

/** Reads a JSON or ZooKeeper-style key=value config file into raw values. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`)
  }
  if (text.trimStart().startsWith('{')) {
    try {
      return JSON.parse(text) as Record<string, unknown>
    } catch (err) {
      throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`)
    }
  }
  const out: Record<string, unknown> = {}
  const servers: Record<string, unknown>[] = []
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const at = line.indexOf('=')
    if (at < 0) throw new ConfigError(`${file}:${n + 1}: expected key=value, got ${JSON.stringify(line)}`)
    const key = line.slice(0, at).trim()
    const value = line.slice(at + 1).trim()
    if (key.startsWith('server.')) {
      servers.push(parseServerSpec(key.slice(7), value))
      continue
    }
    const mapped = ZOOKEEPER_KEYS[key] ?? key
    if (mapped === 'fourLetterWordWhitelist') {
      out[mapped] = splitList(value)
      continue
    }
    if (mapped === 'allowedOrigins' || mapped === 'quorumTlsAllowedNames') {
      out[mapped] = splitList(value)
      continue
    }
    out[mapped] = NUMERIC.test(value)
      ? Number(value)
      : value === 'true'
        ? true
        : value === 'false'
          ? false
          : value
  }
  if (servers.length > 0) out.servers = servers
  return out
}
