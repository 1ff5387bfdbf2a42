/**
 * The server's own WebSocket handshake and framing (server/net/ws-connection.ts)
 * against a real server process: the `ws` package — an independent
 * implementation — opens a session through the SDK, pings and closes
 * cleanly; RFC 6455's worked example key gets its worked example answer;
 * bad upgrades get an HTTP error, and so does a browser origin not in
 * allowedOrigins; frames that break the rules get the close
 * code RFC 6455 asks for; a fragmented ConnectRequest with a ping inside
 * establishes a session; a head without Host or with bare-LF lines is
 * refused at once, and a first read of `G` is not taken for ZooKeeper
 * framing (issue 15). The server keeps serving throughout.
 */
import { spawnSync } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { Client, type WebSocketConstructor } from '../../client/index.js'
import { tsSourceExecArgv } from '../../server/storage/ts-source-loader.js'
import { JuteWriter } from '../../shared/jute.js'
import { OpCode } from '../../shared/opcodes.js'
import { decodeConnectResponse, encodeConnectRequest, encodeRequest } from '../../shared/records.js'
import { CloseCode, encodeFrame, Opcode, type WsEvent, WsFrameDecoder } from '../../shared/websocket.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { canRun, WHATWG_WS_FLAGS, whatwgWebSocketMissing } from '../helpers/prerequisites.js'
import { waitFor } from '../helpers/wait.js'

let server: ConclaveProcess

beforeAll(async () => {
  server = await startConclave({
    extraArgs: ['--allowed-origins', 'https://app.example,https://ops.example'],
  })
})

afterAll(async () => {
  await server?.stop()
  server?.remove()
  await stopAllConclave()
})

const KEY = new Uint8Array([1, 2, 3, 4])

function connectRequest(): Uint8Array {
  const w = new JuteWriter()
  encodeConnectRequest(w, {
    protocolVersion: 0,
    lastZxidSeen: 0n,
    timeOut: 10_000,
    sessionId: 0n,
    passwd: new Uint8Array(16),
    readOnly: false,
  })
  return w.finish()
}

/** A raw TCP connection that collects everything the server sends and notices the close. */
class Raw {
  received = Buffer.alloc(0)
  /** How many reads it took. */
  reads = 0
  closed = false
  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.reads++
      this.received = Buffer.concat([this.received, c])
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
    })
  }

  static async open(): Promise<Raw> {
    const s = connect(server.port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve)
      s.once('error', reject)
    })
    return new Raw(s)
  }

  /** Sends a request head and returns the answer's head once it is in. */
  async request(head: string): Promise<string> {
    this.socket.write(head)
    await waitFor(() => this.received.includes('\r\n\r\n') || this.closed, { what: 'HTTP answer' })
    const end = this.received.indexOf('\r\n\r\n')
    const answer = this.received.toString('latin1', 0, end)
    this.received = this.received.subarray(end + 4)
    return answer
  }

  /** Completes the handshake with RFC 6455's example key and checks the example's accept value. */
  async upgrade(): Promise<void> {
    const answer = await this.request(
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols')
    expect(answer).toContain('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
  }

  /** Every frame received so far, decoded as a client decodes them. */
  events(): WsEvent[] {
    return new WsFrameDecoder({ expectMasked: false, messageBytesMax: 1 << 20 }).push(
      new Uint8Array(this.received),
    )
  }
}

const UPGRADE_HEADERS = 'Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'

async function stillServing(): Promise<void> {
  const c = await Client.connect(server.connectString, { connectTimeoutMs: 10_000 })
  await c.create(`/alive-${Date.now()}-${Math.random()}`)
  await c.close()
}

const WHATWG_FLAGS = WHATWG_WS_FLAGS

describe.runIf(
  canRun("Node's standards WebSocket against Conclave (server-websocket.test.ts)", whatwgWebSocketMissing()),
)("a standards WebSocket as the client (Node's own, as browsers, Deno and Bun have)", () => {
  it('opens a session through the SDK, reads, writes, watches, runs a multi and closes it', () => {
    const child = join(import.meta.dirname, 'fixtures', 'whatwg-ws-child.ts')
    const r = spawnSync(
      process.execPath,
      [...WHATWG_FLAGS, ...tsSourceExecArgv(), child, server.connectString],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    )
    const line = r.stdout.trim().split('\n').at(-1) ?? ''
    expect(line, r.stderr).toMatch(/^\{/)
    expect(JSON.parse(line)).toEqual({
      path: '/whatwg',
      data: 'hello',
      event: 'dataChanged /whatwg',
      multi: 2,
      children: ['a'],
      state: 'closed',
    })
    expect(r.status).toBe(0)
  })
})

describe('the ws package as the client', () => {
  it('opens a session through the SDK, reads and writes, and closes it', async () => {
    const c = await Client.connect(server.connectString, {
      connectTimeoutMs: 10_000,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
    })
    await c.create('/via-ws-package', new TextEncoder().encode('hello'))
    expect(new TextDecoder().decode((await c.getData('/via-ws-package')).data)).toBe('hello')
    await c.close()
    expect(c.state).toBe('closed')
  })

  it('gets a pong for its ping, a ConnectResponse for its request, and an echoed close code', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve))
    ws.ping(Buffer.from('are you there'))
    expect((await pong).toString()).toBe('are you there')
    const reply = new Promise<Buffer>((resolve) => ws.once('message', (d: Buffer) => resolve(d)))
    ws.send(connectRequest())
    expect(decodeConnectResponse(new Uint8Array(await reply)).timeOut).toBeGreaterThan(0)
    const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)))
    ws.close(4000, 'done here')
    expect(await closed).toBe(4000)
  })

  it('is closed with code 1000 after the server answers its closeSession', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    const replies: Buffer[] = []
    ws.on('message', (d: Buffer) => replies.push(d))
    ws.send(connectRequest())
    await waitFor(() => replies.length === 1, { what: 'ConnectResponse' })
    const closed = new Promise<[number, string]>((resolve) =>
      ws.once('close', (code: number, why: Buffer) => resolve([code, why.toString()])),
    )
    const w = new JuteWriter()
    encodeRequest(w, 1, { op: OpCode.closeSession })
    ws.send(w.finish())
    expect(await closed).toEqual([1000, 'session closed by the client'])
    expect(replies.length).toBe(2)
  })
})

