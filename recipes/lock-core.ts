/**
 * The machinery under every lock recipe (ZooKeeper's "Locks" recipe, as in
 * Curator's LockInternals): a contender creates a protected
 * EPHEMERAL_SEQUENTIAL node in the lock directory, lists the directory, and
 * either holds the lock (the predicate says so) or watches exactly one
 * earlier node (no herd effect) and looks again when that watch fires —
 * unless that node was the only earlier one and was deleted: then the
 * turn is ours without a second listing (turnOnDeletion): a hand-off to a
 * waiter queued right behind the holder is the holder's delete, one event
 * and the grant, with no round trip between them. Per acquisition: create,
 * exists (the Stat, and the watch on our own node), getChildren, getData
 * (the watch on the predecessor), a second getChildren unless the grant
 * came on the event, delete.
 * SequentialLockBase adds re-entrancy, the fencing token (the node's czxid),
 * the 'lost' event and the release rules shared by Lock and ReadWriteLock.
 *
 * Invariants: a contender that gives up (deadline, abort, session end, error)
 * deletes its node; a holder whose node disappears, or whose session ends or
 * is suspect, is told once ('lost', isHeld false, signal aborted) and its
 * next release() rejects with that error; a released or lost holding is not
 * held any more, and its node is deleted even if the connection is lost
 * meanwhile (deleteGuaranteed), so it never blocks later contenders for
 * longer than the connection's absence; fencing tokens of successive
 * holders strictly increase (a later node has a larger czxid).
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client, Data, WatchEvent } from '../client/index.js'
import { Emitter, ErrorCode, ZkError } from '../client/index.js'
import { type CreatedNode, protectedCreate } from './protected-create.js'
import { SessionGuard } from './session-guard.js'
import {
  bounded,
  checkContext,
  contextOf,
  type EndSource,
  Latch,
  now,
  timeoutError,
  type WaitContext,
  type WaitOptions,
  waitLatch,
} from './wait.js'
import {
  checkRecipePath,
  deleteGuaranteed,
  isCode,
  joinPath,
  releaseNode,
  retryOnLoss,
  sortBySequence,
  stripProtected,
} from './znodes.js'

/** Bound on how many times a contender looks at the directory (each look follows a change). */
export const TURNS_MAX = 1_000_000

/**
 * How many times in a row a winning answer that came back late is asked
 * again (after a sync) before it is trusted anyway: a machine so slow that
 * every answer takes a third of the session timeout must still make progress.
 */
export const LATE_ANSWER_RETRIES_MAX = 3

/**
 * True when a listing asked for at `askedAt` (wait.ts's now()) came back
 * too late to grant on: after a third of the session timeout, the session
 * may have expired, and the node with it, while the answer waited — in a
 * paused process (a GC pause, SIGSTOP) the answer sits in the socket while
 * the server expires the session, and is read on waking. The same third as
 * SessionGuard's suspicion of a disconnection.
 */
function answerIsLate(zk: Client, askedAt: number): boolean {
  const t = zk.sessionTimeoutMs
  return t > 0 && now() - askedAt > t / 3
}

/** The predicate's verdict: we hold the lock, or we must watch one earlier node. */
export type Turn = { acquired: true } | { acquired: false; watch: string }

/** Decides from the contenders, sorted by sequence, and our index among them. */
export type TurnPredicate = (sorted: readonly string[], ourIndex: number) => Turn

/** A holder's grant: its fencing token and a signal aborted when the grant ends. */
export interface LockGrant {
  /** The lock node's czxid: strictly increasing across every holder of this lock. */
  fencingToken: number
  /** The lock node's path. */
  path: string
  /** Aborted when this grant ends: released or lost (the reason says which). */
  signal: AbortSignal
}

export interface LockOptions {
  /** Stored in the lock node (for example to say who holds it). */
  data?: Data | undefined
  /** How long a disconnection may last before a holder treats the lock as lost. Default: 1/3 of the session timeout. */
  lostAfterMs?: number | undefined
}

