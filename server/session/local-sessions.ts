/**
 * LocalSessions: the sessions one server makes for its own clients without
 * a Txn (ZooKeeper's LocalSessionTracker): a read-only server's sessions,
 * and with `localSessions` on every new session. Known to this server
 * alone, never replicated; each expires here after its timeout without
 * activity (the same ExpiryQueue buckets as the replicated table), and a
 * restart forgets them all.
 *
 * A read-write local session is upgraded to a global one before its first
 * ephemeral: `upgrading` from the moment its createSession is on its way
 * until that commits (then it leaves this table) or is lost (reset); it does
 * not expire here meanwhile.
 *
 * Invariant: an id is here at most once; `size` counts upgrading ones too
 * (they still hold a slot until their createSession commits).
 * Pure: every call takes `nowMs`; the connection type is the caller's.
 */
import { SessionTracker } from './session-tracker.js'

export interface LocalSession<H> {
  readonly id: bigint
  readonly timeoutMs: number
  /** Made by a read-only server: it can make no write. */
  readonly readOnly: boolean
  /** Its createSession is on its way (the first ephemeral of a read-write local session). */
  upgrading: boolean
  /** Its connection, while it has one. */
  handler: H | undefined
}

export class LocalSessions<H> {
  private readonly sessions = new Map<bigint, LocalSession<H>>()
  private expiry: SessionTracker

  constructor(private readonly tickMs: number) {
    this.expiry = new SessionTracker(tickMs)
  }

  get size(): number {
    return this.sessions.size
  }

  get(id: bigint): LocalSession<H> | undefined {
    return this.sessions.get(id)
  }

  has(id: bigint): boolean {
    return this.sessions.has(id)
  }

  /** A new local session, connected through `handler`. */
  add(id: bigint, timeoutMs: number, readOnly: boolean, handler: H, nowMs: number): LocalSession<H> {
    if (this.sessions.has(id)) throw new Error(`local session ${id} exists already`)
    const s: LocalSession<H> = { id, timeoutMs, readOnly, upgrading: false, handler }
    this.sessions.set(id, s)
    this.expiry.add(id, timeoutMs, nowMs)
    return s
  }

  /** Activity on a session: returns it if it is local (its expiry moves on), else undefined. */
  touch(id: bigint, nowMs: number): LocalSession<H> | undefined {
    const s = this.sessions.get(id)
    if (s !== undefined) this.expiry.touch(id, nowMs)
    return s
  }

  /** The session is gone from here: closed by its client, upgraded and committed, or forgotten. */
  remove(id: bigint): LocalSession<H> | undefined {
    const s = this.sessions.get(id)
    if (s === undefined) return undefined
    this.sessions.delete(id)
    this.expiry.remove(id)
    return s
  }

  /**
   * Sessions idle past their timeout, removed from the table (their
   * connections are the caller's to close). One being upgraded is not: its
   * createSession is on its way, and once it commits the leader expires it
   * like any global session (until then, or until the upgrade is given up,
   * its timeout starts over).
   */
  expire(nowMs: number): LocalSession<H>[] {
    if (this.sessions.size === 0) return []
    const out: LocalSession<H>[] = []
    for (const id of this.expiry.expire(nowMs)) {
      const s = this.sessions.get(id)
      if (s === undefined) continue
      if (s.upgrading) {
        this.expiry.remove(id)
        this.expiry.add(id, s.timeoutMs, nowMs)
        continue
      }
      this.remove(id)
      out.push(s)
    }
    return out
  }

  /** Forgets every session that matches (all of them without `which`). */
  clear(which?: (s: LocalSession<H>) => boolean): void {
    if (which === undefined) {
      this.sessions.clear()
      this.expiry = new SessionTracker(this.tickMs)
      return
    }
    for (const s of [...this.sessions.values()]) if (which(s)) this.remove(s.id)
  }

  values(): IterableIterator<LocalSession<H>> {
    return this.sessions.values()
  }
}
