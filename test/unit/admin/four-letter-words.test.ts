/**
 * The four-letter words over a fake server view: envi in ZooKeeper's format
 * (a `zookeeper.version` a client such as kazoo can parse, Conclave's
 * version apart, no environment variables), srvr/stat, mntr, isro, ruok, and
 * nothing for a word Conclave does not answer.
 */
import { describe, expect, it } from 'vitest'
import {
  describe as describeServer,
  environment,
  type FourLetterSource,
  fourLetterWord,
  metrics,
  ZOOKEEPER_COMPATIBLE_VERSION,
} from '../../../server/admin/four-letter-words.js'
import { OpCode } from '../../../shared/opcodes.js'

function source(over: Partial<FourLetterSource> = {}): FourLetterSource {
  return {
    version: '9.9.9',
    serverId: () => 3,
    readOnlyMode: () => false,
    treeBytesMax: () => 1 << 30,
    role: () => 'following',
    epoch: () => 4,
    lastZxid: () => 0x400000007,
    sessionCount: () => 2,
    connectionCount: () => 5,
    nodeCount: () => 11,
    watchCount: () => 6,
    digest: () => 'abcdef0123456789',
    treeBytesEstimate: () => 4096,
    packetsReceived: () => 99,
    writesInFlight: () => 1,
    writesDeferred: () => 0,
    readingPaused: () => false,
    replication: () => ({ Leader: 1 }),
    ...over,
  }
}

/** kazoo's KazooClient.server_version(): key=value lines, then the leading digits and dots. */
function kazooServerVersion(envi: string): number[] {
  const parsed: Record<string, string> = {}
  for (const line of envi.split('\n')) {
    const at = line.indexOf('=')
    if (at >= 0 && line.slice(0, at).trim() !== '')
      parsed[line.slice(0, at).trim()] = line.slice(at + 1).trim()
  }
  return /^([\d.]*)/
    .exec(parsed['zookeeper.version'] ?? '')![1]!
    .split('.')
    .map(Number)
}

describe('envi', () => {
  it("is ZooKeeper's format: 'Environment:' then key=value lines", () => {
    const text = fourLetterWord(source(), 'envi')!
    expect(text.endsWith('\n')).toBe(true)
    const [head, ...rest] = text.trimEnd().split('\n')
    expect(head).toBe('Environment:')
    for (const line of rest) expect(line).toMatch(/^[a-z]+(\.[a-z]+)+=.*$/)
    expect(rest[0]).toBe(`zookeeper.version=${ZOOKEEPER_COMPATIBLE_VERSION}`)
    expect(rest).toContain('conclave.version=9.9.9')
  })

  it('reports the ZooKeeper release whose opcode table Conclave serves (3.8.0), parseable as kazoo does', () => {
    expect(ZOOKEEPER_COMPATIBLE_VERSION).toBe('3.8.0')
    expect(kazooServerVersion(fourLetterWord(source(), 'envi')!)).toEqual([3, 8, 0])
    // 3.7 added whoAmI, the last opcode of 3.8's table; 3.8.0 is the differential tests' oracle.
    expect(Math.max(...Object.values(OpCode))).toBe(OpCode.whoAmI)
  })

  it('holds no environment variables (the ensemble secret travels in one)', () => {
    const before = process.env.CONCLAVE_SECRET
    process.env.CONCLAVE_SECRET = 'do-not-print-me'
    try {
      expect(fourLetterWord(source(), 'envi')).not.toContain('do-not-print-me')
      expect(Object.keys(environment(source())).every((k) => /^[a-z.]+$/.test(k))).toBe(true)
    } finally {
      if (before === undefined) delete process.env.CONCLAVE_SECRET
      else process.env.CONCLAVE_SECRET = before
    }
  })
})

describe('the other words', () => {
  it('srvr and stat list describe(), mntr lists metrics(), ruok and isro answer', () => {
    const s = source()
    expect(fourLetterWord(s, 'ruok')).toBe('imok')
    const srvr = fourLetterWord(s, 'srvr')!
    expect(fourLetterWord(s, 'stat')).toBe(srvr)
    expect(srvr).toContain('Mode: follower\n')
    expect(srvr).toContain('Zxid: 0x400000007\n')
    expect(srvr).toContain('Leader: 1\n')
    expect(describeServer(s)).toMatchObject({ 'Conclave version': '9.9.9', 'Server id': 3, 'Node count': 11 })
    const mntr = fourLetterWord(s, 'mntr')!
    expect(mntr).toContain('conclave_znode_count\t11\n')
    expect(metrics(s)).toMatchObject({ conclave_server_state: 'following', conclave_tree_bytes_max: 1 << 30 })
    expect(fourLetterWord(s, 'isro')).toBe('rw')
    expect(fourLetterWord(source({ role: () => 'looking', readOnlyMode: () => true }), 'isro')).toBe('ro')
    expect(fourLetterWord(source({ role: () => 'looking' }), 'isro')).toBe('rw')
  })

  it('answers nothing for a word it does not know', () => {
    for (const w of ['dump', 'wchs', 'cons', 'conf', 'xxxx'])
      expect(fourLetterWord(source(), w)).toBeUndefined()
  })
})
