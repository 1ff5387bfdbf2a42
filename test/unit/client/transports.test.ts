/**
 * Both transports end to end against a minimal in-process server speaking
 * ZooKeeper's wire format: WebSocket (one packet per binary message, no
 * length prefix; the server is the `ws` package) and TCP (4-byte length
 * framing; the server writes its replies one byte at a time, so every frame
 * arrives split). Also: a bad frame length or a text message drops the
 * connection instead of crashing; a WebSocket passed in the options is used
 * through the WHATWG API only, as the browser's would be; the SDK's own Node
 * WebSocket client interoperates with `ws` (frames of every length class,
 * fragments, ping/pong, close codes) and refuses a bad handshake answer.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { parseConnectString } from '../../../client/connect-string.js'
import { Client, type WebSocketConstructor } from '../../../client/index.js'
import { openWebSocket } from '../../../client/transport-ws.js'
import { FrameDecoder, frame } from '../../../shared/framing.js'
import { JuteWriter } from '../../../shared/jute.js'
import { OpCode } from '../../../shared/opcodes.js'
import {
  decodeConnectRequest,
  decodeRequest,
  encodeConnectResponse,
  type Response,
  writeReplyHeader,
  writeResponseBody,
} from '../../../shared/records.js'
import { encodeFrame, HANDSHAKE_GUID, Opcode, WsFrameDecoder } from '../../../shared/websocket.js'
import { canRun, opensslMissing } from '../../helpers/prerequisites.js'
import { waitFor } from '../../helpers/wait.js'

const stat = {
  czxid: 1,
  mzxid: 1,
  ctime: 0,
  mtime: 0,
  version: 0,
  cversion: 0,
  aversion: 0,
  ephemeralOwner: 0n,
  dataLength: 2,
  numChildren: 0,
  pzxid: 1,
}

/** Answers one packet of a session: ConnectRequest first, then requests. */
function answer(packet: Uint8Array, first: boolean): Uint8Array | undefined {
  const w = new JuteWriter()
  if (first) {
    decodeConnectRequest(packet)
    encodeConnectResponse(w, {
      protocolVersion: 0,
      timeOut: 5_000,
      sessionId: 42n,
      passwd: new Uint8Array(16),
      readOnly: false,
    })
    return w.finish()
  }
  const { xid, req } = decodeRequest(packet)
  let body: Response | undefined
  if (req.op === OpCode.getData)
    body = { op: OpCode.getData, data: new TextEncoder().encode(`hi ${req.path}`), stat }
  else if (req.op === OpCode.closeSession || req.op === OpCode.ping) body = { op: req.op }
  else return undefined
  writeReplyHeader(w, { xid, zxid: 7, err: 0 })
  writeResponseBody(w, body)
  return w.finish()
}

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

async function listen(server: Server | WebSocketServer): Promise<number> {
  await new Promise<void>((resolve) => {
    if (server instanceof WebSocketServer) server.once('listening', resolve)
    else server.listen(0, '127.0.0.1', resolve)
  })
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no address')
  return addr.port
}

async function tcpServer(opts: { badFrame?: boolean } = {}): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    const decoder = new FrameDecoder()
    let first = true
    s.on('error', () => {})
    s.on('data', (chunk) => {
      for (const p of decoder.push(chunk)) {
        if (opts.badFrame && !first) {
          s.write(new Uint8Array([0x7f, 0xff, 0xff, 0xff]))
          continue
        }
        const out = answer(p, first)
        first = false
        if (out === undefined) continue
        // One byte at a time: every frame arrives split.
        for (const b of frame(out)) s.write(new Uint8Array([b]))
      }
    })
  })
  const port = await listen(server)
  closers.push(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => server.close(() => r()))
  })
  return port
}

async function wsServer(opts: { text?: boolean } = {}): Promise<number> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  wss.on('connection', (ws) => {
    let first = true
    ws.on('message', (data: Buffer) => {
      if (opts.text && !first) {
        ws.send('not binary')
        return
      }
      const out = answer(new Uint8Array(data), first)
      first = false
      if (out !== undefined) ws.send(out)
    })
  })
  const port = await listen(wss)
  closers.push(async () => {
    for (const c of wss.clients) c.terminate()
    await new Promise<void>((r) => wss.close(() => r()))
  })
  return port
}

