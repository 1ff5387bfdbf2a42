/**
 * ZabScenario: the commands of the ZAB datadriven files (testdata/*.txt),
 * run over the unit Harness (the shipped ZabDriver with synchronous ports),
 * and the deterministic rendering of what each command caused.
 *
 * Output of a command: its own result lines (a zxid proposed, a table),
 * then every event in the order it happened:
 *   3->1 PROPOSAL 0x100000001 "a"        a message sent (queued on the link)
 *   1 durable log+ 0x100000001           a write durable at once
 *   2 write currentEpoch=2 (held)        a write waiting for `flush 2`
 *   2 durable currentEpoch=2             that write made durable by flush
 *   1 commit 0x100000001 0x100000002     entries applied, in order
 *   1 restore snapshot 0x100000005       a SNAP installed
 *   3 role LEADING epoch=1 serving       a role, epoch, leader or serving change
 *   3 LOOKING: no quorum within syncLimit  why a server went LOOKING
 *   3->1 PING round=4 (lost)             sent on a muted link: never delivered
 * Heartbeat PINGs are summarised in one line per command (`pings: 12 (4 lost)`)
 * unless the command says `pings=show`.
 *
 * Commands (ids are server ids; `pings=show` on any command lists PINGs):
 *   new voters=1,2,3 [observers=4] [init-limit=N] [sync-limit=N] [commit-log=N]
 *       [snap-chunk=BYTES] [history=on] [history-max=N]
 *     then optional input lines `<id>: accepted=E current=E log=1.1,1.2`
 *     (entries as epoch.counter); a new ensemble, all linked
 *   settle [among=1,2] [max=TICKS]   tick and deliver until a leader is established
 *                                     and every live server (or those named) serves
 *   deliver [n=N]                     deliver every queued message, or the next N
 *   tick [n=N]                        N ticks at every live server, delivering after each
 *   propose text=T [at=ID]            propose T at the leader (or at ID)
 *   replay from=A to=B type=T [zxid=Z] step B again with the last such message A sent
 *   hold ID… / flush ID…              withhold / make durable a server's writes
 *   cut A B / heal [A B] / isolate ID / partition 1,2,3 4,5   break links (heal: all)
 *   mute A B / unmute A B             lose messages on a link that stays up
 *   crash ID / restart ID             lose pending writes and state / rebuild from disk
 *   status / state / queued           per-server role and zxids / applied digest / in flight
 *   log ID / disk ID                  in-memory log / durable epochs, snapshot, log, pending
 *
 * Invariants: the output depends only on the commands (the harness is
 * deterministic: one FIFO queue, seeded Prng per peer, no clock); it never
 * contains a blank line (nothing at all prints `ok`).
 *
 * Imports the harness, the ZAB index and the datadriven command type only.
 */
import {
  LOOKING_TRACE,
  type LogEntry,
  type PeerMessage,
  type PersistedState,
  type RoleEvent,
} from '../../../server/zab/index.js'
import type { Command } from './datadriven.js'
import {
  type DiskWrite,
  entry,
  Harness,
  type HarnessEvent,
  type HarnessOptions,
  type Sent,
} from './harness.js'

/** A scenario file that says something the runner does not understand: fails the test, never a golden. */
export class UsageError extends Error {
  override name = 'UsageError'
}

const dec = new TextDecoder()
const enc = new TextEncoder()

export function hex(z: number): string {
  return `0x${z.toString(16)}`
}

function text(data: Uint8Array): string {
  return JSON.stringify(dec.decode(data))
}

