/**
 * Differential fuzzing of our WebSocket decoder (shared/websocket.ts)
 * against the `ws` package's own Receiver (issue 15): the same random byte
 * streams — valid frames, fragmented messages with pings between their
 * fragments, empty fragments, control frames, close frames good and bad,
 * reserved bits, unknown opcodes, lengths in every encoding and over the
 * limit, masked and unmasked, garbage — cut into chunks at random points,
 * go into both, as a server and as a client. The same messages, pings,
 * pongs and closes must come out, or both must refuse with the same close
 * code at the same point. The one difference by design: text, which ws
 * accepts and we refuse with 1003 at its header (everything before must
 * agree).
 *
 * Seeded and bounded: WS_FUZZ_SEED (default 1) and WS_FUZZ_CASES (default
 * 2000) choose the cases; a failure names the case's seed, and
 * `WS_FUZZ_SEED=<it> WS_FUZZ_CASES=1 npx vitest run <this file>` replays it.
 */
import { describe, expect, it } from 'vitest'
import * as wsPackage from 'ws'
import { Prng } from '../../../server/core/prng.js'
import {
  CloseCode,
  Opcode,
  type WsEvent,
  WsFrameDecoder,
  WsProtocolError,
} from '../../../shared/websocket.js'

/** ws's Receiver, a Writable that emits what it decodes; ws's typings (@types/ws) do not declare it. */
interface WsReceiver {
  on(event: string, listener: (...args: never[]) => void): this
  write(chunk: Buffer): boolean
}
type ReceiverOptions = { isServer: boolean; maxPayload: number; binaryType: 'nodebuffer' }
const { Receiver } = wsPackage as unknown as { Receiver: new (opts: ReceiverOptions) => WsReceiver }

const FIRST_SEED = Number(process.env.WS_FUZZ_SEED ?? 1)
const CASES = Number(process.env.WS_FUZZ_CASES ?? 2000)
/** The message limit both decoders get: small, so streams reach it. */
const MESSAGE_BYTES_MAX = 2048

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** A payload in a line: its length and a hash of its bytes (FNV-1a). */
function digest(b: Uint8Array): string {
  let h = 0x811c9dc5
  for (const x of b) h = Math.imul(h ^ x, 0x01000193) >>> 0
  return `${b.length}:${h.toString(16)}`
}

function bytes(prng: Prng, n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = prng.int(0, 255)
  return out
}

/** A frame with any first byte, any length encoding, masked or not. */
function rawFrame(
  prng: Prng,
  b0: number,
  payload: Uint8Array,
  masked: boolean,
  lengthForm?: 7 | 16 | 64,
): Uint8Array {
  const n = payload.length
  const form = lengthForm ?? (n < 126 ? 7 : n < 65536 ? 16 : 64)
  const ext = form === 7 ? 0 : form === 16 ? 2 : 8
  const key = masked ? bytes(prng, 4) : undefined
  const out = new Uint8Array(2 + ext + (masked ? 4 : 0) + n)
  out[0] = b0
  out[1] = (masked ? 0x80 : 0) | (form === 7 ? n : form === 16 ? 126 : 127)
  if (form === 16) {
    out[2] = n >>> 8
    out[3] = n & 0xff
  } else if (form === 64) {
    new DataView(out.buffer).setUint32(6, n)
  }
  let at = 2 + ext
  if (key !== undefined) {
    out.set(key, at)
    at += 4
  }
  for (let i = 0; i < n; i++) out[at + i] = key === undefined ? payload[i]! : payload[i]! ^ key[i & 3]!
  return out
}

const CLOSE_CODES = [
  1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1014, 1015, 2999, 3000, 4999, 5000, 0,
]

function closePayloadOf(prng: Prng): Uint8Array {
  switch (prng.int(0, 5)) {
    case 0:
      return new Uint8Array(0)
    case 1:
      return bytes(prng, 1)
    case 2: {
      // A reason that is not UTF-8.
      const code = prng.pick(CLOSE_CODES)
      return new Uint8Array([code >>> 8, code & 0xff, 0xc3, 0x28])
    }
    default: {
      const code = prng.pick(CLOSE_CODES)
      const reason = new TextEncoder().encode('bye'.repeat(prng.int(0, 3)))
      return new Uint8Array([code >>> 8, code & 0xff, ...reason])
    }
  }
}

