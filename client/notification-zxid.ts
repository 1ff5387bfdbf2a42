/**
 * The zxid of the watch notification being delivered. A server puts the
 * zxid of the change that fired a watch in the notification's ReplyHeader
 * (Conclave always; Apache ZooKeeper from 3.9, ZOOKEEPER-4655; before that
 * it sends -1). The session routes notifications without it, so this module
 * taps the transport: for every notification packet it queues a microtask
 * that records the packet's zxid, just before the session queues the
 * microtask that calls the watchers (session.ts delivers events in a
 * microtask, in packet order). Inside a watcher, `current` is therefore the
 * zxid of the event being delivered.
 *
 * Invariants: `current` is -1 when the server sent none; the tap never
 * changes, delays or drops a packet; a transport's first packet is its
 * ConnectResponse, never a notification. Imports only client/ (no node:*).
 */
import type { TransportFactory, TransportHandlers } from './transport.js'

/** ZooKeeper's xid of a watch notification. */
const NOTIFICATION_XID = -1
/** xid (4 bytes), zxid (8 bytes), err (4 bytes). */
const REPLY_HEADER_BYTES = 16

/** The notification's zxid, or undefined if the packet is not a notification. */
export function notificationZxid(packet: Uint8Array): number | undefined {
  if (packet.length < REPLY_HEADER_BYTES) return undefined
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength)
  if (view.getInt32(0) !== NOTIFICATION_XID) return undefined
  const zxid = view.getBigInt64(4)
  return zxid < 0n || zxid > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(zxid)
}

export class NotificationZxids {
  /** The zxid of the notification whose watchers run now (-1 if the server sent none). */
  current = -1

  /** Wraps a transport factory so that every notification's zxid is recorded before its watchers run. */
  wrap(factory: TransportFactory): TransportFactory {
    return (endpoint, handlers, options) => {
      let first = true
      const tapped: TransportHandlers = {
        onPacket: (packet) => {
          if (first) first = false
          else {
            const zxid = notificationZxid(packet)
            if (zxid !== undefined)
              queueMicrotask(() => {
                this.current = zxid
              })
          }
          handlers.onPacket(packet)
        },
        onClose: (reason) => handlers.onClose(reason),
      }
      return factory(endpoint, tapped, options)
    }
  }
}
