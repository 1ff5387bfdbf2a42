/**
 * ServiceDiscovery (Curator's curator-x-discovery), a layer on
 * GroupMembership: each service `name` is a group at `<basePath>/<name>`,
 * each instance a member `<id>` whose data is the instance as JSON, in
 * Curator's own format ({ name, id, address, port, sslPort, payload,
 * registrationTimeUTC, serviceType, uriSpec }), so Curator's ServiceDiscovery
 * and this one can read each other's registrations.
 *
 *   const discovery = new ServiceDiscovery(zk, '/services')
 *   await discovery.register({ name: 'api', id: 'a', address: '10.0.0.1', port: 8080, payload: { zone: 'eu' } })
 *   await discovery.instances('api')                       // ServiceInstance[], sorted by id
 *   const provider = discovery.provider('api', { strategy: 'roundRobin' }) ; await provider.next()
 *   for await (const instances of discovery.cache('api')) { ... }   // every change
 *
 * A registration is an ephemeral PersistentNode: it goes with its owner, and
 * is kept in place across reconnects and session expiry (re-created with a
 * new session). Reading, caching and providing go through GroupMembership's
 * live view (one children watch on the service, a data watch per instance).
 * An instance whose data is not valid JSON of that shape is left out.
 *
 * Invariants: register() of an id this object already registered updates
 * it; close() unregisters everything this object registered and closes its
 * caches and providers. Imports only ../client/index.js, ../shared/*.js and
 * recipes/ modules.
 */
import type { Client } from '../client/index.js'
import { Emitter, ErrorCode, ZkError } from '../client/index.js'
import { GroupMembership, type Member } from './group-membership.js'
import { PersistentNode } from './persistent-node.js'
import type { IterateOptions } from './streams.js'
import type { WaitOptions } from './wait.js'
import {
  checkNodeName,
  checkRecipePath,
  childrenOrEmpty,
  fromUtf8,
  joinPath,
  newGuid,
  utf8,
} from './znodes.js'

export type ServiceType = 'DYNAMIC' | 'STATIC' | 'PERMANENT' | 'DYNAMIC_SEQUENTIAL'

/** A registered instance of a service (Curator's ServiceInstance, as JSON). */
export interface ServiceInstance<P = unknown> {
  name: string
  id: string
  address: string
  port: number
  sslPort: number | null
  payload: P | null
  /** When it was registered (ms since the epoch, the registrant's clock). */
  registrationTimeUTC: number
  serviceType: ServiceType
  uriSpec: unknown
}

/** What register() takes: the rest is filled in. */
export interface ServiceRegistration<P = unknown> {
  name: string
  /** Default: a random UUID. */
  id?: string | undefined
  address: string
  port: number
  sslPort?: number | null | undefined
  /** Any JSON value. */
  payload?: P | undefined
}

export type ProviderStrategy = 'roundRobin' | 'random'

export interface ProviderOptions {
  /** How next() picks among the instances. Default 'roundRobin'. */
  strategy?: ProviderStrategy | undefined
  /** Source of randomness in [0, 1) for 'random'. Default Math.random. */
  random?: (() => number) | undefined
}

function checkPort(port: unknown, what: string): number {
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65_535)
    throw new ZkError(ErrorCode.BAD_ARGUMENTS, undefined, `BAD_ARGUMENTS: ${what} must be a port number`)
  return port as number
}

