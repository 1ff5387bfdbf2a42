/**
 * The reconfig request (ZooKeeper's opcode 16) at the leader: who may ask,
 * what the new configuration is, and whether this server can carry it out.
 * A follower forwards it like a write; the leader checks it here, in
 * ZooKeeper's order, then proposes the new config as a config entry (the
 * ZAB core, server/zab/membership.ts, has the last word: one change in
 * flight, a synced quorum of the new voters):
 *
 *   reconfigEnabled off           → RECONFIG_DISABLED
 *   standalone                    → UNIMPLEMENTED
 *   a change in flight already    → RECONFIG_IN_PROGRESS
 *   fromConfig not the current version (-1: any) → BAD_VERSION
 *   malformed (both incremental and whole, a bad line or id, an id leaving
 *   that is not a member — ZooKeeper ignores that one —, no participant left)
 *                                 → BAD_ARGUMENTS
 *   not the super user and no WRITE on /zookeeper/config's ACL → NO_AUTH
 *   a server id Conclave cannot run (above 254: session ids carry it in a
 *   byte) → BAD_ARGUMENTS (after the ACL, as kazoo's test_no_super_auth
 *   expects NO_AUTH for server.999)
 *   a quorum of the new voters not synced with the leader → NEW_CONFIG_NO_QUORUM
 *   (at once, as ZooKeeper's PrepRequestProcessor: Leader.isQuorumSynced)
 *
 * A server may be new (a new id at any address: the peer links follow the
 * configuration, zab-replicator.ts) or move (a known id at a new address).
 * An observer nobody runs is accepted, as ZooKeeper does; a participant
 * counts toward the new config's quorum only once it is synced.
 *
 * The reason for every refusal is logged (the wire carries only a code).
 * The answer is /zookeeper/config's data and Stat once the new config's
 * entry is applied on the answering server.
 *
 * Invariant: every proposed line is in ZooKeeper's form
 * (`server.N=host:quorumPort:electionPort:role[;clientHost:clientPort]`,
 * formatMemberLine), so a joining line written that way comes back verbatim.
 */
import { ErrorCode } from '../../shared/errors.js'
import { OpCode, Perms } from '../../shared/opcodes.js'
import type { ReconfigRequest } from '../../shared/records.js'
import { formatMemberLine, parseMemberLine, SERVER_ID_MAX } from '../config.js'
import { CONFIG_NODE } from '../state/tree-db.js'
import {
  type ConfigAt,
  ConfigError,
  encodeConfigEntry,
  type MemberConfig,
  parseConfigText,
} from '../zab/index.js'
import type { ClientHandler, Reply } from './client-handler.js'
import type { ServerContext } from './server-context.js'

/** Most characters of one of a request's strings (255 servers' lines fit easily). */
export const RECONFIG_STRING_CHARS_MAX = 64 * 1024

/** A refusal: the code the client gets and why (logged). */
export interface ReconfigRefusal {
  readonly err: ErrorCode
  readonly why: string
}

/** What the leader did with a reconfig: proposed at `zxid`, or refused. */
export type ReconfigOutcome = { ok: true; zxid: number } | ({ ok: false } & ReconfigRefusal)

function refuse(err: ErrorCode, why: string): { ok: false } & ReconfigRefusal {
  return { ok: false, err, why }
}

/** Splits a comma- or newline-separated list, dropping blanks. */
function items(list: string): string[] {
  return list
    .split(/[,\n]/)
    .map((x) => x.trim())
    .filter((x) => x !== '')
}

/**
 * The new configuration a request asks for, from `current`: incremental
 * (joining lines added or replacing their id's, leaving ids removed) or
 * whole (newMembers), every requested line in ZooKeeper's form. Checks
 * the form only (runnable() checks the ids).
 */
export function nextConfig(req: ReconfigRequest, current: MemberConfig): MemberConfig | ReconfigRefusal {
  const bad = (why: string) => ({ err: ErrorCode.BAD_ARGUMENTS, why })
  for (const s of [req.joiningServers, req.leavingServers, req.newMembers])
    if (s.length > RECONFIG_STRING_CHARS_MAX)
      return bad(`a reconfig string is over ${RECONFIG_STRING_CHARS_MAX} characters`)
  const incremental = req.joiningServers.trim() !== '' || req.leavingServers.trim() !== ''
  const whole = req.newMembers.trim() !== ''
  if (incremental && whole) return bad('joining/leaving and newMembers cannot be given together')
  if (!incremental && !whole) return bad('nothing to change: give joining/leaving or newMembers')
  const lines = new Map<number, string>()
  const take = (line: string): ReconfigRefusal | undefined => {
    const one = parseMemberLine(line)
    if (typeof one === 'string') return bad(one)
    lines.set(one.id, formatMemberLine(one))
    return undefined
  }
  if (whole) {
    const seen = new Set<string>()
    for (const line of items(req.newMembers)) {
      const id = /^server\.(\d+)=/.exec(line)?.[1]
      if (id !== undefined && seen.has(id)) return bad(`server.${id} appears twice in newMembers`)
      if (id !== undefined) seen.add(id)
      const r = take(line)
      if (r !== undefined) return r
    }
  } else {
    for (const line of current.text.split('\n')) {
      const id = Number(/^server\.(\d+)=/.exec(line)?.[1])
      lines.set(id, line)
    }
    for (const leaving of items(req.leavingServers)) {
      if (!/^\d+$/.test(leaving)) return bad(`leaving must list server ids, got ${JSON.stringify(leaving)}`)
      const id = Number(leaving)
      if (!lines.has(id)) return bad(`server.${id} is not in the current configuration`)
      lines.delete(id)
    }
    for (const line of items(req.joiningServers)) {
      const r = take(line)
      if (r !== undefined) return r
    }
  }
  try {
    return parseConfigText([...lines.values()].join('\n'))
  } catch (e) {
    if (e instanceof ConfigError) return bad(e.message)
    throw e
  }
}