describe.each([
  ['tcp', tcpServer],
  ['ws', wsServer],
] as const)('%s transport', (scheme, start) => {
  it('establishes a session and carries pipelined requests', async () => {
    const port = await start()
    const c = await Client.connect(`${scheme}://127.0.0.1:${port}`, { connectTimeoutMs: 5_000 })
    expect(c.sessionId).toBe('0x2a')
    const results = await Promise.all(['/a', '/b', '/c'].map((p) => c.getData(p)))
    expect(results.map((r) => new TextDecoder().decode(r.data))).toEqual(['hi /a', 'hi /b', 'hi /c'])
    expect(c.lastZxid).toBe(7)
    await c.close()
    expect(c.state).toBe('closed')
  })
})

describe('a platform WebSocket', () => {
  it('is used through the WHATWG API (binaryType arraybuffer), as in a browser', async () => {
    const port = await wsServer()
    const constructed: string[] = []
    class BrowserLike extends WebSocket {
      constructor(url: string) {
        super(url)
        constructed.push(url)
      }
    }
    const c = await Client.connect(`ws://127.0.0.1:${port}`, {
      connectTimeoutMs: 5_000,
      WebSocket: BrowserLike as unknown as WebSocketConstructor,
    })
    expect(constructed).toEqual([`ws://127.0.0.1:${port}/`])
    expect(new TextDecoder().decode((await c.getData('/x')).data)).toBe('hi /x')
    await c.close()
  })
})

describe('protocol violations', () => {
  it('tcp: a frame length beyond the limit drops the connection', async () => {
    const port = await tcpServer({ badFrame: true })
    const c = await Client.connect(`tcp://127.0.0.1:${port}`, { connectTimeoutMs: 5_000 })
    const states: string[] = []
    c.on('state', (s) => states.push(s))
    const err = await c.getData('/a').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'CONNECTION_LOSS' })
    await waitFor(() => states.includes('disconnected'), { what: 'disconnect' })
    await c.close()
  })

  it('ws: a text message drops the connection', async () => {
    const port = await wsServer({ text: true })
    const c = await Client.connect(`ws://127.0.0.1:${port}`, { connectTimeoutMs: 5_000 })
    const err = await c.getData('/a').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'CONNECTION_LOSS' })
    await c.close()
  })
})

