/**
 * The WebSocket framing of RFC 6455, as much of it as Conclave speaks: binary
 * messages (one ZooKeeper packet each), ping/pong and the closing handshake;
 * no extensions, no subprotocols, no text. Shared by the server's client port
 * (server/net/ws-connection.ts) and the SDK's Node transport
 * (client/transport-ws-node.ts), which do their own opening handshakes.
 *
 * WsFrameDecoder is an explicit parser (as FrameDecoder is for TCP): it
 * checks a frame's header (reserved bits, opcode, masking, control-frame
 * rules, length against the limit) before buffering anything of its payload,
 * and throws WsProtocolError carrying the close code to answer with. It
 * refuses what ws's Receiver refuses, with the same close codes
 * (test/unit/shared/websocket-differential.test.ts fuzzes the two side by
 * side), except text, which it refuses with 1003.
 *
 * Memory: what a decoder holds is at most about twice the bytes of the
 * unfinished frame and message, plus a constant, however the peer cuts
 * them into frames and TCP segments (issue 15).
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
  /** Events decoded from the same push before the breach: deliver them, then close. */
  events: WsEvent[] = []

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
  out.set(payload, head.length)
  applyMask(out.subarray(head.length), maskKey)
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

/** Payloads shorter than this are (un)masked a byte at a time; longer ones a 32-bit word at a time. */
const WORD_MASK_BYTES_MIN = 32
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/**
 * XORs `data` in place with the 4-byte masking key, byte i with key[i & 3]
 * (masking and unmasking are the same). Longer payloads go a 32-bit word at
 * a time over the 4-aligned middle of the buffer: a byte loop was ~6% of a
 * standalone server's busy time under 1 KiB writes (every client frame is
 * masked), and the SDK masks every frame it sends the same way.
 */
export function applyMask(data: Uint8Array, key: Uint8Array): void {
  const n = data.length
  if (n < WORD_MASK_BYTES_MIN) {
    for (let i = 0; i < n; i++) data[i] = data[i]! ^ key[i & 3]!
    return
  }
  // Bytes up to the first 4-aligned address, then whole words, then the tail.
  const head = (4 - (data.byteOffset & 3)) & 3
  for (let i = 0; i < head; i++) data[i] = data[i]! ^ key[i & 3]!
  const b0 = key[head & 3]!
  const b1 = key[(head + 1) & 3]!
  const b2 = key[(head + 2) & 3]!
  const b3 = key[(head + 3) & 3]!
  const word = LITTLE_ENDIAN
    ? b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)
    : (b0 << 24) | (b1 << 16) | (b2 << 8) | b3
  const words = (n - head) >>> 2
  const w = new Int32Array(data.buffer, data.byteOffset + head, words)
  for (let i = 0; i < words; i++) w[i] = w[i]! ^ word
  for (let i = head + words * 4; i < n; i++) data[i] = data[i]! ^ key[i & 3]!
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export interface WsDecoderOptions {
  /** True on a server: every frame from a client must be masked; false on a client: none may be. */
  expectMasked: boolean
  /** Largest message (all its fragments together) accepted. */
  messageBytesMax: number
}

/** The first size of the buffer a fragmented message is gathered in. */
const MESSAGE_BUFFER_BYTES_MIN = 1024

export class WsFrameDecoder {
  private readonly queue = new ByteQueue()
  /**
   * The frame whose payload is awaited, once its header is consumed. Fields,
   * not an object per frame: a peer may send millions of tiny frames.
   */
  private inFrame = false
  private frameFin = false
  private frameOpcode = 0
  private frameLength = 0
  private frameMasked = false
  private readonly frameKey = new Uint8Array(4)
  /** A binary message is missing its final frame. */
  private continuing = false
  /**
   * The fragments so far, copied end to end: kept as views, one-byte
   * fragments cost ~100 bytes each and pin the chunks they came in; empty
   * ones cost nothing here (issue 15). Capacity at most twice the bytes held,
   * or MESSAGE_BUFFER_BYTES_MIN.
   */
  private gathered: Uint8Array | undefined
  private gatheredBytes = 0
  /** A close frame was read: the peer sends nothing after it (RFC 6455 section 5.5.1). */
  private closed = false
  private failed: WsProtocolError | undefined
  private readonly scratch = new Uint8Array(14)

  constructor(private readonly opts: WsDecoderOptions) {}

  /** Bytes held for an incomplete frame or message. */
  get pendingBytes(): number {
    return this.queue.length + this.gatheredBytes
  }

  /**
   * Feeds bytes (taking ownership of them); returns every complete event.
   * Throws WsProtocolError, carrying the events decoded before the breach
   * (a receiver delivers them first, as ws does, so what a peer's frames do
   * does not depend on how TCP cut them); the decoder then refuses
   * everything. Bytes after a close frame are ignored.
   */
  push(chunk: Uint8Array): WsEvent[] {
    if (this.failed !== undefined) throw this.failed
    if (this.closed) return []
    this.queue.push(chunk)
    const out: WsEvent[] = []
    try {
      this.decode(out)
    } catch (err) {
      if (!(err instanceof WsProtocolError)) throw err
      err.events = out
      this.failed = new WsProtocolError(err.closeCode, err.message)
      throw err
    }
    return out
  }

  private decode(out: WsEvent[]): void {
    while (!this.closed) {
      if (!this.inFrame && !this.readHeader()) return
      if (this.queue.length < this.frameLength) return
      const payload = this.queue.take(this.frameLength)
      this.inFrame = false
      if (this.frameMasked) applyMask(payload, this.frameKey)
      const ev = this.complete(this.frameFin, this.frameOpcode, payload)
      if (ev !== undefined) out.push(ev)
    }
    this.queue.drop(this.queue.length)
  }

