/**
 * What kazoo's own test suite found Conclave doing differently from
 * ZooKeeper, each checked on the wire against a real server process and,
 * where Debian's `zookeeper` is installed, against Apache ZooKeeper too:
 *
 * - `envi` answers in ZooKeeper's format with a `zookeeper.version` line a
 *   client can parse (kazoo's server_version(), asked before every
 *   transaction) and Conclave's own version on another line;
 * - null data (length -1: a create or setData sent with none) is kept apart
 *   from empty data and read back as null, in getData, multi and multiRead
 *   (kazoo: create('/x') then get('/x') gives None); the SDK still reports it
 *   as empty bytes, as its published type says;
 * - an ACL id whose id string is null (kazoo sends CREATOR_ALL_ACL,
 *   Id('auth', ''), with a null id) is accepted, not a reason to drop the
 *   connection.
 */
import { spawnSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import { ZOOKEEPER_COMPATIBLE_VERSION } from '../../server/admin/four-letter-words.js'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { VERSION } from '../../server/node.js'
import { errorNumber } from '../../shared/errors.js'
import { JuteWriter } from '../../shared/jute.js'
import { OpCode } from '../../shared/opcodes.js'
import { encodeRequest, type Request, type Response, readResponseBody } from '../../shared/records.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { canRun, kazooMissing, zookeeperMissing } from '../helpers/prerequisites.js'
import { RawClient } from '../helpers/raw-client.js'
import { startZooKeeper, type ZooKeeperProcess, zookeeperAvailable } from '../helpers/zookeeper.js'

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }]
const EMPTY = new Uint8Array(0)

let conclave: ConclaveProcess
let zookeeper: ZooKeeperProcess | undefined

beforeAll(async () => {
  conclave = await startConclave()
  if (zookeeperAvailable()) zookeeper = await startZooKeeper()
})

afterAll(async () => {
  await conclave?.stop()
  conclave?.remove()
  await zookeeper?.stop()
  await stopAllConclave()
})

/** kazoo's KazooClient.server_version(): the leading digits and dots of `zookeeper.version`. */
function kazooVersion(envi: string): number[] {
  const fields = new Map<string, string>()
  for (const line of envi.split('\n')) {
    const at = line.indexOf('=')
    if (at > 0) fields.set(line.slice(0, at).trim(), line.slice(at + 1).trim())
  }
  const digits = /^([\d.]*)/.exec(fields.get('zookeeper.version') ?? '')![1]!
  return digits.split('.').map(Number)
}

