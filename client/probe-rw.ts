/**
 * Is a server read-write? ZooKeeper's `isro` four-letter word, as its client
 * asks it while connected read-only (ClientCnxn.pingRwServer) and kazoo
 * does: the four bytes on a fresh socket to the client port (TLS for wss://),
 * and the server answers `rw`, `ro` or `null` (not serving) and closes.
 *
 * Node only: a browser opens no raw sockets, so there `askIsro` resolves
 * undefined (the SDK then stops probing; it moves back to a read-write
 * server when the read-only connection ends).
 * Imports node:net and node:tls only dynamically, through non-literal
 * specifiers, so browser bundles build without them.
 */
import type { Endpoint } from './connect-string.js'
import type { IsroAnswer } from './session.js'
import type { TlsOptions } from './transport.js'

const NODE_NET = 'node:net'
const NODE_TLS = 'node:tls'

/** Longest answer read: 'null' is the longest the word has. */
const ANSWER_BYTES_MAX = 64

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: unknown } } }).process
  return typeof p?.versions?.node === 'string'
}

type PemInput = string | Uint8Array
const pem = (x: PemInput): string => (typeof x === 'string' ? x : new TextDecoder().decode(x))

export async function askIsro(
  endpoint: Endpoint,
  tls: TlsOptions | undefined,
  timeoutMs: number,
): Promise<IsroAnswer> {
  if (!isNode()) return undefined
  const secure = endpoint.url.startsWith('wss:')
  const connect = (): import('node:net').Socket =>
    secure ? tlsConnect(endpoint, tls ?? {}, tlsModule!) : netModule!.connect(endpoint.port, endpoint.host)
  let netModule: typeof import('node:net') | undefined
  let tlsModule: typeof import('node:tls') | undefined
  if (secure) tlsModule = (await import(/* @vite-ignore */ NODE_TLS)) as typeof import('node:tls')
  else netModule = (await import(/* @vite-ignore */ NODE_NET)) as typeof import('node:net')
  return new Promise<IsroAnswer>((resolve) => {
    const socket = connect()
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

function tlsConnect(
  endpoint: Endpoint,
  tls: TlsOptions,
  mod: typeof import('node:tls'),
): import('node:net').Socket {
  const servername = tls.servername ?? (/^[\d.]+$|:/.test(endpoint.host) ? undefined : endpoint.host)
  return mod.connect({
    host: endpoint.host,
    port: endpoint.port,
    ...(servername === undefined ? {} : { servername }),
    ...(tls.ca === undefined
      ? {}
      : { ca: Array.isArray(tls.ca) ? tls.ca.map(pem) : pem(tls.ca as PemInput) }),
    ...(tls.cert === undefined ? {} : { cert: pem(tls.cert) }),
    ...(tls.key === undefined ? {} : { key: pem(tls.key) }),
  })
}
