/**
 * Conclave's recipes (package export `conclave/recipes`): the coordination
 * patterns of ZooKeeper's recipes page and Curator, built only on the public
 * client API (shared/spec/client-api.md, "Recipes"). Locks carry fencing
 * tokens, waiters watch only their predecessor, every blocking call takes a
 * deadline and an AbortSignal, and every recipe reports the end of its
 * session (an event or a rejected promise), never silently.
 *
 * Must import only ../client/index.js and ../shared/*.js (enforced by
 * test/unit/architecture.test.ts), never server/.
 */
export { Barrier } from './barrier.js'
export { DELAY_PREFIX, DelayQueue } from './delay-queue.js'
export { DoubleBarrier, READY_NODE } from './double-barrier.js'
export { FencedResource, STALE_FENCING_TOKEN, StaleTokenError } from './fenced-resource.js'
export { GroupMembership, type Member } from './group-membership.js'
export {
  type ElectionRole,
  LATCH_PREFIX,
  LeaderElection,
  type LeaderElectionOptions,
} from './leader-election.js'
export {
  LeaderSelector,
  type LeaderSelectorOptions,
  type LeadershipCallback,
  type LeadershipTerm,
} from './leader-selector.js'
export { LOCK_PREFIX, Lock, type LockGrant, type LockOptions } from './lock.js'
export { TURNS_MAX, type Turn, type TurnPredicate } from './lock-core.js'
export { type Lockable, MultiLock, type MultiLockGrant } from './multi-lock.js'
export { type CachedNode, NodeCache } from './node-cache.js'
export {
  PersistentNode,
  type PersistentNodeOptions,
  PersistentTtlNode,
  type PersistentTtlNodeOptions,
} from './persistent-node.js'
export { PRIORITY_PREFIX, PriorityQueue } from './priority-queue.js'
export { QUEUE_PREFIX, Queue } from './queue.js'
export { CLAIMS_DIR } from './queue-core.js'
export { READ_PREFIX, ReadLock, ReadWriteLock, WRITE_PREFIX, WriteLock } from './read-write-lock.js'
export { LEASE_PREFIX, type Lease, Semaphore, type SemaphoreOptions } from './semaphore.js'
export {
  type ProviderOptions,
  type ProviderStrategy,
  parseInstance,
  ServiceCache,
  ServiceDiscovery,
  type ServiceInstance,
  ServiceProvider,
  type ServiceRegistration,
  type ServiceType,
} from './service-discovery.js'
export { SessionGuard } from './session-guard.js'
export { type IncrementOptions, SharedCounter, type VersionedValue } from './shared-counter.js'
export type { IterateOptions } from './streams.js'
export {
  TREE_BUFFER_DEFAULT,
  TreeCache,
  type TreeCacheEvent,
  type TreeCacheEventType,
} from './tree-cache.js'
export type { WaitOptions } from './wait.js'
