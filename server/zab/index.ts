/**
 * server/zab: the ZAB atomic broadcast as a pure state machine. This index
 * re-exports the public surface: ZabPeer (step(input) -> Output), its input
 * and output types, the peer message union and its binary codec.
 *
 * Must not import anything but shared/, server/core and server/zab (pure).
 */
export type { Decision } from './election.js'
export {
  CONFIG_MEMBERS_MAX,
  type ConfigAt,
  ConfigError,
  configOfIds,
  decodeConfigEntry,
  encodeConfigEntry,
  isConfigEntry,
  type MemberConfig,
  Membership,
  majority,
  parseConfigText,
  type ServerLineParts,
  splitServerLine,
} from './membership.js'
export {
  decodePeerMessage,
  describePeerMessage,
  encodePeerMessage,
  type PeerMessage,
  PeerMessageDecodeError,
  type PeerMessageType,
  payloadBytes,
} from './messages.js'
export type { Envelope, MetaWrite, Output, PersistBatch, ProposeResult, RoleEvent } from './output.js'
export type { SnapshotStream } from './snapshot-stream.js'
export type {
  LogEntry,
  PeerState,
  PersistedState,
  ReceivedSnapshot,
  Role,
  ServerId,
  Snapshot,
  SnapshotIn,
  SnapshotSource,
  Vote,
} from './types.js'
export {
  type Input,
  LEADER_CONFIG_TRACE,
  LEADER_STATIC_CONFIG_TRACE,
  LOOKING_TRACE,
  type PeerStatus,
  ZabPeer,
  type ZabPeerOptions,
} from './zab-peer.js'
