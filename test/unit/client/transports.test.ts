/**
 * Both transports end to end against a minimal in-process server speaking
 * ZooKeeper's wire format: WebSocket (one packet per binary message, no
 * length prefix; the `ws` package, loaded lazily) and TCP (4-byte length
 * framing; the server writes its replies one byte at a time, so every frame
 * arrives split). Also: a bad frame length or a text message drops the
 * connection instead of crashing; a WebSocket passed in the options is used
 * through the WHATWG API only, as the browser's would be.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { Client, type WebSocketConstructor } from '../../../client/index.js'
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
