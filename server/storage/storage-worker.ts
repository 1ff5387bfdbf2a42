/**
 * The storage worker's entry point (a worker_threads worker started by
 * worker-launcher.ts). It wires the parent port to a LogWriter and runs the
 * group-commit loop: every message only queues its ops; a single setImmediate
 * step then commits everything queued in one transaction. While a commit
 * (and its fsync) runs, this thread is blocked in SQLite and new batches
 * wait in the port, so the next step picks up all of them: group commit
 * falls out of the event loop without timers.
 *
 * Invariants: at most one step is scheduled at a time; after `closed` or
 * `fatal` is posted the port is closed and the thread exits.
 *
 * Must not import: anything that runs main-thread code (storage.ts,
 * recovery.ts); this module is loaded only as a worker.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { assert } from '../../shared/assert.js'
import { LogWriter } from './log-writer.js'
import { toStorageError } from './storage-error.js'
import type { WorkerBatch, WorkerInit, WorkerReport } from './worker-protocol.js'

function main(): void {
  const port = parentPort
  assert(port !== null, 'storage-worker.ts must run as a worker thread')
  const init = workerData as WorkerInit
  const post = (report: WorkerReport): void => {
    port.postMessage(report)
    if (report.kind === 'closed' || report.kind === 'fatal') port.close()
  }
  let writer: LogWriter
  try {
    writer = LogWriter.open(init, post)
  } catch (err) {
    post({ kind: 'fatal', error: toStorageError(err, init.file, 'starting the storage worker').toData() })
    return
  }
  let scheduled = false
  const run = (): void => {
    scheduled = false
    if (writer.step()) schedule()
  }
  const schedule = (): void => {
    if (scheduled || writer.finished) return
    scheduled = true
    setImmediate(run)
  }
  port.on('message', (batch: WorkerBatch) => {
    if (writer.finished) return
    writer.enqueue(batch.ops)
    schedule()
  })
  schedule()
}

main()
