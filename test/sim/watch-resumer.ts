/**
 * WatchResumer: simulated clients that hold a persistent-recursive watch on
 * '/' through every fault of a tree seed, and check that watches resume
 * (issue 16, item 2). Each opens a session on a serving server (asking for
 * resumableWatches), adds the watch, pings, and when its connection is lost
 * resumes the same session on another server with one resumeWatches from
 * its position (client/watch-position.ts, the SDK's own), as the SDK does;
 * a session that expired meanwhile starts over with a new one.
 *
 * The truth is what the servers apply: every change of every committed Txn,
 * in zxid order, but childrenChanged (a recursive watch does not report
 * it). Checked, event by event: after its registration (the addWatch
 * reply's zxid) or after a watchesCompacted answer (its zxid), a watcher's
 * events are exactly the truth's events that follow, in order — none
 * missing, none twice, none out of order, each with its change's zxid —
 * until its session ends; a resume's replay and the live events after it
 * included. Invariant name: 'watch-resume'.
 *
 * Deterministic: its randomness is the simulation's Prng, its time the
 * simulated clock. Imports only the shared codec, the SDK's WatchPosition
 * and the simulation's parts.
 */
import { WatchPosition } from '../../client/watch-position.js'
import type { Prng } from '../../server/core/prng.js'
import { JuteReader, JuteWriter } from '../../shared/jute.js'
import {
  AddWatchMode,
  ConclaveEventType,
  ConclaveOpCode,
  EventType,
  OpCode,
  Xid,
} from '../../shared/opcodes.js'
import {
  ConclaveFeature,
  decodeConnectResponse,
  encodeConnectRequest,
  encodeRequest,
  type Request,
  readReplyHeader,
  readWatcherEvent,
} from '../../shared/records.js'
import type { SimLink } from './sim-link.js'
import type { SimNode } from './sim-node.js'
import type { TreeStateMachine } from './tree-state-machine.js'

const TYPE_OF: Record<string, number> = {
  created: EventType.nodeCreated,
  deleted: EventType.nodeDeleted,
  dataChanged: EventType.nodeDataChanged,
}

interface TruthEvent {
  zxid: number
  type: number
  path: string
}

interface Watcher {
  readonly index: number
  link: SimLink | undefined
  handshake: boolean
  session: bigint | undefined
  password: Uint8Array
  position: WatchPosition
  /** The watch is registered (the addWatch, or a resume, was answered on some connection). */
  registered: boolean
  /** Index in the truth of the next event this watcher must get; -1 while not registered. */
  cursor: number
  /** The addWatch reply's zxid is still to come (the watch starts after it). */
  adding: boolean
  /** Server this watcher is connected to (or was last). */
  server: number
  connectAt: number
  lastPingAt: number
  /** The highest reply zxid seen (the ConnectRequest's lastZxidSeen, with the position's). */
  seenZxid: number
}

export interface WatchResumerStats {
  watchEvents: number
  watchResumes: number
  watchResyncs: number
}

export class WatchResumer {
  private readonly watchers: Watcher[] = []
  private readonly truth: TruthEvent[] = []
  private maxAppliedZxid = 0
  readonly stats: WatchResumerStats = { watchEvents: 0, watchResumes: 0, watchResyncs: 0 }

  constructor(
    private readonly nodes: readonly SimNode[],
    private readonly prng: Prng,
    count: number,
    private readonly sessionTimeoutMs: number,
    private readonly clock: () => number,
    private readonly fail: (invariant: string, detail: string) => void,
    private readonly trace: (line: string) => void,
  ) {
    for (let i = 0; i < count; i++)
      this.watchers.push({
        index: i,
        link: undefined,
        handshake: false,
        session: undefined,
        password: new Uint8Array(16),
        position: new WatchPosition(),
        registered: false,
        cursor: -1,
        adding: false,
        server: 0,
        connectAt: 0,
        lastPingAt: 0,
        seenZxid: 0,
      })
  }

  /** Called every few ms: connects what is not connected, pings, gives up a stuck handshake. */
  tick(): void {
    const now = this.clock()
    for (const w of this.watchers) {
      if (w.link === undefined) {
        if (this.prng.chance(0.2)) this.connect(w)
        continue
      }
      if (w.handshake) {
        if (now - w.connectAt > this.sessionTimeoutMs) this.drop(w, 'connect timed out')
        continue
      }
      if (now - w.lastPingAt >= this.sessionTimeoutMs / 3) {
        w.lastPingAt = now
        this.send(w, Xid.ping, { op: OpCode.ping })
      }
    }
  }

  /** A Txn applied somewhere for the first time: its changes join the truth. */
  onCommitted(n: SimNode, zxid: number): void {
    if (zxid <= this.maxAppliedZxid) return
    this.maxAppliedZxid = zxid
    const out = (n.sm as TreeStateMachine).lastOutcome
    if (out === undefined) return
    for (const c of out.changes) {
      const type = TYPE_OF[c.type]
      if (type !== undefined) this.truth.push({ zxid, type, path: c.path })
    }
  }

