/**
 * zxid helpers. A zxid is epoch * 2**32 + counter, kept as a JS safe integer
 * (so epochs stay below 2**21). Imports nothing of ours but assert.
 */
import { fail } from './assert.js'

export type Zxid = number

export const ZXID_EPOCH_MAX = 2 ** 21 - 1
export const ZXID_COUNTER_MAX = 2 ** 32 - 1

export function makeZxid(epoch: number, counter: number): Zxid {
  if (!(Number.isInteger(epoch) && epoch >= 0 && epoch <= ZXID_EPOCH_MAX)) fail(`bad epoch ${epoch}`)
  if (!(Number.isInteger(counter) && counter >= 0 && counter <= ZXID_COUNTER_MAX))
    fail(`bad counter ${counter}`)
  return epoch * 2 ** 32 + counter
}

export function zxidEpoch(zxid: Zxid): number {
  return Math.floor(zxid / 2 ** 32)
}

export function zxidCounter(zxid: Zxid): number {
  return zxid % 2 ** 32
}

export function formatZxid(zxid: Zxid): string {
  return `0x${zxid.toString(16)}`
}

/** Converts a wire long to a zxid; undefined if it is not a valid (non-negative, safe) zxid. */
export function zxidFromBigInt(v: bigint): Zxid | undefined {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) return undefined
  return Number(v)
}
