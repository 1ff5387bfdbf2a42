/**
 * The system under test, as the chaos harness sees it: members it can kill
 * (-9) and restart, pause (SIGSTOP/SIGCONT) and — where the target has a
 * fault hook — cut off from each other, and the connect strings its clients
 * use (the whole ensemble, or one member for readers pinned to it).
 *
 * Conclave: test/helpers/ensemble.ts (3 or 5 voters, optionally an
 * observer; partitions through each server's CONCLAVE_FAULT_FILE, which
 * cuts peer links — client links stay up, so a cut-off server keeps
 * answering its clients as long as it believes it may). Apache ZooKeeper
 * (Debian's package, test/bench/zookeeper-ensemble.ts): kills and pauses
 * only — it has no fault hook.
 *
 * Conclave members run with --reconfig-enabled and a super user, so the
 * nemesis can change the membership (`reconfig`): through one super-user
 * session on the whole ensemble, replaced when it expires. `spares`: servers
 * started outside the configuration (the ensemble helper's add(): the next
 * ids, their --servers the members and themselves), following as
 * non-voters, for a membership change to add; they are not `members` (no
 * client connects to them, no other fault picks them, the configuration
 * every heal restores leaves them out).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client, type ReconfigOptions } from '../../client/index.js'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { startZooKeeperCluster } from '../bench/zookeeper-ensemble.js'
import { startEnsemble } from '../helpers/ensemble.js'

export interface ChaosMember {
  readonly id: number
  readonly observer: boolean
  /** A connect string naming this member alone. */
  readonly connectString: string
}

/** /zookeeper/config as a member serves it: its server lines (no `version=` line) and its version (a zxid). */
export interface ConfigRead {
  readonly version: number
  readonly text: string
}

/** Splits /zookeeper/config's data into its server lines and its version (-1 without a `version=` line). */
export function parseConfigData(data: Uint8Array | string): ConfigRead {
  const raw = typeof data === 'string' ? data : new TextDecoder().decode(data)
  let version = -1
  const lines: string[] = []
  for (const line of raw.split('\n')) {
    const v = /^version=([0-9a-f]+)$/.exec(line.trim())
    if (v) version = Number.parseInt(v[1]!, 16)
    else if (line.trim() !== '') lines.push(line.trim())
  }
  return { version, text: lines.join('\n') }
}

/** Membership changes (Conclave only): ZooKeeper's reconfig as the super user, and reads of /zookeeper/config. */
export interface ChaosReconfig {
  /** The member's server line in a role, as the static config writes it. */
  line(id: number, role: 'participant' | 'observer'): string
  /** A reconfig through the super-user session (any member); the config it produced. */
  reconfig(opts: ReconfigOptions): Promise<ConfigRead>
  /** `sync` + /zookeeper/config through the super-user session, or through member `id` alone. */
  read(id?: number): Promise<ConfigRead>
}

export interface ChaosCluster {
  readonly name: 'conclave' | 'zookeeper'
  readonly connectString: string
  readonly members: readonly ChaosMember[]
  /** The voting members' ids (of the static configuration). */
  readonly voters: readonly number[]
  /** Running servers outside the configuration, for a membership change to add (none yet: see the header). */
  readonly spares: readonly number[]
  /** Membership changes (undefined: this target cannot). */
  readonly reconfig?: ChaosReconfig
  /** The current leader, if one is known within the deadline. */
  leader(): Promise<number | undefined>
  kill9(id: number): Promise<void>
  start(id: number): Promise<void>
  pause(id: number): void
  resume(id: number): void
  /** Stands member `id`'s disk still (its storage stall hook) or lets it go on (undefined: this target cannot). */
  stallDisk?(id: number, stalled: boolean): void
  /** Cuts exactly these peer links, healing the others (undefined: this target cannot). */
  cut?(links: readonly (readonly [number, number])[]): void
  /** One-way cuts: for each [speaker, listener] the listener drops what the speaker sends; healed by heal() (undefined: this target cannot). */
  deafen?(pairs: readonly (readonly [number, number])[]): void
  heal?(): void
  /** Each member's peers it drops messages from (one-way cuts), as its fault hook holds them now (Conclave only; for tests). */
  deaf?(): Map<number, number[]>
  /** Each member's cut peers, as its fault hook holds them now (Conclave only; for tests). */
  blocked?(): Map<number, number[]>
  /** Each running member's role (leader, follower, observer), or undefined if it does not answer. */
  roles?(): Promise<Map<number, string | undefined>>
  /** Members that exited without being asked to (a crash), each with the end of its output. */
  crashes(): readonly string[]
  /** Member `id`'s process id while it runs (Conclave only; tests crash a member behind the harness's back). */
  pid?(id: number): number | undefined
  stop(): Promise<void>
}

const SUPER_PASSWORD = 'chaos-nemesis'
/** The storage stall hook's file in each member's data directory (server/storage/stall-hook.ts). */
const STALL_FILE = 'stall.json'

