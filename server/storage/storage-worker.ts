/**
 * The storage worker's entry point (a worker_threads worker started by
 * worker-launcher.ts). It wires the parent port to a LogWriter and runs the
 * group-commit loop: every message only queues its ops; a single setImmediate
 * step then commits everything queued in one transaction. While a commit
 * (and its fsync) runs, this thread is blocked in SQLite and new batches
 * wait in the port, so the next step picks up all of them: group commit
 * falls out of the event loop without timers. WAL checkpoints run on a
 * checkpoint worker of its own (checkpoint-worker.ts), started here.
 *
 * Every step runs holding the CommitLock (commit-lock.ts), so it never
 * writes beside a commit the main thread makes inline (inline-writer.ts).
 *
 * Invariants: at most one step is scheduled at a time; after `closed` or
 * `fatal` is posted the port is closed and the thread exits; the
 * checkpointer's connection is closed before the writer's.
 *
 * Must not import: anything that runs main-thread code (storage.ts,
 * recovery.ts); this module is loaded only as a worker.
 */
import { parentPort, type Worker, workerData } from 'node:worker_threads'
import { assert } from '../../shared/assert.js'
import type { CheckpointReport } from './checkpoint-worker.js'
import { CommitLock } from './commit-lock.js'
import { LogWriter } from './log-writer.js'
import { StallHook } from './stall-hook.js'
import { toStorageError } from './storage-error.js'
import { launchCheckpointWorker } from './worker-launcher.js'
import type { WorkerBatch, WorkerInit, WorkerReport } from './worker-protocol.js'

function main(): void {
  const port = parentPort
  assert(port !== null, 'storage-worker.ts must run as a worker thread')
  const init = workerData as WorkerInit
  let checkpointer: Worker | undefined
  let checkpointerExited = true
  const exitWaiters: (() => void)[] = []
  /** Stops the checkpointer; `then` runs once its thread (and connection) is gone. */
  const stopCheckpointer = (then: () => void): void => {
    checkpointer?.postMessage({ kind: 'close' })
    checkpointer = undefined
    if (checkpointerExited) then()
    else exitWaiters.push(then)
  }
  const post = (report: WorkerReport): void => {
    port.postMessage(report)
    if (report.kind === 'closed' || report.kind === 'fatal') stopCheckpointer(() => port.close())
  }
  // Held since the lock was created: the main thread commits nothing inline while this opens.
  const lock = new CommitLock(init.commitLock)
  let writer: LogWriter
  try {
    writer = LogWriter.open(init, post)
  } catch (err) {
    post({ kind: 'fatal', error: toStorageError(err, init.file, 'starting the storage worker').toData() })
    return
  } finally {
    lock.releaseWorker()
  }
  /** Nothing is lost when checkpoints fail (the frames stay in the durable WAL): checkpoint here again. */
  const checkpointerFailed = (reason: string, msg: string): void => {
    post({ kind: 'log', level: 'warn', obj: { reason }, msg })
    writer.useBackgroundCheckpointer(undefined)
    stopCheckpointer(() => {})
  }
  const cp = launchCheckpointWorker(init.file, init.dbBytesMax)
  checkpointer = cp
  checkpointerExited = false
  cp.on('message', (report: CheckpointReport) => {
    if (report.kind === 'checkpointed') {
      writer.backgroundCheckpointDone()
      schedule()
    } else if (report.kind === 'failed') checkpointerFailed(report.message, 'background checkpoint failed')
  })
  cp.on('error', (err) => checkpointerFailed(err.message, 'checkpoint worker failed'))
  cp.on('exit', () => {
    checkpointerExited = true
    for (const waiter of exitWaiters.splice(0)) waiter()
  })
  writer.useBackgroundCheckpointer({ request: () => cp.postMessage({ kind: 'checkpoint' }) })
  let scheduled = false
  const stall = StallHook.forDatabase(init.file)
  const run = (): void => {
    scheduled = false
    // The writer's connection closes last: stop the checkpointer, then step again.
    if (writer.closing && !checkpointerExited) return stopCheckpointer(schedule)
    // Every step writes (a commit, a purge batch, a checkpoint): never beside an inline commit.
    lock.acquireWorker()
    let more: boolean
    try {
      stall?.stallIfAsked()
      more = writer.step()
    } finally {
      lock.releaseWorker()
    }
    if (more) schedule()
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