/** The config if Conclave can run every server it names (ids up to SERVER_ID_MAX). */
export function runnable(next: MemberConfig): MemberConfig | ReconfigRefusal {
  for (const id of [...next.voters, ...next.observers])
    if (id > SERVER_ID_MAX)
      return {
        err: ErrorCode.BAD_ARGUMENTS,
        why: `server.${id}: Conclave server ids are 1-${SERVER_ID_MAX} (a session id carries it in a byte)`,
      }
  return next
}

/** The config in force at the leader: the newest committed one (the config file's until a reconfig). */
function currentConfig(ctx: ServerContext): { at: ConfigAt; inFlight: boolean } | undefined {
  const m = ctx.replicator.membership()
  if (m === undefined) return undefined
  return { at: m.committed, inFlight: m.pending.length > 0 }
}

/** Leader: checks a reconfig and proposes its config entry. */
export function proposeReconfig(
  ctx: ServerContext,
  req: ReconfigRequest,
  authIds: ClientHandler['authIds'],
): ReconfigOutcome {
  const { config, db } = ctx
  if (!config.reconfigEnabled)
    return refuse(ErrorCode.RECONFIG_DISABLED, 'reconfigEnabled is off (--reconfig-enabled)')
  const cur = currentConfig(ctx)
  if (cur === undefined)
    return refuse(ErrorCode.UNIMPLEMENTED, 'a standalone server has no membership to change')
  if (cur.inFlight) return refuse(ErrorCode.RECONFIG_IN_PROGRESS, 'another reconfig is in flight')
  if (req.curConfigId !== -1 && req.curConfigId !== cur.at.zxid)
    return refuse(
      ErrorCode.BAD_VERSION,
      `fromConfig ${req.curConfigId.toString(16)} is not the current config version ${cur.at.zxid.toString(16)}`,
    )
  const asked = nextConfig(req, cur.at.config)
  if ('err' in asked) return refuse(asked.err, asked.why)
  // ZooKeeper checks the ACL after the request's form (kazoo's tests rely on that), before any change.
  const node = db.get(CONFIG_NODE)
  if (node === undefined || !db.canAccess(node.acl, Perms.WRITE, authIds))
    return refuse(
      ErrorCode.NO_AUTH,
      `only the super user or an id with WRITE on ${CONFIG_NODE}'s ACL may reconfig`,
    )
  const next = runnable(asked)
  if ('err' in next) return refuse(next.err, next.why)
  const res = ctx.replicator.proposeConfig(encodeConfigEntry(next))
  if (res.ok) return { ok: true, zxid: res.zxid }
  switch (res.reason) {
    case 'reconfig-in-progress':
      return refuse(ErrorCode.RECONFIG_IN_PROGRESS, 'another reconfig is in flight')
    case 'new-config-no-quorum':
      return refuse(
        ErrorCode.NEW_CONFIG_NO_QUORUM,
        'no majority of the new configuration’s voters is synced with the leader',
      )
    case 'bad-config':
      return refuse(ErrorCode.BAD_ARGUMENTS, 'the new configuration is malformed')
    default:
      return refuse(ErrorCode.CONNECTION_LOSS, `the leader cannot propose now (${res.reason})`)
  }
}

/** The answer to a reconfig whose entry is applied here: /zookeeper/config's data and Stat. */
export function reconfigReply(ctx: ServerContext): Reply {
  const zxid = ctx.db.lastZxid
  const node = ctx.db.get(CONFIG_NODE)
  // Applying the entry wrote the node (its text and version=): never empty here.
  const data = node?.data
  if (node === undefined || !data?.length) return { err: ErrorCode.SYSTEM_ERROR, zxid }
  return { err: ErrorCode.OK, zxid, body: { op: OpCode.reconfig, data, stat: node.stat } }
}
