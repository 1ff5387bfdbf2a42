/**
 * Session passwords: 16 bytes of HMAC-SHA256(ensembleSecret, sessionId).
 * ZooKeeper derives the password from the session id alone (anyone who
 * knows the id can compute it); ours needs the ensemble's secret, which
 * every server of the ensemble has and no client does.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export const SESSION_PASSWORD_BYTES = 16

export function sessionPassword(secret: string, sessionId: bigint): Uint8Array {
  const id = Buffer.alloc(8)
  id.writeBigInt64BE(BigInt.asIntN(64, sessionId))
  return new Uint8Array(createHmac('sha256', secret).update(id).digest().subarray(0, SESSION_PASSWORD_BYTES))
}

export function checkSessionPassword(secret: string, sessionId: bigint, given: Uint8Array): boolean {
  if (given.length !== SESSION_PASSWORD_BYTES) return false
  return timingSafeEqual(sessionPassword(secret, sessionId), given)
}

/** A fresh random secret for a standalone server that was given none. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url')
}
