/**
 * Issue 15, everything else a hostile client can do with a session, against
 * a real server process: request floods within one session and from one
 * address (requestsPerSecondPerSessionMax, requestsPerSecondPerIpMax),
 * very many watches (watchesPerSessionMax, SetWatches included), very deep
 * and very long paths (4,096 characters), ACL lists of thousands of entries
 * (aclEntriesMax), addAuth floods (authIdsPerConnectionMax) and oversized
 * SetWatches. Each gets its clear error, and a well-behaved session in
 * another process is served meanwhile. The attackers connect from
 * 127.0.0.x addresses of their own, so the per-address limit is theirs.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errorNumber } from '../../shared/errors.js'
import { OpCode } from '../../shared/opcodes.js'
import { PATH_LENGTH_MAX } from '../../shared/paths.js'
import type { Request } from '../../shared/records.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { Bystander } from '../helpers/hostile.js'
import { deepPath, OPEN_ACL, ZkSession } from '../helpers/session-attacks.js'
import { tempDir, waitFor } from '../helpers/wait.js'

const PER_SESSION = 200
const PER_IP = 500
const WATCHES_MAX = 300

const OK = 0
const THROTTLED_OP = errorNumber('THROTTLED_OP')
const BAD_ARGUMENTS = errorNumber('BAD_ARGUMENTS')
const INVALID_ACL = errorNumber('INVALID_ACL')
const AUTH_FAILED = errorNumber('AUTH_FAILED')

let server: ConclaveProcess
const dir = tempDir('conclave-hostile-sessions-')

beforeAll(async () => {
  const cfg = join(dir.path, 'conclave.json')
  writeFileSync(
    cfg,
    JSON.stringify({
      requestsPerSecondPerSessionMax: PER_SESSION,
      requestsPerSecondPerIpMax: PER_IP,
      watchesPerSessionMax: WATCHES_MAX,
      maxClientCnxns: 0,
    }),
  )
  server = await startConclave({ extraArgs: ['--config', cfg] })
})

afterAll(async () => {
  await server?.stop()
  server?.remove()
  dir.remove()
  await stopAllConclave()
})

/** A session from its own address (127.0.0.<n>). */
function attacker(n: number): Promise<ZkSession> {
  return ZkSession.open(server.port, true, 40_000, `127.0.0.${n}`)
}

/** Runs `attack` with a well-behaved session asking the server meanwhile; it must be answered throughout. */
async function whileServing<T>(attack: () => Promise<T>): Promise<T> {
  const b = await Bystander.start(server.port)
  const out = await attack()
  const stats = await b.stop()
  expect(stats.failed, JSON.stringify(stats)).toBe(0)
  expect(stats.served, JSON.stringify(stats)).toBeGreaterThan(0)
  expect(stats.maxMs, JSON.stringify(stats)).toBeLessThan(2000)
  return out
}

const exists: Request = { op: OpCode.exists, path: '/', watch: false }

/** Sends `count` requests within the session's rate: a second's worth, then a second's pause. */
async function paced(z: ZkSession, count: number, make: (i: number) => Request): Promise<void> {
  for (let at = 0; at < count; at += PER_SESSION) {
    const n = Math.min(PER_SESSION, count - at)
    const before = z.replies
    await z.flood(n, (i) => make(at + i))
    await z.repliesReach(before + n)
    if (at + n < count) await new Promise((r) => setTimeout(r, 1000))
  }
}

function create(path: string, acl = OPEN_ACL): Request {
  return { op: OpCode.create, path, data: new Uint8Array(0), acl, flags: 0, ttl: 0 }
}

describe('request floods (rate limits, off by default)', () => {
  it('answers a session past requestsPerSecondPerSessionMax with THROTTLED_OP, keeps it alive, and lets it go on', async () => {
    const z = await attacker(10)
    const started = Date.now()
    await whileServing(async () => {
      await z.flood(5000, () => exists)
      await z.repliesReach(5000)
    })
    const seconds = (Date.now() - started) / 1000
    const ok = z.errors.get(OK) ?? 0
    // A burst of one second's worth, then the rate.
    expect(ok).toBeGreaterThanOrEqual(PER_SESSION)
    expect(ok).toBeLessThanOrEqual(PER_SESSION * (1 + seconds) + 1)
    expect(z.errors.get(THROTTLED_OP)).toBe(5000 - ok)
    // Pings always pass: the session is alive; a second later requests are served again.
    expect(await z.call({ op: OpCode.ping })).toBe(OK)
    await waitFor(async () => (await z.call(exists)) === OK, { what: 'a token', intervalMs: 200 })
    await waitFor(() => server.output().includes('answered THROTTLED_OP'), { what: 'the throttling logged' })
    z.s.destroy()
  })

  it('shares requestsPerSecondPerIpMax among the sessions of one address, and not with another', async () => {
    const same = await Promise.all([attacker(20), attacker(20), attacker(20)])
    const other = await attacker(21)
    const started = Date.now()
    await Promise.all(same.map((z) => z.flood(1000, () => exists)))
    await Promise.all(same.map((z) => z.repliesReach(1000)))
    const seconds = (Date.now() - started) / 1000
    const ok = same.reduce((n, z) => n + (z.errors.get(OK) ?? 0), 0)
    expect(ok).toBeLessThanOrEqual(PER_IP * (1 + seconds) + 1)
    expect(same.some((z) => (z.errors.get(THROTTLED_OP) ?? 0) > 0)).toBe(true)
    expect(await other.call(exists)).toBe(OK)
    for (const z of [...same, other]) z.s.destroy()
  })
})

