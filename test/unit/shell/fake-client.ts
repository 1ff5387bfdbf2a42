/**
 * An in-memory ShellClient for the shell's unit tests: a znode tree with
 * versions, ephemerals, sequential names, ACLs and one-shot/persistent
 * watches, raising ZkError as the SDK does. Not a model of ZooKeeper's
 * corner cases; only what the shell's commands exercise.
 */
import type { ShellClient, ShellWatcher } from '../../../client/shell/shell-client.js'
import type { Acl } from '../../../shared/acl.js'
import { OPEN_ACL_UNSAFE } from '../../../shared/acl.js'
import { ZkError } from '../../../shared/errors.js'
import type { CreateMode } from '../../../shared/opcodes.js'
import { parentPath } from '../../../shared/paths.js'
import type { Stat } from '../../../shared/stat.js'

interface Node {
  data: Uint8Array
  stat: Stat
  acl: Acl[]
  seq: number
}

const enc = new TextEncoder()

export class FakeClient implements ShellClient {
  state = 'connected'
  readonly sessionId = '0xfa4e'
  closed = false
  auth: { scheme: string; auth: string }[] = []
  private zxid = 0
  private readonly nodes = new Map<string, Node>()
  private readonly dataWatches = new Map<string, ShellWatcher[]>()
  private readonly childWatches = new Map<string, ShellWatcher[]>()
  private readonly persistent: { path: string; recursive: boolean; fn: ShellWatcher }[] = []
  private readonly stateListeners: ((s: string) => void)[] = []

  constructor() {
    this.nodes.set('/', this.newNode(new Uint8Array(), '0x0'))
  }

  private newNode(data: Uint8Array, owner: string): Node {
    const z = ++this.zxid
    const stat: Stat = {
      czxid: z,
      mzxid: z,
      pzxid: z,
      ctime: 0,
      mtime: 0,
      version: 0,
      cversion: 0,
      aversion: 0,
      ephemeralOwner: owner,
      dataLength: data.length,
      numChildren: 0,
    }
    return { data, stat, acl: [...OPEN_ACL_UNSAFE], seq: 0 }
  }

  private node(path: string): Node {
    const n = this.nodes.get(path)
    if (n === undefined) throw new ZkError('NO_NODE', path)
    return n
  }

  setState(s: string): void {
    this.state = s
    for (const l of this.stateListeners) l(s)
  }

  on(_event: 'state', listener: (state: string) => void): void {
    this.stateListeners.push(listener)
  }

  async close(): Promise<void> {
    this.closed = true
    for (const [p, n] of [...this.nodes]) if (n.stat.ephemeralOwner === this.sessionId) this.nodes.delete(p)
  }

  private fire(path: string, type: string): void {
    const table = type === 'childrenChanged' ? this.childWatches : this.dataWatches
    const list = table.get(path) ?? []
    table.delete(path)
    for (const w of list) w({ type, path })
    for (const p of this.persistent) {
      const covers = p.path === path || (p.recursive && path.startsWith(p.path === '/' ? '/' : `${p.path}/`))
      if (covers && !(p.recursive && type === 'childrenChanged')) p.fn({ type, path })
    }
  }

  private watchOn(table: Map<string, ShellWatcher[]>, path: string, w: ShellWatcher | undefined): void {
    if (w !== undefined) table.set(path, [...(table.get(path) ?? []), w])
  }

  async create(
    path: string,
    data: Uint8Array | string = '',
    opts: { mode?: CreateMode; acl?: Acl[] } = {},
  ): Promise<string> {
    const mode = opts.mode ?? 'persistent'
    const parent = this.node(parentPath(path))
    if (parent.stat.ephemeralOwner !== '0x0') throw new ZkError('NO_CHILDREN_FOR_EPHEMERALS', path)
    const name = /Sequential/i.test(mode) ? path + String(parent.seq++).padStart(10, '0') : path
    if (this.nodes.has(name)) throw new ZkError('NODE_EXISTS', name)
    const bytes = typeof data === 'string' ? enc.encode(data) : data
    const n = this.newNode(bytes, mode.startsWith('ephemeral') ? this.sessionId : '0x0')
    if (opts.acl) n.acl = opts.acl
    this.nodes.set(name, n)
    parent.stat.numChildren++
    parent.stat.cversion++
    this.fire(name, 'created')
    this.fire(parentPath(name), 'childrenChanged')
    return name
  }

