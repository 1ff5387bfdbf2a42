/**
 * What a real server process costs while a client does something to it: its
 * memory after a full garbage collection (V8 heap, memory outside the heap —
 * socket buffers and other ArrayBuffers —, RSS) and the CPU time it has used
 * (user + system, from /proc/<pid>/stat, in 10 ms clock ticks).
 *
 * The server is started with `--expose-gc` and memory-on-signal.mjs
 * preloaded: SIGUSR2 makes it collect garbage twice and write
 * process.memoryUsage() to a file, so a reading is what the server retains,
 * not garbage it has not collected yet. Nothing else about the server
 * changes. Linux only (/proc). Test-only: imports node:* freely.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ConclaveProcess, type StartOptions, startConclave } from './conclave.js'
import { tempDir, waitFor } from './wait.js'

/** The preload's path: the .mjs beside this file's source (dist/ holds only compiled .ts). */
function preloadPath(): string {
  const here = fileURLToPath(new URL('.', import.meta.url))
  for (const dir of [here, join(here, '..', '..', '..', 'test', 'helpers')]) {
    const p = join(dir, 'memory-on-signal.mjs')
    if (existsSync(p)) return p
  }
  throw new Error('cannot find test/helpers/memory-on-signal.mjs')
}

export interface Cost {
  /** V8 heap in use after a full GC. */
  heapBytes: number
  /** Memory outside the V8 heap held by JS objects (ArrayBuffers, socket buffers). */
  externalBytes: number
  rssBytes: number
  /** User + system CPU time of the process since it started. */
  cpuMs: number
}

export interface MeasuredServer {
  server: ConclaveProcess
  /** Memory after a full GC, and CPU time so far. */
  cost(): Promise<Cost>
  remove(): void
}

/** CPU time (user + system) of a process, from /proc/<pid>/stat; Linux's clock tick is 10 ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  // Fields after the command name (which may hold spaces) start at state, field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return ticks * 10
}

/** Starts a server whose cost can be read (see the header). */
export async function startMeasured(opts: StartOptions = {}): Promise<MeasuredServer> {
  const dir = tempDir('conclave-cost-')
  const file = join(dir.path, 'memory.json')
  const nodeOptions = `${process.env.NODE_OPTIONS ?? ''} --expose-gc --import=${preloadPath()}`.trim()
  const server = await startConclave({
    ...opts,
    env: { ...opts.env, NODE_OPTIONS: nodeOptions, CONCLAVE_MEMORY_FILE: file },
  })
  const pid = server.child.pid!
  return {
    server,
    async cost(): Promise<Cost> {
      rmSync(file, { force: true })
      process.kill(pid, 'SIGUSR2')
      const text = await waitFor(() => (existsSync(file) ? readFileSync(file, 'utf8') : ''), {
        what: 'the server to report its memory',
        intervalMs: 10,
      })
      const m = JSON.parse(text) as { heapUsed: number; external: number; rss: number }
      return { heapBytes: m.heapUsed, externalBytes: m.external, rssBytes: m.rss, cpuMs: cpuMs(pid) }
    },
    remove() {
      server.remove()
      dir.remove()
    },
  }
}

/** The growth from `before` to `after`, memory in bytes and CPU in ms. */
export function costDelta(before: Cost, after: Cost): Cost {
  return {
    heapBytes: after.heapBytes - before.heapBytes,
    externalBytes: after.externalBytes - before.externalBytes,
    rssBytes: after.rssBytes - before.rssBytes,
    cpuMs: after.cpuMs - before.cpuMs,
  }
}

export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`
}
