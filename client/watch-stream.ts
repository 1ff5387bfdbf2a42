/**
 * zk.watch(path, { recursive, signal }): a persistent (or persistent-
 * recursive) watch as an async iterator of events, each with the zxid of the
 * change. It is registered at once (addWatch), and removed on the server
 * (removeWatches) when the iteration ends: `break`, `close()`, an aborted
 * signal.
 *
 *   for await (const ev of zk.watch('/app', { recursive: true, signal })) { ev.type; ev.path; ev.zxid }
 *
 * The zxid is the one the server put in the notification; -1 where the
 * server sends none (Apache ZooKeeper before 3.9). After a reconnect, to the
 * same server or another, a Conclave server replays the events missed
 * meanwhile (the session resumes its watches: client/session.ts), so the
 * iteration goes on with none lost and none twice; when it cannot (its
 * history no longer reaches back, or an Apache ZooKeeper server) the
 * iterator yields one `{ type: 'resync', path, zxid }`, then live events.
 *
 * A slow consumer: at most `bufferSize` events wait (default 1,024). When one
 * more arrives, the waiting events are dropped and replaced by a single
 * `{ type: 'resync', path, zxid }` (zxid: the newest change dropped): the
 * consumer has missed changes under `path` and must read the state again;
 * live events follow it.
 *
 * The session's end ends the iteration: it throws SESSION_EXPIRED (or
 * AUTH_FAILED) when the session expires, and finishes (done) when the client
 * is closed. Imports only shared/ and client/ (no node:*).
 */
import { ErrorCode, ZkError } from '../shared/errors.js'
import { EventStream } from './event-stream.js'
import { badArguments, checkPath } from './requests.js'
import type { ClientState, PersistentWatchMode, WatchEvent, WatchEventType, Watcher } from './types.js'

/** Events waiting for a slow consumer before they collapse into one 'resync'. */
export const WATCH_BUFFER_DEFAULT = 1_024

export type WatchStreamEventType = WatchEventType | 'resync'

/** A WatchEvent with the zxid of the change. */
export interface WatchStreamEvent {
  type: WatchStreamEventType
  /** The znode's path relative to the chroot (for 'resync': the watched path). */
  path: string
  /** The zxid of the change (of the newest change covered, for 'resync'); -1 if the server did not say. */
  zxid: number
}

export interface WatchStreamOptions {
  /** Also the whole subtree (persistentRecursive: created, deleted, dataChanged; no childrenChanged). */
  recursive?: boolean | undefined
  /** Aborting it removes the watch and ends the iteration. */
  signal?: AbortSignal | undefined
  /** Most events waiting for a slow consumer before they collapse into one 'resync'. Default 1,024. */
  bufferSize?: number | undefined
}

/** What zk.watch() returns: iterate it once; close() removes the watch. */
export interface WatchStream extends AsyncIterableIterator<WatchStreamEvent> {
  /** Removes the watch (on the server too) and ends the iteration; resolves once removed. */
  close(): Promise<void>
}

/** The parts of Client a watch stream uses (no import of client.ts: it imports this file). */
export interface WatchHost {
  addWatch(path: string, mode: PersistentWatchMode, listener: Watcher): Promise<() => Promise<void>>
  on(event: 'state', fn: (state: ClientState) => void): () => void
  readonly state: ClientState
}

export function openWatchStream(host: WatchHost, path: string, opts: WatchStreamOptions = {}): WatchStream {
  checkPath(path)
  const bufferSize = opts.bufferSize ?? WATCH_BUFFER_DEFAULT
  if (!Number.isInteger(bufferSize) || bufferSize < 1)
    throw badArguments(path, `bufferSize must be an integer >= 1, not ${String(bufferSize)}`)
  const mode: PersistentWatchMode = opts.recursive === true ? 'persistentRecursive' : 'persistent'
  let offState: (() => void) | undefined
  let registration: Promise<(() => Promise<void>) | undefined> = Promise.resolve(undefined)
  const stream = new EventStream<WatchStreamEvent>({
    bufferSize,
    // Fallen behind: whatever waits is replaced by one marker that says "read the state again".
    overflow: (_buffered, incoming) => [{ type: 'resync', path, zxid: incoming.zxid }],
    onClose: async () => {
      offState?.()
      const stop = await registration
      await stop?.()
    },
    signal: opts.signal,
  })
  if (!stream.open) return stream
  const listener: Watcher = (ev: WatchEvent) => {
    // The session hands every event's zxid over (client/session.ts).
    stream.push({ type: ev.type, path: ev.path, zxid: ev.zxid ?? -1 })
  }
  offState = host.on('state', (s) => {
    if (s === 'closed') stream.end()
    else if (s === 'expired')
      stream.fail(new ZkError(ErrorCode.SESSION_EXPIRED, path, 'SESSION_EXPIRED: the session expired'))
    else if (s === 'authFailed')
      stream.fail(new ZkError(ErrorCode.AUTH_FAILED, path, 'AUTH_FAILED: the session failed to authenticate'))
  })
  registration = host.addWatch(path, mode, listener).then(
    (stop) => stop,
    (err: unknown) => {
      stream.fail(err)
      return undefined
    },
  )
  return stream
}