describe('the handshake', () => {
  it.each([
    [
      'a POST',
      `POST / HTTP/1.1\r\n${UPGRADE_HEADERS}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      '405',
    ],
    ['no key', `GET / HTTP/1.1\r\n${UPGRADE_HEADERS}Sec-WebSocket-Version: 13\r\n\r\n`, '400'],
    [
      'a key that is not 16 bytes',
      `GET / HTTP/1.1\r\n${UPGRADE_HEADERS}Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      '400',
    ],
    [
      'HTTP/1.0',
      `GET / HTTP/1.0\r\n${UPGRADE_HEADERS}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      '400',
    ],
    [
      'no Connection: Upgrade',
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      '400',
    ],
    ['a head over 8 KiB', `GET / HTTP/1.1\r\n${UPGRADE_HEADERS}X-Pad: ${'a'.repeat(9000)}\r\n\r\n`, '431'],
    ['a plain GET', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', '426'],
  ])('refuses %s with an HTTP error and closes the connection', async (_what, head, status) => {
    const raw = await Raw.open()
    const answer = await raw.request(head)
    expect(answer.split('\r\n')[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `))
    await waitFor(() => raw.closed, { what: 'close after the refusal' })
    await stillServing()
  })

  it('refuses a browser origin that is not in allowedOrigins with 403, and accepts a listed one', async () => {
    const upgrade = (origin: string) =>
      `GET / HTTP/1.1\r\n${UPGRADE_HEADERS}Origin: ${origin}\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
    const evil = await Raw.open()
    expect((await evil.request(upgrade('https://evil.example'))).split('\r\n')[0]).toBe(
      'HTTP/1.1 403 Forbidden',
    )
    await waitFor(() => evil.closed, { what: 'close after 403' })
    const listed = await Raw.open()
    expect((await listed.request(upgrade('https://ops.example'))).split('\r\n')[0]).toBe(
      'HTTP/1.1 101 Switching Protocols',
    )
    listed.socket.destroy()
    // The same through the ws package, which sends Origin only when asked to.
    const refused = new WebSocket(`ws://127.0.0.1:${server.port}/`, { origin: 'https://evil.example' })
    refused.on('error', () => {})
    const status = await new Promise<number>((resolve) =>
      refused.once('unexpected-response', (req, res) => {
        resolve(res.statusCode ?? 0)
        req.destroy()
      }),
    )
    expect(status).toBe(403)
  })

  it('answers an unsupported version with 426 and the version it speaks', async () => {
    const raw = await Raw.open()
    const answer = await raw.request(
      `GET / HTTP/1.1\r\n${UPGRADE_HEADERS}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n`,
    )
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 426 Upgrade Required')
    expect(answer).toContain('Sec-WebSocket-Version: 13')
  })

  it('refuses a head without Host, and one whose lines end in a bare LF, at once with 400 (issue 15)', async () => {
    const noHost = await Raw.open()
    const a = await noHost.request(
      'GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    expect(a.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request')
    expect(noHost.received.toString()).toContain('missing Host header')
    // Before, a bare-LF head waited for a CRLF CRLF that never came, until the handshake timeout.
    const bareLf = await Raw.open()
    const b = await bareLf.request(
      'GET / HTTP/1.1\nHost: x\nUpgrade: websocket\nConnection: Upgrade\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n',
    )
    expect(b.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request')
    expect(bareLf.received.toString()).toContain('bare LF')
    await waitFor(() => noHost.closed && bareLf.closed, { what: 'close after the refusals' })
    await stillServing()
  })

  it('waits for more than a first read of `G` before telling HTTP from ZooKeeper framing (issue 15)', async () => {
    const raw = await Raw.open()
    const head =
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
    // One byte, then the rest once the server has had a turn to read it alone.
    for (const part of [head.slice(0, 1), head.slice(1, 2), head.slice(2)]) {
      raw.socket.write(part)
      await new Promise((r) => setTimeout(r, 50))
    }
    await waitFor(() => raw.received.includes('\r\n\r\n') || raw.closed, { what: '101' })
    expect(raw.received.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /)
    raw.socket.destroy()
    // A four-letter word cut the same way is still a four-letter word.
    const word = await Raw.open()
    for (const part of ['r', 'uo', 'k']) {
      word.socket.write(part)
      await new Promise((r) => setTimeout(r, 50))
    }
    await waitFor(() => word.closed, { what: 'the answer to ruok' })
    expect(word.received.toString()).toBe('imok')
  })

  it('accepts a request head that arrives a few bytes at a time', async () => {
    const raw = await Raw.open()
    const head =
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
    for (let i = 0; i < head.length; i += 7) {
      raw.socket.write(head.slice(i, i + 7))
      await new Promise((r) => setImmediate(r))
    }
    await waitFor(() => raw.received.includes('\r\n\r\n'), { what: '101' })
    expect(raw.received.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /)
  })
})