/** One message, compactly: its ZAB name, then its fields, zxids in hex. */
export function renderMessage(m: PeerMessage): string {
  switch (m.type) {
    case 'NOTIFICATION':
      return `NOTIFICATION ${m.state} vote=${m.leader} peerEpoch=${m.peerEpoch} zxid=${hex(m.zxid)} round=${m.round}`
    case 'FOLLOWERINFO':
    case 'OBSERVERINFO':
      return `${m.type} acceptedEpoch=${m.acceptedEpoch}`
    case 'LEADERINFO':
      return `LEADERINFO newEpoch=${m.newEpoch}`
    case 'ACKEPOCH':
      return `ACKEPOCH epoch=${m.epoch} currentEpoch=${m.currentEpoch} lastZxid=${hex(m.lastZxid)}${m.reAck ? ' reAck' : ''}`
    case 'DIFF':
      return `DIFF lastZxid=${hex(m.lastZxid)}`
    case 'TRUNC':
    case 'SNAP':
    case 'COMMIT':
      return `${m.type} ${hex(m.zxid)}`
    case 'SNAPCHUNK':
      return `SNAPCHUNK #${m.index} ${m.data.length}B`
    case 'SNAPEND':
      return `SNAPEND chunks=${m.chunkCount} endZxid=${hex(m.endZxid)}`
    case 'PROPOSAL':
    case 'INFORM':
      return `${m.type} ${hex(m.zxid)} ${text(m.data)}`
    case 'NEWLEADER':
      return `NEWLEADER epoch=${m.epoch}`
    case 'ACK':
      return m.newLeaderEpoch > 0
        ? `ACK NEWLEADER epoch=${m.newLeaderEpoch} ${hex(m.zxid)}`
        : `ACK ${hex(m.zxid)}`
    case 'UPTODATE':
      return `UPTODATE commit=${hex(m.commitZxid)}`
    case 'PING':
      return `PING round=${m.round}`
    case 'SYNC':
      return `SYNC id=${m.requestId}`
    case 'SYNCREPLY':
      return `SYNCREPLY id=${m.requestId} zxid=${hex(m.zxid)}`
    case 'APP':
      return `APP ${m.payload.length}B`
  }
}

function zxids(list: readonly number[]): string {
  if (list.length <= 6) return list.map(hex).join(' ')
  return `${hex(list[0]!)}..${hex(list[list.length - 1]!)} (${list.length})`
}

export function renderWrite(w: DiskWrite): string {
  switch (w.kind) {
    case 'entries':
      return `log+ ${zxids(w.zxids)}`
    case 'truncate':
      return `truncate after ${hex(w.zxid)}`
    case 'snapshot': {
      const end = w.endZxid === undefined || w.endZxid === w.zxid ? '' : ` end=${hex(w.endZxid)}`
      return `snapshot ${hex(w.zxid)}${end} (${w.chunks} chunks)`
    }
    case 'staticConfig':
      return `static config ${JSON.stringify(w.text)}`
    case 'meta':
      return [
        w.acceptedEpoch === undefined ? '' : `acceptedEpoch=${w.acceptedEpoch}`,
        w.currentEpoch === undefined ? '' : `currentEpoch=${w.currentEpoch}`,
      ]
        .filter((s) => s !== '')
        .join(' ')
  }
}

export function renderRole(r: RoleEvent): string {
  const leader = r.role === 'LEADING' || r.leaderId === undefined ? '' : ` leader=${r.leaderId}`
  return `${r.role} epoch=${r.epoch}${leader}${r.serving ? ' serving' : ''}`
}

/** What the harness reports, and the deliveries a scenario made one by one. */
export type ScenarioEvent = HarnessEvent | { kind: 'delivered'; sent: Sent }

