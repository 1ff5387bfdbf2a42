/**
 * TLS on the client port. The listener sniffs a connection's first bytes: a
 * TLS record (0x16, a ClientHello) is handed here, wrapped in a server-side
 * TLSSocket that replays the sniffed bytes, and once the handshake is done
 * the decrypted stream goes back to the listener's usual sniffing (a
 * WebSocket upgrade, ZooKeeper framing or a four-letter word), so wss://
 * and ZooKeeper's TLS clients (zkCli.sh with Netty, kazoo's use_ssl) share
 * the one port with plaintext clients. With `only`, plaintext is refused.
 *
 * A client certificate, when asked for (`want`, `need`), is verified against
 * the configured CA after the handshake: a verified one gives the
 * connection its x509 identity (its RFC 2253 subject); one that does not
 * verify (expired, another CA) closes the connection with the reason logged,
 * and a WebSocket client is told why in a 403 status line.
 *
 * Invariants: every socket handed here ends in exactly one of `ready` or
 * `refused`, or is destroyed by its peer first; no socket waits for a
 * handshake longer than TLS_HANDSHAKE_TIMEOUT_MS.
 * Imports node:net and node:tls types; the only TLS wrapper of client sockets.
 */
import type { Socket } from 'node:net'
import { type SecureContext, TLSSocket } from 'node:tls'
import { peerVerifyError, x509Subject } from './x509-identity.js'

/** The first byte of a TLS handshake record (RFC 8446 §5.1: ContentType.handshake). */
export const TLS_HANDSHAKE_RECORD = 0x16

/** A client that starts TLS must finish its handshake within this. */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000

/** How long a refused client has to send its first request, to be told why. */
const REFUSAL_GRACE_MS = 2000

export interface ClientTlsOptions {
  /** The context for a new connection (it follows the certificate files: ReloadingSecureContext). */
  context: () => SecureContext
  /** Ask clients for a certificate: none, want (checked when given), need. */
  clientAuth: 'none' | 'want' | 'need'
  /** Refuse plaintext clients. */
  only: boolean
}

/** What a TLS client proved: its certificate's subject, if it gave one that verified. */
export interface ClientTlsIdentity {
  x509Subject: string | undefined
}

const HTTP_REQUEST = /^[A-Z]{3,7} /

/**
 * Ends a connection that TLS-handshook but may not stay: a WebSocket client
 * reads the reason in a 403 status line, a ZooKeeper client sees its
 * connection closed.
 */
function refuseAfterHandshake(secure: TLSSocket, reason: string): void {
  const timer = setTimeout(() => secure.destroy(), REFUSAL_GRACE_MS)
  timer.unref()
  secure.once('data', (chunk: Buffer) => {
    if (!HTTP_REQUEST.test(chunk.toString('latin1', 0, 8))) return secure.destroy()
    secure.end(
      `HTTP/1.1 403 ${reason.replace(/[\r\n]/g, ' ')}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
    )
  })
  secure.once('close', () => clearTimeout(timer))
}

/**
 * Runs the TLS handshake on a socket whose first chunk (`first`, starting
 * with TLS_HANDSHAKE_RECORD) was already read; then `ready` with the
 * decrypted socket, or `refused` with the reason.
 */
export function acceptTls(
  socket: Socket,
  first: Buffer,
  opts: ClientTlsOptions,
  ready: (secure: TLSSocket, identity: ClientTlsIdentity) => void,
  refused: (why: string) => void,
): void {
  // Replay the sniffed bytes: a TLSSocket first consumes what is buffered in the socket it wraps.
  socket.pause()
  socket.unshift(first)
  const secure = new TLSSocket(socket, {
    isServer: true,
    secureContext: opts.context(),
    requestCert: opts.clientAuth !== 'none',
    // Judged below, after the handshake, so that the reason can be logged and told.
    rejectUnauthorized: false,
  })
  let settled = false
  const settle = (): boolean => {
    if (settled) return false
    settled = true
    clearTimeout(timer)
    return true
  }
  const timer = setTimeout(() => {
    if (!settle()) return
    secure.destroy()
    refused(`no TLS handshake within ${TLS_HANDSHAKE_TIMEOUT_MS / 1000} s`)
  }, TLS_HANDSHAKE_TIMEOUT_MS)
  timer.unref()
  secure.on('error', (err) => {
    if (settle()) refused(`TLS handshake failed: ${err.message}`)
  })
  secure.once('close', () => {
    if (settle()) refused('client closed the connection during the TLS handshake')
  })
  secure.once('secure', () => {
    if (!settle()) return
    const cert = secure.getPeerX509Certificate()
    if (cert !== undefined) {
      const why = peerVerifyError(secure)
      if (why !== undefined) {
        const reason = `client certificate refused: ${why}`
        refuseAfterHandshake(secure, reason)
        return refused(`${reason}; subject ${x509Subject(cert)}`)
      }
    } else if (opts.clientAuth === 'need') {
      const reason = 'client certificate required (clientTlsClientAuth=need), and none was given'
      refuseAfterHandshake(secure, reason)
      return refused(reason)
    }
    ready(secure, { x509Subject: cert === undefined ? undefined : x509Subject(cert) })
  })
}

/** The answer to a plaintext client on a TLS-only port: a WebSocket client reads why; others are closed. */
export function refusePlaintext(socket: Socket, first: Buffer): void {
  if (!HTTP_REQUEST.test(first.toString('latin1', 0, 8))) {
    socket.destroy()
    return
  }
  socket.end(
    'HTTP/1.1 403 this port takes only TLS (clientTlsOnly): use wss://\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
  )
  setTimeout(() => socket.destroy(), REFUSAL_GRACE_MS).unref()
}