export interface SequentialSpec {
  dir: string
  prefix: string
  data?: Data | undefined
  /** Which children take part (default: those whose unprotected name starts with the prefix). */
  isContender?: ((name: string) => boolean) | undefined
  predicate: TurnPredicate
  ctx: WaitContext
  end?: EndSource | undefined
  /** Watches our node from its creation; with it, a turn can be taken on a watch event alone (see waitForTurn). */
  own?: OwnNodeWatch | undefined
}

/**
 * A watch on our own contender node, set by the exists that reads its Stat
 * back after the create (no request of its own) and set again after any
 * event but a deletion, until disposed. While it has not reported the node
 * gone, the node existed as of every later event the server sent this
 * session: the server sends a session's events in zxid order, and the client
 * hands them to watchers in that order.
 */
export class OwnNodeWatch {
  private goneFlag = false
  /** False from an event until the watch is set again: meanwhile a deletion could go unseen. */
  private armed = true
  private disposed = false
  private onGoneFn: (() => void) | undefined

  constructor(private readonly zk: Client) {}

  /** True while the watch is set and has not reported the node gone. */
  get intact(): boolean {
    return this.armed && !this.goneFlag
  }

  readonly watcher = (ev: WatchEvent): void => {
    if (this.disposed) return
    if (ev.type === 'deleted') return this.markGone()
    // A data change (or a resync): watch again; an absent node is gone.
    this.armed = false
    this.zk
      .exists(ev.path, { watch: this.watcher })
      .then((stat) => {
        if (stat === null) this.markGone()
        else this.armed = true
      })
      .catch(() => {
        // CONNECTION_LOSS or the end of the session: the session guard reports the latter.
      })
  }

  /** Calls `fn` once when the node is gone (at once if it already is); returns how to stop. */
  onGone(fn: () => void): () => void {
    this.onGoneFn = fn
    if (this.goneFlag) fn()
    return () => {
      if (this.onGoneFn === fn) this.onGoneFn = undefined
    }
  }

  dispose(): void {
    this.disposed = true
    this.onGoneFn = undefined
  }

  private markGone(): void {
    if (this.goneFlag || this.disposed) return
    this.goneFlag = true
    this.onGoneFn?.()
  }
}

/** The plain mutex: the first contender holds the lock; everyone else watches the one just before it. */
export const mutexPredicate: TurnPredicate = (sorted, i) =>
  i === 0 ? { acquired: true } : { acquired: false, watch: sorted[i - 1]! }

/**
 * Whether the deletion of the node we watched gives us the turn without
 * listing the directory again (one round trip less per hand-off). Only when
 * that node was the one contender before ours: later nodes get larger
 * sequence numbers, and the directory (a container) cannot be removed and
 * its counter restarted while our node is in it, so no earlier contender can
 * appear. Only when our own node is known to exist (its watch has not
 * fired: see OwnNodeWatch), and only when the event came within a third of
 * the session timeout of setting the watch — the late-answer rule of the
 * listing (finding 3 in docs/chaos.md: a process paused past its session's
 * expiry reads the event on waking, and must list again, which then fails).
 */
function turnOnDeletion(
  zk: Client,
  s: SequentialSpec,
  sorted: readonly string[],
  index: number,
  watched: string,
  watchAskedAt: number,
): boolean {
  if (s.own === undefined || !s.own.intact) return false
  if (index !== 1 || sorted[0] !== watched || answerIsLate(zk, watchAskedAt)) return false
  // Predicates look only at the nodes before ours: with the watched one gone there are none.
  return s.predicate(sorted.slice(1), 0).acquired
}