/** Events in order; consecutive commits of one peer share a line; PINGs counted unless shown. */
export function renderEvents(events: readonly ScenarioEvent[], showPings: boolean): string[] {
  const out: string[] = []
  let commits: { id: number; zxids: number[] } | undefined
  let pings = 0
  let pingsLost = 0
  const endCommits = () => {
    if (commits !== undefined) out.push(`${commits.id} commit ${zxids(commits.zxids)}`)
    commits = undefined
  }
  for (const ev of events) {
    if (ev.kind === 'commit' && commits?.id === ev.id) {
      commits.zxids.push(ev.entry.zxid)
      continue
    }
    if (ev.kind === 'sent' && ev.sent.msg.type === 'PING' && !showPings) {
      pings++
      if (ev.lost) pingsLost++
      continue
    }
    endCommits()
    switch (ev.kind) {
      case 'sent':
        out.push(`${ev.sent.from}->${ev.sent.to} ${renderMessage(ev.sent.msg)}${ev.lost ? ' (lost)' : ''}`)
        break
      case 'trace':
        // Only the reasons for going LOOKING: the rest of the trace is what the other lines show.
        if (ev.event.startsWith(LOOKING_TRACE))
          out.push(`${ev.id} LOOKING: ${ev.event.slice(LOOKING_TRACE.length)}`)
        break
      case 'delivered':
        out.push(`delivered ${ev.sent.from}->${ev.sent.to} ${renderMessage(ev.sent.msg)}`)
        break
      case 'write':
        out.push(
          `${ev.id} ${ev.held ? 'write' : 'durable'} ${renderWrite(ev.write)}${ev.held ? ' (held)' : ''}`,
        )
        break
      case 'durable':
        out.push(`${ev.id} durable ${renderWrite(ev.write)}`)
        break
      case 'commit':
        commits = { id: ev.id, zxids: [ev.entry.zxid] }
        break
      case 'restore':
        out.push(`${ev.id} restore snapshot ${hex(ev.snapshot.zxid)}`)
        break
      case 'role':
        out.push(`${ev.id} role ${renderRole(ev.role)}`)
        break
    }
  }
  endCommits()
  if (pings > 0) out.push(`pings: ${pings}${pingsLost > 0 ? ` (${pingsLost} lost)` : ''}`)
  return out
}

/** `1.2` -> the entry of epoch 1, counter 2. */
function parseEntry(spec: string): LogEntry {
  const m = /^(\d+)\.(\d+)$/.exec(spec)
  if (m === null) throw new UsageError(`bad entry ${spec} (want epoch.counter)`)
  return entry(Number(m[1]), Number(m[2]))
}

function parseIds(list: string): number[] {
  return list.split(',').map((s) => {
    const n = Number(s)
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`bad server id ${s}`)
    return n
  })
}

function parseCount(s: string | undefined, dflt: number): number {
  if (s === undefined) return dflt
  const n = Number(s)
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`bad count ${s}`)
  return n
}

/** `2: accepted=2 current=2 log=1.1,1.2` -> peer 2's persisted state. */
function parsePersisted(line: string): [number, PersistedState] {
  const m = /^(\d+):(.*)$/.exec(line.trim())
  if (m === null)
    throw new UsageError(`bad persisted line "${line}" (want "<id>: accepted=E current=E log=…")`)
  const fields = new Map(
    m[2]!
      .trim()
      .split(/\s+/)
      .map((w) => w.split('=') as [string, string]),
  )
  for (const k of fields.keys())
    if (!['accepted', 'current', 'log'].includes(k)) throw new UsageError(`bad key ${k}`)
  const current = parseCount(fields.get('current'), 0)
  return [
    Number(m[1]),
    {
      acceptedEpoch: parseCount(fields.get('accepted'), current),
      currentEpoch: current,
      snapshotZxid: 0,
      log: (fields.get('log') ?? '')
        .split(',')
        .filter((s) => s !== '')
        .map(parseEntry),
    },
  ]
}