  private connect(w: Watcher): void {
    const serving = this.nodes.filter((n) => n.up && !n.paused && n.server && n.peer.status().serving)
    if (serving.length === 0) return
    const elsewhere = serving.filter((n) => n.id !== w.server)
    const n = this.prng.pick(w.session !== undefined && elsewhere.length > 0 ? elsewhere : serving)
    const link = n.openLink(
      { packet: (p) => this.onPacket(w, link, p), closed: (why) => this.onClosed(w, link, why) },
      this.prng.fork(`watcher-${w.index}`),
    )
    if (link === undefined) return
    w.link = link
    w.handshake = true
    w.server = n.id
    w.connectAt = this.clock()
    w.lastPingAt = w.connectAt
    const wr = new JuteWriter(64)
    encodeConnectRequest(wr, {
      protocolVersion: 0,
      lastZxidSeen: BigInt(Math.max(w.seenZxid, w.position.zxid)),
      timeOut: this.sessionTimeoutMs,
      sessionId: w.session ?? 0n,
      passwd: w.password,
      readOnly: false,
      features: ConclaveFeature.resumableWatches,
    })
    link.write(wr.finish())
  }

  private send(w: Watcher, xid: number, req: Request): void {
    const wr = new JuteWriter(64)
    encodeRequest(wr, xid, req)
    w.link!.write(wr.finish())
  }

  private onClosed(w: Watcher, link: SimLink | undefined, why: string): void {
    if (w.link !== link || link === undefined) return
    this.drop(w, `connection closed: ${why}`)
  }

  private drop(w: Watcher, why: string): void {
    this.trace(`watcher ${w.index} loses its connection to n${w.server}: ${why}`)
    w.link?.hangUp()
    w.link = undefined
    w.handshake = false
    // An addWatch never answered is sent again on the next connection; the watch starts after that reply.
    if (w.adding) w.registered = false
    w.adding = false
  }

  /** The session is gone: the next connection makes a new one, and the watch starts over. */
  private startOver(w: Watcher, why: string): void {
    this.trace(`watcher ${w.index} starts over: ${why}`)
    w.link?.hangUp()
    w.link = undefined
    w.handshake = false
    w.session = undefined
    w.password = new Uint8Array(16)
    w.position = new WatchPosition()
    w.registered = false
    w.adding = false
    w.cursor = -1
  }

  private onPacket(w: Watcher, link: SimLink | undefined, packet: Uint8Array): void {
    if (w.link !== link || link === undefined) return
    if (w.handshake) return this.onConnectResponse(w, packet)
    const r = new JuteReader(packet)
    const h = readReplyHeader(r)
    const zxid = Number(h.zxid)
    if (h.xid === Xid.ping) return
    if (h.xid === Xid.notification) return this.onEvent(w, r, zxid)
    if (h.err !== 0) {
      // A resume refused (a lagging server) or an addWatch that failed: try another connection.
      this.drop(w, `request ${h.xid} answered error ${h.err}`)
      return
    }
    if (zxid > 0) {
      w.seenZxid = Math.max(w.seenZxid, zxid)
      w.position.reply(zxid)
    }
    if (h.xid === 1 && w.adding) {
      // The addWatch's reply: the watch gets every change after this zxid.
      w.adding = false
      w.registered = true
      w.cursor = this.firstAfter(zxid)
      this.trace(`watcher ${w.index} watches / from 0x${zxid.toString(16)} on n${w.server}`)
    }
  }

  private onEvent(w: Watcher, r: JuteReader, zxid: number): void {
    const ev = readWatcherEvent(r)
    if (ev.type === ConclaveEventType.watchesCompacted) {
      this.stats.watchResyncs++
      w.position.compacted(zxid)
      w.cursor = this.firstAfter(zxid)
      this.trace(`watcher ${w.index} told compacted on n${w.server}: resync from 0x${zxid.toString(16)}`)
      return
    }
    if (!w.position.event(zxid, ev.type, ev.path)) return
    if (!w.registered || w.cursor < 0) {
      this.fail(
        'watch-resume',
        `watcher ${w.index}: event ${ev.type} ${ev.path} at 0x${zxid.toString(16)} before its watch was registered`,
      )
      return
    }
    this.stats.watchEvents++
    const want = this.truth[w.cursor]
    if (want === undefined || want.zxid !== zxid || want.type !== ev.type || want.path !== ev.path) {
      const got = `${ev.type} ${ev.path} at 0x${zxid.toString(16)}`
      const exp = want === undefined ? 'nothing' : `${want.type} ${want.path} at 0x${want.zxid.toString(16)}`
      this.fail('watch-resume', `watcher ${w.index} on n${w.server}: got ${got}, expected ${exp}`)
      return
    }
    w.cursor++
  }

  private onConnectResponse(w: Watcher, packet: Uint8Array): void {
    const res = decodeConnectResponse(packet)
    const resumed = w.session !== undefined
    if (res.timeOut <= 0 || (resumed && res.sessionId !== w.session))
      return this.startOver(w, resumed ? 'session expired while away' : 'session refused')
    w.handshake = false
    w.session = res.sessionId
    w.password = res.passwd.slice()
    if (((res.features ?? 0) & ConclaveFeature.resumableWatches) === 0) {
      this.fail('watch-resume', `n${w.server} did not grant resumableWatches`)
      return
    }
    if (!w.registered) {
      w.adding = true
      this.send(w, 1, { op: OpCode.addWatch, path: '/', mode: AddWatchMode.persistentRecursive })
      return
    }
    this.stats.watchResumes++
    const from = w.position.resumeFrom()
    this.trace(`watcher ${w.index} resumes on n${w.server} from 0x${from.toString(16)}`)
    this.send(w, Xid.setWatches, {
      op: ConclaveOpCode.resumeWatches,
      relativeZxid: from,
      dataWatches: [],
      existWatches: [],
      childWatches: [],
      persistentWatches: [],
      persistentRecursiveWatches: ['/'],
    })
  }

  /** The index of the first truth event with a zxid above `zxid`. */
  private firstAfter(zxid: number): number {
    let lo = 0
    let hi = this.truth.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.truth[mid]!.zxid <= zxid) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
