/**
 * Measures how long the event loop stood still while a long job (a
 * snapshot) ran: the longest event-loop delay and the longest GC pause,
 * so the server can report its own stalls instead of leaving them to a
 * client-side probe; and the process's peak memory meanwhile (RSS, V8
 * heap, and this thread's external memory — ArrayBuffers such as received
 * messages; not the storage worker's — sampled every MEMORY_SAMPLE_MS: what
 * a SNAP install holds, issue 21).
 * I/O edge: uses perf_hooks; not for the pure core.
 */
import { type IntervalHistogram, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'

const RESOLUTION_MS = 5
const MEMORY_SAMPLE_MS = 50
const MB = 1024 * 1024

export interface Stalls {
  /** Longest event-loop delay seen (ms, beyond the sampling interval). */
  loopMaxMs: number
  /** Longest single GC pause (ms). */
  gcMaxMs: number
  /** RSS when measuring began, and the most sampled meanwhile (MiB). */
  rssStartMB: number
  rssMaxMB: number
  /** V8 heap used when measuring began, and the most sampled meanwhile (MiB). */
  heapStartMB: number
  heapMaxMB: number
  /**
   * This thread's V8 external memory (ArrayBuffers, Buffers) when measuring
   * began, and the most sampled meanwhile (MiB). Not process.memoryUsage's
   * arrayBuffers: that also counts buffers transferred to the storage
   * worker until its GC frees them (up to ~64 MiB of garbage there).
   */
  externalStartMB: number
  externalMaxMB: number
}

export class StallMonitor {
  private readonly loop: IntervalHistogram
  private readonly gc: PerformanceObserver
  private gcMaxMs = 0
  private readonly memory: NodeJS.Timeout
  private readonly rssStart: number
  private readonly heapStart: number
  private rssMax: number
  private heapMax: number
  private readonly externalStart: number
  private externalMax: number

  constructor() {
    const m = process.memoryUsage()
    this.rssStart = this.rssMax = m.rss
    this.heapStart = this.heapMax = m.heapUsed
    this.externalStart = this.externalMax = getHeapStatistics().external_memory
    this.memory = setInterval(() => this.sample(), MEMORY_SAMPLE_MS)
    this.memory.unref()
    this.loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    this.loop.enable()
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.gcMaxMs = Math.max(this.gcMaxMs, e.duration)
    })
    this.gc.observe({ entryTypes: ['gc'] })
  }

  /** Samples memory now (the interval cannot fire while a synchronous job holds the thread). */
  sample(): void {
    const m = process.memoryUsage()
    this.rssMax = Math.max(this.rssMax, m.rss)
    this.heapMax = Math.max(this.heapMax, m.heapUsed)
    this.externalMax = Math.max(this.externalMax, getHeapStatistics().external_memory)
  }

  /** Stops measuring (call once). */
  stop(): Stalls {
    this.sample()
    clearInterval(this.memory)
    this.loop.disable()
    this.gc.disconnect()
    const loopMaxMs = this.loop.count === 0 ? 0 : Math.max(0, this.loop.max / 1e6 - RESOLUTION_MS)
    return {
      loopMaxMs: Math.round(loopMaxMs * 10) / 10,
      gcMaxMs: Math.round(this.gcMaxMs * 10) / 10,
      rssStartMB: Math.round(this.rssStart / MB),
      rssMaxMB: Math.round(this.rssMax / MB),
      heapStartMB: Math.round(this.heapStart / MB),
      heapMaxMB: Math.round(this.heapMax / MB),
      externalStartMB: Math.round(this.externalStart / MB),
      externalMaxMB: Math.round(this.externalMax / MB),
    }
  }
}
