/**
 * LeaderElection (ZooKeeper's Leader Election recipe; Curator's LeaderLatch).
 * Each candidate creates a protected EPHEMERAL_SEQUENTIAL `latch-` node
 * holding its id; the lowest sequence leads; every other candidate watches
 * only its predecessor. Before claiming leadership a candidate checks that
 * its node's ephemeralOwner is this very session (CURATOR-653/696: never
 * lead on a node left by another session) and that the client is connected.
 *
 *   const e = new LeaderElection(zk, '/election/svc', 'node-a')
 *   e.on('leader', () => ...) ; e.on('follower', () => ...) ; e.on('error', (err) => ...)
 *   await e.start() ; await e.waitForLeadership({ timeoutMs }) ; await e.resign()
 *
 * Events: 'leader' when this candidate becomes leader; 'follower' whenever it
 * is not, or no longer, leader (after start, on a lost connection, on
 * resign, at the end of the session); 'error' with what went wrong
 * (SESSION_EXPIRED when the session ends: the candidate then stops).
 *
 * Invariants: isLeader is false whenever the client is not connected for
 * longer than `lostAfterMs` (default 0: step down as soon as the connection
 * drops, well before the server can expire the session and let another
 * candidate lead); 'leader' and 'follower' alternate; resign() steps down
 * before it deletes the node, so leaders never overlap.
 * Async-iterable: `for await (const role of election)` (see changes()).
 * Imports only ../client/index.js, ../shared/*.js and recipes/ modules.
 */
import type { Client } from '../client/index.js'
import { Emitter, ErrorCode, ZkError } from '../client/index.js'
import { TURNS_MAX } from './lock-core.js'
import { type CreatedNode, protectedCreate } from './protected-create.js'
import { SessionGuard } from './session-guard.js'
import { dropOldestPair, type IterateOptions, StreamSet } from './streams.js'
import { contextOf, type EndSource, Latch, timeoutError, type WaitOptions, waitLatch } from './wait.js'
import {
  candidatesData,
  checkRecipePath,
  childrenOrEmpty,
  deleteQuietly,
  firstCandidateData,
  isCode,
  joinPath,
  releaseNode,
  retryOnLoss,
  sameSession,
  sortBySequence,
  stripProtected,
  utf8,
} from './znodes.js'

export const LATCH_PREFIX = 'latch-'

/** Pause before looking again after an unexpected error. */
const RETRY_DELAY_MS = 1_000

export interface LeaderElectionOptions {
  /** How long a disconnection may last before a leader steps down. Default 0 (at once). */
  lostAfterMs?: number | undefined
}

type ElectionEvents = { leader: []; follower: []; error: [err: unknown] }

/** A candidate's role, as its iterator yields it. */
export type ElectionRole = 'leader' | 'follower'

const isLatch = (n: string): boolean => stripProtected(n).startsWith(LATCH_PREFIX)

export class LeaderElection extends Emitter<ElectionEvents> implements EndSource {
  private readonly path: string
  private readonly stopped = new Emitter<{ stop: [err: ZkError] }>()
  private node: CreatedNode | undefined
  private role: 'none' | 'leader' | 'follower' = 'none'
  private guard: SessionGuard | undefined
  private running = false
  private stopError: ZkError | undefined
  private dirty = false
  private loop: Promise<void> | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  /** One watcher function for every watch we set, so repeated looks never pile up watches. */
  private readonly onWatch = (): void => void this.requestCheck()
  private readonly streams = new StreamSet<ElectionRole>()

  constructor(
    private readonly zk: Client,
    path: string,
    readonly id: string,
    private readonly opts: LeaderElectionOptions = {},
  ) {
    super()
    this.path = checkRecipePath(path)
  }

  get isLeader(): boolean {
    return this.role === 'leader'
  }

  /** The czxid of our node while we lead: a fencing token for the leader's writes. */
  get fencingToken(): number | undefined {
    return this.role === 'leader' ? this.node?.stat.czxid : undefined
  }

  /** Why the candidate stopped (resign or end of session), for waiters (EndSource). */
  get endError(): ZkError | undefined {
    return this.stopError
  }

  onEnd(fn: (err: ZkError) => void): () => void {
    return this.stopped.on('stop', fn)
  }

  /** Enters the election; resolves once this candidate knows whether it leads. */
  async start(): Promise<void> {
    if (this.running) throw new ZkError(ErrorCode.API_ERROR, this.path, 'API_ERROR: election already started')
    this.running = true
    this.stopError = undefined
    this.role = 'none'
    const guard = new SessionGuard(this.zk, this.opts.lostAfterMs ?? 0)
    this.guard = guard
    guard.onEnd((err) => this.stop(err))
    guard.on('suspect', () => this.setRole('follower'))
    guard.on('reconnected', () => void this.requestCheck())
    try {
      await this.createNode()
    } catch (err) {
      this.stop(ZkError.is(err) ? err : new ZkError(ErrorCode.SYSTEM_ERROR, this.path, String(err)))
      throw err
    }
    await this.requestCheck()
  }

  private async createNode(): Promise<void> {
    const node = await protectedCreate(this.zk, {
      dir: this.path,
      prefix: LATCH_PREFIX,
      data: utf8(this.id),
      mode: 'ephemeralSequential',
      parentMode: 'container',
      ctx: { deadline: undefined, signal: undefined },
      end: this.guard,
    })
    // resign() may have come while the create was in flight: then the node must not stay.
    if (this.running) this.node = node
    else await releaseNode(this.zk, node.path)
  }

