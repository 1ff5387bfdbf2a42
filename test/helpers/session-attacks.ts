/**
 * Hostile clients with a session (issue 15, "everything else a hostile
 * client can do"): request floods, replies nobody reads, very many watches,
 * very deep paths, ACL lists of thousands of entries, addAuth floods and
 * oversized SetWatches, each as an Attack (test/helpers/attacks.ts) over
 * ZooKeeper's TCP framing. ZkSession is a raw session that pipelines as
 * fast as the socket takes requests and counts the replies by error code.
 * Test-only: imports node:* freely.
 */
import { FrameDecoder, frame } from '../../shared/framing.js'
import { JuteReader, JuteWriter } from '../../shared/jute.js'
import { OpCode } from '../../shared/opcodes.js'
import { encodeRequest, type Request, readReplyHeader } from '../../shared/records.js'
import type { Attack, AttackRun } from './attacks.js'
import { connectRequestPacket, HostileSocket } from './hostile.js'
import { waitFor } from './wait.js'

export const OPEN_ACL = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }]

/** A raw ZooKeeper session over TCP that pipelines requests and counts replies by error code. */
export class ZkSession {
  /** Replies (not notifications) by error code. */
  readonly errors = new Map<number, number>()
  notifications = 0
  replies = 0
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024)
  /** The xids call() waits for, and their replies' error codes once in. */
  private readonly byXid = new Map<number, number | undefined>()
  private connected = false
  private nextXid = 1
  private constructor(readonly s: HostileSocket) {
    s.socket.on('data', (c: Buffer) => {
      for (const p of this.decoder.push(new Uint8Array(c))) this.packet(p)
    })
  }

  static async open(
    port: number,
    read = true,
    timeoutMs = 40_000,
    localAddress?: string,
  ): Promise<ZkSession> {
    const s = await HostileSocket.open(port, { localAddress })
    const z = new ZkSession(s)
    await s.write(frame(connectRequestPacket(timeoutMs)))
    await waitFor(() => z.connected || s.closed, { what: 'ConnectResponse' })
    if (!z.connected) throw new Error('session refused')
    if (!read) s.socket.pause()
    return z
  }

  private packet(p: Uint8Array): void {
    if (!this.connected) {
      this.connected = true
      return
    }
    const h = readReplyHeader(new JuteReader(p))
    if (h.xid === -1) {
      this.notifications++
      return
    }
    this.replies++
    this.errors.set(h.err, (this.errors.get(h.err) ?? 0) + 1)
    if (this.byXid.has(h.xid)) this.byXid.set(h.xid, h.err)
  }

  /** Sends `req` and waits for its reply; returns the reply's error code. */
  async call(req: Request, timeoutMs = 30_000): Promise<number> {
    const xid = this.nextXid++
    this.byXid.set(xid, undefined)
    if (!(await this.s.write(this.packetOf(req, xid)))) throw new Error('connection closed')
    await waitFor(() => this.byXid.get(xid) !== undefined || this.s.closed, {
      timeoutMs,
      what: `the reply to xid ${xid}`,
    })
    const err = this.byXid.get(xid)
    if (err === undefined) throw new Error('connection closed')
    this.byXid.delete(xid)
    return err
  }

  /** One request packet. */
  packetOf(req: Request, xid = this.nextXid++): Uint8Array {
    const w = new JuteWriter()
    encodeRequest(w, xid, req)
    return frame(w.finish())
  }

  /** Sends `req`; false if the connection closed. */
  send(req: Request): Promise<boolean> {
    return this.s.write(this.packetOf(req))
  }

  /** Sends `count` requests made by `make`, batched into writes of about 64 KiB; returns bytes sent. */
  async flood(count: number, make: (i: number) => Request): Promise<number> {
    let sent = 0
    let batch: Uint8Array[] = []
    let batchBytes = 0
    for (let i = 0; i < count; i++) {
      const p = this.packetOf(make(i))
      batch.push(p)
      batchBytes += p.length
      if (batchBytes >= 64 * 1024 || i === count - 1) {
        if (!(await this.s.write(Buffer.concat(batch)))) return sent
        sent += batchBytes
        batch = []
        batchBytes = 0
      }
    }
    return sent
  }

  /** Waits until `n` replies have come (or the connection closed). */
  async repliesReach(n: number, timeoutMs = 60_000): Promise<void> {
    await waitFor(() => this.replies >= n || this.s.closed, { timeoutMs, what: `${n} replies` })
  }

  /** Replies so far, e.g. `{"0": 10, "-127": 90}`. */
  tally(): string {
    return JSON.stringify(Object.fromEntries([...this.errors].sort((a, b) => a[0] - b[0])))
  }
}

