/**
 * Two sessions race to create the same node, each reading it right after
 * its own create. Whoever loses gets NODE_EXISTS, and its read, queued
 * behind the create on the same session, must then find the node: a server
 * that answers NODE_EXISTS before the winning create is applied where the
 * loser reads would answer that read NO_NODE.
 */
import type { Client } from '../../client/index.js'

export interface RaceOutcome {
  /** Creates that lost (exactly one per round). */
  refused: number
  /** Reads after a refused create that did not find the node (must be 0). */
  unseen: string[]
}

const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'OK',
    (err: { code?: string }) => err.code ?? String(err),
  )

export async function createRaces(a: Client, b: Client, root: string, rounds: number): Promise<RaceOutcome> {
  const result: RaceOutcome = { refused: 0, unseen: [] }
  for (let i = 0; i < rounds; i++) {
    const path = `${root}/race-${i}`
    // Both sessions send create then getData back to back, without awaiting in between.
    const [ca, ra, cb, rb] = await Promise.all([
      outcome(a.create(path, 'a')),
      outcome(a.getData(path)),
      outcome(b.create(path, 'b')),
      outcome(b.getData(path)),
    ])
    for (const [create, read] of [
      [ca, ra],
      [cb, rb],
    ] as const) {
      if (create === 'NODE_EXISTS') {
        result.refused++
        if (read !== 'OK') result.unseen.push(`${path}: create NODE_EXISTS, then getData ${read}`)
      }
    }
  }
  return result
}
