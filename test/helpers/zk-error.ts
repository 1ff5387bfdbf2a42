/** The ZkError code a client call fails with; throws if it succeeds or fails with anything else. */
import { ZkError } from '../../client/index.js'

export async function errorCode(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!ZkError.is(err)) throw new Error(`expected a ZkError, got ${String(err)}`)
  return err.code
}
