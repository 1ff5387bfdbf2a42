/**
 * Conclave's client SDK (package export `conclave/client`): the contract of
 * shared/spec/client-api.md. It speaks ZooKeeper's jute wire protocol over
 * WebSocket (`ws://`, `wss://`) or ZooKeeper's TCP framing (`tcp://`, Node
 * only), so it works against Conclave and against Apache ZooKeeper.
 *
 * Must never import server/ and must not need a native module: the
 * Node transports load node:net, node:tls and node:crypto lazily, so a browser bundle (with the
 * platform WebSocket) never touches them.
 */
export type { Acl, Id } from '../shared/acl.js'
export {
  ANYONE_ID,
  AUTH_IDS,
  CREATOR_ALL_ACL,
  OPEN_ACL_UNSAFE,
  READ_ACL_UNSAFE,
} from '../shared/acl.js'
export { ErrorCode, type MultiErrorResult, ZkError } from '../shared/errors.js'
export { FRAME_BYTES_MAX_DEFAULT } from '../shared/framing.js'
export { CreateMode, Perms, TTL_MS_MAX } from '../shared/opcodes.js'
export type { Stat } from '../shared/stat.js'
export { Client, CONNECT_TIMEOUT_MS_DEFAULT, SESSION_TIMEOUT_MS_DEFAULT } from './client.js'
export { type Endpoint, parseConnectString } from './connect-string.js'
export { Emitter } from './emitter.js'
export {
  type ClientAddress,
  type EnsembleConfig,
  parseEnsembleConfig,
  SERVERS_MAX,
} from './ensemble-config.js'
export { EventStream, type EventStreamOptions } from './event-stream.js'
export { DATA_BYTES_MAX } from './requests.js'
export { EXACTLY_ONCE_SENDS_MAX } from './session.js'
export type {
  TlsOptions,
  Transport,
  TransportFactory,
  TransportHandlers,
  TransportOptions,
  WebSocketConstructor,
  WebSocketLike,
} from './transport.js'
export { openTransport } from './transport.js'
export type {
  AclResult,
  AuthInfo,
  ChildrenIterationOptions,
  ChildrenPage,
  ChildrenPageOptions,
  ChildrenResult,
  ClientEvents,
  ClientInfo,
  ClientState,
  ConnectOptions,
  CreateOptions,
  Data,
  DataResult,
  MultiOp,
  OpResult,
  PersistentWatchMode,
  ReconfigOptions,
  WatchEvent,
  WatchEventType,
  Watcher,
  WatchOptions,
} from './types.js'
export {
  WATCH_BUFFER_DEFAULT,
  type WatchStream,
  type WatchStreamEvent,
  type WatchStreamEventType,
  type WatchStreamOptions,
} from './watch-stream.js'