describe('watches (watchesPerSessionMax)', () => {
  it('refuses the watch past the limit with THROTTLED_OP, by addWatch, a read or SetWatches', async () => {
    const z = await attacker(30)
    await paced(z, WATCHES_MAX, (i) => ({ op: OpCode.addWatch, path: `/w/${i}`, mode: 0 }))
    await new Promise((r) => setTimeout(r, 1000))
    expect(z.tally()).toBe(JSON.stringify({ [OK]: WATCHES_MAX }))
    expect(await z.call({ op: OpCode.addWatch, path: '/w/one-more', mode: 0 })).toBe(THROTTLED_OP)
    expect(await z.call({ op: OpCode.exists, path: '/w/one-more', watch: true })).toBe(THROTTLED_OP)
    // One already held is not one more.
    expect(await z.call({ op: OpCode.addWatch, path: '/w/0', mode: 0 })).toBe(OK)
    z.s.destroy()
  })

  it('checks a SetWatches whole: an invalid path or too many watches set nothing and send nothing', async () => {
    const z = await attacker(31)
    const setWatches = (dataWatches: string[]): Request => ({
      op: OpCode.setWatches,
      relativeZxid: 0,
      dataWatches,
      existWatches: [],
      childWatches: [],
      persistentWatches: [],
      persistentRecursiveWatches: [],
    })
    expect(await z.call(setWatches(['/ok', 'no-slash']))).toBe(BAD_ARGUMENTS)
    // About 1 MiB: 65,000 paths that do not exist, each a notification if it were taken.
    const many = Array.from({ length: 65_000 }, (_, i) => `/gone/${i}`)
    expect(await whileServing(() => z.call(setWatches(many)))).toBe(THROTTLED_OP)
    expect(z.notifications).toBe(0)
    // Within the limit, every path that does not exist is answered at once.
    expect(await z.call(setWatches(many.slice(0, WATCHES_MAX)))).toBe(OK)
    await waitFor(() => z.notifications === WATCHES_MAX, { what: 'the notifications' })
    z.s.destroy()
  })
})

describe('paths', () => {
  it(`takes a chain as deep as ${PATH_LENGTH_MAX} characters allow, and refuses a longer path with BAD_ARGUMENTS`, async () => {
    const z = await attacker(40)
    const depth = PATH_LENGTH_MAX / 2
    await whileServing(() => paced(z, depth, (i) => create(deepPath(i + 1))))
    await new Promise((r) => setTimeout(r, 1000))
    expect(z.tally()).toBe(JSON.stringify({ [OK]: depth }))
    expect(await z.call(create(deepPath(depth + 1)))).toBe(BAD_ARGUMENTS)
    expect(await z.call(create(`/${'x'.repeat(PATH_LENGTH_MAX)}`))).toBe(BAD_ARGUMENTS)
    expect(await z.call({ op: OpCode.getData, path: `/${'x'.repeat(PATH_LENGTH_MAX)}`, watch: false })).toBe(
      BAD_ARGUMENTS,
    )
    z.s.destroy()
  })
})

describe('ACL lists (aclEntriesMax, 64)', () => {
  const digest = (i: number) => ({ perms: 31, id: { scheme: 'digest', id: `user${i}:${'x'.repeat(27)}=` } })

  it('takes 64 entries, refuses 65 and 18,000 with INVALID_ACL, at once', async () => {
    const z = await attacker(50)
    const acl = (n: number) => Array.from({ length: n }, (_, i) => digest(i))
    expect(await z.call(create('/acl-64', acl(64)))).toBe(OK)
    expect(await z.call(create('/acl-65', acl(65)))).toBe(INVALID_ACL)
    // Before: 18,000 entries took seconds of CPU each (duplicates found by comparing every pair).
    const huge = acl(18_000)
    const errs = await whileServing(() =>
      Promise.all([0, 1, 2, 3].map((i) => z.call(create(`/acl-huge-${i}`, huge)))),
    )
    expect(errs).toEqual([INVALID_ACL, INVALID_ACL, INVALID_ACL, INVALID_ACL])
    z.s.destroy()
  })
})

describe('addAuth floods (authIdsPerConnectionMax, 16)', () => {
  it('takes identities up to the limit (ip and 15 digests), then answers AUTH_FAILED and closes', async () => {
    const z = await attacker(60)
    const auth = (i: number): Request => ({
      op: OpCode.auth,
      authType: 0,
      scheme: 'digest',
      auth: new TextEncoder().encode(`user${i}:password`),
    })
    for (let i = 0; i < 15; i++) expect(await z.call(auth(i))).toBe(OK)
    // The same one again adds nothing.
    expect(await z.call(auth(0))).toBe(OK)
    expect(await z.call(auth(15))).toBe(AUTH_FAILED)
    await z.s.waitClosed()
    await waitFor(() => server.output().includes('authIdsPerConnectionMax=16'), {
      what: 'the refusal logged',
    })
  })
})
