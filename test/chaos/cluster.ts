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
 */
import { readFileSync } from 'node:fs'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { startZooKeeperCluster } from '../bench/zookeeper-ensemble.js'
import { startEnsemble } from '../helpers/ensemble.js'

export interface ChaosMember {
  readonly id: number
  readonly observer: boolean
  /** A connect string naming this member alone. */
  readonly connectString: string
}

export interface ChaosCluster {
  readonly name: 'conclave' | 'zookeeper'
  readonly connectString: string
  readonly members: readonly ChaosMember[]
  /** The voting members' ids. */
  readonly voters: readonly number[]
  /** The current leader, if one is known within the deadline. */
  leader(): Promise<number | undefined>
  kill9(id: number): Promise<void>
  start(id: number): Promise<void>
  pause(id: number): void
  resume(id: number): void
  /** Cuts exactly these peer links, healing the others (undefined: this target cannot). */
  cut?(links: readonly (readonly [number, number])[]): void
  heal?(): void
  /** Each member's cut peers, as its fault hook holds them now (Conclave only; for tests). */
  blocked?(): Map<number, number[]>
  /** Each running member's role (leader, follower, observer), or undefined if it does not answer. */
  roles?(): Promise<Map<number, string | undefined>>
  /** Members that exited without being asked to (a crash), each with the end of its output. */
  crashes(): readonly string[]
  stop(): Promise<void>
}

/** A Conclave ensemble of `servers` voters and `observers` observers. */
export async function conclaveCluster(servers: number, observers = 0): Promise<ChaosCluster> {
  const e = await startEnsemble({ size: servers, observers, tickTime: 200 })
  const proc = (id: number) => e.members.find((m) => m.id === id)?.proc
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
  for (const m of e.members) watch(m.id)
  return {
    name: 'conclave',
    connectString: e.connectString,
    members: e.members.map((m) => ({ id: m.id, observer: m.observer, connectString: e.url(m.id) })),
    voters: e.members.filter((m) => !m.observer).map((m) => m.id),
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
    cut: (links) => e.cut(links),
    heal: () => e.heal(),
    blocked: () =>
      new Map(
        e.members.map((m) => [
          m.id,
          (JSON.parse(readFileSync(m.faultFile, 'utf8')) as { blockPeers?: number[] }).blockPeers ?? [],
        ]),
      ),
    async roles() {
      const out = new Map<number, string | undefined>()
      for (const m of e.members) out.set(m.id, (await e.status(m.id).catch(() => undefined))?.Mode)
      return out
    },
    crashes: () => crashes,
    async stop() {
      stopping = true
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
