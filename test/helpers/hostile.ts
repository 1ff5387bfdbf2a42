/**
 * Tools for sending a real server what no well-behaved client would, over
 * real sockets: a raw socket that may refuse to read what the server sends
 * (HostileSocket), the WebSocket opening handshake and masked frames built
 * by hand, and a Bystander — a well-behaved SDK session in a process of its
 * own that keeps asking the server something while an attack runs, to show
 * other clients are served meanwhile. Used by test/integration/hostile-clients.test.ts and
 * test/bench/measure-attacks.ts. Test-only: imports node:* freely.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { tsSourceExecArgv } from '../../server/storage/ts-source-loader.js'
import { JuteWriter } from '../../shared/jute.js'
import { encodeConnectRequest } from '../../shared/records.js'
import { encodeFrame, Opcode, type WsEvent, WsFrameDecoder } from '../../shared/websocket.js'
import { cpuMs } from './server-cost.js'
import { waitFor } from './wait.js'

export const MASK = new Uint8Array([0x11, 0x22, 0x33, 0x44])

export const UPGRADE_HEAD =
  'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'

export function connectRequestPacket(timeoutMs = 10_000): Uint8Array {
  const w = new JuteWriter()
  encodeConnectRequest(w, {
    protocolVersion: 0,
    lastZxidSeen: 0n,
    timeOut: timeoutMs,
    sessionId: 0n,
    passwd: new Uint8Array(16),
    readOnly: false,
  })
  return w.finish()
}

/** A masked frame with explicit FIN and opcode (a client's frame). */
export function clientFrame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const f = encodeFrame(opcode, payload, MASK)
  if (!fin) f[0] = f[0]! & 0x7f
  return f
}

/** `count` copies of `unit` in one buffer. */
export function repeat(unit: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(unit.length * count)
  for (let i = 0; i < count; i++) out.set(unit, i * unit.length)
  return out
}

export interface OpenOptions {
  /** false: never read what the server sends (the kernel's buffers fill, then the server's). */
  read?: boolean
  /** Connect from this local address (127.0.0.2, …: another client IP on loopback). */
  localAddress?: string
}

/** A raw TCP connection to the client port. */
export class HostileSocket {
  received = Buffer.alloc(0)
  closed = false
  /** Upgraded: what the server sends is WebSocket frames. */
  upgraded = false
  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.received = Buffer.concat([this.received, c])
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
    })
  }

  static async open(port: number, opts: OpenOptions = {}): Promise<HostileSocket> {
    const s = connect({ port, host: '127.0.0.1', localAddress: opts.localAddress, noDelay: true })
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve)
      s.once('error', reject)
    })
    const h = new HostileSocket(s)
    if (opts.read === false) s.pause()
    return h
  }

  /** Writes and waits until the socket has taken the bytes (drain); false if the connection closed. */
  async write(bytes: Uint8Array | string): Promise<boolean> {
    if (this.closed || this.socket.destroyed) return false
    if (this.socket.write(bytes)) return true
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        this.socket.off('drain', onDrain)
        this.socket.off('close', onClose)
        resolve(ok)
      }
      const onDrain = () => done(true)
      const onClose = () => done(false)
      this.socket.once('drain', onDrain)
      this.socket.once('close', onClose)
    })
  }

  /** Writes `bytes` in chunks of `chunkBytes`; returns how many were taken before the connection closed. */
  async writeAll(bytes: Uint8Array, chunkBytes = 64 * 1024): Promise<number> {
    for (let at = 0; at < bytes.length; at += chunkBytes) {
      if (!(await this.write(bytes.subarray(at, at + chunkBytes)))) return at
    }
    return bytes.length
  }

  /** Writes one byte per write, yielding to the event loop between them (each is its own segment). */
  async trickle(bytes: Uint8Array): Promise<number> {
    for (let i = 0; i < bytes.length; i++) {
      if (!(await this.write(bytes.subarray(i, i + 1)))) return i
      await new Promise((r) => setImmediate(r))
    }
    return bytes.length
  }

  /** Sends the upgrade head and waits for the server's 101 (reading, even on a non-reading socket). */
  async upgrade(head = UPGRADE_HEAD): Promise<void> {
    const paused = this.socket.isPaused()
    if (paused) this.socket.resume()
    await this.write(head)
    await waitFor(() => this.received.includes('\r\n\r\n') || this.closed, { what: 'answer to the upgrade' })
    if (paused) this.socket.pause()
    const end = this.received.indexOf('\r\n\r\n')
    const status = this.received.toString('latin1', 0, this.received.indexOf('\r\n'))
    if (!status.startsWith('HTTP/1.1 101 ')) throw new Error(`upgrade refused: ${status}`)
    this.received = this.received.subarray(end + 4)
    this.upgraded = true
  }

  /** The server's WebSocket frames so far. */
  events(): WsEvent[] {
    return new WsFrameDecoder({ expectMasked: false, messageBytesMax: 1 << 24 }).push(
      new Uint8Array(this.received),
    )
  }

  /** The close code the server sent, if any (undefined before an upgrade). */
  closeCode(): number | undefined {
    if (!this.upgraded) return undefined
    const ev = this.events().find((e) => e.kind === 'close')
    return ev?.kind === 'close' ? ev.code : undefined
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.closed, { timeoutMs, what: 'the server to close the connection' })
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** Sends a ping after everything else and waits for its pong: the server has read all before it. */
export async function roundTrip(s: HostileSocket, timeoutMs = 30_000): Promise<boolean> {
  const marker = new TextEncoder().encode(`rt-${Math.random()}`)
  if (!(await s.write(clientFrame(Opcode.ping, marker)))) return false
  const want = Buffer.from(marker)
  await waitFor(() => s.closed || s.received.includes(want), { timeoutMs, what: 'the pong' })
  return !s.closed
}