describe("the SDK's own WebSocket client (Node)", () => {
  const endpointFor = (port: number) => parseConnectString(`ws://127.0.0.1:${port}/zk?x=1`)[0]!

  async function open(port: number, onPacket: (p: Uint8Array) => void = () => {}) {
    const closes: string[] = []
    const t = await openWebSocket(
      endpointFor(port),
      { onPacket, onClose: (why) => closes.push(why) },
      { frameBytesMax: 1 << 20, signal: new AbortController().signal },
    )
    return { t, closes }
  }

  /** A `ws` server (an independent implementation) that hands each connection to `onConnection`. */
  async function peer(onConnection: (ws: WebSocket, path: string) => void): Promise<number> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    wss.on('connection', (ws, req) => onConnection(ws, req.url ?? ''))
    const port = await listen(wss)
    closers.push(async () => {
      for (const c of wss.clients) c.terminate()
      await new Promise<void>((r) => wss.close(() => r()))
    })
    return port
  }

  it('sends masked frames of every length class that the ws server reads back, and reassembles fragments', async () => {
    const sizes = [0, 125, 126, 65535, 65536, 300_000]
    let path = ''
    const port = await peer((ws, p) => {
      path = p
      ws.on('message', (data: Buffer) => {
        // Echo each message in three fragments.
        const third = Math.floor(data.length / 3)
        ws.send(data.subarray(0, third), { fin: false })
        ws.send(data.subarray(third, 2 * third), { fin: false })
        ws.send(data.subarray(2 * third), { fin: true })
      })
    })
    const got: Uint8Array[] = []
    const { t } = await open(port, (p) => got.push(p.slice()))
    expect(path).toBe('/zk?x=1')
    for (const n of sizes) {
      const packet = new Uint8Array(n).map((_, i) => (i * 7) & 0xff)
      t.sendFrame(frame(packet))
    }
    await waitFor(() => got.length === sizes.length, { what: 'echoes' })
    expect(got.map((p) => p.length)).toEqual(sizes)
    for (const p of got) expect(p.every((b, i) => b === ((i * 7) & 0xff))).toBe(true)
    t.close()
  })

  it('answers a ping with a pong, and reports a close from the server with its code', async () => {
    let pongs = 0
    let server: WebSocket | undefined
    const port = await peer((ws) => {
      server = ws
      ws.on('pong', (d: Buffer) => {
        if (d.toString() === 'ping?') pongs++
      })
    })
    const { closes } = await open(port)
    await waitFor(() => server !== undefined, { what: 'connection' })
    server!.ping('ping?')
    await waitFor(() => pongs === 1, { what: 'pong' })
    server!.close(4001, 'going away now')
    await waitFor(() => closes.length === 1, { what: 'close reported' })
    expect(closes[0]).toBe('websocket closed (4001 going away now)')
  })

  it("echoes a server's close frame and drops its socket once the echo is written, without a half-close waiting for the server's end", async () => {
    let socket: Socket | undefined
    let echo: { code: number; at: number } | undefined
    let resetAt: number | undefined
    // Half-open allowed: the server keeps writing after the client's end of stream, as a server that has
    // not closed yet may. A client that only half-closed still reads (for a second); one that dropped
    // its socket answers with a reset.
    const server = createServer({ allowHalfOpen: true }, (s) => {
      socket = s
      s.on('error', () => {
        resetAt ??= performance.now()
      })
      let got = Buffer.alloc(0)
      let upgraded = false
      s.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk])
        if (!upgraded) {
          const end = got.indexOf('\r\n\r\n')
          if (end < 0) return
          upgraded = true
          const key = /Sec-WebSocket-Key: (\S+)/.exec(got.toString('latin1', 0, end))![1]!
          const accept = createHash('sha1')
            .update(key + HANDSHAKE_GUID)
            .digest('base64')
          got = got.subarray(end + 4)
          s.write(
            Buffer.concat([
              Buffer.from(
                `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
                'latin1',
              ),
              encodeFrame(Opcode.close, new Uint8Array([4001 >> 8, 4001 & 0xff])),
            ]),
          )
        }
        const events = new WsFrameDecoder({ expectMasked: true, messageBytesMax: 1024 }).push(got)
        const close = events.find((e) => e.kind === 'close')
        if (close?.kind === 'close') echo ??= { code: close.code, at: performance.now() }
      })
    })
    const port = await listen(server)
    closers.push(() => {
      socket?.destroy()
      return new Promise<void>((r) => server.close(() => r()))
    })
    const { closes } = await open(port)
    await waitFor(() => echo !== undefined && closes.length === 1, { what: 'the echo and the close' })
    expect(echo!.code).toBe(4001)
    expect(closes[0]).toBe('websocket closed (4001)')
    // Bounded: at most 100 writes of one byte, one per 10 ms.
    for (let i = 0; i < 100 && resetAt === undefined && !socket!.destroyed; i++) {
      socket!.write(new Uint8Array([0]))
      await new Promise((r) => setTimeout(r, 10))
    }
    expect(resetAt).toBeDefined()
    // Well before the one-second grace a half-closed client gives a server that has not closed.
    expect(resetAt! - echo!.at).toBeLessThan(700)
  })

  it('closes on a frame that breaks the rules (a text message)', async () => {
    const port = await peer((ws) => ws.send('text is not binary'))
    const { closes } = await open(port)
    await waitFor(() => closes.length === 1, { what: 'close reported' })
    expect(closes[0]).toMatch(/^bad frame from server: text messages/)
  })

  it('sends the early frame with the upgrade request, before any answer, and delivers a packet that shares a read with the 101 after open resolves', async () => {
    const early = frame(new Uint8Array([1, 2, 3, 4, 5]))
    const received: number[][] = []
    let answered = false
    let sockets: Socket[] = []
    const server = createServer((s) => {
      sockets.push(s)
      s.on('error', () => {})
      let got = Buffer.alloc(0)
      s.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk])
        const end = got.indexOf('\r\n\r\n')
        if (end < 0) return
        // Nothing is answered until a frame is in: a client that waited for the 101 would hang here.
        const events = new WsFrameDecoder({ expectMasked: true, messageBytesMax: 1024 }).push(
          got.subarray(end + 4),
        )
        // Everything received after the head, decoded again from the start at each read.
        const messages = events.flatMap((e) => (e.kind === 'message' ? [[...e.data]] : []))
        received.splice(0, received.length, ...messages)
        if (messages.length === 0 || answered) return
        answered = true
        const key = /Sec-WebSocket-Key: (\S+)/.exec(got.toString('latin1', 0, end))![1]!
        const accept = createHash('sha1')
          .update(key + HANDSHAKE_GUID)
          .digest('base64')
        // The 101 and a packet in one write.
        s.write(
          Buffer.concat([
            Buffer.from(
              `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
              'latin1',
            ),
            encodeFrame(Opcode.binary, new Uint8Array([9, 8, 7])),
          ]),
        )
      })
    })
    const port = await listen(server)
    closers.push(() => {
      for (const s of sockets) s.destroy()
      sockets = []
      return new Promise<void>((r) => server.close(() => r()))
    })
    let opened = false
    const delivered: { bytes: number[]; afterOpen: boolean }[] = []
    const t = await openWebSocket(
      endpointFor(port),
      { onPacket: (p) => delivered.push({ bytes: [...p], afterOpen: opened }), onClose: () => {} },
      { frameBytesMax: 1 << 20, signal: new AbortController().signal, earlyFrame: early },
    )
    opened = true
    expect(received).toEqual([[1, 2, 3, 4, 5]])
    // The caller's own send of the early frame is not sent again; a later frame is.
    t.sendFrame(early)
    t.sendFrame(frame(new Uint8Array([6])))
    await waitFor(() => received.length >= 2, { what: 'the later frame' })
    expect(received).toEqual([[1, 2, 3, 4, 5], [6]])
    await waitFor(() => delivered.length === 1, { what: 'the packet sent with the 101' })
    expect(delivered).toEqual([{ bytes: [9, 8, 7], afterOpen: true }])
    t.close()
  })

  it.each([
    [
      'a 426 answer',
      () => 'HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n',
      /unexpected server response: 426/,
    ],
    [
      'a wrong Sec-WebSocket-Accept',
      () =>
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n',
      /wrong Sec-WebSocket-Accept/,
    ],
    ['an answer that is not HTTP', () => 'SSH-2.0-OpenSSH\r\n\r\n', /malformed answer/],
  ])('refuses %s to the handshake', async (_what, answer, why) => {
    const server = createServer((s) => {
      s.on('error', () => {})
      s.once('data', () => s.end(answer()))
    })
    const port = await listen(server)
    closers.push(() => new Promise<void>((r) => server.close(() => r())))
    await expect(open(port)).rejects.toThrow(why)
  })
})