/** Payload lengths around the interesting boundaries. */
function length(prng: Prng): number {
  return prng.pick([
    0,
    0,
    1,
    2,
    5,
    125,
    126,
    127,
    300,
    1024,
    MESSAGE_BYTES_MAX - 1,
    MESSAGE_BYTES_MAX,
    MESSAGE_BYTES_MAX + 1,
  ])
}

/**
 * One piece of a stream from a peer that masks (`masked`) as it should, or
 * mostly: nine in ten are valid frames, so streams get deep before a breach.
 */
function piece(prng: Prng, masked: boolean): Uint8Array[] {
  const m = () => (prng.chance(0.01) ? !masked : masked)
  const FIN = 0x80
  const valid = prng.chance(0.9)
  switch (valid ? prng.pick([0, 1, 2, 3, 4, 5, 6, 13]) : prng.int(5, 12)) {
    case 0:
    case 1:
    case 2:
      return [rawFrame(prng, FIN | Opcode.binary, bytes(prng, length(prng)), m())]
    case 3:
    case 4: {
      // A fragmented message, control frames between fragments, some fragments empty.
      const out = [
        rawFrame(prng, Opcode.binary, bytes(prng, prng.int(0, 3) === 0 ? 0 : prng.int(1, 700)), m()),
      ]
      const n = prng.int(0, 6)
      for (let i = 0; i < n; i++) {
        if (prng.chance(0.3)) out.push(rawFrame(prng, FIN | Opcode.ping, bytes(prng, prng.int(0, 10)), m()))
        const size = prng.chance(0.4) ? 0 : prng.int(1, 700)
        out.push(rawFrame(prng, Opcode.continuation, bytes(prng, size), m()))
      }
      if (prng.chance(0.85))
        out.push(rawFrame(prng, FIN | Opcode.continuation, bytes(prng, prng.int(0, 40)), m()))
      return out
    }
    case 5:
      return [rawFrame(prng, FIN | Opcode.ping, bytes(prng, prng.pick([0, 1, 125, 126])), m())]
    case 6:
      return [rawFrame(prng, FIN | Opcode.pong, bytes(prng, prng.int(0, 20)), m())]
    case 7:
      return [rawFrame(prng, FIN | Opcode.close, closePayloadOf(prng), m())]
    case 8:
      // Reserved bits, or a reserved opcode.
      return [
        rawFrame(
          prng,
          prng.chance(0.5)
            ? FIN | (prng.pick([0x10, 0x20, 0x40]) as number) | Opcode.binary
            : FIN | prng.pick([3, 4, 7, 0xb, 0xf]),
          bytes(prng, prng.int(0, 5)),
          m(),
        ),
      ]
    case 9:
      // A fragmented control frame, or a continuation with nothing to continue.
      return [rawFrame(prng, prng.chance(0.5) ? Opcode.ping : FIN | Opcode.continuation, bytes(prng, 3), m())]
    case 10:
      // A length in a longer form than needed (allowed by both), or a 64-bit length beyond 2^53.
      if (prng.chance(0.5))
        return [
          rawFrame(
            prng,
            FIN | Opcode.binary,
            bytes(prng, prng.int(0, 20)),
            m(),
            prng.pick([16, 64] as const),
          ),
        ]
      return [new Uint8Array([FIN | Opcode.binary, (masked ? 0x80 : 0) | 127, 0x00, 0x20, 0, 0, 0, 0, 0, 0])]
    case 11:
      return [rawFrame(prng, FIN | Opcode.text, new TextEncoder().encode('hi'), m())]
    case 12:
      // Garbage.
      return [bytes(prng, prng.int(1, 12))]
    default:
      return [rawFrame(prng, FIN | Opcode.binary, bytes(prng, prng.int(0, 60)), m())]
  }
}

/** A stream of pieces cut into chunks at random points. */
function stream(prng: Prng, masked: boolean): Uint8Array[] {
  const parts: Uint8Array[] = []
  const n = prng.int(1, 12)
  for (let i = 0; i < n; i++) parts.push(...piece(prng, masked))
  const all = Buffer.concat(parts)
  const chunks: Uint8Array[] = []
  const oneByte = prng.chance(0.1)
  for (let at = 0; at < all.length; ) {
    const size = oneByte ? 1 : prng.int(1, prng.chance(0.5) ? 8 : 400)
    chunks.push(new Uint8Array(all.subarray(at, at + size)))
    at += size
  }
  return chunks
}

