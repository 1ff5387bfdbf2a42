/**
 * LogEntry: one replicated transaction as the log holds it — its zxid and
 * the opaque Txn bytes. One type for the ZAB core, the replicators and
 * storage alike.
 *
 * Pure (a type only).
 */
export interface LogEntry {
  readonly zxid: number
  readonly data: Uint8Array
}