describe('frames after the handshake', () => {
  it.each([
    ['an unmasked frame', () => encodeFrame(Opcode.binary, connectRequest()), CloseCode.protocolError],
    [
      'a text message',
      () => encodeFrame(Opcode.text, new TextEncoder().encode('hi'), KEY),
      CloseCode.unsupportedData,
    ],
    [
      'a frame claiming 2 MiB (over the frame limit)',
      () => new Uint8Array([0x82, 0xff, 0, 0, 0, 0, 0, 0x20, 0, 0, 1, 2, 3, 4]),
      CloseCode.tooBig,
    ],
    [
      'reserved bits',
      () => {
        const f = encodeFrame(Opcode.binary, connectRequest(), KEY)
        f[0] = f[0]! | 0x40
        return f
      },
      CloseCode.protocolError,
    ],
  ])('closes the connection on %s with the matching close code', async (_what, make, code) => {
    const raw = await Raw.open()
    await raw.upgrade()
    raw.socket.write(make())
    await waitFor(() => raw.closed, { what: 'server closes' })
    const events = raw.events()
    expect(events.at(-1)).toMatchObject({ kind: 'close', code })
    await stillServing()
  })

  it('answers the message and ping before a bad frame in the same segment, then closes (as ws does)', async () => {
    const raw = await Raw.open()
    await raw.upgrade()
    const bad = encodeFrame(Opcode.binary, new Uint8Array(1), KEY)
    bad[0] = 0x83
    raw.socket.write(
      Buffer.concat([
        encodeFrame(Opcode.binary, connectRequest(), KEY),
        encodeFrame(Opcode.ping, new TextEncoder().encode('p'), KEY),
        bad,
      ]),
    )
    await waitFor(() => raw.closed, { what: 'server closes' })
    const kinds = raw.events().map((e) => (e.kind === 'close' ? `close ${e.code}` : e.kind))
    // The ConnectRequest is answered when its createSession commits, after the pong and possibly after the close.
    expect(kinds).toContain('pong')
    expect(kinds).toContain(`close ${CloseCode.protocolError}`)
  })

  it('answers a ConnectRequest sent with the upgrade request (not waiting for the 101) with the 101 and the ConnectResponse in one write', async () => {
    const raw = await Raw.open()
    const head =
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
    raw.socket.write(
      Buffer.concat([Buffer.from(head, 'latin1'), encodeFrame(Opcode.binary, connectRequest(), KEY)]),
    )
    await waitFor(() => raw.received.includes('\r\n\r\n'), { what: 'the 101' })
    const end = raw.received.indexOf('\r\n\r\n')
    const answer = raw.received.toString('latin1', 0, end)
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols')
    expect(answer).toContain('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
    raw.received = raw.received.subarray(end + 4)
    const msg = raw.events()[0]
    expect(msg?.kind).toBe('message')
    if (msg?.kind === 'message') expect(decodeConnectResponse(msg.data).timeOut).toBeGreaterThan(0)
    expect(raw.reads).toBe(1)
    raw.socket.destroy()
  })

  it('establishes a session from a ConnectRequest in three fragments with a ping between them', async () => {
    const raw = await Raw.open()
    await raw.upgrade()
    const req = connectRequest()
    const a = encodeFrame(Opcode.binary, req.subarray(0, 10), KEY)
    a[0] = Opcode.binary // FIN clear
    const b = encodeFrame(Opcode.continuation, req.subarray(10, 20), KEY)
    b[0] = Opcode.continuation
    const c = encodeFrame(Opcode.continuation, req.subarray(20), KEY)
    raw.socket.write(a)
    raw.socket.write(encodeFrame(Opcode.ping, new TextEncoder().encode('p'), KEY))
    raw.socket.write(b)
    raw.socket.write(c)
    await waitFor(() => raw.events().some((e) => e.kind === 'message'), { what: 'ConnectResponse' })
    const events = raw.events()
    expect(events[0]).toEqual({ kind: 'pong' })
    const msg = events[1]
    expect(msg?.kind).toBe('message')
    if (msg?.kind === 'message') expect(decodeConnectResponse(msg.data).timeOut).toBeGreaterThan(0)
    raw.socket.destroy()
  })
})
