/**
 * WriteMemory: per session, the results of its last exactly-once writes —
 * part of the replicated state (every server applies the same changes,
 * snapshots carry it, the digest covers it), so a write the client re-sends
 * after losing its connection is answered with its original result by
 * whichever server leads, and never applied twice.
 *
 * A session's record holds its remembered writes (xid, zxid, encoded result,
 * in the order applied) and two watermarks: `ackXid`, below which the client
 * has every reply (results below it are dropped: the client never asks
 * again), and `evictedXid`, the highest xid dropped because the session had
 * more than `resultsMax` results, or more than `resultBytesMax` bytes of
 * them (a re-sent write at or below it cannot be told apart from one never
 * applied: it is answered OUTCOME_UNKNOWN). The newest result always stays.
 * Xids are compared in serial order: a client's xids are positive int32s
 * that wrap from 2^31 - 1 to 1, so `a` is before `b` when going forward
 * from `a` reaches `b` within half the space (RFC 1982's rule, mod 2^31).
 *
 * Invariants: within a record, xids are distinct and none is below ackXid or
 * at or below evictedXid; live, a remembered xid is never remembered again
 * (prep dedupes; assert); replay skips what the record already reflects
 * (the xid is there, or below a watermark), so replaying a log suffix over a
 * fuzzy snapshot converges; a record exists only while its session does.
 * Must not import anything but shared/ and server/tree/ (pure).
 */
import { fail } from '../../shared/assert.js'
import { Hasher } from './hash.js'
import type { ApplyMode } from './tree-types.js'

/** `a` comes before `b` in the serial order of xids (mod 2^31: 2^31 - 1 is before 1). */
export function xidBefore(a: number, b: number): boolean {
  return ((a - b) & 0x7fffffff) > 0x40000000
}

export interface RememberedWrite {
  readonly xid: number
  /** The zxid the write was applied at. */
  readonly zxid: number
  /** Its result, encoded (server/txn/result-codec.ts). */
  readonly result: Uint8Array
}

/** One session's record, as a snapshot stores it. */
export interface SessionWritesRecord {
  sessionId: bigint
  /** 0: the client acknowledged nothing yet. */
  ackXid: number
  /** 0: nothing evicted yet. */
  evictedXid: number
  /** In the order applied. */
  writes: RememberedWrite[]
}

/** The bounds a write's Txn carries (server/txn/txn.ts RememberSpec), so every server keeps the same. */
export interface RememberLimits {
  ackXid: number
  resultsMax: number
  resultBytesMax: number
}

export type Recalled =
  | { kind: 'remembered'; zxid: number; result: Uint8Array }
  /** Acknowledged by the client (a late duplicate), or evicted past resultsMax. */
  | { kind: 'forgotten'; why: 'acknowledged' | 'evicted' }
  /** Never applied (as far as the applied state knows). */
  | { kind: 'unknown' }

interface Entry extends RememberedWrite {
  hashA: number
  hashB: number
}

/** What one remembered result is taken to cost beyond its bytes (the entry, its place in the list). */
export const RESULT_OVERHEAD_BYTES = 64

const costOf = (w: RememberedWrite): number => RESULT_OVERHEAD_BYTES + w.result.length

class SessionWrites {
  ackXid = 0
  evictedXid = 0
  entries: Entry[] = []
  /** Σ costOf(entries). */
  bytes = 0
  /** Hash of (session, ackXid, evictedXid), included in the digest. */
  headA = 0
  headB = 0

  find(xid: number): Entry | undefined {
    // Newest first: a re-sent write is usually one of the last.
    for (let i = this.entries.length - 1; i >= 0; i--)
      if (this.entries[i]!.xid === xid) return this.entries[i]
    return undefined
  }

  forgotten(xid: number): 'acknowledged' | 'evicted' | undefined {
    if (this.ackXid !== 0 && xidBefore(xid, this.ackXid)) return 'acknowledged'
    if (this.evictedXid !== 0 && !xidBefore(this.evictedXid, xid)) return 'evicted'
    return undefined
  }
}

export class WriteMemory {
  private readonly bySession = new Map<bigint, SessionWrites>()
  /** This memory's part of the tree digest (two u32 lanes). */
  sumA = 0
  sumB = 0
  private resultCount = 0
  private resultBytes = 0

  /** Sessions with a record. */
  get sessionCount(): number {
    return this.bySession.size
  }

  /** Results held, over every session. */
  get size(): number {
    return this.resultCount
  }

  /** Their estimated size (each result's bytes plus RESULT_OVERHEAD_BYTES), for the tree's size estimate. */
  get bytes(): number {
    return this.resultBytes
  }