/** A Conclave ensemble of `servers` voters and `observers` observers, and `spares` servers outside it. */
export async function conclaveCluster(
  servers: number,
  observers = 0,
  opts: { spares?: number } = {},
): Promise<ChaosCluster> {
  const e = await startEnsemble({
    size: servers,
    observers,
    tickTime: 200,
    superPassword: SUPER_PASSWORD,
    extraArgs: ['--reconfig-enabled'],
    env: { CONCLAVE_STORAGE_STALL_FILE: STALL_FILE },
  })
  const proc = (id: number) => e.members.find((m) => m.id === id)?.proc
  /** One list of each member's fault hook file (blockPeers or deafTo), as the file holds it now. */
  const faultsOf = (key: 'blockPeers' | 'deafTo') =>
    new Map(
      e.members.map((m) => [
        m.id,
        (JSON.parse(readFileSync(m.faultFile, 'utf8')) as Record<string, number[] | undefined>)[key] ?? [],
      ]),
    )
  // A member that exits while nobody killed or stopped it crashed: keep what it said last.
  const crashes: string[] = []
  const killing = new Set<number>()
  let stopping = false
  const watch = (id: number) => {
    const p = proc(id)
    p?.child.once('exit', (code, signal) => {
      if (killing.has(id) || stopping) return
      crashes.push(
        `n${id} exited unasked (code ${code}, signal ${signal}); its last output:\n${p.output().slice(-3000)}`,
      )
    })
  }
  const members = e.members.map((m) => ({ id: m.id, observer: m.observer, connectString: e.url(m.id) }))
  const spares: number[] = []
  try {
    for (let i = 0; i < (opts.spares ?? 0); i++) {
      const m = await e.add()
      await e.start(m.id)
      spares.push(m.id)
    }
  } catch (err) {
    await e.stop()
    throw err
  }
  for (const m of e.members) watch(m.id)
  // The super-user session for reconfigs: one, replaced when it ends; ZooKeeper's semantics
  // (no exactly-once retries): a reconfig whose connection is lost is indeterminate.
  let su: Promise<Client> | undefined
  const superClient = async (): Promise<Client> => {
    const c = await su?.catch(() => undefined)
    if (c !== undefined && c.state !== 'expired' && c.state !== 'closed') return c
    await c?.close().catch(() => {})
    su = Client.connect(e.connectString, {
      sessionTimeoutMs: 8000,
      connectTimeoutMs: 5000,
      exactlyOnce: false,
      auth: [{ scheme: 'digest', credentials: `super:${SUPER_PASSWORD}` }],
    })
    return su
  }
  const CONFIG = '/zookeeper/config'
  const readConfig = async (zk: Client): Promise<ConfigRead> => {
    await zk.sync(CONFIG)
    return parseConfigData((await zk.getData(CONFIG)).data)
  }
  return {
    name: 'conclave',
    connectString: e.connectString,
    members,
    voters: members.filter((m) => !m.observer).map((m) => m.id),
    spares,
    reconfig: {
      line: (id, role) => e.configLine(id, role),
      async reconfig(o) {
        return parseConfigData((await (await superClient()).reconfig(o)).data)
      },
      async read(id) {
        if (id === undefined) return readConfig(await superClient())
        const zk = await Client.connect(e.url(id), { connectTimeoutMs: 5000, reconnectDelayMs: 0 })
        try {
          return await readConfig(zk)
        } finally {
          await zk.close().catch(() => {})
        }
      },
    },
    leader: () => e.leader(5000).catch(() => undefined),
    async kill9(id) {
      killing.add(id)
      await e.kill9(id)
    },
    async start(id) {
      await e.start(id)
      killing.delete(id)
      watch(id)
    },
    pause: (id) => void proc(id)?.child.kill('SIGSTOP'),
    resume: (id) => void proc(id)?.child.kill('SIGCONT'),
    stallDisk(id, stalled) {
      const dir = proc(id)?.dataDir
      if (dir === undefined) return
      // The hook bounds one stall at 60 s; the nemesis heals long before.
      writeFileSync(join(dir, STALL_FILE), JSON.stringify({ until: stalled ? Date.now() + 60_000 : 0 }))
    },
    cut: (links) => e.cut(links),
    deafen: (pairs) => e.deafen(pairs),
    heal: () => e.heal(),
    blocked: () => faultsOf('blockPeers'),
    deaf: () => faultsOf('deafTo'),
    async roles() {
      const out = new Map<number, string | undefined>()
      for (const m of members) out.set(m.id, (await e.status(m.id).catch(() => undefined))?.Mode)
      return out
    },
    crashes: () => crashes,
    pid: (id) => {
      const child = proc(id)?.child
      return child !== undefined && child.exitCode === null && child.signalCode === null
        ? child.pid
        : undefined
    },
    async stop() {
      stopping = true
      const c = await su?.catch(() => undefined)
      await c?.close().catch(() => {})
      await e.stop()
    },
  }
}

/** An Apache ZooKeeper ensemble (Debian's package), for comparison: no partitions (no fault hook). */
export async function zookeeperCluster(servers: 1 | 3): Promise<ChaosCluster> {
  const zk = await startZooKeeperCluster({ size: servers, tickTime: 200 })
  const ids = zk.members.map((m) => m.id)
  const index = (id: number) => ids.indexOf(id)
  const url = (port: number) => `tcp://127.0.0.1:${port}`
  return {
    name: 'zookeeper',
    connectString: zk.members.map((m) => url(m.clientPort)).join(','),
    members: zk.members.map((m) => ({ id: m.id, observer: false, connectString: url(m.clientPort) })),
    voters: ids,
    spares: [],
    async leader() {
      for (const m of zk.members) {
        const srvr = await fourLetterWord('127.0.0.1', m.clientPort, 'srvr', 1000).catch(() => '')
        if (/Mode: (leader|standalone)/.test(srvr)) return m.id
      }
      return undefined
    },
    kill9: (id) => zk.kill9(index(id)),
    start: (id) => zk.restart(index(id)),
    pause: (id) => void zk.members[index(id)]?.child.kill('SIGSTOP'),
    resume: (id) => void zk.members[index(id)]?.child.kill('SIGCONT'),
    crashes: () => [],
    stop: () => zk.stop(),
  }
}