/** The keys each command accepts (besides `pings=show`, which any takes), and how many positional words. */
const COMMANDS: Record<string, { keys: string[]; positional: [number, number] }> = {
  new: {
    keys: [
      'voters',
      'observers',
      'init-limit',
      'sync-limit',
      'commit-log',
      'snap-chunk',
      'history',
      'history-max',
    ],
    positional: [0, 0],
  },
  settle: { keys: ['max', 'among'], positional: [0, 0] },
  deliver: { keys: ['n'], positional: [0, 0] },
  tick: { keys: ['n'], positional: [0, 0] },
  propose: { keys: ['text', 'at'], positional: [0, 0] },
  hold: { keys: [], positional: [1, 9] },
  flush: { keys: [], positional: [1, 9] },
  cut: { keys: [], positional: [2, 2] },
  mute: { keys: [], positional: [2, 2] },
  unmute: { keys: [], positional: [2, 2] },
  heal: { keys: [], positional: [0, 2] },
  partition: { keys: [], positional: [2, 2] },
  isolate: { keys: [], positional: [1, 1] },
  crash: { keys: [], positional: [1, 1] },
  restart: { keys: [], positional: [1, 1] },
  replay: { keys: ['from', 'to', 'type', 'zxid'], positional: [0, 0] },
  status: { keys: [], positional: [0, 0] },
  log: { keys: [], positional: [1, 1] },
  disk: { keys: [], positional: [1, 1] },
  state: { keys: [], positional: [0, 0] },
  queued: { keys: [], positional: [0, 0] },
}

export class ZabScenario {
  private harness: Harness | undefined
  private events: ScenarioEvent[] = []

  /**
   * Runs one command; its output (never empty: `ok` for nothing). What the
   * ensemble refuses (a condition never reached) prints as `error: …`; a
   * command the runner does not understand throws UsageError.
   */
  run(cmd: Command): string {
    this.events = []
    let lines: string[]
    try {
      this.check(cmd)
      lines = this.dispatch(cmd)
    } catch (err) {
      if (err instanceof UsageError) throw err
      lines = [`error: ${(err as Error).message}`]
    }
    const out = [...lines, ...renderEvents(this.events, cmd.args.get('pings') === 'show')]
    return out.length === 0 ? 'ok' : out.join('\n')
  }

  private check(cmd: Command): void {
    const spec = COMMANDS[cmd.name]
    if (spec === undefined) throw new UsageError(`unknown command ${cmd.name}`)
    for (const k of cmd.args.keys())
      if (k !== 'pings' && !spec.keys.includes(k)) throw new UsageError(`${cmd.name}: unknown key ${k}`)
    const [lo, hi] = spec.positional
    if (cmd.positional.length < lo || cmd.positional.length > hi)
      throw new UsageError(`${cmd.name}: wants ${lo === hi ? lo : `${lo} to ${hi}`} positional arguments`)
    if (cmd.name !== 'new' && cmd.input.length > 0) throw new UsageError(`${cmd.name}: takes no input lines`)
  }

  private get h(): Harness {
    if (this.harness === undefined) throw new UsageError('no ensemble yet (start with new)')
    return this.harness
  }

  private members(list: string): number[] {
    const ids = parseIds(list)
    for (const id of ids) if (!this.h.members.includes(id)) throw new UsageError(`no server ${id}`)
    return ids
  }

  private ids(cmd: Command): number[] {
    const ids = cmd.positional.map(Number)
    for (const id of ids) if (!this.h.members.includes(id)) throw new UsageError(`no server ${id}`)
    return ids
  }

  private dispatch(cmd: Command): string[] {
    const a = cmd.args
    switch (cmd.name) {
      case 'new':
        return this.create(cmd)
      case 'settle':
        return this.settle(a.get('among'), parseCount(a.get('max'), 200))
      case 'deliver':
        return this.deliver(a.get('n'))
      case 'tick':
        this.h.tick(parseCount(a.get('n'), 1))
        return []
      case 'propose':
        return this.propose(a.get('text') ?? '', a.get('at'))
      case 'replay':
        return this.replay(cmd)
      case 'status':
        return this.h.members.map((id) => this.statusLine(id))
      case 'log':
        return this.log(this.ids(cmd)[0]!)
      case 'disk':
        return this.disk(this.ids(cmd)[0]!)
      case 'state':
        return this.state()
      case 'queued':
        return this.h.queued().map((s) => `${s.from}->${s.to} ${renderMessage(s.msg)}`)
      case 'crash':
        return this.crash(this.ids(cmd)[0]!)
      case 'partition':
        return this.partition(cmd.positional.map((side) => this.members(side)) as [number[], number[]])
      case 'heal':
        return this.heal(this.ids(cmd))
      default:
        return this.control(cmd)
    }
  }

