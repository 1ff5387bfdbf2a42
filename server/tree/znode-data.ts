/**
 * How a znode's bytes are held in memory. Small data (the common case) is
 * kept as a one-byte ("latin1") JS string: one heap object of 16 bytes plus
 * the data, where a Uint8Array costs a JS object, an ArrayBuffer and an
 * off-heap backing store (~250 bytes of overhead). Large data keeps a
 * private Uint8Array copy, where that overhead no longer matters.
 *
 * Invariants: fromBytes never aliases its input (a decoded Txn's buffer is
 * not retained); toBytes(fromBytes(b)) equals b byte for byte; every
 * string built here has only code units < 256.
 * Must not import anything but shared/.
 */

export type StoredData = string | Uint8Array

/** Data up to this many bytes is stored as a one-byte string. */
export const INLINE_DATA_BYTES_MAX = 4096

export function fromBytes(bytes: Uint8Array): StoredData {
  const n = bytes.length
  if (n === 0) return ''
  if (n > INLINE_DATA_BYTES_MAX) return bytes.slice()
  // One call with at most INLINE_DATA_BYTES_MAX arguments, far below engine limits;
  // a single call yields one flat one-byte string (no rope to flatten later).
  return String.fromCharCode.apply(null, bytes as unknown as number[])
}

/** The bytes of stored data. A stored Uint8Array is returned as is: callers must not mutate it. */
export function toBytes(data: StoredData): Uint8Array {
  if (typeof data !== 'string') return data
  const n = data.length
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = data.charCodeAt(i)
  return out
}

export function dataLength(data: StoredData): number {
  return data.length
}