/** Waits until the predicate says our node holds the lock. */
async function waitForTurn(zk: Client, s: SequentialSpec, ours: CreatedNode): Promise<void> {
  const isContender = s.isContender ?? ((n: string) => stripProtected(n).startsWith(s.prefix))
  let lateAnswers = 0
  for (let i = 0; i < TURNS_MAX; i++) {
    checkContext(s.ctx, s.end, 'lock acquisition timed out', s.dir)
    const askedAt = now()
    const children = await bounded(
      retryOnLoss(() => zk.getChildren(s.dir)),
      s.ctx,
      s.end,
      'getChildren',
    )
    const sorted = sortBySequence(children.filter(isContender))
    const index = sorted.indexOf(ours.name)
    if (index < 0) {
      if (s.end?.endError !== undefined) throw s.end.endError
      throw new ZkError(ErrorCode.NO_NODE, ours.path, `NO_NODE: our lock node ${ours.path} disappeared`)
    }
    const turn = s.predicate(sorted, index)
    if (turn.acquired) {
      // A grant must not rest on an answer the session may have outlived: a late
      // one is asked again once a sync has brought the server up to the leader
      // (our node gone → NO_NODE above; the session gone → SESSION_EXPIRED).
      if (!answerIsLate(zk, askedAt) || lateAnswers >= LATE_ANSWER_RETRIES_MAX) return
      lateAnswers++
      await bounded(
        retryOnLoss(() => zk.sync(s.dir)),
        s.ctx,
        s.end,
        'sync',
      )
      continue
    }
    const latch = new Latch()
    let fired: WatchEvent['type'] | undefined
    const watchAskedAt = now()
    try {
      const onEvent = (ev: WatchEvent): void => {
        fired = ev.type
        latch.open()
      }
      const read = retryOnLoss(() => zk.getData(joinPath(s.dir, turn.watch), { watch: onEvent }))
      await bounded(read, s.ctx, s.end, 'getData')
    } catch (err) {
      if (isCode(err, ErrorCode.NO_NODE)) continue
      throw err
    }
    if ((await waitLatch(latch, s.ctx, s.end)) === 'timeout')
      throw timeoutError('lock acquisition timed out', s.dir)
    if (fired === 'deleted' && turnOnDeletion(zk, s, sorted, index, turn.watch, watchAskedAt)) {
      checkContext(s.ctx, s.end, 'lock acquisition timed out', s.dir)
      return
    }
  }
  throw new ZkError(ErrorCode.SYSTEM_ERROR, s.dir, `SYSTEM_ERROR: gave up after ${TURNS_MAX} turns`)
}

/** Creates our node and waits for our turn; on any failure the node is deleted. */
export async function acquireSequential(zk: Client, s: SequentialSpec): Promise<CreatedNode> {
  const node = await protectedCreate(zk, {
    dir: s.dir,
    prefix: s.prefix,
    data: s.data,
    mode: 'ephemeralSequential',
    parentMode: 'container',
    ctx: s.ctx,
    end: s.end,
    watch: s.own?.watcher,
  })
  try {
    await waitForTurn(zk, s, node)
    return node
  } catch (err) {
    // A delete that meets CONNECTION_LOSS goes on in the background, so the node cannot block others.
    await releaseNode(zk, node.path).catch(() => {})
    throw err
  }
}

interface Holding {
  path: string
  token: number
  holds: number
  guard: SessionGuard
  own: OwnNodeWatch
  controller: AbortController
  offs: (() => void)[]
}

type LockEvents = { lost: [err: ZkError] }

function notHeld(path: string): ZkError {
  return new ZkError(ErrorCode.API_ERROR, path, `API_ERROR: the lock ${path} is not held by this object`)
}

/** Re-entrant lock handle over one kind of contender node. */
export class SequentialLockBase extends Emitter<LockEvents> {
  protected readonly path: string
  private holding: Holding | undefined
  private lostError: ZkError | undefined
  private chain: Promise<unknown> = Promise.resolve()

  protected constructor(
    protected readonly zk: Client,
    path: string,
    private readonly prefix: string,
    private readonly opts: LockOptions,
    private readonly isContender: (name: string) => boolean,
  ) {
    super()
    this.path = checkRecipePath(path)
  }

  /** Whether this object holds the lock now. */
  get isHeld(): boolean {
    return this.holding !== undefined
  }

  /** The current holding's fencing token, if held. */
  get fencingToken(): number | undefined {
    return this.holding?.token
  }

  /** The current holding's node path, if held. */
  get nodePath(): string | undefined {
    return this.holding?.path
  }