describe('envi', () => {
  it("answers in ZooKeeper's format, with a parseable ZooKeeper version and Conclave's own", async () => {
    const text = await fourLetterWord('127.0.0.1', conclave.port, 'envi')
    const lines = text.trimEnd().split('\n')
    expect(lines[0]).toBe('Environment:')
    for (const l of lines.slice(1)) expect(l).toMatch(/^[a-z.]+=/)
    expect(lines).toContain(`zookeeper.version=${ZOOKEEPER_COMPATIBLE_VERSION}`)
    expect(lines).toContain(`conclave.version=${VERSION}`)
    expect(kazooVersion(text)).toEqual([3, 8, 0])
    // No environment variables: the ensemble secret travels in one.
    expect(text).not.toMatch(/SECRET|secret/)
    // kazoo reads the answer with a single recv(8192).
    expect(Buffer.byteLength(text)).toBeLessThan(8192)
  })

  it.runIf(canRun("envi beside ZooKeeper's (zookeeper-wire-compat.test.ts)", zookeeperMissing()))(
    'has the fields ZooKeeper has, in the same shape',
    async () => {
      const zk = await fourLetterWord('127.0.0.1', zookeeper!.port, 'envi', 5000)
      const ours = await fourLetterWord('127.0.0.1', conclave.port, 'envi')
      const keys = (t: string) => t.split('\n').flatMap((l) => (l.includes('=') ? [l.split('=')[0]] : []))
      expect(zk.split('\n')[0]).toBe('Environment:')
      expect(kazooVersion(zk)).toEqual(kazooVersion(ours))
      for (const k of ['zookeeper.version', 'host.name', 'os.name', 'os.arch', 'os.version', 'user.dir'])
        expect(keys(zk).includes(k) && keys(ours).includes(k), k).toBe(true)
    },
  )

  it.runIf(canRun("envi through kazoo's server_version() (zookeeper-wire-compat.test.ts)", kazooMissing()))(
    "satisfies kazoo's server_version()",
    () => {
      const r = spawnSync(
        '/usr/bin/python3',
        [
          '-c',
          'import sys; from kazoo.client import KazooClient\n' +
            'c = KazooClient(sys.argv[1]); c.start(10)\n' +
            'print(".".join(map(str, c.server_version()))); c.stop(); c.close()',
          `127.0.0.1:${conclave.port}`,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      )
      expect(r.stdout.trim(), r.stderr).toBe(ZOOKEEPER_COMPATIBLE_VERSION)
    },
  )
})

/** Sends one request on a fresh raw session and returns the error number and decoded body. */
async function ask(c: RawClient, xid: number, req: Request): Promise<{ err: number; res?: Response }> {
  c.sendRequest(xid, req)
  const r = await c.reply(xid)
  return r.err === 0 ? { err: 0, res: readResponseBody(r.body, req.op) } : { err: r.err }
}

/** The raw bytes of a getData reply body's data length (the first int after the reply header). */
async function dataLengthOnWire(c: RawClient, xid: number, path: string): Promise<number> {
  c.sendRequest(xid, { op: OpCode.getData, path, watch: false })
  const r = await c.reply(xid)
  expect(r.err).toBe(0)
  return r.body.int()
}

const servers = () => [
  { name: 'Conclave', port: conclave.port },
  ...(zookeeper === undefined ? [] : [{ name: 'ZooKeeper', port: zookeeper.port }]),
]

describe('null data', () => {
  it('is kept apart from empty data and read back as null (on Conclave, and as ZooKeeper does)', async () => {
    for (const { name, port } of servers()) {
      const c = await RawClient.session(port)
      try {
        const base = `/nulldata-${Date.now()}`
        let xid = 1
        const create = (path: string, data: Uint8Array | null): Request => ({
          op: OpCode.create2,
          path,
          data,
          acl: OPEN,
          flags: 0,
          ttl: 0,
        })
        expect((await ask(c, xid++, create(base, EMPTY))).err, name).toBe(0)
        expect((await ask(c, xid++, create(`${base}/none`, null))).err, name).toBe(0)
        expect((await ask(c, xid++, create(`${base}/empty`, EMPTY))).err, name).toBe(0)
        expect(await dataLengthOnWire(c, xid++, `${base}/none`), name).toBe(-1)
        expect(await dataLengthOnWire(c, xid++, `${base}/empty`), name).toBe(0)
        const got = await ask(c, xid++, { op: OpCode.getData, path: `${base}/none`, watch: false })
        expect(got.res, name).toMatchObject({ data: null, stat: { dataLength: 0, version: 0 } })

        // setData to null and back.
        const set = (path: string, data: Uint8Array | null): Request => ({
          op: OpCode.setData,
          path,
          data,
          version: -1,
        })
        expect((await ask(c, xid++, set(`${base}/empty`, null))).err, name).toBe(0)
        expect(await dataLengthOnWire(c, xid++, `${base}/empty`), name).toBe(-1)
        expect((await ask(c, xid++, set(`${base}/empty`, EMPTY))).err, name).toBe(0)
        expect(await dataLengthOnWire(c, xid++, `${base}/empty`), name).toBe(0)

        // In a multi, and read back through multiRead.
        const multi = await ask(c, xid++, {
          op: OpCode.multi,
          ops: [create(`${base}/m`, null) as never, set(`${base}/empty`, null) as never],
        })
        expect(multi.err, name).toBe(0)
        const read = await ask(c, xid++, {
          op: OpCode.multiRead,
          ops: [
            { op: OpCode.getData, path: `${base}/m`, watch: false },
            { op: OpCode.getData, path: `${base}/empty`, watch: false },
            { op: OpCode.getData, path: base, watch: false },
          ],
        })
        expect(read.err, name).toBe(0)
        const results = (read.res as { results: { data: Uint8Array | null }[] }).results
        expect(
          results.map((r) => (r.data === null ? null : [...r.data])),
          name,
        ).toEqual([null, null, []])
      } finally {
        c.close()
      }
    }
  })

  it('survives a restart (replayed from the Txn log) as null', async () => {
    const c = await RawClient.session(conclave.port)
    c.sendRequest(1, { op: OpCode.create, path: '/null-restart', data: null, acl: OPEN, flags: 0, ttl: 0 })
    expect((await c.reply(1)).err).toBe(0)
    c.close()
    await conclave.restart()
    const d = await RawClient.session(conclave.port)
    try {
      expect(await dataLengthOnWire(d, 1, '/null-restart')).toBe(-1)
    } finally {
      d.close()
    }
  })

  it('reads as empty bytes through the SDK (DataResult.data is a Uint8Array)', async () => {
    const c = await RawClient.session(conclave.port)
    c.sendRequest(1, { op: OpCode.create, path: '/null-sdk', data: null, acl: OPEN, flags: 0, ttl: 0 })
    expect((await c.reply(1)).err).toBe(0)
    c.close()
    const zk = await Client.connect(`tcp://127.0.0.1:${conclave.port}`)
    try {
      const { data, stat } = await zk.getData('/null-sdk')
      expect(data).toBeInstanceOf(Uint8Array)
      expect(data.length).toBe(0)
      expect(stat.dataLength).toBe(0)
    } finally {
      await zk.close()
    }
  })

  it.runIf(canRun('null data through kazoo (zookeeper-wire-compat.test.ts)', kazooMissing()))(
    'round-trips as None through kazoo (create, set, get)',
    () => {
      const script = [
        'import sys',
        'from kazoo.client import KazooClient',
        'c = KazooClient(sys.argv[1]); c.start(10)',
        'base = "/kazoo-null"',
        'c.ensure_path(base)',
        'c.create(base + "/a", None)',
        'print(repr(c.get(base + "/a")[0]))',
        'c.set(base + "/a", b"x"); c.set(base + "/a", None)',
        'print(repr(c.get(base + "/a")[0]))',
        'c.create(base + "/e", b"")',
        'print(repr(c.get(base + "/e")[0]))',
        'c.delete(base, recursive=True); c.stop(); c.close()',
      ].join('\n')
      const r = spawnSync('/usr/bin/python3', ['-c', script, `127.0.0.1:${conclave.port}`], {
        encoding: 'utf8',
        timeout: 30_000,
      })
      expect(r.stdout.trim().split('\n'), r.stderr).toEqual(['None', 'None', "b''"])
    },
  )
})

describe('an ACL id with a null id string', () => {
  it("is accepted for the auth scheme (kazoo's CREATOR_ALL_ACL) and is INVALID_ACL otherwise, the connection kept", async () => {
    for (const { name, port } of servers()) {
      const c = await RawClient.session(port)
      try {
        const base = `/nullid-${Date.now()}`
        // A hand-encoded create: the ACL's id string is null (length -1).
        const createWithNullId = (xid: number, path: string, scheme: string) => {
          const w = new JuteWriter()
          encodeRequest(w, xid, { op: OpCode.create, path, data: EMPTY, acl: [], flags: 0, ttl: 0 })
          const head = w.finish()
          // Everything up to the (empty) ACL vector, then one ACL and the flags.
          const tail = new JuteWriter().int(1).int(31).ustring(scheme).ustring(null).int(0).finish()
          c.sendPacket(Uint8Array.from([...head.subarray(0, head.length - 8), ...tail]))
        }
        createWithNullId(1, `${base}-noauth`, 'auth')
        // No authenticated id to expand `auth` to.
        expect((await c.reply(1)).err, name).toBe(errorNumber('INVALID_ACL'))
        if (name === 'Conclave') {
          // (ZooKeeper 3.8 dereferences the null id here and answers MARSHALLING_ERROR.)
          createWithNullId(2, `${base}-world`, 'world')
          expect((await c.reply(2)).err, name).toBe(errorNumber('INVALID_ACL'))
        }
        c.sendRequest(-4, {
          op: OpCode.auth,
          authType: 0,
          scheme: 'digest',
          auth: new TextEncoder().encode('user:pw'),
        })
        expect((await c.reply(-4)).err, name).toBe(0)
        createWithNullId(4, `${base}-auth`, 'auth')
        expect((await c.reply(4)).err, name).toBe(0)
        c.sendRequest(5, { op: OpCode.getACL, path: `${base}-auth` })
        const acl = readResponseBody((await c.reply(5)).body, OpCode.getACL) as { acl: unknown[] }
        expect(acl.acl, name).toEqual([
          { perms: 31, id: { scheme: 'digest', id: expect.stringMatching(/^user:/) } },
        ])
        expect(c.closed, name).toBe(false)
      } finally {
        c.close()
      }
    }
  })
})