  /** Commands that only act: their output is what they caused. */
  private control(cmd: Command): string[] {
    const ids = this.ids(cmd)
    const [x, y] = ids as [number, number]
    switch (cmd.name) {
      case 'hold':
        for (const id of ids) this.h.hold(id)
        return []
      case 'flush':
        for (const id of ids) this.h.flush(id)
        return []
      case 'cut':
        this.h.cut(x, y)
        return []
      case 'mute':
        this.h.mute(x, y)
        return []
      case 'unmute':
        this.h.unmute(x, y)
        return []
      case 'isolate':
        this.h.isolate(x)
        return []
      case 'restart':
        this.h.restart(x)
        return []
    }
    throw new UsageError(`unknown command ${cmd.name}`)
  }

  private create(cmd: Command): string[] {
    const a = cmd.args
    const num = (k: string) => (a.has(k) ? parseCount(a.get(k), 0) : undefined)
    const persisted: Record<number, PersistedState> = {}
    for (const line of cmd.input) {
      const [id, p] = parsePersisted(line)
      persisted[id] = p
    }
    const history = a.get('history') ?? 'off'
    if (history !== 'on' && history !== 'off') throw new UsageError(`history=${history}: on or off`)
    const opts: HarnessOptions = {
      voters: parseIds(a.get('voters') ?? '1,2,3'),
      observers: a.has('observers') ? parseIds(a.get('observers')!) : [],
      persisted,
      history: history === 'on',
      onEvent: (ev) => this.events.push(ev),
    }
    const limits: [string, keyof HarnessOptions][] = [
      ['init-limit', 'initLimitTicks'],
      ['sync-limit', 'syncLimitTicks'],
      ['commit-log', 'commitLogCount'],
      ['snap-chunk', 'snapChunkBytesMax'],
      ['history-max', 'historyDiffEntriesMax'],
    ]
    for (const [key, opt] of limits) if (num(key) !== undefined) Object.assign(opts, { [opt]: num(key) })
    const members = [...opts.voters, ...(opts.observers ?? [])]
    for (const id of Object.keys(persisted).map(Number))
      if (!members.includes(id)) throw new UsageError(`state for ${id}, not a member`)
    this.harness = new Harness(opts)
    return []
  }

  /** All queued messages (and what they cause), or the next `n`, each named as it is delivered. */
  private deliver(n: string | undefined): string[] {
    if (n === undefined) {
      this.h.deliver()
      return []
    }
    for (let i = parseCount(n, 1); i > 0; i--) {
      const at = this.events.length
      const m = this.h.deliverOne()
      if (m === undefined) break
      this.events.splice(at, 0, { kind: 'delivered', sent: m })
    }
    return []
  }

  private propose(data: string, at: string | undefined): string[] {
    if (at !== undefined && !this.h.members.includes(Number(at))) throw new UsageError(`no server ${at}`)
    const id = at === undefined ? this.h.leader() : Number(at)
    if (id === undefined) return ['refused: no leader']
    const out = this.h.step(id, { kind: 'propose', data: enc.encode(data) })
    const r = out?.proposed
    if (r === undefined) return [`refused: ${id} is down`]
    return [r.ok ? `proposed ${hex(r.zxid)} at ${id}` : `refused at ${id}: ${r.reason}`]
  }

  /** Steps the last message sent from -> to of that type (and zxid) again: a duplicate delivery. */
  private replay(cmd: Command): string[] {
    const a = cmd.args
    const from = Number(a.get('from'))
    const to = Number(a.get('to'))
    const zxid = a.has('zxid') ? Number(a.get('zxid')) : undefined
    const m = [...this.h.sent]
      .reverse()
      .find(
        (s) =>
          s.from === from &&
          s.to === to &&
          s.msg.type === a.get('type') &&
          (zxid === undefined || ('zxid' in s.msg && s.msg.zxid === zxid)),
      )
    if (m === undefined) throw new UsageError('replay: no such message was sent')
    this.events.push({ kind: 'delivered', sent: m })
    this.h.step(to, { kind: 'message', from, msg: m.msg })
    return []
  }

