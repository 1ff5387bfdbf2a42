/**
 * The byte streams a hostile client can send the client port, each as an
 * Attack that sends them to a real server over real sockets and leaves its
 * connections open, so a caller can read what the server holds for them
 * (test/helpers/server-cost.ts), then see what the client was told.
 * test/integration/hostile-clients.test.ts asserts the bounds;
 * test/bench/measure-attacks.ts prints the numbers for docs/security.md.
 * Test-only: imports node:* freely.
 */
import { frame } from '../../shared/framing.js'
import { Opcode } from '../../shared/websocket.js'
import {
  clientFrame,
  connectRequestPacket,
  HostileSocket,
  repeat,
  roundTrip,
  UPGRADE_HEAD,
} from './hostile.js'
import { waitFor } from './wait.js'

export interface AttackRun {
  /** Bytes the attacker sent. */
  sent: number
  /** Of those, bytes the protocol obliges the server to keep (an unfinished message or frame). */
  buffered: number
  /** The attack's connections, still open unless the server closed them. */
  sockets: HostileSocket[]
  /** What else the attacker was told (replies by error code, say). */
  detail?: () => string
}

export interface Attack {
  id: string
  title: string
  /** Sends the attack; `size` is its scale (bytes, or connections for the idle ones). */
  run(port: number, size: number): Promise<AttackRun>
}

/** Local addresses 127.0.0.2, 127.0.0.3, …: one client IP per connection (the per-IP cap does not apply). */
export function loopbackAddress(i: number): string {
  return `127.0.${Math.floor(i / 250)}.${(i % 250) + 2}`
}

async function openMany(port: number, n: number, then: (s: HostileSocket) => Promise<void>) {
  const sockets: HostileSocket[] = []
  for (let i = 0; i < n; i++) {
    const s = await HostileSocket.open(port, { localAddress: loopbackAddress(i) })
    await then(s)
    sockets.push(s)
  }
  return sockets
}

/** A head of exactly `bytes` bytes: a valid upgrade padded with one long header. */
export function paddedHead(bytes: number): string {
  const pad = bytes - UPGRADE_HEAD.length - 'X-Pad: \r\n'.length
  return UPGRADE_HEAD.replace('\r\n\r\n', `\r\nX-Pad: ${'a'.repeat(pad)}\r\n\r\n`)
}

/**
 * An upgraded connection with a session (so the handshake deadline leaves it
 * alone: what is measured is the stream, not the deadline), reading or not.
 */
async function upgraded(port: number, read = true): Promise<HostileSocket> {
  const s = await HostileSocket.open(port)
  await s.upgrade()
  // The longest session timeout the server allows by default: the attacker sends no pings.
  await s.write(clientFrame(Opcode.binary, connectRequestPacket(40_000)))
  await waitFor(() => s.events().some((e) => e.kind === 'message') || s.closed, { what: 'ConnectResponse' })
  if (!read) s.socket.pause()
  return s
}