  async getData(path: string, opts: { watch?: ShellWatcher } = {}) {
    const n = this.node(path)
    this.watchOn(this.dataWatches, path, opts.watch)
    return { data: n.data, stat: { ...n.stat } }
  }

  async setData(path: string, data: Uint8Array | string, version = -1): Promise<Stat> {
    const n = this.node(path)
    if (version !== -1 && version !== n.stat.version) throw new ZkError('BAD_VERSION', path)
    n.data = typeof data === 'string' ? enc.encode(data) : data
    n.stat.version++
    n.stat.dataLength = n.data.length
    n.stat.mzxid = ++this.zxid
    this.fire(path, 'dataChanged')
    return { ...n.stat }
  }

  async delete(path: string, version = -1): Promise<void> {
    const n = this.node(path)
    if (version !== -1 && version !== n.stat.version) throw new ZkError('BAD_VERSION', path)
    if (n.stat.numChildren > 0) throw new ZkError('NOT_EMPTY', path)
    this.nodes.delete(path)
    const parent = this.node(parentPath(path))
    parent.stat.numChildren--
    this.fire(path, 'deleted')
    this.fire(parentPath(path), 'childrenChanged')
  }

  async exists(path: string, opts: { watch?: ShellWatcher } = {}): Promise<Stat | null> {
    this.watchOn(this.dataWatches, path, opts.watch)
    const n = this.nodes.get(path)
    return n === undefined ? null : { ...n.stat }
  }

  async getChildren(path: string, opts: { watch?: ShellWatcher } = {}): Promise<string[]> {
    this.node(path)
    this.watchOn(this.childWatches, path, opts.watch)
    const prefix = path === '/' ? '/' : `${path}/`
    return [...this.nodes.keys()]
      .filter((p) => p !== '/' && p.startsWith(prefix) && !p.slice(prefix.length).includes('/'))
      .map((p) => p.slice(prefix.length))
      .sort()
  }

  async getChildrenWithStat(path: string, opts: { watch?: ShellWatcher } = {}) {
    const children = await this.getChildren(path, opts)
    return { children, stat: { ...this.node(path).stat } }
  }

  async sync(): Promise<void> {}

  async addWatch(path: string, mode: 'persistent' | 'persistentRecursive', fn: ShellWatcher) {
    const entry = { path, recursive: mode === 'persistentRecursive', fn }
    this.persistent.push(entry)
    return async () => {
      const i = this.persistent.indexOf(entry)
      if (i >= 0) this.persistent.splice(i, 1)
    }
  }

  async removeAllWatches(path: string): Promise<void> {
    const before = this.persistent.length
    for (let i = this.persistent.length - 1; i >= 0; i--)
      if (this.persistent[i]!.path === path) this.persistent.splice(i, 1)
    const had =
      this.dataWatches.delete(path) || this.childWatches.delete(path) || before !== this.persistent.length
    if (!had) throw new ZkError('NO_WATCHER', path)
  }

  async getACL(path: string) {
    const n = this.node(path)
    return { acl: n.acl, stat: { ...n.stat } }
  }

  async setACL(path: string, acl: Acl[], version = -1): Promise<Stat> {
    const n = this.node(path)
    if (version !== -1 && version !== n.stat.aversion) throw new ZkError('BAD_VERSION', path)
    n.acl = acl
    n.stat.aversion++
    return { ...n.stat }
  }

  async addAuth(scheme: string, auth: string): Promise<void> {
    if (scheme !== 'digest') throw new ZkError('AUTH_FAILED')
    this.auth.push({ scheme, auth })
  }

  async getEphemerals(prefix = '/'): Promise<string[]> {
    return [...this.nodes]
      .filter(([p, n]) => n.stat.ephemeralOwner === this.sessionId && p.startsWith(prefix))
      .map(([p]) => p)
      .sort()
  }

  async getAllChildrenNumber(path: string): Promise<number> {
    this.node(path)
    const prefix = path === '/' ? '/' : `${path}/`
    return [...this.nodes.keys()].filter((p) => p !== '/' && p.startsWith(prefix)).length
  }

  async whoAmI() {
    return [
      { scheme: 'ip', id: '127.0.0.1' },
      ...this.auth.map((a) => ({ scheme: a.scheme, id: a.auth.split(':')[0]! })),
    ]
  }
}
