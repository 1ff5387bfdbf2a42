/** The chaos workloads by name (`--workloads registers,sequential,…`; default all, side by side). */
import { exactlyOnce, sequential } from './creates.js'
import { ephemeral } from './ephemeral.js'
import { lock } from './lock.js'
import { queue } from './queue.js'
import { registers } from './registers.js'
import type { Workload } from './workload.js'

export const WORKLOADS: readonly Workload[] = [registers, sequential, ephemeral, lock, queue, exactlyOnce]
export const WORKLOAD_NAMES = WORKLOADS.map((w) => w.name)

export function workloadsNamed(names: readonly string[] | undefined): Workload[] {
  if (names === undefined) return [...WORKLOADS]
  if (names.length === 0) throw new Error('no workloads')
  return names.map((n) => {
    const w = WORKLOADS.find((x) => x.name === n)
    if (w === undefined) throw new Error(`unknown workload ${n} (${WORKLOAD_NAMES.join(', ')})`)
    return w
  })
}
