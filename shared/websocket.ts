/**
 * The WebSocket framing of RFC 6455, as much of it as Conclave speaks: binary
 * messages (one ZooKeeper packet each), ping/pong and the closing handshake;
 * no extensions, no subprotocols, no text. Shared by the server's client port
 * (server/net/ws-server.ts) and the SDK's Node transport
 * (client/transport-ws-node.ts), which do their own opening handshakes.
 *
 * WsFrameDecoder is an explicit parser (as FrameDecoder is for TCP): it
 * checks a frame's header (reserved bits, opcode, masking, control-frame
 * rules, length against the limit) before buffering anything of its payload,
 * and throws WsProtocolError carrying the close code to answer with.
 *
 * Invariants: pure, no node:* imports (the SDK runs in browsers); the decoder
 * takes ownership of the chunks it is given (masked payloads are unmasked in
 * place) and hands out views of them.
 */
import { ByteQueue } from './byte-queue.js'

export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const

/** Close codes used here (RFC 6455 section 7.4.1). */
export const CloseCode = {
  normal: 1000,
  protocolError: 1002,
  unsupportedData: 1003,
  noStatus: 1005,
  invalidPayload: 1007,
  policyViolation: 1008,
  tooBig: 1009,
} as const

/** A breach of the framing rules; `closeCode` is what to close the connection with. */
export class WsProtocolError extends Error {
  constructor(
    readonly closeCode: number,
    message: string,
  ) {
    super(message)
    this.name = 'WsProtocolError'
  }
}

export type WsEvent =
  | { kind: 'message'; data: Uint8Array }
  | { kind: 'ping'; data: Uint8Array }
  | { kind: 'pong' }
  | { kind: 'close'; code: number; reason: string }

/** HTTP header fields of a handshake head, names lower-cased, repeated fields joined with ", ". */
export type HeaderFields = Map<string, string>

/**
 * Parses the header lines of a handshake head (everything after its first
 * line); undefined when a line is not `name: value` (or is an obsolete
 * folded continuation).
 */
export function parseHeaderLines(lines: readonly string[]): HeaderFields | undefined {
  const headers: HeaderFields = new Map()
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon <= 0 || line[0] === ' ' || line[0] === '\t') return undefined
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    const prior = headers.get(name)
    headers.set(name, prior === undefined ? value : `${prior}, ${value}`)
  }
  return headers
}

/** The comma-separated tokens of a header field, lower-cased (`Connection: keep-alive, Upgrade`). */
export function headerTokens(headers: HeaderFields, name: string): string[] {
  return (headers.get(name) ?? '')
    .toLowerCase()
    .split(',')
    .map((t) => t.trim())
}

/** The GUID of the opening handshake (RFC 6455 section 1.3). */
export const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** Control frames carry at most 125 bytes (RFC 6455 section 5.5). */
const CONTROL_PAYLOAD_MAX = 125

/**
 * The header of a frame with FIN set: 2, 4 or 10 bytes, plus room for the
 * 4-byte masking key when `masked` (the caller writes the key at the end).
 */
export function frameHeader(opcode: number, length: number, masked: boolean): Uint8Array {
  const ext = length < 126 ? 0 : length < 65536 ? 2 : 8
  const h = new Uint8Array(2 + ext + (masked ? 4 : 0))
  h[0] = 0x80 | opcode
  const maskBit = masked ? 0x80 : 0
  if (ext === 0) h[1] = maskBit | length
  else if (ext === 2) {
    h[1] = maskBit | 126
    h[2] = length >>> 8
    h[3] = length & 0xff
  } else {
    h[1] = maskBit | 127
    const v = new DataView(h.buffer)
    v.setUint32(2, Math.floor(length / 2 ** 32))
    v.setUint32(6, length >>> 0)
  }
  return h
}

/**
 * One whole frame in one buffer. With `maskKey` (4 bytes; clients must mask
 * every frame) the payload is copied masked; `payload` itself is not touched.
 */
