/**
 * GroupMembership: service discovery on ephemeral nodes (ZooKeeper's group
 * membership idiom; Curator's GroupMember). join(id, data) creates the
 * EPHEMERAL node `<path>/<id>` holding `data`; it goes when the member
 * leaves or its session ends. The live view keeps the member list current
 * with a children watch on the group and a data watch on every member (one
 * shared watcher function, so watches never pile up) and emits 'change' with
 * the new list, sorted by id, whenever it differs.
 *
 *   const g = new GroupMembership(zk, '/services/api')
 *   await g.join('member-1', '10.0.0.1:8080') ; g.on('change', (members) => ...)
 *   await g.members()   // [{ id, data }] sorted by id, read from the server
 *
 * Invariants: join is idempotent for this session (a node we already own is
 * updated, one owned by another session is NODE_EXISTS); the view refreshes
 * one at a time and coalesces bursts; 'change' never repeats an equal list;
 * when the session ends the view emits 'error' (SESSION_EXPIRED) and stops.
 * Async-iterable: `for await (const members of group)` (see changes()).
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, Data } from '../client/index.js'
import { Emitter, ErrorCode } from '../client/index.js'
import { TURNS_MAX } from './lock-core.js'
import { SessionGuard } from './session-guard.js'
import { type IterateOptions, newest, StreamSet } from './streams.js'
import {
  checkNodeName,
  checkRecipePath,
  childrenOrEmpty,
  ensurePath,
  isCode,
  joinPath,
  releaseNode,
  retryOnLoss,
  sameSession,
} from './znodes.js'

export interface Member {
  id: string
  data: Uint8Array
}

type GroupEvents = { change: [members: Member[]]; error: [err: unknown] }

function sameMembers(a: readonly Member[], b: readonly Member[]): boolean {
  if (a.length !== b.length) return false
  return a.every((m, i) => {
    const n = b[i]!
    return m.id === n.id && m.data.length === n.data.length && m.data.every((x, j) => x === n.data[j])
  })
}

export class GroupMembership extends Emitter<GroupEvents> {
  readonly path: string
  private myId: string | undefined
  private view: Member[] | undefined
  private guard: SessionGuard | undefined
  private dirty = false
  private loop: Promise<void> | undefined
  private readonly onWatch = (): void => void this.refresh()
  private readonly streams = new StreamSet<Member[]>()
  /** The live view runs only for iterators (no start() or join() asked for it): it stops with the last one. */
  private viewForIterators = false

  constructor(
    private readonly zk: Client,
    path: string,
  ) {
    super()
    this.path = checkRecipePath(path)
  }

  /** The id this object joined as, if it has. */
  get memberId(): string | undefined {
    return this.myId
  }

  /** The live view's last list (undefined before start or join). */
  get current(): readonly Member[] | undefined {
    return this.view
  }

  /** Joins the group as `id` and starts the live view. */
  async join(id: string, data: Data = new Uint8Array(0)): Promise<void> {
    checkNodeName(id, 'member id')
    await ensurePath(this.zk, this.path)
    const path = joinPath(this.path, id)
    try {
      await retryOnLoss(() => this.zk.create(path, data, { mode: 'ephemeral' }))
    } catch (err) {
      if (!isCode(err, ErrorCode.NODE_EXISTS)) throw err
      // Ours already (a retried create after CONNECTION_LOSS, or a second join)? Then update it.
      const stat = await retryOnLoss(() => this.zk.exists(path))
      if (stat === null || !sameSession(stat.ephemeralOwner, this.zk.sessionId)) throw err
      await retryOnLoss(() => this.zk.setData(path, data))
    }
    this.myId = id
    await this.start()
  }

  /** Replaces this member's data. */
  async update(data: Data): Promise<void> {
    if (this.myId === undefined) throw new Error('not a member: call join() first')
    await retryOnLoss(() => this.zk.setData(joinPath(this.path, this.myId!), data))
  }

  /** Leaves the group (the live view keeps running until close()). */
  async leave(): Promise<void> {
    const id = this.myId
    this.myId = undefined
    // After CONNECTION_LOSS the delete goes on in the background after the reconnect.
    if (id !== undefined) await releaseNode(this.zk, joinPath(this.path, id))
  }

  /** Starts the live view without joining (an observer); resolves after the first list. */
  start(): Promise<void> {
    this.viewForIterators = false
    return this.startView()
  }

  private async startView(): Promise<void> {
    if (this.guard === undefined) {
      const guard = new SessionGuard(this.zk)
      this.guard = guard
      guard.onEnd((err) => {
        this.stopView(err)
        this.emit('error', err)
      })
      guard.on('reconnected', () => void this.refresh())
      // Already over: say so to the iterators (start() itself stays quiet, as it always has).
      if (guard.endError !== undefined) this.stopView(guard.endError)
    }
    await this.refresh()
  }

  /**
   * The member list (sorted by id) as an async iterator: the current list,
   * then every new one. It starts the live view if nothing has (and stops it
   * again when the last iterator ends). A slow consumer gets the newest list,
   * not every one in between. `break`, the signal or close() end it; the end
   * of the session throws SESSION_EXPIRED.
   */
  changes(opts: IterateOptions = {}): AsyncIterableIterator<Member[]> {
    const stream = this.streams.open(opts, 1, newest, () => {
      if (this.streams.size === 0 && this.viewForIterators) this.stopView()
    })
    if (!stream.open) return stream
    // The last list first (when the view starts again, a newer one follows if it changed).
    if (this.view !== undefined) stream.push(this.view)
    if (this.guard === undefined) {
      this.viewForIterators = true
      this.startView().catch((err: unknown) => stream.fail(err))
    }
    return stream
  }

  /** `for await (const members of group)`: see changes(). */
  [Symbol.asyncIterator](): AsyncIterableIterator<Member[]> {
    return this.changes()
  }

  /** Leaves (if joined) and stops the live view. */
  async close(): Promise<void> {
    this.stopView()
    await this.leave()
  }

  /** Stops the live view; its iterators end, or throw `err` (the end of the session). */
  private stopView(err?: unknown): void {
    this.guard?.dispose()
    this.guard = undefined
    this.viewForIterators = false
    if (err === undefined) this.streams.endAll()
    else this.streams.failAll(err)
  }

  /** The members now, read from the server, sorted by id. */
  async members(): Promise<Member[]> {
    return this.read(undefined)
  }

  private async read(watch: (() => void) | undefined): Promise<Member[]> {
    // Without a group node the watch is on its creation (childrenOrEmpty).
    const ids = await childrenOrEmpty(this.zk, this.path, watch)
    const reads = ids.map((id) =>
      retryOnLoss(() =>
        this.zk.getData(joinPath(this.path, id), watch === undefined ? undefined : { watch }),
      ).then(
        (r): Member => ({ id, data: r.data }),
        (err: unknown) => {
          if (isCode(err, ErrorCode.NO_NODE)) return undefined
          throw err
        },
      ),
    )
    const members = (await Promise.all(reads)).filter((m): m is Member => m !== undefined)
    return members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  private refresh(): Promise<void> {
    this.dirty = true
    this.loop ??= this.runRefresh()
    return this.loop
  }

  private async runRefresh(): Promise<void> {
    try {
      for (let i = 0; this.dirty && this.guard !== undefined && i < TURNS_MAX; i++) {
        this.dirty = false
        try {
          const members = await this.read(this.onWatch)
          if (this.view === undefined || !sameMembers(this.view, members)) {
            this.view = members
            this.streams.push(members)
            this.emit('change', members)
          }
        } catch (err) {
          // CONNECTION_LOSS: 'reconnected' refreshes again; the end of the session stops the view.
          if (!isCode(err, ErrorCode.CONNECTION_LOSS) && !isCode(err, ErrorCode.SESSION_EXPIRED))
            this.emit('error', err)
        }
      }
    } finally {
      this.loop = undefined
    }
  }
}