  /** Cuts every link between the two sides. */
  private partition([left, right]: [number[], number[]]): string[] {
    for (const a of left) for (const b of right) this.h.cut(a, b)
    return []
  }

  /** Heals one link, or with no ids every cut link. */
  private heal(ids: number[]): string[] {
    if (ids.length === 1) throw new UsageError('heal: wants two server ids, or none to heal every link')
    if (ids.length === 2) {
      this.h.heal(ids[0]!, ids[1]!)
      return []
    }
    for (const a of this.h.members) {
      for (const b of this.h.members) if (a < b) this.h.heal(a, b)
    }
    return []
  }

  /**
   * Ticks until one of `among` (default: every live server) is an
   * established leader and all of them serve; names the leader.
   */
  private settle(among: string | undefined, maxTicks: number): string[] {
    if (among === undefined) return [`leader ${this.h.settle(maxTicks)}`]
    const ids = parseIds(among)
    const leader = () => ids.find((id) => this.h.role(id)?.role === 'LEADING' && this.h.role(id)?.serving)
    this.h.until(() => leader() !== undefined && ids.every((id) => this.h.role(id)?.serving), maxTicks)
    return [`leader ${leader()}`]
  }

  private crash(id: number): string[] {
    const lost = this.h.pendingWrites(id)
    this.h.crash(id)
    return lost.map((w) => `${id} lost ${renderWrite(w)}`)
  }

  private statusLine(id: number): string {
    if (this.h.down.has(id)) return `${id} down`
    const s = this.h.peers.get(id)!.status()
    const role = renderRole({ role: s.role, epoch: s.epoch, leaderId: s.leaderId, serving: s.serving })
    const errors = s.protocolErrors > 0 ? ` protocolErrors=${s.protocolErrors}` : ''
    return (
      `${id} ${role} accepted=${s.acceptedEpoch} current=${s.currentEpoch} last=${hex(s.lastZxid)} ` +
      `commit=${hex(s.commitZxid)}${this.h.isHeld(id) ? ' held' : ''}${errors}`
    )
  }

  /** The peer's in-memory log, as the core holds it. */
  private log(id: number): string[] {
    if (this.h.down.has(id)) return [`${id} down`]
    const s = this.h.peers.get(id)!.status()
    const log = this.h.peers.get(id)!.log
    const entries = log.slice(log.baseZxid, log.lastZxid)
    return [
      `base=${hex(log.baseZxid)} commit=${hex(s.commitZxid)} durable=${hex(s.durableZxid)}`,
      ...entries.map((e) => `${hex(e.zxid)} ${text(e.data)}`),
    ]
  }

  /** What survives a crash: the durable epochs, snapshot and log; then writes still held. */
  private disk(id: number): string[] {
    const d = this.h.disks.get(id)!
    const snap = d.snapshot === undefined ? 'none' : hex(d.snapshot.zxid)
    return [
      `accepted=${d.acceptedEpoch} current=${d.currentEpoch} snapshot=${snap}`,
      `log ${d.log.length === 0 ? '(empty)' : d.log.map((e) => hex(e.zxid)).join(' ')}`,
      ...this.h.pendingWrites(id).map((w) => `pending ${renderWrite(w)}`),
    ]
  }

  /** Each live server's applied state: last zxid applied and the state digest. */
  private state(): string[] {
    return this.h.members.map((id) => {
      if (this.h.down.has(id)) return `${id} down`
      const sm = this.h.sms.get(id)!
      return `${id} applied=${hex(sm.appliedZxid)} digest=${sm.digest()}`
    })
  }
}
