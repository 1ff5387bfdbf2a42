/**
 * Stat, as clients see it, and the wire form. The wire form carries the
 * ephemeral owner as a 64-bit bigint; the SDK form as '0x…' text.
 * Imports nothing of ours but session-id.
 */
import { formatSessionId } from './session-id.js'

export interface Stat {
  czxid: number
  mzxid: number
  pzxid: number
  ctime: number
  mtime: number
  version: number
  cversion: number
  aversion: number
  /** The owner's sessionId, '0x0' when not ephemeral. */
  ephemeralOwner: string
  dataLength: number
  numChildren: number
}

/** Stat record as on the wire (jute field order is czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner, dataLength, numChildren, pzxid). */
export interface WireStat {
  czxid: number
  mzxid: number
  ctime: number
  mtime: number
  version: number
  cversion: number
  aversion: number
  ephemeralOwner: bigint
  dataLength: number
  numChildren: number
  pzxid: number
}

export function statFromWire(w: WireStat): Stat {
  return {
    czxid: w.czxid,
    mzxid: w.mzxid,
    pzxid: w.pzxid,
    ctime: w.ctime,
    mtime: w.mtime,
    version: w.version,
    cversion: w.cversion,
    aversion: w.aversion,
    ephemeralOwner: formatSessionId(w.ephemeralOwner),
    dataLength: w.dataLength,
    numChildren: w.numChildren,
  }
}
