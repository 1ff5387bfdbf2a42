/**
 * Test hooks read from the environment, each logged loudly when set:
 * CONCLAVE_STORAGE_LIMITS (storage limits small enough to reach in a test)
 * and CONCLAVE_FAULT_FILE (peer links cut from a file the test writes).
 * Nothing here runs unless its variable is set.
 */
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import type { StorageLimits } from '../storage/storage-options.js'

/**
 * CONCLAVE_STORAGE_LIMITS is a JSON object of storage limits
 * (pendingBytesMax, pendingBytesHighWater, …: see storage-options.ts), so a
 * test can reach them without writing hundreds of megabytes. Storage
 * validates the values; a malformed hook is refused loudly.
 */
export function storageLimitsForTests(logger: Logger): Partial<StorageLimits> {
  const text = process.env.CONCLAVE_STORAGE_LIMITS
  if (text === undefined || text === '') return {}
  const limits = JSON.parse(text) as Partial<StorageLimits>
  logger.warn({ limits }, 'storage limits overridden (CONCLAVE_STORAGE_LIMITS, a test hook)')
  return limits
}

/**
 * CONCLAVE_FAULT_FILE names a JSON file `{ "blockPeers": [ids], "deafTo":
 * [ids] }`, polled every 100 ms: `blockPeers` partitions this server from
 * those peers (the process keeps running; only the peer links are cut),
 * `deafTo` drops every message those peers send here while the links stay
 * up and this server still sends to them (a one-way partition).
 */
export interface PeerFaults {
  blockPeers: number[]
  deafTo: number[]
}

export function watchFaultFile(apply: (faults: PeerFaults) => void, logger: Logger): void {
  const file = process.env.CONCLAVE_FAULT_FILE
  if (!file) return
  let last = ''
  const timer = setInterval(() => {
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      text = '{}'
    }
    if (text === last) return
    last = text
    try {
      const f = JSON.parse(text) as Partial<PeerFaults>
      const faults = { blockPeers: f.blockPeers ?? [], deafTo: f.deafTo ?? [] }
      logger.warn(faults, 'fault injection: peer links blocked')
      apply(faults)
    } catch {
      // A half-written file: read it again next time.
      last = ''
    }
  }, 100)
  timer.unref()
}