describe.runIf(canRun('wss:// with a private CA (transports.test.ts)', opensslMissing()))(
  'wss:// (TLS) with a private CA',
  () => {
    /** A self-signed certificate for 127.0.0.1, made with openssl for this run. */
    function selfSigned(): { key: string; cert: string } {
      const dir = mkdtempSync(join(tmpdir(), 'conclave-tls-'))
      closers.push(async () => rmSync(dir, { recursive: true, force: true }))
      const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
      args.push('-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1')
      args.push('-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1')
      const r = spawnSync('openssl', args)
      if (r.status !== 0) throw new Error(`openssl: ${r.stderr.toString()}`)
      return {
        key: readFileSync(join(dir, 'key.pem'), 'utf8'),
        cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
      }
    }

    async function wssServer(tls: { key: string; cert: string }): Promise<number> {
      const https = createHttpsServer(tls)
      const wss = new WebSocketServer({ server: https })
      wss.on('connection', (ws) => {
        let first = true
        ws.on('message', (data: Buffer) => {
          const out = answer(new Uint8Array(data), first)
          first = false
          if (out !== undefined) ws.send(out)
        })
      })
      await new Promise<void>((r) => https.listen(0, '127.0.0.1', r))
      closers.push(async () => {
        for (const c of wss.clients) c.terminate()
        wss.close()
        await new Promise<void>((r) => https.close(() => r()))
      })
      return (https.address() as { port: number }).port
    }

    it('establishes a session when the CA is given, and refuses an untrusted certificate', async () => {
      const tls = selfSigned()
      const port = await wssServer(tls)
      const c = await Client.connect(`wss://127.0.0.1:${port}`, {
        connectTimeoutMs: 5_000,
        tls: { ca: tls.cert },
      })
      expect(new TextDecoder().decode((await c.getData('/tls')).data)).toBe('hi /tls')
      await c.close()
      await expect(
        Client.connect(`wss://127.0.0.1:${port}`, { connectTimeoutMs: 1_500 }),
      ).rejects.toMatchObject({
        code: 'CONNECTION_LOSS',
      })
    })
  },
)