  private setRole(role: 'leader' | 'follower'): void {
    if (this.role === role) return
    this.role = role
    this.streams.push(role)
    this.emit(role)
  }

  /**
   * The candidate's role as an async iterator: the current one (once known),
   * then every change; 'leader' and 'follower' alternate. It does not start
   * the candidate: call start() too. A consumer that falls behind (more than
   * `bufferSize`, default 16, changes) loses the oldest pairs of changes, so
   * the roles still alternate and the last one is current. resign() ends the
   * iteration; the end of the session throws SESSION_EXPIRED.
   */
  changes(opts: IterateOptions = {}): AsyncIterableIterator<ElectionRole> {
    const stream = this.streams.open(opts, 16, dropOldestPair)
    if (!stream.open) return stream
    if (this.role !== 'none') stream.push(this.role)
    return stream
  }

  /** `for await (const role of election)`: see changes(). */
  [Symbol.asyncIterator](): AsyncIterableIterator<ElectionRole> {
    return this.changes()
  }

  private requestCheck(): Promise<void> {
    this.dirty = true
    this.loop ??= this.runChecks()
    return this.loop
  }

  private async runChecks(): Promise<void> {
    try {
      for (let i = 0; this.dirty && this.running && i < TURNS_MAX; i++) {
        this.dirty = false
        try {
          await this.checkOnce()
        } catch (err) {
          this.onCheckError(err)
        }
      }
    } finally {
      this.loop = undefined
    }
  }

  private onCheckError(err: unknown): void {
    if (!this.running) return
    if (this.guard?.endError !== undefined) return
    this.emit('error', err)
    // CONNECTION_LOSS is retried on 'reconnected'; anything else after a pause.
    if (isCode(err, ErrorCode.CONNECTION_LOSS) || this.retryTimer !== undefined) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      if (this.running) void this.requestCheck()
    }, RETRY_DELAY_MS)
  }

  /** One look at the candidates: lead, or watch the predecessor (and always our own node). */
  private async checkOnce(): Promise<void> {
    const node = this.node
    if (!this.running || node === undefined) return
    const [stat, children] = await Promise.all([
      retryOnLoss(() => this.zk.exists(node.path, { watch: this.onWatch })),
      childrenOrEmpty(this.zk, this.path),
    ])
    const sorted = sortBySequence(children.filter(isLatch))
    const index = sorted.indexOf(node.name)
    // CURATOR-696: take part only with a node of this very session.
    if (index < 0 || stat === null || !sameSession(stat.ephemeralOwner, this.zk.sessionId))
      return this.recreate()
    if (index === 0) {
      // Lead only while connected: a disconnected leader has stepped down (see 'suspect').
      if (this.running && this.node === node && this.zk.state === 'connected') this.setRole('leader')
      return
    }
    this.setRole('follower')
    try {
      await retryOnLoss(() =>
        this.zk.getData(joinPath(this.path, sorted[index - 1]!), { watch: this.onWatch }),
      )
    } catch (err) {
      if (!isCode(err, ErrorCode.NO_NODE)) throw err
      this.dirty = true
    }
  }

  /** Our node is gone (deleted by someone) while the session lives: rejoin at the back. */
  private async recreate(): Promise<void> {
    this.setRole('follower')
    const old = this.node
    this.node = undefined
    if (old !== undefined) await deleteQuietly(this.zk, old.path).catch(() => {})
    if (!this.running) return
    await this.createNode()
    this.dirty = true
  }

  private stop(err: ZkError): void {
    if (!this.running) return
    const wasSession = err.code !== ErrorCode.API_ERROR
    this.running = false
    this.stopError = err
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    this.setRole('follower')
    this.guard?.dispose()
    this.guard = undefined
    if (wasSession) this.streams.failAll(err)
    else this.streams.endAll()
    this.stopped.emit('stop', err)
    if (wasSession) this.emit('error', err)
  }

  /** Leaves the election: steps down first (emitting 'follower' if it led), then deletes its node. */
  async resign(): Promise<void> {
    const node = this.node
    this.stop(new ZkError(ErrorCode.API_ERROR, this.path, 'API_ERROR: the candidate resigned'))
    this.node = undefined
    // After CONNECTION_LOSS the delete goes on in the background: the node must not stay ahead of the others.
    if (node !== undefined) await releaseNode(this.zk, node.path)
  }

  /** Resolves once this candidate leads; rejects OPERATION_TIMEOUT, the signal's reason, or why it stopped. */
  async waitForLeadership(opts?: WaitOptions): Promise<void> {
    const ctx = contextOf(opts)
    if (this.isLeader) return
    if (!this.running)
      throw this.stopError ?? new ZkError(ErrorCode.API_ERROR, this.path, 'API_ERROR: election not started')
    const latch = new Latch()
    const off = this.on('leader', latch.open)
    try {
      if ((await waitLatch(latch, ctx, this)) === 'timeout') throw timeoutError('no leadership', this.path)
    } finally {
      off()
    }
  }

  /** The current leader's id, or null if there is no candidate. */
  async leader(): Promise<string | null> {
    return firstCandidateData(this.zk, this.path, isLatch)
  }

  /** Every candidate's id, leader first. */
  async participants(): Promise<string[]> {
    return candidatesData(this.zk, this.path, isLatch)
  }
}