export const TRANSPORT_ATTACKS: Attack[] = [
  {
    id: 'idle',
    title: 'connections that never send a byte, each from its own address',
    async run(port, n) {
      const sockets = await openMany(port, n, async () => {})
      return { sent: 0, buffered: 0, sockets }
    },
  },
  {
    id: 'upgraded-idle',
    title: 'WebSocket upgrades that never send a ConnectRequest, each from its own address',
    async run(port, n) {
      const sockets = await openMany(port, n, (s) => s.upgrade())
      return { sent: n * UPGRADE_HEAD.length, buffered: 0, sockets }
    },
  },
  {
    id: 'tcp-partial',
    title: 'ZooKeeper framing: two bytes of a length prefix, then nothing, each from its own address',
    async run(port, n) {
      const sockets = await openMany(port, n, async (s) => {
        await s.write(new Uint8Array([0, 0]))
      })
      return { sent: 2 * n, buffered: 2 * n, sockets }
    },
  },
  {
    id: 'slow-head',
    title: 'an 8,000-byte upgrade head, one byte per segment',
    async run(port, bytes) {
      const s = await HostileSocket.open(port)
      const head = new TextEncoder().encode(paddedHead(bytes))
      const sent = await s.trickle(head)
      return { sent, buffered: 0, sockets: [s] }
    },
  },
  {
    id: 'empty-continuations',
    title: 'a fragmented message of empty continuation frames that never ends',
    async run(port, bytes) {
      const s = await upgraded(port)
      const first = clientFrame(Opcode.binary, new Uint8Array(0), false)
      const unit = clientFrame(Opcode.continuation, new Uint8Array(0), false)
      let sent = await s.writeAll(first)
      const batch = repeat(unit, 10_000)
      while (sent < bytes && !s.closed) sent += await s.writeAll(batch)
      await roundTrip(s)
      return { sent, buffered: 0, sockets: [s] }
    },
  },
  {
    id: 'one-byte-fragments',
    title: 'a fragmented message of one-byte continuation frames that never ends',
    async run(port, bytes) {
      const s = await upgraded(port)
      const unit = clientFrame(Opcode.continuation, new Uint8Array([7]), false)
      let sent = await s.writeAll(clientFrame(Opcode.binary, new Uint8Array([7]), false))
      const batch = repeat(unit, 10_000)
      let payload = 1
      while (sent < bytes && !s.closed) {
        sent += await s.writeAll(batch)
        payload += 10_000
      }
      await roundTrip(s)
      return { sent, buffered: payload, sockets: [s] }
    },
  },
  {
    id: 'pings-no-read',
    title: 'ping frames (125 bytes each) from a client that never reads',
    async run(port, bytes) {
      const s = await upgraded(port, false)
      const batch = repeat(clientFrame(Opcode.ping, new Uint8Array(125)), 500)
      let sent = 0
      while (sent < bytes && !s.closed) sent += await s.writeAll(batch)
      return { sent, buffered: 0, sockets: [s] }
    },
  },
  {
    id: 'ws-trickle',
    title: 'a WebSocket frame declaring 1 MiB, its payload one byte per segment',
    async run(port, bytes) {
      const s = await upgraded(port)
      // The 64-bit length form with a masking key: 14 bytes of header.
      const head = new Uint8Array([0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4])
      let sent = await s.writeAll(head)
      sent += await s.trickle(new Uint8Array(bytes))
      await roundTripTcp(s)
      return { sent, buffered: bytes, sockets: [s] }
    },
  },
  {
    id: 'tcp-trickle',
    title: 'ZooKeeper framing: a frame declaring 1 MiB, its payload one byte per segment',
    async run(port, bytes) {
      const s = await HostileSocket.open(port)
      let sent = await s.writeAll(frame(connectRequestPacket()))
      await waitFor(() => s.received.length > 0 || s.closed, { what: 'ConnectResponse' })
      sent += await s.writeAll(new Uint8Array([0, 0x10, 0, 0]))
      sent += await s.trickle(new Uint8Array(bytes))
      return { sent, buffered: bytes, sockets: [s] }
    },
  },
]

/** Nothing to round-trip inside an unfinished frame: waits until the socket has flushed. */
async function roundTripTcp(s: HostileSocket): Promise<void> {
  await waitFor(() => s.socket.writableLength === 0 || s.closed, { what: 'the bytes to leave' })
}

/** What the attacker was told: closed or not, the WebSocket close code or the HTTP status. */
export function outcome(run: AttackRun): string {
  const closed = run.sockets.filter((s) => s.closed).length
  const codes = new Set<string>()
  for (const s of run.sockets) {
    const text = s.received.toString('latin1', 0, Math.min(s.received.length, 64))
    const http = /^HTTP\/1\.1 (\d{3})/.exec(text)
    if (http) codes.add(`HTTP ${http[1]}`)
    else {
      const code = s.closeCode()
      if (code !== undefined) codes.add(`close ${code}`)
    }
  }
  const how = codes.size > 0 ? ` (${[...codes].join(', ')})` : ''
  const detail = run.detail === undefined ? '' : `; ${run.detail()}`
  return `${closed} of ${run.sockets.length} closed${how}${detail}`
}
