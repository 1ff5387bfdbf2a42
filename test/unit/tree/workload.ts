/**
 * A random write workload for property tests: requests over a small path
 * universe (so they collide), several sessions, ACLs that deny, TTLs, multi,
 * reaps, clock jumps, and batches (requests prepped together before any of
 * them is applied: pipelining).
 */
import fc from 'fast-check'
import type { MultiOpRequest, PrepRequest } from '../../../server/txn/request.js'
import { type Acl, CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE } from '../../../shared/acl.js'
import { CreateFlag, type CreateMode, Perms } from '../../../shared/opcodes.js'
import { generateDigest } from '../../helpers/sha1.js'

export const ALICE = { scheme: 'digest', id: generateDigest('alice:pw') }

export interface Step {
  req: PrepRequest
  sessionId: bigint
  alice: boolean
  dtMs: number
  /** Apply everything prepped so far after this step. */
  flush: boolean
}

const PATHS = [
  '/',
  '/a',
  '/a',
  '/a/b',
  '/a/b/c',
  '/a/c',
  '/b',
  '/b',
  '/b/x',
  '/c',
  '/zookeeper/x',
  '/a/s-0000000000',
]
const SEQ_PREFIXES = ['/a/s-', '/b/', '/s-']
const MODES = Object.keys(CreateFlag) as CreateMode[]
const ACLS: Acl[][] = [
  [...OPEN_ACL_UNSAFE],
  [...OPEN_ACL_UNSAFE],
  [...READ_ACL_UNSAFE],
  [{ perms: Perms.CREATE | Perms.READ | Perms.DELETE, id: { scheme: 'world', id: 'anyone' } }],
  [{ perms: Perms.ALL, id: ALICE }],
  [...CREATOR_ALL_ACL],
  [],
]

const path = fc.constantFrom(...PATHS)
const version = fc.constantFrom(-1, -1, 0, 1, 2)
// Sometimes null: no data, which the tree keeps distinct from empty bytes.
const data = fc.option(fc.uint8Array({ maxLength: 200 }), { nil: null, freq: 8 })
const acl = fc.constantFrom(...ACLS)

const create: fc.Arbitrary<MultiOpRequest> = fc
  .record({
    mode: fc.constantFrom(...MODES),
    path,
    prefix: fc.constantFrom(...SEQ_PREFIXES),
    data,
    acl,
    ttl: fc.constantFrom<number | undefined>(undefined, 1, 500, 3000, 3000, 0),
  })
  .map(({ mode, path, prefix, data, acl, ttl }) => {
    const seq = mode.includes('Sequential')
    // Mostly valid TTL use; sometimes a TTL where none belongs, or none where one is needed.
    const ttlMs = mode.includes('Ttl') ? ttl : ttl === 0 ? 5 : undefined
    const req: MultiOpRequest = { type: 'create', path: seq ? prefix : path, data, acl, mode }
    if (ttlMs !== undefined) req.ttlMs = ttlMs
    return req
  })

const op: fc.Arbitrary<MultiOpRequest> = fc.oneof(
  { weight: 5, arbitrary: create },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('delete' as const), path, version }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('setData' as const), path, data, version }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('check' as const), path, version }) },
)

const request: fc.Arbitrary<PrepRequest> = fc.oneof(
  { weight: 10, arbitrary: op },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('setACL' as const), path, acl, version }) },
  {
    weight: 2,
    arbitrary: fc.record({ type: fc.constant('multi' as const), ops: fc.array(op, { maxLength: 4 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('createSession' as const),
      timeoutMs: fc.constantFrom(2000, 9000),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ type: 'closeSession' as const }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('reap' as const), path }) },
)

export const step: fc.Arbitrary<Step> = fc
  .record({
    req: request,
    pick: fc.nat(9),
    alice: fc.boolean(),
    dtMs: fc.constantFrom(0, 1, 10, 700, 2500),
    flush: fc.boolean(),
  })
  .map(({ req, pick, alice, dtMs, flush }) => {
    // Session 1 always lives (most writes come from it); 2 and 3 come and go.
    const sessionOp = req.type === 'createSession' || req.type === 'closeSession'
    const sessionId = sessionOp ? (pick < 5 ? 2n : 3n) : pick < 7 ? 1n : pick < 9 ? 2n : 3n
    return { req, sessionId, alice, dtMs, flush }
  })

export const workload = fc.array(step, { minLength: 1, maxLength: 80, size: 'max' })
