/**
 * A real Conclave ensemble for tests: N server processes on free 127.0.0.1
 * ports sharing a secret, each with its own data dir and a fault file
 * (CONCLAVE_FAULT_FILE) through which a test partitions it from peers.
 * Servers can be killed (-9), stopped and restarted; a new server can be
 * added (its --servers: the members then, and itself) and a member moved to
 * new ports; every process is reaped by stop().
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { type ConclaveProcess, startConclave } from './conclave.js'
import { generateDigest } from './sha1.js'
import { freePort, tempDir, waitFor } from './wait.js'

export interface Member {
  id: number
  clientPort: number
  peerPort: number
  observer: boolean
  faultFile: string
  proc: ConclaveProcess | undefined
  /** Its --servers flag, kept across restarts (the ensemble's at the start; add() and move() write their own). */
  servers: string
}

export interface Ensemble {
  members: Member[]
  connectString: string
  /** The member with this id (throws if there is none). */
  member(id: number): Member
  /** ws://host:port of one member. */
  url(id: number): string
  /** Each running member's `srvr` fields. */
  status(id: number): Promise<Record<string, string>>
  leader(timeoutMs?: number): Promise<number>
  kill9(id: number): Promise<void>
  start(id: number): Promise<void>
  /**
   * A new member (not started): the next id, fresh ports, a new data dir;
   * its --servers lists every member at its address now, and itself.
   */
  add(opts?: { observer?: boolean }): Promise<Member>
  /** Gives a stopped member fresh ports; its --servers names it there (the others as they were). */
  move(id: number): Promise<Member>
  /** The member's server line in /zookeeper/config's form (for a reconfig), in this role. */
  configLine(id: number, role?: 'participant' | 'observer'): string
  /** Cut this member's links to these peers (and theirs to it). */
  partition(id: number, from: number[]): void
  /**
   * Cuts exactly these peer links (each pair both ways: a link is one TCP
   * connection, so a cut is always symmetric) and heals every other: any
   * partition shape (halves, a bridge, …) in one step.
   */
  cut(links: readonly (readonly [number, number])[]): void
  /** One-way cuts: for each [speaker, listener], the listener drops what the speaker sends (links stay up); the other links healed. */
  deafen(pairs: readonly (readonly [number, number])[]): void
  heal(): void
  stop(): Promise<void>
}