export interface BystanderStats {
  /** Requests answered while the attack ran. */
  served: number
  /** Requests that failed. */
  failed: number
  /** The slowest answer, ms. */
  maxMs: number
}

/**
 * A well-behaved SDK session in a process of its own (bystander-child.ts)
 * that asks `exists /` every `everyMs` while an attack runs, counting
 * answers and the slowest one.
 */
export class Bystander {
  private out = ''
  private constructor(private readonly child: ChildProcess) {
    child.stdout!.on('data', (c: Buffer) => {
      this.out += c.toString()
    })
  }

  static async start(port: number, everyMs = 50): Promise<Bystander> {
    // From source (vitest) the child is .ts and needs the loader; from dist/ it is .js.
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
    const script = fileURLToPath(new URL(`./bystander-child${ext}`, import.meta.url))
    const args = ext === '.ts' ? [...tsSourceExecArgv(), script] : [script]
    const child = spawn(process.execPath, [...args, `ws://127.0.0.1:${port}`, String(everyMs)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    const b = new Bystander(child)
    await waitFor(() => b.out.includes('ready') || b.out.startsWith('error') || child.exitCode !== null, {
      timeoutMs: 30_000,
      what: 'the bystander to connect',
    })
    if (!b.out.includes('ready')) throw new Error(`bystander: ${b.out}`)
    return b
  }

  async stop(): Promise<BystanderStats> {
    this.child.stdin!.end('stop\n')
    const line = await waitFor(() => this.out.split('\n').find((l) => l.startsWith('{')), {
      timeoutMs: 30_000,
      what: 'the bystander to report',
    }).catch((err: Error) => {
      this.child.kill('SIGKILL')
      throw err
    })
    return JSON.parse(line) as BystanderStats
  }
}

/**
 * Waits until the server's CPU time stops growing (at most `quietMs` of CPU
 * in a window of 300 ms): it has processed what it was sent.
 */
export async function settle(pid: number, { quietMs = 20, timeoutMs = 30_000 } = {}): Promise<void> {
  let last = cpuMs(pid)
  let lastAt = performance.now()
  await waitFor(
    () => {
      if (performance.now() - lastAt < 300) return false
      const now = cpuMs(pid)
      const quiet = now - last <= quietMs
      last = now
      lastAt = performance.now()
      return quiet
    },
    { timeoutMs, intervalMs: 50, what: 'the server to go quiet' },
  )
}
