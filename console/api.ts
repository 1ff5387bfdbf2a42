/**
 * The JSON the console server (server/console/console-server.ts) answers and the
 * console app (console/app) reads: what the members say about themselves,
 * from their admin port's JSON when the console was given it, else from the
 * four-letter words on their client port (a browser cannot speak raw TCP).
 * Types only.
 */

/** Where a member's report came from. */
export type ReportSource = 'admin' | '4lw'

/** GET /api/ensemble: one entry per member the console was started with. */
export interface MemberReport {
  /** host:port of the member's client port. */
  address: string
  source: ReportSource | undefined
  reachable: boolean
  error?: string
  /** srvr's fields (Mode, Zxid, Epoch, Connections, Sessions, Node count, Watches, Leader, …). */
  srvr: Record<string, string | number>
  /** mntr's keys (conclave_packets_received, conclave_watch_count, …); empty when mntr is refused. */
  mntr: Record<string, string | number>
  /** Epoch ms of the answer. */
  at: number
}

export interface EnsembleReport {
  members: MemberReport[]
  at: number
}

/** GET /api/sessions: the sessions each member knows, their ephemerals and connections. */
export interface MemberSessions {
  address: string
  source: ReportSource | undefined
  error?: string
  /** Session id (0x…) → timeout in ms (undefined where the format does not say). */
  sessions: Record<string, number | undefined>
  /** Session id → its ephemeral paths. */
  ephemerals: Record<string, string[]>
  /** The member's client connections with a session: which session, from where. */
  connections: { session: string; remote: string }[]
}

export interface SessionsReport {
  members: MemberSessions[]
  at: number
}

/** GET /api/origin: whether each member accepts a WebSocket from this console's origin. */
export interface OriginReport {
  origin: string
  members: { address: string; allowed: boolean | undefined; status?: number; error?: string }[]
  /** The server flag that allows it. */
  flag: string
}
