/**
 * Measures how long the event loop stood still while a long job (a
 * snapshot) ran: the longest event-loop delay and the longest GC pause,
 * so the server can report its own stalls instead of leaving them to a
 * client-side probe. I/O edge: uses perf_hooks; not for the pure core.
 */
import { type IntervalHistogram, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'

const RESOLUTION_MS = 5

export interface Stalls {
  /** Longest event-loop delay seen (ms, beyond the sampling interval). */
  loopMaxMs: number
  /** Longest single GC pause (ms). */
  gcMaxMs: number
}

export class StallMonitor {
  private readonly loop: IntervalHistogram
  private readonly gc: PerformanceObserver
  private gcMaxMs = 0

  constructor() {
    this.loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    this.loop.enable()
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.gcMaxMs = Math.max(this.gcMaxMs, e.duration)
    })
    this.gc.observe({ entryTypes: ['gc'] })
  }

  /** Stops measuring (call once). */
  stop(): Stalls {
    this.loop.disable()
    this.gc.disconnect()
    const loopMaxMs = this.loop.count === 0 ? 0 : Math.max(0, this.loop.max / 1e6 - RESOLUTION_MS)
    return { loopMaxMs: Math.round(loopMaxMs * 10) / 10, gcMaxMs: Math.round(this.gcMaxMs * 10) / 10 }
  }
}
