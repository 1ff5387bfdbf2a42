/**
 * The checkpoint worker: a thread of its own, started by the storage worker,
 * that copies WAL frames into the database file (`wal_checkpoint(PASSIVE)`)
 * on its own connection. A checkpoint of 8 MiB of WAL takes 30-70 ms of
 * writes and fsyncs on this machine; run by the log writer itself it held
 * back every group commit behind it, about once a second under load, which
 * was most of the write p99. SQLite lets a checkpoint run beside the writer
 * (the WAL's writer and checkpointer locks are separate), so the log writer
 * only asks for one and goes on committing; it then copies the few frames
 * written meanwhile itself, so the WAL can restart from its beginning.
 *
 * Protocol (parent port): in `{ kind: 'checkpoint' }` | `{ kind: 'close' }`;
 * out `{ kind: 'checkpointed' }` | `{ kind: 'failed', message }`; after
 * `close` the thread exits (the parent waits for its exit). A failed
 * checkpoint loses nothing (the frames stay in the durable WAL); the log
 * writer then checkpoints on its own thread again.
 *
 * Invariants: at most one checkpoint runs at a time (messages are handled
 * one by one); the connection is closed before the thread exits, so a
 * storage reopened in the same process never meets a leftover lock.
 *
 * Must not import: anything that runs main-thread code.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { assert } from '../../shared/assert.js'
import { openConnection } from './schema.js'

export type CheckpointRequest = { kind: 'checkpoint' } | { kind: 'close' }
export type CheckpointReport = { kind: 'checkpointed' } | { kind: 'failed'; message: string }

/** Passes per request at most, and the duration under which a pass left almost nothing behind. */
const PASSES_MAX = 4
const SHORT_PASS_MS = 4

function main(): void {
  const port = parentPort
  assert(port !== null, 'checkpoint-worker.ts must run as a worker thread')
  const { file, dbBytesMax } = workerData as { file: string; dbBytesMax: number }
  const post = (report: CheckpointReport): void => port.postMessage(report)
  let db: ReturnType<typeof openConnection> | undefined
  try {
    db = openConnection(file, { dbBytesMax })
    db.pragma('wal_autocheckpoint = 0')
  } catch (err) {
    post({ kind: 'failed', message: (err as Error).message })
  }
  port.on('message', (req: CheckpointRequest) => {
    if (req.kind === 'close') {
      db?.close()
      db = undefined
      port.close()
      return
    }
    if (db === undefined) return post({ kind: 'failed', message: 'no connection' })
    try {
      // Each pass copies what the writer committed during the one before, so
      // the frames left for the writer's own (blocking) pass shrink quickly.
      for (let pass = 0; pass < PASSES_MAX; pass++) {
        const passStarted = performance.now()
        db.pragma('wal_checkpoint(PASSIVE)')
        if (performance.now() - passStarted < SHORT_PASS_MS) break
      }
      post({ kind: 'checkpointed' })
    } catch (err) {
      post({ kind: 'failed', message: (err as Error).message })
    }
  })
}

main()
