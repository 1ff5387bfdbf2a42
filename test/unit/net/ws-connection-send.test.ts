/**
 * WsConnection.send (server/net/ws-connection.ts) over a real socket on
 * 127.0.0.1: every packet arrives as one binary message with exactly its
 * bytes and in order, whatever its length — the 2-byte headers from the
 * shared table (0..125), the 4-byte form (126..65535, gathered up to 16 KiB
 * and written at once past it) and the 10-byte form — and the caller may
 * reuse its buffer as soon as send() returns.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { WsConnection } from '../../../server/net/ws-connection.js'
import { WsFrameDecoder } from '../../../shared/websocket.js'
import { waitFor } from '../../helpers/wait.js'

const opened: { server: Server; sockets: Socket[] }[] = []

afterEach(() => {
  for (const o of opened.splice(0)) {
    for (const s of o.sockets) s.destroy()
    o.server.close()
  }
})

/** A WsConnection on the accepting end of a real connection, and the messages its peer decodes. */
async function connectionPair(): Promise<{ conn: WsConnection; messages: Uint8Array[] }> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const client = connect(address.port, '127.0.0.1')
  const socket = await accepted
  opened.push({ server, sockets: [client, socket] })
  const decoder = new WsFrameDecoder({ expectMasked: false, messageBytesMax: 1 << 20 })
  const messages: Uint8Array[] = []
  client.on('data', (chunk: Buffer) => {
    for (const ev of decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
      if (ev.kind === 'message') messages.push(ev.data.slice())
    }
  })
  return { conn: new WsConnection(socket, '127.0.0.1', 1 << 20, Buffer.alloc(0)), messages }
}

describe('WsConnection.send', () => {
  it('frames packets of every header size exactly, in order, from one reused buffer', async () => {
    const { conn, messages } = await connectionPair()
    const lengths = [
      ...Array.from({ length: 130 }, (_, n) => n),
      1000,
      16 * 1024 - 5,
      16 * 1024,
      65_535,
      65_536,
      200_000,
      3,
    ]
    const reused = new Uint8Array(200_000)
    const expected: Uint8Array[] = []
    lengths.forEach((length, i) => {
      const view = reused.subarray(0, length)
      for (let k = 0; k < length; k++) view[k] = (i * 31 + k) % 256
      expected.push(view.slice())
      conn.send(view)
      // Overwritten at once: what was sent must be unaffected.
      view.fill(0xee)
    })
    await waitFor(() => messages.length >= lengths.length, { what: 'every message', timeoutMs: 10_000 })
    expect(messages.length).toBe(lengths.length)
    messages.forEach((m, i) => {
      expect(m.length, `message ${i}`).toBe(lengths[i])
      expect(Buffer.from(m).equals(Buffer.from(expected[i]!)), `message ${i} (${lengths[i]} bytes)`).toBe(
        true,
      )
    })
  })
})