function normal(ev: WsEvent): string {
  switch (ev.kind) {
    case 'message':
      return `message ${digest(ev.data)}`
    case 'ping':
      return `ping ${digest(ev.data)}`
    case 'pong':
      return 'pong'
    case 'close':
      return `close ${ev.code}`
  }
}

function ours(chunks: Uint8Array[], isServer: boolean): string[] {
  const d = new WsFrameDecoder({ expectMasked: isServer, messageBytesMax: MESSAGE_BYTES_MAX })
  const out: string[] = []
  for (const c of chunks) {
    try {
      // The decoder takes its chunks over (unmasks in place): give it a copy.
      for (const ev of d.push(c.slice())) out.push(normal(ev))
    } catch (err) {
      expect(err).toBeInstanceOf(WsProtocolError)
      const e = err as WsProtocolError
      out.push(...(e.events ?? []).map(normal), `error ${e.closeCode}`)
      return out
    }
    if (out.at(-1)?.startsWith('close')) return out
  }
  return out
}

/** ws keeps an error's close code under a symbol of its own. */
function statusCode(err: Error): number {
  const key = Object.getOwnPropertySymbols(err).find((s) => s.description === 'status-code')
  return key === undefined ? -1 : ((err as unknown as Record<symbol, number>)[key] ?? -1)
}

async function theirs(chunks: Uint8Array[], isServer: boolean): Promise<string[]> {
  const r = new Receiver({ isServer, maxPayload: MESSAGE_BYTES_MAX, binaryType: 'nodebuffer' })
  const out: string[] = []
  let done = false
  r.on('message', (data: Buffer, isBinary: boolean) =>
    out.push(isBinary ? `message ${digest(data)}` : 'text'),
  )
  r.on('ping', (data: Buffer) => out.push(`ping ${digest(data)}`))
  r.on('pong', () => out.push('pong'))
  r.on('conclude', (code: number) => {
    out.push(`close ${code}`)
    done = true
  })
  r.on('error', (err: Error) => {
    if (done) return
    out.push(`error ${statusCode(err)}`)
    done = true
  })
  for (const c of chunks) {
    if (done) break
    r.write(Buffer.from(c))
  }
  // ws reports a refusal on the next tick; after one, it processes nothing more.
  await new Promise((resolve) => setImmediate(resolve))
  return out
}

/** Ours must match ws, but for text, which we refuse at its header: everything before it must match. */
function agree(mine: string[], ws: string[]): boolean {
  if (mine.at(-1) === `error ${CloseCode.unsupportedData}`) {
    const before = mine.slice(0, -1)
    return JSON.stringify(ws.slice(0, before.length)) === JSON.stringify(before)
  }
  return JSON.stringify(mine) === JSON.stringify(ws)
}

describe('our WebSocket decoder against ws (differential fuzz)', () => {
  for (const isServer of [true, false]) {
    it(`agrees with ws's Receiver on ${CASES} random streams, as a ${isServer ? 'server' : 'client'}`, async () => {
      const kinds = new Map<string, number>()
      for (let seed = FIRST_SEED; seed < FIRST_SEED + CASES; seed++) {
        const prng = new Prng(seed).fork(isServer ? 'server' : 'client')
        const chunks = stream(prng, isServer)
        const mine = ours(chunks, isServer)
        const ws = await theirs(chunks, isServer)
        if (!agree(mine, ws)) {
          const replay = `WS_FUZZ_SEED=${seed} WS_FUZZ_CASES=1`
          expect.fail(
            `seed ${seed} (${replay}): ours ${JSON.stringify(mine)}\nws   ${JSON.stringify(ws)}\n` +
              `stream (chunks in hex) ${chunks.map(hex).join(' ').slice(0, 4000)}`,
          )
        }
        const last = mine.at(-1)?.replace(/^(message|ping) .*/, '$1') ?? 'nothing'
        kinds.set(last, (kinds.get(last) ?? 0) + 1)
      }
      // The streams reach every outcome: messages, closes, and each kind of refusal.
      if (CASES >= 1000)
        for (const k of ['message', 'close 1000', 'error 1002', 'error 1003', 'error 1007', 'error 1009'])
          expect(kinds.get(k) ?? 0, `${k} in ${JSON.stringify([...kinds])}`).toBeGreaterThan(0)
    })
  }
})
