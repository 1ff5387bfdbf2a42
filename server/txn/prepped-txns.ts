/**
 * PreppedTxns: the Txns this server prepped and has not applied yet, each
 * with the bytes it was encoded to, in zxid order. A leader's and a
 * standalone server's own proposals come back to apply as those very
 * bytes (the log entry holds the encoder's output), so apply takes the Txn
 * as prepped instead of decoding it again: decodeTxn(encodeTxn(t))
 * deep-equals t (codec.ts), and the Txn is not changed after prep.
 * Standalone 1 KiB setData at C=64: decodeTxn and its allocations were
 * ~2% of the main thread's time per write.
 *
 * Invariants: `take` returns a Txn only for the identical bytes object at
 * the same zxid (anything else — another server's entry, a log read back,
 * a zxid from an abandoned leadership — is decoded as before); entries at
 * or below an applied zxid are dropped, so what is held is bounded by the
 * proposals in flight (the write throttle), and `clear` drops it all.
 * Must not import anything but shared/ and server/txn/.
 */
import type { Txn } from './txn.js'

export class PreppedTxns {
  private txns: Txn[] = []
  private bytes: Uint8Array[] = []
  private head = 0

  /** Held entries (for tests and stats). */
  get size(): number {
    return this.txns.length - this.head
  }

  /** `txn` was prepped and encoded to `bytes`, with a zxid above every one kept. */
  keep(txn: Txn, bytes: Uint8Array): void {
    const n = this.txns.length
    if (n > this.head && this.txns[n - 1]!.zxid >= txn.zxid) this.clear()
    this.txns.push(txn)
    this.bytes.push(bytes)
  }

  /** The Txn prepped at `zxid` if `bytes` is what it was encoded to; drops every entry up to `zxid`. */
  take(zxid: number, bytes: Uint8Array): Txn | undefined {
    const { txns } = this
    let found: Txn | undefined
    while (this.head < txns.length && txns[this.head]!.zxid <= zxid) {
      const i = this.head++
      if (txns[i]!.zxid === zxid && this.bytes[i] === bytes) found = txns[i]
    }
    if (this.head === txns.length) this.clear()
    else if (this.head > 1024 && this.head * 2 > txns.length) {
      this.txns = txns.slice(this.head)
      this.bytes = this.bytes.slice(this.head)
      this.head = 0
    }
    return found
  }

  clear(): void {
    this.txns = []
    this.bytes = []
    this.head = 0
  }
}
