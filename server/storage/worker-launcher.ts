/**
 * Starts the storage worker (and, from inside it, the checkpoint worker),
 * from compiled output or from TypeScript source.
 *
 * - Compiled (production: `tsc` emits dist/server/storage/*.js, so this file's
 *   own URL ends in `.js`): `new Worker(new URL('./storage-worker.js', import.meta.url))`.
 * - Source (vitest runs server/storage/*.ts directly; the URL ends in `.ts`):
 *   an `eval` bootstrap registers the type-stripping hook of
 *   ts-source-loader.ts in the worker, then imports `./storage-worker.ts`.
 *   No build step, and never a stale dist/ worker under a fresh main thread.
 *
 * Invariants: the worker always runs the same code revision as this module
 * (the sibling file of the same tree, source or compiled).
 *
 * Must not import: better-sqlite3 (the worker opens its own connection).
 */
import { Worker } from 'node:worker_threads'
import { TS_WORKER_BOOTSTRAP, tsLoaderRegistration } from './ts-source-loader.js'
import type { WorkerInit } from './worker-protocol.js'

export function runningFromSource(): boolean {
  return import.meta.url.endsWith('.ts')
}

export function launchStorageWorker(init: WorkerInit): Worker {
  return launch('storage-worker', init)
}

/** The checkpoint worker: its own connection to `file` (see checkpoint-worker.ts). */
export function launchCheckpointWorker(file: string, dbBytesMax: number): Worker {
  return launch('checkpoint-worker', { file, dbBytesMax })
}

function launch(entry: string, data: object): Worker {
  if (!runningFromSource()) {
    return new Worker(new URL(`./${entry}.js`, import.meta.url), { workerData: data })
  }
  return new Worker(TS_WORKER_BOOTSTRAP, {
    eval: true,
    workerData: {
      ...data,
      sourceEntry: new URL(`./${entry}.ts`, import.meta.url).href,
      sourceLoader: tsLoaderRegistration(),
    },
  })
}
