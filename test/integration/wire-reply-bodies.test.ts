/**
 * The bytes after the ReplyHeader of successful replies that carry no data,
 * as ZooKeeper 3.8 sends them: Java's ZooKeeper client deserializes a
 * response record for some of them, and a body one byte short makes it
 * fail the read (EOFException) and drop the connection. addWatch is
 * answered with ZooKeeper's ErrorResponse (an int, 0): without it every
 * Curator CuratorCache and ServiceCache (which set their persistent
 * recursive watch with addWatch) lost its connection at start, reconnected
 * and lost it again, and never initialized.
 *
 * Checked against fixed expectations over a raw TCP session, and against
 * Apache ZooKeeper (Debian's `zookeeper` package) when it is installed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { JuteReader } from '../../shared/jute.js'
import { AddWatchMode, OpCode } from '../../shared/opcodes.js'
import { type Request, readReplyHeader } from '../../shared/records.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { canRun, zookeeperMissing } from '../helpers/prerequisites.js'
import { RawClient } from '../helpers/raw-client.js'
import { waitFor } from '../helpers/wait.js'
import { startZooKeeper, type ZooKeeperProcess } from '../helpers/zookeeper.js'

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }]

/**
 * Requests in order on one session, each with the error and the body ZooKeeper 3.8 answers:
 * its bytes, or (a Stat) its length.
 */
const CASES: { what: string; req: Request; err: number; body: number[] | number }[] = [
  {
    what: 'create /wire',
    req: { op: OpCode.create, path: '/wire', data: new Uint8Array(), acl: OPEN, flags: 0, ttl: 0 },
    err: 0,
    // The path: a 4-byte length and '/wire'.
    body: [0, 0, 0, 5, 0x2f, 0x77, 0x69, 0x72, 0x65],
  },
  {
    what: 'addWatch persistent recursive',
    req: { op: OpCode.addWatch, path: '/wire', mode: AddWatchMode.persistentRecursive },
    err: 0,
    // ZooKeeper's ErrorResponse(0), which the Java client reads.
    body: [0, 0, 0, 0],
  },
  {
    what: 'addWatch persistent',
    req: { op: OpCode.addWatch, path: '/', mode: AddWatchMode.persistent },
    err: 0,
    body: [0, 0, 0, 0],
  },
  {
    what: 'exists /wire with a watch',
    req: { op: OpCode.exists, path: '/wire', watch: true },
    err: 0,
    // A Stat: 68 bytes.
    body: 68,
  },
  {
    what: 'checkWatches (data)',
    req: { op: OpCode.checkWatches, path: '/wire', type: 2 },
    err: 0,
    body: [],
  },
  {
    what: 'removeWatches (data)',
    req: { op: OpCode.removeWatches, path: '/wire', type: 2 },
    err: 0,
    body: [],
  },
  {
    what: 'removeWatches of no watch',
    req: { op: OpCode.removeWatches, path: '/wire', type: 2 },
    err: -121,
    body: [],
  },
  {
    what: 'setWatches2',
    req: {
      op: OpCode.setWatches2,
      relativeZxid: 0,
      dataWatches: [],
      existWatches: [],
      childWatches: [],
      persistentWatches: [],
      persistentRecursiveWatches: [],
    },
    err: 0,
    body: [],
  },
  { what: 'delete /wire', req: { op: OpCode.delete, path: '/wire', version: -1 }, err: 0, body: [] },
]

/** xid, zxid, err. */
const REPLY_HEADER_BYTES = 16

/** The raw packet answering `xid` (watch notifications, xid -1, are skipped). */
async function replyPacket(c: RawClient, xid: number): Promise<Uint8Array> {
  let found: Uint8Array | undefined
  await waitFor(
    () => {
      const i = c.packets.findIndex((p) => readReplyHeader(new JuteReader(p)).xid === xid)
      if (i >= 0) found = c.packets.splice(i, 1)[0]
      else if (c.closed) throw new Error(`connection closed before the reply to xid ${xid}`)
      return found !== undefined
    },
    { timeoutMs: 10_000, what: `the reply to xid ${xid}` },
  )
  return found!
}

async function replies(port: number): Promise<{ what: string; err: number; body: number[] | number }[]> {
  const c = await RawClient.session(port)
  try {
    const out: { what: string; err: number; body: number[] | number }[] = []
    let xid = 1
    for (const { what, req, body } of CASES) {
      c.sendRequest(xid, req)
      const reply = await replyPacket(c, xid++)
      const h = readReplyHeader(new JuteReader(reply))
      const bytes = [...reply.subarray(REPLY_HEADER_BYTES)]
      out.push({ what, err: h.err, body: typeof body === 'number' ? bytes.length : bytes })
    }
    return out
  } finally {
    c.close()
  }
}

const expected = CASES.map(({ what, err, body }) => ({ what, err, body }))

let conclave: ConclaveProcess
let zk: ZooKeeperProcess | undefined

beforeAll(async () => {
  conclave = await startConclave()
})

afterAll(async () => {
  await conclave?.stop()
  conclave?.remove()
  await zk?.stop()
  await stopAllConclave()
})

describe('reply bodies of requests without data', () => {
  it('Conclave sends what ZooKeeper 3.8 sends (addWatch: an ErrorResponse of 0)', async () => {
    expect(await replies(conclave.port)).toEqual(expected)
  })

  it.runIf(canRun('reply bodies from ZooKeeper (wire-reply-bodies.test.ts)', zookeeperMissing()))(
    'Apache ZooKeeper (the oracle) sends the same',
    async () => {
      zk = await startZooKeeper()
      expect(await replies(zk.port)).toEqual(expected)
    },
  )
})