/** The instance a member's data describes, or undefined if it does not describe one. */
export function parseInstance<P>(data: Uint8Array): ServiceInstance<P> | undefined {
  let v: unknown
  try {
    v = JSON.parse(fromUtf8(data))
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const o = v as Record<string, unknown>
  if (typeof o.name !== 'string' || typeof o.id !== 'string' || typeof o.address !== 'string')
    return undefined
  if (!Number.isInteger(o.port)) return undefined
  return {
    name: o.name,
    id: o.id,
    address: o.address,
    port: o.port as number,
    sslPort: Number.isInteger(o.sslPort) ? (o.sslPort as number) : null,
    payload: (o.payload ?? null) as P | null,
    registrationTimeUTC: typeof o.registrationTimeUTC === 'number' ? o.registrationTimeUTC : 0,
    serviceType: (typeof o.serviceType === 'string' ? o.serviceType : 'DYNAMIC') as ServiceType,
    uriSpec: o.uriSpec ?? null,
  }
}

function instancesOf<P>(members: readonly Member[]): ServiceInstance<P>[] {
  return members.map((m) => parseInstance<P>(m.data)).filter((i): i is ServiceInstance<P> => i !== undefined)
}

type CacheEvents<P> = { change: [instances: ServiceInstance<P>[]]; error: [err: unknown] }

/** The live instances of one service (Curator's ServiceCache), on a GroupMembership observer. */
export class ServiceCache<P = unknown> extends Emitter<CacheEvents<P>> {
  private readonly group: GroupMembership
  private list: ServiceInstance<P>[] = []
  private starting: Promise<void> | undefined

  constructor(
    zk: Client,
    basePath: string,
    readonly name: string,
    private readonly onClose?: () => void,
  ) {
    super()
    this.group = new GroupMembership(
      zk,
      joinPath(checkRecipePath(basePath), checkNodeName(name, 'service name')),
    )
    this.group.on('change', (members) => {
      this.list = instancesOf<P>(members)
      this.emit('change', this.list)
    })
    this.group.on('error', (err) => this.emit('error', err))
  }

  /** Starts the live view; resolves after the first list. Idempotent. */
  start(): Promise<void> {
    this.starting ??= this.group.start()
    return this.starting
  }

  /** The instances now (as of the live view's last list), sorted by id. */
  get instances(): ServiceInstance<P>[] {
    return [...this.list]
  }

  /**
   * The instances as an async iterator: the current list, then each new one
   * (the newest, for a slow consumer). `break`, the signal or close() end it.
   */
  async *changes(opts: IterateOptions = {}): AsyncGenerator<ServiceInstance<P>[], void, undefined> {
    const members = this.group.changes(opts)
    try {
      for await (const m of members) yield instancesOf<P>(m)
    } finally {
      await members.return?.()
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<ServiceInstance<P>[], void, undefined> {
    return this.changes()
  }

  async close(): Promise<void> {
    this.onClose?.()
    await this.group.close()
  }
}

/** Picks an instance of one service (Curator's ServiceProvider). */
export class ServiceProvider<P = unknown> {
  private index = 0
  private readonly strategy: ProviderStrategy
  private readonly random: () => number

  constructor(
    readonly cache: ServiceCache<P>,
    opts: ProviderOptions = {},
  ) {
    const s = opts.strategy ?? 'roundRobin'
    if (s !== 'roundRobin' && s !== 'random')
      throw new ZkError(ErrorCode.BAD_ARGUMENTS, undefined, `BAD_ARGUMENTS: unknown strategy ${String(s)}`)
    this.strategy = s
    this.random = opts.random ?? Math.random
  }

  /** Starts following the service (next() does it on first use). */
  start(): Promise<void> {
    return this.cache.start()
  }

  /** One instance, by the strategy; null when the service has none. */
  async next(): Promise<ServiceInstance<P> | null> {
    await this.cache.start()
    const list = this.cache.instances
    if (list.length === 0) return null
    if (this.strategy === 'random') return list[Math.floor(this.random() * list.length) % list.length]!
    const i = this.index
    this.index = (i + 1) % Number.MAX_SAFE_INTEGER
    return list[i % list.length]!
  }

  /** Every instance now. */
  async all(): Promise<ServiceInstance<P>[]> {
    await this.cache.start()
    return this.cache.instances
  }

  close(): Promise<void> {
    return this.cache.close()
  }
}

export class ServiceDiscovery<P = unknown> {
  readonly basePath: string
  private readonly registered = new Map<string, { node: PersistentNode; instance: ServiceInstance<P> }>()
  private readonly opened = new Set<ServiceCache<P>>()

  constructor(
    private readonly zk: Client,
    basePath = '/services',
    private readonly opts: { newSession?: ((expired: Client) => Promise<Client>) | undefined } = {},
  ) {
    this.basePath = checkRecipePath(basePath)
  }

  private servicePath(name: string): string {
    return joinPath(this.basePath, checkNodeName(name, 'service name'))
  }

  /**
   * Registers an instance (an ephemeral node kept across reconnects and
   * session expiry); resolves with it once its node is in place. Registering
   * an id again updates it.
   */
  async register(r: ServiceRegistration<P>, opts?: WaitOptions): Promise<ServiceInstance<P>> {
    const id = checkNodeName(r.id ?? newGuid(), 'instance id')
    if (typeof r.address !== 'string' || r.address.length === 0)
      throw new ZkError(
        ErrorCode.BAD_ARGUMENTS,
        undefined,
        'BAD_ARGUMENTS: address must be a non-empty string',
      )
    const instance: ServiceInstance<P> = {
      name: r.name,
      id,
      address: r.address,
      port: checkPort(r.port, 'port'),
      sslPort: r.sslPort === undefined || r.sslPort === null ? null : checkPort(r.sslPort, 'sslPort'),
      payload: r.payload ?? null,
      registrationTimeUTC: Date.now(),
      serviceType: 'DYNAMIC',
      uriSpec: null,
    }
    const path = joinPath(this.servicePath(r.name), id)
    const data = utf8(JSON.stringify(instance))
    const known = this.registered.get(path)
    if (known !== undefined) {
      instance.registrationTimeUTC = known.instance.registrationTimeUTC
      known.instance = instance
      await known.node.setData(utf8(JSON.stringify(instance)))
      return instance
    }
    const node = new PersistentNode(this.zk, path, data, {
      mode: 'ephemeral',
      newSession: this.opts.newSession,
    })
    this.registered.set(path, { node, instance })
    try {
      await node.start(opts)
    } catch (err) {
      this.registered.delete(path)
      await node.close().catch(() => {})
      throw err
    }
    return instance
  }

  /** Changes a registered instance's address, port or payload. */
  async update(r: ServiceRegistration<P> & { id: string }): Promise<ServiceInstance<P>> {
    if (!this.registered.has(joinPath(this.servicePath(r.name), r.id)))
      throw new ZkError(ErrorCode.API_ERROR, undefined, `API_ERROR: ${r.name}/${r.id} is not registered here`)
    return this.register(r)
  }

  /** Removes an instance this object registered. */
  async unregister(name: string, id: string): Promise<void> {
    const path = joinPath(this.servicePath(name), id)
    const known = this.registered.get(path)
    this.registered.delete(path)
    await known?.node.close()
  }

  /** The names of the services that have (or had) instances. */
  async names(): Promise<string[]> {
    return childrenOrEmpty(this.zk, this.basePath)
  }

  /** The instances of a service now, read from the server, sorted by id. */
  async instances(name: string): Promise<ServiceInstance<P>[]> {
    return instancesOf<P>(await new GroupMembership(this.zk, this.servicePath(name)).members())
  }

  /** One instance, or null. */
  async instance(name: string, id: string): Promise<ServiceInstance<P> | null> {
    return (await this.instances(name)).find((i) => i.id === checkNodeName(id, 'instance id')) ?? null
  }

  /** A live view of a service's instances ('change' events, async iteration). Call start(), or iterate it. */
  cache(name: string): ServiceCache<P> {
    const c: ServiceCache<P> = new ServiceCache<P>(this.zk, this.basePath, name, () => this.opened.delete(c))
    this.opened.add(c)
    return c
  }

  /** An instance picker for a service: next() gives one, by round-robin (default) or at random. */
  provider(name: string, opts: ProviderOptions = {}): ServiceProvider<P> {
    return new ServiceProvider<P>(this.cache(name), opts)
  }

  /** Unregisters this object's instances and closes its caches and providers. */
  async close(): Promise<void> {
    const nodes = [...this.registered.values()].map((r) => r.node)
    this.registered.clear()
    await Promise.all(nodes.map((n) => n.close().catch(() => {})))
    const caches = [...this.opened]
    this.opened.clear()
    await Promise.all(caches.map((c) => c.close().catch(() => {})))
  }
}