export function encodeFrame(opcode: number, payload: Uint8Array, maskKey?: Uint8Array): Uint8Array {
  const masked = maskKey !== undefined
  const head = frameHeader(opcode, payload.length, masked)
  const out = new Uint8Array(head.length + payload.length)
  out.set(head, 0)
  if (!masked) {
    out.set(payload, head.length)
    return out
  }
  const k = head.length - 4
  out.set(maskKey.subarray(0, 4), k)
  const at = head.length
  for (let i = 0; i < payload.length; i++) out[at + i] = payload[i]! ^ maskKey[i & 3]!
  return out
}

/** The payload of a close frame: the code, then the reason cut to fit 125 bytes. */
export function closePayload(code: number, reason: string): Uint8Array {
  let text = new TextEncoder().encode(reason)
  if (text.length > CONTROL_PAYLOAD_MAX - 2) {
    // Cut on a character boundary: drop continuation bytes (10xxxxxx) at the cut.
    let end = CONTROL_PAYLOAD_MAX - 2
    while (end > 0 && (text[end]! & 0xc0) === 0x80) end--
    text = text.subarray(0, end)
  }
  const out = new Uint8Array(2 + text.length)
  out[0] = code >>> 8
  out[1] = code & 0xff
  out.set(text, 2)
  return out
}

/** Codes a peer may send in a close frame (RFC 6455 section 7.4). */
function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

