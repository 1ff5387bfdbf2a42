/**
 * Who the other end of a TLS connection is: the subject of its certificate
 * as the `x509` ACL scheme names it, the names a quorum peer's certificate
 * carries, and why a certificate was not verified.
 *
 * The subject is written as Java's X500Principal.getName() (RFC 2253) writes
 * it, which is what ZooKeeper's X509AuthenticationProvider puts in an x509
 * id: the relative names from the most specific (CN) to the least (C),
 * separated by commas, values escaped as RFC 2253 says (OpenSSL does the
 * escaping). Attribute types Java has no keyword for keep OpenSSL's short
 * name (`emailAddress=…`), where Java writes the OID and the DER value in hex.
 *
 * Imports only node:tls and node:crypto types; no state.
 */
import type { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'

/** OpenSSL short names that RFC 2253 (and Java) write differently. */
const RFC2253_TYPES: ReadonlyMap<string, string> = new Map([['street', 'STREET']])

/** `CN=client,OU=eng,O=Acme\, Inc.,C=US`: the certificate's subject in RFC 2253 order and form. */
export function x509Subject(cert: X509Certificate): string {
  // Node prints one relative name per line, most significant first, values RFC 2253-escaped.
  return cert.subject
    .split('\n')
    .filter((line) => line !== '')
    .reverse()
    .map((rdn) =>
      rdn
        .split(' + ')
        .map((ava) => {
          const eq = ava.indexOf('=')
          if (eq < 0) return ava
          const type = ava.slice(0, eq)
          return `${RFC2253_TYPES.get(type) ?? type}${ava.slice(eq)}`
        })
        .join('+'),
    )
    .join(',')
}

const SAN_ENTRY = /(DNS|IP Address|URI|email):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g

/**
 * The names a certificate is known by: its RFC 2253 subject, each CN, and
 * each DNS, IP, URI and email subjectAltName (quorumTlsAllowedNames matches
 * any of them).
 */
export function certificateNames(cert: X509Certificate): string[] {
  const names = [x509Subject(cert)]
  for (const line of cert.subject.split('\n'))
    for (const ava of line.split(' + ')) if (ava.startsWith('CN=')) names.push(unescapeRfc2253(ava.slice(3)))
  for (const m of (cert.subjectAltName ?? '').matchAll(SAN_ENTRY)) {
    const raw = m[2]!
    // Node quotes a value with special characters as a JSON string.
    names.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw)
  }
  return names
}

function unescapeRfc2253(value: string): string {
  return value.replace(/\\([0-9A-Fa-f]{2}|.)/g, (_, e: string) =>
    e.length === 2 ? String.fromCharCode(Number.parseInt(e, 16)) : e,
  )
}

/**
 * Why the certificate the other end presented did not verify against our
 * CA (expired, another CA, …), or undefined if it did. For a server-side
 * socket made with `new TLSSocket(…, { isServer: true })` Node sets no
 * `authorized`/`authorizationError` (tls.Server does that in its own
 * connection listener), so this asks the TLS handle, as tls.Server does (and
 * gets the reason as a sentence, where a client socket's authorizationError
 * holds only its code).
 */
export function peerVerifyError(socket: TLSSocket): string | undefined {
  const handle = (socket as unknown as { ssl?: { verifyError?: () => (Error & { code?: string }) | null } })
    .ssl
  if (typeof handle?.verifyError !== 'function')
    return 'this Node.js cannot tell whether the certificate verified (no TLS handle)'
  const err = handle.verifyError()
  return err === null ? undefined : `${err.message}${err.code === undefined ? '' : ` (${err.code})`}`
}