  /** Decides whether our node holds the lock; subclasses may look at their own state. */
  protected predicate(sorted: readonly string[], index: number): Turn {
    return mutexPredicate(sorted, index)
  }

  /**
   * Takes the lock, waiting for it; re-entrant for this object (each acquire
   * needs a release). Rejects OPERATION_TIMEOUT after `timeoutMs`, with the
   * signal's reason on abort, SESSION_EXPIRED if the session ends; in every
   * such case our node is removed.
   */
  acquire(opts?: WaitOptions): Promise<LockGrant> {
    const ctx = contextOf(opts)
    // Calls on one object run one after another, each still bound by its own deadline and signal.
    const before = this.chain
    const turn = new Latch()
    void before.then(turn.open)
    const run = waitLatch(turn, ctx).then((r) => {
      if (r === 'timeout') throw timeoutError('lock acquisition timed out', this.path)
      return this.acquireNow(ctx)
    })
    // The next call waits for the earlier ones and for this one, even if this one gave up early.
    this.chain = before.then(() => run.catch(() => {}))
    return run
  }

  private grant(h: Holding): LockGrant {
    return { fencingToken: h.token, path: h.path, signal: h.controller.signal }
  }

  private async acquireNow(ctx: WaitContext): Promise<LockGrant> {
    if (this.holding !== undefined) {
      this.holding.holds++
      return this.grant(this.holding)
    }
    this.lostError = undefined
    const guard = new SessionGuard(this.zk, this.opts.lostAfterMs)
    // Set with the create's Stat read-back: it speeds the hand-off, then reports a holder's node deleted.
    const own = new OwnNodeWatch(this.zk)
    let node: CreatedNode
    try {
      node = await acquireSequential(this.zk, {
        dir: this.path,
        prefix: this.prefix,
        data: this.opts.data,
        isContender: this.isContender,
        predicate: (sorted, i) => this.predicate(sorted, i),
        ctx,
        end: guard,
        own,
      })
    } catch (err) {
      own.dispose()
      guard.dispose()
      throw err
    }
    const h: Holding = {
      path: node.path,
      token: node.stat.czxid,
      holds: 1,
      guard,
      own,
      controller: new AbortController(),
      offs: [],
    }
    this.holding = h
    h.offs.push(guard.onEnd((err) => this.lose(h, err)))
    h.offs.push(guard.on('suspect', (err) => this.lose(h, err)))
    h.offs.push(
      own.onGone(() =>
        this.lose(h, new ZkError(ErrorCode.NO_NODE, h.path, `NO_NODE: lock node ${h.path} was deleted`)),
      ),
    )
    return this.grant(h)
  }

  private finish(h: Holding, reason: unknown): void {
    for (const off of h.offs) off()
    h.own.dispose()
    h.guard.dispose()
    h.controller.abort(reason)
  }

  private lose(h: Holding, err: ZkError): void {
    if (this.holding !== h) return
    this.holding = undefined
    this.lostError = err
    this.finish(h, err)
    this.emit('lost', err)
    // A suspect session may still be alive: remove the node once we can, so the lock passes on.
    if (err.code !== ErrorCode.NO_NODE) void deleteGuaranteed(this.zk, h.path).catch(() => {})
  }

  /**
   * Releases one hold; the last release deletes the node. Rejects with the
   * error that ended the grant if the lock was lost, and API_ERROR if not held.
   * This object no longer holds the lock once release() is called. If the
   * delete meets CONNECTION_LOSS, release() resolves anyway and the delete
   * goes on in the background after every reconnect until the node is gone
   * or the session ends (Curator's guaranteed delete; CURATOR-678: otherwise
   * the node would stay, and every later acquire() would wait behind it).
   */
  async release(): Promise<void> {
    const h = this.holding
    if (h === undefined) {
      const lost = this.lostError
      this.lostError = undefined
      throw lost ?? notHeld(this.path)
    }
    h.holds--
    if (h.holds > 0) return
    this.holding = undefined
    this.finish(h, new Error('released'))
    await releaseNode(this.zk, h.path)
  }
}
