/**
 * Session ids are 64-bit; on the wire a long, in memory a bigint, in the SDK
 * a string '0x' + lowercase hex without leading zeros (as ZooKeeper logs it).
 * Imports nothing.
 */

export type SessionId = bigint

export function formatSessionId(id: bigint): string {
  return `0x${BigInt.asUintN(64, id).toString(16)}`
}

/** Parses '0x…' (or decimal) into the signed 64-bit value used on the wire. */
export function parseSessionId(text: string): bigint {
  return BigInt.asIntN(64, BigInt(text))
}