  recall(sessionId: bigint, xid: number): Recalled {
    const rec = this.bySession.get(sessionId)
    if (rec === undefined) return { kind: 'unknown' }
    const e = rec.find(xid)
    if (e !== undefined) return { kind: 'remembered', zxid: e.zxid, result: e.result }
    const why = rec.forgotten(xid)
    return why === undefined ? { kind: 'unknown' } : { kind: 'forgotten', why }
  }

  /**
   * Remembers a write's result (apply of an exactly-once write's Txn); drops
   * the results the client acknowledged, then the oldest past `resultsMax`
   * or `resultBytesMax`. Replay skips a write the record already reflects.
   */
  remember(sessionId: bigint, write: RememberedWrite, spec: RememberLimits, mode: ApplyMode): void {
    let rec = this.bySession.get(sessionId)
    if (rec !== undefined && (rec.find(write.xid) !== undefined || rec.forgotten(write.xid) !== undefined)) {
      if (mode !== 'replay') fail(`write ${write.xid} of session ${sessionId} remembered twice`)
      return
    }
    if (rec === undefined) {
      rec = new SessionWrites()
      this.bySession.set(sessionId, rec)
      this.rehashHead(sessionId, rec)
    }
    this.keep(sessionId, rec, write)
    let headChanged = false
    if (spec.ackXid !== 0 && (rec.ackXid === 0 || xidBefore(rec.ackXid, spec.ackXid))) {
      rec.ackXid = spec.ackXid
      this.dropAcknowledged(rec)
      headChanged = true
    }
    while (
      rec.entries.length > 1 &&
      (rec.entries.length > spec.resultsMax || rec.bytes > spec.resultBytesMax)
    ) {
      const e = rec.entries.shift()!
      this.forget(rec, e)
      if (rec.evictedXid === 0 || xidBefore(rec.evictedXid, e.xid)) rec.evictedXid = e.xid
      headChanged = true
    }
    if (headChanged) this.rehashHead(sessionId, rec)
  }

  private dropAcknowledged(rec: SessionWrites): void {
    const ack = rec.ackXid
    let kept = 0
    for (const e of rec.entries) {
      if (xidBefore(e.xid, ack)) this.forget(rec, e)
      else rec.entries[kept++] = e
    }
    rec.entries.length = kept
  }

  private keep(sessionId: bigint, rec: SessionWrites, w: RememberedWrite): void {
    const h = entryHash(sessionId, w)
    rec.entries.push({ xid: w.xid, zxid: w.zxid, result: w.result, hashA: h.a, hashB: h.b })
    rec.bytes += costOf(w)
    this.resultBytes += costOf(w)
    this.add(h.a, h.b)
    this.resultCount++
  }

  private forget(rec: SessionWrites, e: Entry): void {
    this.add(-e.hashA, -e.hashB)
    rec.bytes -= costOf(e)
    this.resultBytes -= costOf(e)
    this.resultCount--
  }

  /** The session ended: its record goes with it. */
  drop(sessionId: bigint): void {
    const rec = this.bySession.get(sessionId)
    if (rec === undefined) return
    for (const e of rec.entries) this.forget(rec, e)
    this.add(-rec.headA, -rec.headB)
    this.bySession.delete(sessionId)
  }

  /** Every record, lazily (a fuzzy snapshot reads them while writes go on: each record is read whole). */
  *records(): Generator<SessionWritesRecord> {
    for (const [sessionId, rec] of this.bySession) {
      const writes = rec.entries.map((e) => ({ xid: e.xid, zxid: e.zxid, result: e.result }))
      yield { sessionId, ackXid: rec.ackXid, evictedXid: rec.evictedXid, writes }
    }
  }

  /** Loads a record from a snapshot (a later record for the same session replaces an earlier one). */
  load(r: SessionWritesRecord): void {
    this.drop(r.sessionId)
    const rec = new SessionWrites()
    rec.ackXid = r.ackXid
    rec.evictedXid = r.evictedXid
    for (const w of r.writes) if (rec.find(w.xid) === undefined) this.keep(r.sessionId, rec, w)
    this.bySession.set(r.sessionId, rec)
    this.rehashHead(r.sessionId, rec)
  }

  private rehashHead(sessionId: bigint, rec: SessionWrites): void {
    this.add(-rec.headA, -rec.headB)
    const h = new Hasher(0x77686472).big(sessionId).word(rec.ackXid).word(rec.evictedXid)
    rec.headA = h.finishA()
    rec.headB = h.finishB()
    this.add(rec.headA, rec.headB)
  }

  private add(a: number, b: number): void {
    this.sumA = (this.sumA + a) >>> 0
    this.sumB = (this.sumB + b) >>> 0
  }
}

function entryHash(sessionId: bigint, w: RememberedWrite): { a: number; b: number } {
  const h = new Hasher(0x77726974).big(sessionId).word(w.xid).num(w.zxid).bytes(w.result)
  return { a: h.finishA(), b: h.finishB() }
}
