/**
 * The election decides at once when every voter it can reach votes like it
 * (a crashed voter's silence is certain: waiting finalizeWait for it only
 * delays failover), and still waits while a reachable voter is silent.
 */
import { describe, expect, it } from 'vitest'
import { Prng } from '../../../server/core/prng.js'
import { Election, type NotificationMsg } from '../../../server/zab/election.js'
import { configOfIds, Membership } from '../../../server/zab/membership.js'

function election(connected: Set<number>): Election {
  return new Election({
    id: 2,
    membership: new Membership({ zxid: 0, config: configOfIds([1, 2, 3]) }),
    finalizeWaitTicks: 2,
    connected,
    notifyIntervalTicksMin: 1,
    notifyIntervalTicksMax: 20,
    prng: new Prng(7),
  })
}

const voteFor2 = (round: number): NotificationMsg => ({
  type: 'NOTIFICATION',
  leader: 2,
  zxid: 5,
  peerEpoch: 1,
  round,
  state: 'LOOKING',
  configZxid: 0,
  config: configOfIds([1, 2, 3]).text,
  viewZxid: 0,
})

describe('election: deciding without the finalize wait', () => {
  const self = { leader: 2, zxid: 5, epoch: 1 }
  const send = () => {}

  it('decides on the quorum at once when the silent voter is disconnected', () => {
    const e = election(new Set([1]))
    expect(e.start(self, 0, send)).toBeUndefined()
    expect(e.onNotification(1, voteFor2(e.round), 0, send)).toEqual({ kind: 'lead', vote: self })
  })

  it('waits finalizeWait while a reachable voter has not voted, then decides', () => {
    const e = election(new Set([1, 3]))
    e.start(self, 0, send)
    expect(e.onNotification(1, voteFor2(e.round), 0, send)).toBeUndefined()
    expect(e.onTick(1, send)).toBeUndefined()
    expect(e.onTick(2, send)).toEqual({ kind: 'lead', vote: self })
  })
})