export async function startEnsemble(
  opts: {
    size?: number
    observers?: number
    tickTime?: number
    extraArgs?: string[]
    /** The super user's password: every member reads its superDigest from a config file (`--config`), before extraArgs. */
    superPassword?: string
    /** Extra environment for every member (test hooks). */
    env?: Record<string, string>
    /** Extra arguments for one member (its own admin port, say), after extraArgs. */
    memberArgs?: (id: number) => string[]
    /** A member's data directory (a restored one, say); default: a new one under the ensemble's temp dir. */
    dataDir?: (id: number) => string
  } = {},
): Promise<Ensemble> {
  const size = opts.size ?? 3
  const dir = tempDir('conclave-ensemble-')
  const members: Member[] = []
  for (let i = 1; i <= size + (opts.observers ?? 0); i++) {
    members.push({
      id: i,
      clientPort: await freePort(),
      peerPort: await freePort(),
      observer: i > size,
      faultFile: join(dir.path, `fault-${i}.json`),
      proc: undefined,
      servers: '',
    })
  }
  const entry = (m: Member) =>
    `${m.id}=127.0.0.1:${m.peerPort}:${m.clientPort}${m.observer ? ':observer' : ''}`
  const servers = members.map(entry).join(',')
  for (const m of members) m.servers = servers
  const configArgs: string[] = []
  if (opts.superPassword !== undefined) {
    const conf = join(dir.path, 'super.cfg')
    writeFileSync(conf, `superDigest=${generateDigest(`super:${opts.superPassword}`)}\n`)
    configArgs.push('--config', conf)
  }
  const startOne = async (m: Member): Promise<void> => {
    writeFileSync(m.faultFile, '{}')
    m.proc = await startConclave({
      port: m.clientPort,
      dataDir: opts.dataDir?.(m.id) ?? join(dir.path, `node-${m.id}`),
      tickTime: opts.tickTime ?? 200,
      extraArgs: [
        '--id',
        String(m.id),
        '--servers',
        m.servers,
        ...configArgs,
        ...(opts.extraArgs ?? []),
        ...(opts.memberArgs?.(m.id) ?? []),
      ],
      env: { CONCLAVE_SECRET: 'ensemble-test-secret', CONCLAVE_FAULT_FILE: m.faultFile, ...opts.env },
    })
  }
  await Promise.all(members.map(startOne))
  // Wait for the whole ensemble, not just a leader: a member that first followed a server
  // which was not leading re-elects only after initLimit, and until then killing the one
  // synced follower would leave the leader without a quorum.
  await waitFor(
    async () => {
      for (const m of members) {
        const text = await fourLetterWord('127.0.0.1', m.clientPort, 'srvr', 1000).catch(() => '')
        if (!/Mode: (leader|follower|observer)/.test(text)) return false
      }
      return true
    },
    { timeoutMs: 30_000, intervalMs: 50, what: 'every member to join the ensemble' },
  )
  const member = (id: number): Member => {
    const m = members.find((x) => x.id === id)
    if (m === undefined) throw new Error(`no member ${id}`)
    return m
  }
  const status = async (id: number): Promise<Record<string, string>> => {
    const text = await fourLetterWord('127.0.0.1', member(id).clientPort, 'srvr', 1000)
    const out: Record<string, string> = {}
    for (const line of text.split('\n')) {
      const at = line.indexOf(': ')
      if (at > 0) out[line.slice(0, at)] = line.slice(at + 2)
    }
    return out
  }
  /** Writes every member's fault file with only `key`: for each [id, peer] pair, `peer` in `id`'s list; the other members' lists empty. */
  const writeFaults = (key: 'blockPeers' | 'deafTo', pairs: readonly (readonly [number, number])[]): void => {
    const lists = new Map<number, Set<number>>(members.map((m) => [m.id, new Set<number>()]))
    for (const [id, peer] of pairs) {
      member(id)
      member(peer)
      lists.get(id)!.add(peer)
    }
    for (const m of members) writeFileSync(m.faultFile, JSON.stringify({ [key]: [...lists.get(m.id)!] }))
  }
  const ensemble: Ensemble = {
    members,
    connectString: members.map((m) => `ws://127.0.0.1:${m.clientPort}`).join(','),
    member,
    url: (id) => `ws://127.0.0.1:${member(id).clientPort}`,
    status,
    async leader(timeoutMs = 20_000) {
      return waitFor(
        async () => {
          for (const m of members) {
            if (m.proc === undefined || m.proc.child.exitCode !== null || m.proc.child.signalCode !== null)
              continue
            const s = await status(m.id).catch(() => undefined)
            if (s?.Mode === 'leader') return m.id
          }
          return undefined
        },
        { timeoutMs, intervalMs: 50, what: 'an established leader' },
      )
    },
    async kill9(id) {
      await member(id).proc?.kill9()
    },
    async start(id) {
      const m = member(id)
      m.proc = undefined
      await startOne(m)
    },
    async add(o = {}) {
      const m: Member = {
        id: Math.max(...members.map((x) => x.id)) + 1,
        clientPort: await freePort(),
        peerPort: await freePort(),
        observer: o.observer ?? false,
        faultFile: '',
        proc: undefined,
        servers: '',
      }
      m.faultFile = join(dir.path, `fault-${m.id}.json`)
      m.servers = [...members, m].map(entry).join(',')
      members.push(m)
      return m
    },
    async move(id) {
      const m = member(id)
      const before = entry(m)
      m.clientPort = await freePort()
      m.peerPort = await freePort()
      m.servers = m.servers
        .split(',')
        .map((e) => (e === before ? entry(m) : e))
        .join(',')
      return m
    },
    partition(id, from) {
      writeFileSync(member(id).faultFile, JSON.stringify({ blockPeers: from }))
      for (const p of from) {
        const other = member(p)
        writeFileSync(other.faultFile, JSON.stringify({ blockPeers: [id] }))
      }
    },
    configLine(id, role = 'participant') {
      const m = member(id)
      return `server.${id}=127.0.0.1:${m.peerPort}:${m.peerPort}:${role};127.0.0.1:${m.clientPort}`
    },
    cut(links) {
      writeFaults('blockPeers', [...links, ...links.map(([a, b]) => [b, a] as const)])
    },
    deafen(pairs) {
      writeFaults(
        'deafTo',
        pairs.map(([from, to]) => [to, from] as const),
      )
    },
    heal() {
      for (const m of members) writeFileSync(m.faultFile, '{}')
    },
    async stop() {
      for (const m of members) await m.proc?.stop()
      dir.remove()
    },
  }
  return ensemble
}
