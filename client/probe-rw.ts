/**
 * Is a server read-write? ZooKeeper's `isro` four-letter word, as its client
 * asks it while connected read-only (ClientCnxn.pingRwServer) and kazoo
 * does: the four bytes on a fresh socket to the client port (TLS for wss://),
 * and the server answers `rw`, `ro` or `null` (not serving) and closes.
 *
 * Node only: a browser opens no raw sockets, so there `askIsro` resolves
 * undefined (the SDK then stops probing; it moves back to a read-write
 * server when the read-only connection ends).
 * Its sockets are the Node WebSocket transport's (connectSocket: node:net
 * and node:tls, loaded dynamically), so browser bundles build without them.
 */
import type { Endpoint } from './connect-string.js'
import type { IsroAnswer } from './session.js'
import type { TlsOptions } from './transport.js'
import { isNode } from './transport-ws.js'
import { connectSocket } from './transport-ws-node.js'

/** Longest answer read: 'null' is the longest the word has. */
const ANSWER_BYTES_MAX = 64

export async function askIsro(
  endpoint: Endpoint,
  tls: TlsOptions | undefined,
  timeoutMs: number,
): Promise<IsroAnswer> {
  if (!isNode()) return undefined
  const secure = endpoint.url.startsWith('wss:')
  const socket = await connectSocket(endpoint, tls, secure)
  return new Promise<IsroAnswer>((resolve) => {
    let text = ''
    const done = (answer: IsroAnswer): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(answer)
    }
    const timer = setTimeout(() => done('none'), timeoutMs)
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.end('isro'))
    socket.on('data', (chunk: Uint8Array) => {
      text += new TextDecoder().decode(chunk)
      if (text.length > ANSWER_BYTES_MAX) done('none')
    })
    socket.on('error', () => done('none'))
    socket.once('close', () => {
      const t = text.trim()
      done(t === 'rw' ? 'rw' : t === 'ro' ? 'ro' : 'none')
    })
  })
}