function run(z: ZkSession, sent: number, buffered = 0): AttackRun {
  return {
    sent,
    buffered,
    sockets: [z.s],
    detail: () => `replies by error code ${z.tally()}, ${z.notifications} notifications`,
  }
}

/** `/d/d/…`, `depth` components. */
export function deepPath(depth: number): string {
  return '/d'.repeat(depth)
}

export const SESSION_ATTACKS: Attack[] = [
  {
    id: 'request-flood',
    title: 'one session pipelining `exists /` as fast as the socket takes them',
    async run(port, count) {
      const z = await ZkSession.open(port)
      const sent = await z.flood(count, () => ({ op: OpCode.exists, path: '/', watch: false }))
      await z.repliesReach(count)
      return run(z, sent)
    },
  },
  {
    id: 'replies-no-read',
    title: 'one session pipelining `exists /` and never reading the replies',
    async run(port, count) {
      const z = await ZkSession.open(port, false)
      const sent = await z.flood(count, () => ({ op: OpCode.exists, path: '/', watch: false }))
      return run(z, sent)
    },
  },
  {
    id: 'many-watches',
    title: 'one session setting persistent watches on distinct paths',
    async run(port, count) {
      const z = await ZkSession.open(port)
      const sent = await z.flood(count, (i) => ({ op: OpCode.addWatch, path: `/w/${i}`, mode: 0 }))
      await z.repliesReach(count)
      return run(z, sent)
    },
  },
  {
    id: 'deep-path',
    title: 'a chain of znodes as deep as the longest path allows (2,048 levels), then one longer',
    async run(port, depth) {
      const z = await ZkSession.open(port)
      const sent = await z.flood(depth + 1, (i) => ({
        op: OpCode.create,
        path: deepPath(i + 1),
        data: new Uint8Array(0),
        acl: OPEN_ACL,
        flags: 0,
        ttl: 0,
      }))
      await z.repliesReach(depth + 1)
      return run(z, sent)
    },
  },
  {
    id: 'big-acl',
    title: 'creates whose ACL lists hold many thousands of distinct digest entries',
    async run(port, entries) {
      const z = await ZkSession.open(port)
      const acl = Array.from({ length: entries }, (_, i) => ({
        perms: 31,
        id: { scheme: 'digest', id: `user${i}:${'x'.repeat(27)}=` },
      }))
      const sent = await z.flood(4, (i) => ({
        op: OpCode.create,
        path: `/acl-${i}`,
        data: new Uint8Array(0),
        acl: [...acl, { perms: 31, id: { scheme: 'digest', id: `distinct${i}:x` } }],
        flags: 0,
        ttl: 0,
      }))
      await z.repliesReach(4)
      return run(z, sent)
    },
  },
  {
    id: 'addauth-flood',
    title: 'addAuth with distinct credentials, then creates with an `auth` ACL',
    async run(port, count) {
      const z = await ZkSession.open(port)
      let sent = await z.flood(count, (i) => ({
        op: OpCode.auth,
        authType: 0,
        scheme: 'digest',
        auth: new TextEncoder().encode(`user${i}:password`),
      }))
      await z.repliesReach(count)
      sent += await z.flood(10, (i) => ({
        op: OpCode.create,
        path: `/auth-${i}`,
        data: new Uint8Array(0),
        acl: [{ perms: 31, id: { scheme: 'auth', id: '' } }],
        flags: 0,
        ttl: 0,
      }))
      await z.repliesReach(count + 10)
      return run(z, sent)
    },
  },
  {
    id: 'big-setwatches',
    title: 'one SetWatches of about 1 MiB: data watches on paths that do not exist',
    async run(port, paths) {
      const z = await ZkSession.open(port)
      const dataWatches = Array.from({ length: paths }, (_, i) => `/gone/${i}`)
      const sent = await z.flood(1, () => ({
        op: OpCode.setWatches,
        relativeZxid: 0,
        dataWatches,
        existWatches: [],
        childWatches: [],
        persistentWatches: [],
        persistentRecursiveWatches: [],
      }))
      await z.repliesReach(1)
      await waitFor(() => z.notifications >= paths || z.s.closed, {
        what: 'the notifications',
        timeoutMs: 60_000,
      })
      return run(z, sent)
    },
  },
]
