/**
 * Keeps the bench's large cases (memory, growth) inside the machine's
 * memory: before a case starts, its servers' expected RSS (the per-znode
 * costs the memory workload measured) must fit in the available memory with
 * MEM_FLOOR_BYTES to spare, else the case is not run and says why
 * (NotRunError: an 'unavailable' row); while it runs, available memory under
 * MEM_FLOOR_BYTES stops its servers (kill -9) and fails the case.
 *
 * "Available" is the kernel's MemAvailable: what can be had without
 * swapping, shared with everything else on the machine.
 * Invariants: the guard's timer is cleared when the work settles.
 * Bench-only: imports node:* freely, nothing of server/.
 */
import { readFileSync } from 'node:fs'
import type { Deployment } from './deploy.js'
import { NotRunError } from './workloads.js'

/** Below this much available memory a large case does not start, and a running one is stopped. */
export const MEM_FLOOR_BYTES = 2 * 2 ** 30
const GUARD_INTERVAL_MS = 500
/** RSS per znode per server as the memory workload measured it (1M znodes: 658 B and 2,433 B), rounded up. */
const RSS_PER_ZNODE_B = { conclave: 700, zookeeper: 2500 } as const
/** A server's RSS before it holds anything (node ~80 MB, the JVM ~250 MB), rounded up. */
const RSS_BASE_B = { conclave: 200 * 2 ** 20, zookeeper: 400 * 2 ** 20 } as const

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GB`

/** MemAvailable of /proc/meminfo, in bytes. */
export function memAvailableBytes(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))
  if (m === null) throw new Error('/proc/meminfo has no MemAvailable')
  return Number(m[1]) * 1024
}

/** Throws NotRunError unless `servers` servers holding `znodes` znodes fit with MEM_FLOOR_BYTES to spare. */
export function checkFits(target: Deployment['target'], znodes: number, servers: number): void {
  const need = servers * (znodes * RSS_PER_ZNODE_B[target] + RSS_BASE_B[target])
  const available = memAvailableBytes()
  if (need + MEM_FLOOR_BYTES > available)
    throw new NotRunError(
      `not run: ${servers} ${target} server${servers > 1 ? 's' : ''} holding ${znodes.toLocaleString('en')} znodes ` +
        `need ~${gb(need)} (${RSS_PER_ZNODE_B[target]} B RSS per znode per server, measured at 1M), ` +
        `${gb(available)} available, ${gb(MEM_FLOOR_BYTES)} kept free`,
    )
}

/**
 * Runs work; if available memory drops under MEM_FLOOR_BYTES meanwhile,
 * stops the deployment (kill -9, so the work fails fast) and rejects.
 */
export async function guarded<T>(dep: Deployment, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const low = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const available = memAvailableBytes()
      if (available >= MEM_FLOOR_BYTES) return
      clearInterval(timer)
      const why = new Error(
        `stopped: available memory fell to ${gb(available)} (floor ${gb(MEM_FLOOR_BYTES)})`,
      )
      dep.stop().then(
        () => reject(why),
        () => reject(why),
      )
    }, GUARD_INTERVAL_MS)
  })
  const running = work()
  try {
    return await Promise.race([running, low])
  } finally {
    clearInterval(timer)
    running.catch(() => {})
  }
}
