/**
 * SHA-1 and base64 in pure JS, for ZooKeeper's digest ACL scheme:
 * `generateDigest('user:password')` = `user:` + base64(sha1('user:password')),
 * exactly as DigestAuthenticationProvider.generateDigest computes it.
 * SHA-1 is what ZooKeeper's wire-compatible digest ids require; it is not
 * used here for anything that needs collision resistance.
 *
 * Invariants: output is byte-identical to FIPS 180-4 SHA-1 and RFC 4648
 * base64 (with padding).
 * Must not import node:crypto or any node:* module (the core is pure).
 */

const utf8 = new TextEncoder()

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r))
}

/** Pads the message as SHA-1 requires: 0x80, zeros, then the bit length (64-bit big-endian). */
function pad(msg: Uint8Array): Uint8Array {
  const blocks = Math.ceil((msg.length + 9) / 64)
  const out = new Uint8Array(blocks * 64)
  out.set(msg)
  out[msg.length] = 0x80
  const view = new DataView(out.buffer)
  const bits = msg.length * 8
  view.setUint32(out.length - 8, Math.floor(bits / 2 ** 32))
  view.setUint32(out.length - 4, bits >>> 0)
  return out
}

function compress(h: Int32Array, view: DataView, offset: number, w: Int32Array): void {
  for (let t = 0; t < 16; t++) w[t] = view.getInt32(offset + t * 4)
  for (let t = 16; t < 80; t++) w[t] = rotl(w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!, 1)
  let a = h[0]!
  let b = h[1]!
  let c = h[2]!
  let d = h[3]!
  let e = h[4]!
  for (let t = 0; t < 80; t++) {
    let f: number
    let k: number
    if (t < 20) {
      f = (b & c) | (~b & d)
      k = 0x5a827999
    } else if (t < 40) {
      f = b ^ c ^ d
      k = 0x6ed9eba1
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d)
      k = 0x8f1bbcdc
    } else {
      f = b ^ c ^ d
      k = 0xca62c1d6
    }
    const temp = (rotl(a, 5) + f + e + k + w[t]!) | 0
    e = d
    d = c
    c = rotl(b, 30)
    b = a
    a = temp
  }
  h[0] = (h[0]! + a) | 0
  h[1] = (h[1]! + b) | 0
  h[2] = (h[2]! + c) | 0
  h[3] = (h[3]! + d) | 0
  h[4] = (h[4]! + e) | 0
}

/** SHA-1 of bytes (or of a string's UTF-8 encoding): 20 bytes. */
export function sha1(input: Uint8Array | string): Uint8Array {
  const msg = typeof input === 'string' ? utf8.encode(input) : input
  const padded = pad(msg)
  const view = new DataView(padded.buffer)
  const h = Int32Array.of(0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0)
  const w = new Int32Array(80)
  for (let off = 0; off < padded.length; off += 64) compress(h, view, off, w)
  const out = new Uint8Array(20)
  const outView = new DataView(out.buffer)
  for (let i = 0; i < 5; i++) outView.setInt32(i * 4, h[i]!)
  return out
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** RFC 4648 base64 with '=' padding. */
export function base64(bytes: Uint8Array): string {
  let out = ''
  let i = 0
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    out += B64[n >>> 18]! + B64[(n >>> 12) & 63]! + B64[(n >>> 6) & 63]! + B64[n & 63]!
  }
  const rest = bytes.length - i
  if (rest === 1) {
    const n = bytes[i]! << 16
    out += `${B64[n >>> 18]!}${B64[(n >>> 12) & 63]!}==`
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8)
    out += `${B64[n >>> 18]!}${B64[(n >>> 12) & 63]!}${B64[(n >>> 6) & 63]!}=`
  }
  return out
}

/**
 * ZooKeeper's DigestAuthenticationProvider.generateDigest: for credentials
 * `user:password` the digest id is `user:base64(sha1("user:password"))`.
 * The user is everything before the first ':'.
 */
export function generateDigest(credentials: string): string {
  const colon = credentials.indexOf(':')
  const user = colon < 0 ? credentials : credentials.slice(0, colon)
  return `${user}:${base64(sha1(credentials))}`
}
