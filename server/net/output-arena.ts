/**
 * OutputArena: where the client connections keep what they send during one
 * turn of the event loop until its one write (socket-connection.ts). A
 * packet is copied in when it is sent, so the caller can encode every reply
 * into one reused buffer: before, each reply was first copied out of its
 * encoder into a buffer of its own (an ArrayBuffer allocation per reply)
 * and then again into the turn's write.
 *
 * Memory: slabs of SLAB_BYTES, shared by all connections. A piece holds its
 * slab until the connection's turn is written (the next check phase), so a
 * slab is recycled a turn after it fills; SPARE_SLABS_MAX recycled slabs
 * are kept. What a client that does not read holds is the write it was
 * given (exact bytes), never a slab.
 *
 * Invariants: a piece is released exactly once; a slab is reused only when
 * no piece of it is held (the current slab with none held is empty: used 0);
 * put() takes pieces of at most PIECE_BYTES_MAX.
 *
 * Must not import: node:net (the sockets are socket-connection.ts's).
 */
import { assert, fail } from '../../shared/assert.js'

const SLAB_BYTES = 64 * 1024
/** Larger parts are written as they are (socket-connection.ts gathers parts under its GATHER_BYTES_MAX, the same). */
export const PIECE_BYTES_MAX = SLAB_BYTES / 4
const SPARE_SLABS_MAX = 2

interface Slab {
  readonly bytes: Uint8Array
  used: number
  /** Pieces of this slab not yet released. */
  held: number
}

/** Bytes copied into a slab, held until released. */
export interface Piece {
  readonly slab: Slab
  readonly view: Uint8Array
}

export class OutputArena {
  private current: Slab = OutputArena.slab()
  private readonly spare: Slab[] = []

  private static slab(): Slab {
    return { bytes: new Uint8Array(SLAB_BYTES), used: 0, held: 0 }
  }

  /**
   * Copies `part`, then `more` if given, into one piece (a frame header and
   * its packet: one piece and one view per packet, not two); the piece is
   * valid until release().
   */
  put(part: Uint8Array, more?: Uint8Array): Piece {
    const length = part.length + (more === undefined ? 0 : more.length)
    if (length > PIECE_BYTES_MAX) fail(`output piece of ${length} bytes over ${PIECE_BYTES_MAX}`)
    if (this.current.used + length > SLAB_BYTES) this.retire()
    const slab = this.current
    const at = slab.used
    slab.bytes.set(part, at)
    if (more !== undefined) slab.bytes.set(more, at + part.length)
    slab.used = at + length
    slab.held++
    return { slab, view: slab.bytes.subarray(at, at + length) }
  }

  release(piece: Piece): void {
    const slab = piece.slab
    assert(slab.held > 0, 'output piece released twice')
    slab.held--
    if (slab.held > 0) return
    // Its last piece: the slab is free (a retired one goes to the spares, if they have room).
    if (slab === this.current) slab.used = 0
    else if (this.spare.length < SPARE_SLABS_MAX) {
      slab.used = 0
      this.spare.push(slab)
    }
  }

  /**
   * The current slab is full: continue in a free one. The full one has held
   * pieces (a slab whose pieces are all released is emptied at once, and a
   * part is at most a quarter of a slab), so its last release recycles it.
   */
  private retire(): void {
    this.current = this.spare.pop() ?? OutputArena.slab()
  }
}

/** The one arena of this process's client connections (the event loop is single-threaded). */
export const outputArena = new OutputArena()