function unmask(data: Uint8Array, key: Uint8Array): void {
  for (let i = 0; i < data.length; i++) data[i] = data[i]! ^ key[i & 3]!
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export interface WsDecoderOptions {
  /** True on a server: every frame from a client must be masked; false on a client: none may be. */
  expectMasked: boolean
  /** Largest message (all its fragments together) accepted. */
  messageBytesMax: number
}

export class WsFrameDecoder {
  private readonly queue = new ByteQueue()
  /** The frame whose payload is awaited, once its header is consumed. */
  private frame: { fin: boolean; opcode: number; length: number; key: Uint8Array | undefined } | undefined
  /** Fragments of a binary message still missing its final frame. */
  private fragments: Uint8Array[] | undefined
  private fragmentBytes = 0
  private readonly scratch = new Uint8Array(14)

  constructor(private readonly opts: WsDecoderOptions) {}

  /** Bytes held for an incomplete frame. */
  get pendingBytes(): number {
    return this.queue.length + this.fragmentBytes
  }

  /** Feeds bytes (taking ownership of them); returns every complete event. Throws WsProtocolError. */
  push(chunk: Uint8Array): WsEvent[] {
    this.queue.push(chunk)
    const out: WsEvent[] = []
    for (;;) {
      if (this.frame === undefined && !this.readHeader()) return out
      const f = this.frame!
      if (this.queue.length < f.length) return out
      const payload = this.queue.take(f.length)
      this.frame = undefined
      if (f.key !== undefined) unmask(payload, f.key)
      const ev = this.complete(f.fin, f.opcode, payload)
      if (ev !== undefined) out.push(ev)
    }
  }

  /** Consumes a whole header if it has arrived; validates it before any payload is buffered. */
  private readHeader(): boolean {
    if (this.queue.length < 2) return false
    const h = this.queue.peek(2, this.scratch)
    const b0 = h[0]!
    const b1 = h[1]!
    const fin = (b0 & 0x80) !== 0
    const opcode = b0 & 0x0f
    const masked = (b1 & 0x80) !== 0
    const len7 = b1 & 0x7f
    if ((b0 & 0x70) !== 0)
      throw new WsProtocolError(CloseCode.protocolError, 'reserved bits set (no extension was agreed)')
    const control = opcode >= 0x8
    if (control) {
      if (opcode !== Opcode.close && opcode !== Opcode.ping && opcode !== Opcode.pong)
        throw new WsProtocolError(CloseCode.protocolError, `unknown opcode 0x${opcode.toString(16)}`)
      if (!fin) throw new WsProtocolError(CloseCode.protocolError, 'fragmented control frame')
      if (len7 > CONTROL_PAYLOAD_MAX)
        throw new WsProtocolError(CloseCode.protocolError, 'control frame longer than 125 bytes')
    } else if (opcode > Opcode.binary) {
      throw new WsProtocolError(CloseCode.protocolError, `unknown opcode 0x${opcode.toString(16)}`)
    }
    if (masked !== this.opts.expectMasked)
      throw new WsProtocolError(
        CloseCode.protocolError,
        this.opts.expectMasked ? 'unmasked frame from a client' : 'masked frame from a server',
      )
    const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0
    if (this.queue.length < 2 + ext) return false
    const full = this.queue.peek(2 + ext, this.scratch)
    let length = len7
    if (ext === 2) length = (full[2]! << 8) | full[3]!
    else if (ext === 8) {
      const v = new DataView(full.buffer, full.byteOffset, 2 + ext)
      const high = v.getUint32(2)
      // Beyond 2^53 cannot be a length we accept; the limit check below catches the rest.
      if (high > 0x1fffff) throw new WsProtocolError(CloseCode.tooBig, 'frame length beyond 2^53')
      length = high * 2 ** 32 + v.getUint32(6)
    }
    if (!control) {
      if (opcode === Opcode.text)
        throw new WsProtocolError(CloseCode.unsupportedData, 'text messages are not part of the protocol')
      const continuing = this.fragments !== undefined
      if (opcode === Opcode.continuation && !continuing)
        throw new WsProtocolError(CloseCode.protocolError, 'continuation frame without a message to continue')
      if (opcode !== Opcode.continuation && continuing)
        throw new WsProtocolError(CloseCode.protocolError, 'new message before the previous one was finished')
      if (this.fragmentBytes + length > this.opts.messageBytesMax)
        throw new WsProtocolError(
          CloseCode.tooBig,
          `message of ${this.fragmentBytes + length} bytes exceeds the limit of ${this.opts.messageBytesMax}`,
        )
    }
    // The limits are checked: now wait for the masking key, if any.
    const headBytes = 2 + ext + (masked ? 4 : 0)
    if (this.queue.length < headBytes) return false
    const key = masked ? this.queue.peek(headBytes, this.scratch).slice(headBytes - 4, headBytes) : undefined
    this.queue.drop(headBytes)
    this.frame = { fin, opcode, length, key }
    return true
  }

  private complete(fin: boolean, opcode: number, payload: Uint8Array): WsEvent | undefined {
    switch (opcode) {
      case Opcode.ping:
        return { kind: 'ping', data: payload }
      case Opcode.pong:
        return { kind: 'pong' }
      case Opcode.close:
        return this.closeEvent(payload)
    }
    // A data frame: binary or a continuation of one.
    if (fin && this.fragments === undefined) return { kind: 'message', data: payload }
    this.fragments ??= []
    this.fragments.push(payload)
    this.fragmentBytes += payload.length
    if (!fin) return undefined
    const data = concat(this.fragments, this.fragmentBytes)
    this.fragments = undefined
    this.fragmentBytes = 0
    return { kind: 'message', data }
  }

  private closeEvent(payload: Uint8Array): WsEvent {
    if (payload.length === 0) return { kind: 'close', code: CloseCode.noStatus, reason: '' }
    if (payload.length === 1) throw new WsProtocolError(CloseCode.protocolError, 'close frame of one byte')
    const code = (payload[0]! << 8) | payload[1]!
    if (!validCloseCode(code))
      throw new WsProtocolError(CloseCode.protocolError, `invalid close code ${code}`)
    let reason: string
    try {
      reason = utf8.decode(payload.subarray(2))
    } catch {
      throw new WsProtocolError(CloseCode.invalidPayload, 'close reason is not UTF-8')
    }
    return { kind: 'close', code, reason }
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