  /**
   * Consumes a whole header if it has arrived. Everything the first two bytes
   * can break is checked on them, in the order ws's receiver checks it; the
   * length is checked against the limit before any payload is buffered.
   */
  private readHeader(): boolean {
    const avail = Math.min(this.queue.length, 14)
    if (avail < 2) return false
    // One copy of what there is of the header (at most 14 bytes), looked at in place.
    const h = this.queue.peek(avail, this.scratch)
    const b0 = h[0]!
    const b1 = h[1]!
    const fin = (b0 & 0x80) !== 0
    const opcode = b0 & 0x0f
    const masked = (b1 & 0x80) !== 0
    const len7 = b1 & 0x7f
    this.checkFirstBytes(b0, fin, opcode, masked, len7)
    const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0
    if (avail < 2 + ext) return false
    let length = len7
    if (ext === 2) length = (h[2]! << 8) | h[3]!
    else if (ext === 8) {
      const high = ((h[2]! << 24) | (h[3]! << 16) | (h[4]! << 8) | h[5]!) >>> 0
      // Beyond 2^53 cannot be a length we accept; the limit check below catches the rest.
      if (high > 0x1fffff) throw new WsProtocolError(CloseCode.tooBig, 'frame length beyond 2^53')
      length = high * 2 ** 32 + (((h[6]! << 24) | (h[7]! << 16) | (h[8]! << 8) | h[9]!) >>> 0)
    }
    if (opcode < 0x8 && this.gatheredBytes + length > this.opts.messageBytesMax)
      throw new WsProtocolError(
        CloseCode.tooBig,
        `message of ${this.gatheredBytes + length} bytes exceeds the limit of ${this.opts.messageBytesMax}`,
      )
    // The limits are checked: now wait for the masking key, if any.
    const headBytes = 2 + ext + (masked ? 4 : 0)
    if (avail < headBytes) return false
    if (masked) for (let i = 0; i < 4; i++) this.frameKey[i] = h[headBytes - 4 + i]!
    this.queue.drop(headBytes)
    this.inFrame = true
    this.frameFin = fin
    this.frameOpcode = opcode
    this.frameLength = length
    this.frameMasked = masked
    return true
  }

  /** The rules a frame's first two bytes can break. */
  private checkFirstBytes(b0: number, fin: boolean, opcode: number, masked: boolean, len7: number): void {
    if ((b0 & 0x70) !== 0)
      throw new WsProtocolError(CloseCode.protocolError, 'reserved bits set (no extension was agreed)')
    if (opcode >= 0x8) {
      if (opcode !== Opcode.close && opcode !== Opcode.ping && opcode !== Opcode.pong)
        throw new WsProtocolError(CloseCode.protocolError, `unknown opcode 0x${opcode.toString(16)}`)
      if (!fin) throw new WsProtocolError(CloseCode.protocolError, 'fragmented control frame')
      if (len7 > CONTROL_PAYLOAD_MAX)
        throw new WsProtocolError(CloseCode.protocolError, 'control frame longer than 125 bytes')
      if (opcode === Opcode.close && len7 === 1)
        throw new WsProtocolError(CloseCode.protocolError, 'close frame of one byte')
    } else if (opcode > Opcode.binary) {
      throw new WsProtocolError(CloseCode.protocolError, `unknown opcode 0x${opcode.toString(16)}`)
    } else if (opcode === Opcode.continuation && !this.continuing) {
      throw new WsProtocolError(CloseCode.protocolError, 'continuation frame without a message to continue')
    } else if (opcode !== Opcode.continuation && this.continuing) {
      throw new WsProtocolError(CloseCode.protocolError, 'new message before the previous one was finished')
    }
    if (masked !== this.opts.expectMasked)
      throw new WsProtocolError(
        CloseCode.protocolError,
        this.opts.expectMasked ? 'unmasked frame from a client' : 'masked frame from a server',
      )
    if (opcode === Opcode.text)
      throw new WsProtocolError(CloseCode.unsupportedData, 'text messages are not part of the protocol')
  }

  private complete(fin: boolean, opcode: number, payload: Uint8Array): WsEvent | undefined {
    switch (opcode) {
      case Opcode.ping:
        return { kind: 'ping', data: payload }
      case Opcode.pong:
        return { kind: 'pong' }
      case Opcode.close:
        this.closed = true
        return this.closeEvent(payload)
    }
    // A data frame: binary or a continuation of one.
    if (fin && !this.continuing) return { kind: 'message', data: payload }
    this.continuing = !fin
    this.gather(payload)
    if (!fin) return undefined
    const data = this.gathered?.subarray(0, this.gatheredBytes) ?? new Uint8Array(0)
    this.gathered = undefined
    this.gatheredBytes = 0
    return { kind: 'message', data }
  }

  /** Appends a fragment to the message so far, growing its buffer by doubling (within the limit). */
  private gather(payload: Uint8Array): void {
    if (payload.length === 0) return
    const need = this.gatheredBytes + payload.length
    if (this.gathered === undefined || need > this.gathered.length) {
      const doubled = Math.max(MESSAGE_BUFFER_BYTES_MIN, 2 * (this.gathered?.length ?? 0))
      const grown = new Uint8Array(Math.max(need, Math.min(doubled, this.opts.messageBytesMax)))
      if (this.gathered !== undefined) grown.set(this.gathered.subarray(0, this.gatheredBytes))
      this.gathered = grown
    }
    this.gathered.set(payload, this.gatheredBytes)
    this.gatheredBytes = need
  }

  private closeEvent(payload: Uint8Array): WsEvent {
    if (payload.length === 0) return { kind: 'close', code: CloseCode.noStatus, reason: '' }
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
