/**
 * The four-letter words over a fake server view, in ZooKeeper's text
 * formats: envi (a `zookeeper.version` a client such as kazoo can parse,
 * Conclave's version apart, no environment variables), srvr/stat, mntr,
 * isro, ruok, cons, crst, dump (leader and elsewhere), wchs/wchc/wchp, conf
 * (no secrets), dirs; nothing for a word Conclave does not answer; and the
 * whitelist (ZooKeeper's refusal, srvr always, the default, `*`, the
 * setting).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { AdminConnection } from '../../../server/admin/admin-view.js'
import {
  allowedWords,
  DEFAULT_WHITELIST,
  describe as describeServer,
  environment,
  FOUR_LETTER_WORDS,
  type FourLetterSource,
  fourLetterWord,
  metrics,
  ZOOKEEPER_COMPATIBLE_VERSION,
} from '../../../server/admin/four-letter-words.js'
import { parseConfig, readConfigFile } from '../../../server/config.js'
import { ConnectionStats } from '../../../server/request/request-probe.js'
import { OpCode } from '../../../shared/opcodes.js'
import { fakeAdminView } from './fake-admin-view.js'

function source(over: Partial<FourLetterSource> = {}): FourLetterSource {
  return fakeAdminView(over)
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
  it('srvr lists describe(), stat adds the Clients, mntr lists metrics(), ruok and isro answer', () => {
    const s = source({ connections: () => [connection(0x1234n, 51000)] })
    expect(fourLetterWord(s, 'ruok')).toBe('imok')
    const srvr = fourLetterWord(s, 'srvr')!
    expect(srvr).toContain('Mode: follower\n')
    expect(srvr).toContain('Zxid: 0x400000007\n')
    expect(srvr).toContain('Leader: 1\n')
    expect(fourLetterWord(s, 'stat')).toBe(
      `${srvr}Clients:\n /10.1.2.3:51000[1](queued=2,recved=7,sent=6)\n\n`,
    )
    expect(describeServer(s)).toMatchObject({ 'Conclave version': '9.9.9', 'Server id': 3, 'Node count': 11 })
    const mntr = fourLetterWord(s, 'mntr')!
    expect(mntr).toContain('conclave_znode_count\t11\n')
    expect(metrics(s)).toMatchObject({ conclave_server_state: 'following', conclave_tree_bytes_max: 1 << 30 })
    expect(fourLetterWord(s, 'isro')).toBe('rw')
    const looking = { role: () => 'looking' }
    expect(fourLetterWord(source({ ...looking, serving: () => true }), 'isro')).toBe('ro')
    // No quorum and not serving (read-only mode off, or still in its grace): ZooKeeper's IsroCommand prints null.
    expect(fourLetterWord(source({ ...looking, serving: () => false }), 'isro')).toBe('null')
    expect(fourLetterWord(source({ role: () => 'looking', serving: () => false }), 'isro')).toBe('null')
  })

  it('answers nothing for a word it does not know (the client port then reads it as a packet)', () => {
    for (const w of ['xxxx', 'srst', 'gtmk', 'stmk', 'icfg', 'sysp', 'kill'])
      expect(fourLetterWord(source(), w)).toBeUndefined()
    expect(FOUR_LETTER_WORDS).toEqual(
      expect.arrayContaining(['cons', 'dump', 'wchs', 'wchc', 'wchp', 'conf', 'crst', 'dirs']),
    )
  })
})

/** A connection of session `id` from 10.1.2.3:`port`, with some traffic. */
function connection(id: bigint, port: number): AdminConnection {
  const stats = new ConnectionStats()
  Object.assign(stats, {
    received: 7,
    sent: 6,
    lastOp: 'GETD',
    lastCxid: 0x2a,
    lastZxid: 0x400000007,
    establishedAt: 1_700_000_000_000,
    lastResponseAt: 1_700_000_001_000,
    lastLatencyMs: 1.4,
    minLatencyMs: 0.2,
    maxLatencyMs: 3.6,
    totalLatencyMs: 6,
    count: 4,
  })
  return {
    sessionId: id,
    conn: { remoteAddress: '10.1.2.3', remotePort: port },
    outstanding: 2,
    reading: true,
    stats,
  }
}

describe('cons and crst', () => {
  it("prints each connection as ZooKeeper's dumpConnectionInfo does, then a blank line", () => {
    const s = source({
      connections: () => [connection(0x1234n, 51000)],
      sessions: () => [{ id: 0x1234n, timeoutMs: 30000 }],
    })
    expect(fourLetterWord(s, 'cons')).toBe(
      ' /10.1.2.3:51000[1](queued=2,recved=7,sent=6,sid=0x1234,lop=GETD,est=1700000000000,to=30000,' +
        'lcxid=0x2a,lzxid=0x400000007,lresp=1700000001000,llat=1,minlat=0,avglat=2,maxlat=4)\n\n',
    )
  })

  it("crst resets every connection's statistics and says so", () => {
    let resets = 0
    const s = source({ resetConnectionStats: () => resets++ })
    expect(fourLetterWord(s, 'crst')).toBe('Connection stats reset.\n')
    expect(resets).toBe(1)
  })

  it('ConnectionStats.reset keeps when the connection was made and clears the rest', () => {
    const { stats } = connection(1n, 1)
    stats.reset()
    expect(stats).toMatchObject({ received: 0, sent: 0, lastOp: 'NA', lastCxid: -1, lastZxid: -1, count: 0 })
    expect(stats.establishedAt).toBe(1_700_000_000_000)
  })
})

describe('dump', () => {
  const sessions = [
    { id: 0x20n, timeoutMs: 4000 },
    { id: 0x10n, timeoutMs: 6000 },
  ]
  const ephemerals = (id: bigint) => (id === 0x10n ? ['/b', '/a'] : [])

  it('on the leader: the expiry buckets (SessionTrackerImpl), then the ephemerals by session', () => {
    const at = Date.UTC(2024, 2, 5, 14, 3, 22)
    const s = source({
      sessions: () => sessions,
      ephemerals,
      sessionDeadlines: () => [
        { id: 0x20n, deadlineMs: at },
        { id: 0x10n, deadlineMs: at },
      ],
    })
    expect(fourLetterWord(s, 'dump')).toBe(
      'SessionTracker dump:\nSession Sets (1)/(2):\n2 expire at Tue Mar 05 14:03:22 UTC 2024:\n\t0x10\n\t0x20\n' +
        'ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x10:\n\t/a\n\t/b\nConnections dump:\n',
    )
  })

  it('elsewhere: the sessions it knows with their timeouts (LearnerSessionTracker)', () => {
    const s = source({ sessions: () => sessions, ephemerals })
    expect(fourLetterWord(s, 'dump')).toBe(
      'SessionTracker dump:\nGlobal Sessions(2):\n0x10\t6000ms\n0x20\t4000ms\n' +
        'ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x10:\n\t/a\n\t/b\nConnections dump:\n',
    )
  })
})

describe('wchs, wchc, wchp', () => {
  const s = source({
    watches: () => [
      { sessionId: 0x1n, paths: ['/a', '/b', '/a'] },
      { sessionId: 0x2n, paths: ['/b'] },
    ],
  })

  it("summarise, list by session and by path in ZooKeeper's formats", () => {
    expect(fourLetterWord(s, 'wchs')).toBe('2 connections watching 2 paths\nTotal watches:3\n')
    expect(fourLetterWord(s, 'wchc')).toBe('0x1\n\t/a\n\t/b\n0x2\n\t/b\n\n')
    expect(fourLetterWord(s, 'wchp')).toBe('/a\n\t0x1\n/b\n\t0x1\n\t0x2\n\n')
  })
})

describe('conf and dirs', () => {
  it('conf prints the effective settings as key=value, members as server.N lines, and no secret', () => {
    const config = parseConfig({
      dataDir: '/var/lib/conclave',
      serverId: 2,
      servers: [
        { id: 1, host: 'a', peerPort: 2888, clientPort: 2181 },
        { id: 2, host: 'b', peerPort: 2888, clientPort: 2181, observer: true },
      ],
      ensembleSecret: 'a-very-secret-thing',
      superDigest: 'super:abcdefghijklmnopqrstuvwxyz0=',
    })
    const text = fourLetterWord(source({ config: () => config }), 'conf')!
    expect(text).toContain('dataDir=/var/lib/conclave\n')
    expect(text).toContain('tickTime=2000\n')
    expect(text).toContain('serverId=2\n')
    expect(text).toContain('server.1=a:2888:2181\nserver.2=b:2888:2181:observer\n')
    expect(text).toContain(`treeBytesMax=${1 << 30}\n`)
    expect(text).not.toContain('a-very-secret-thing')
    expect(text).not.toContain('abcdefghijklmnopqrstuvwxyz0')
    expect(text).not.toMatch(/ensembleSecret|superDigest/)
    for (const line of text.trimEnd().split('\n')) expect(line).toMatch(/^[A-Za-z0-9.]+=/)
  })

  it("dirs sums the database's files; logdir_size is its WAL", () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-dirs-'))
    try {
      writeFileSync(join(dir, 'conclave.db'), Buffer.alloc(4096))
      writeFileSync(join(dir, 'conclave.db-wal'), Buffer.alloc(1000))
      writeFileSync(join(dir, 'unrelated.txt'), Buffer.alloc(50))
      const s = source({ config: () => parseConfig({ dataDir: dir }) })
      expect(fourLetterWord(s, 'dirs')).toBe('datadir_size: 5096\nlogdir_size: 1000\n')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('the whitelist (4lw.commands.whitelist)', () => {
  it('refuses a word not listed as ZooKeeper does, and answers the listed ones', () => {
    const allowed = allowedWords(['ruok', 'mntr'], false)
    expect(fourLetterWord(source(), 'cons', allowed)).toBe(
      'cons is not executed because it is not in the whitelist.\n',
    )
    expect(fourLetterWord(source(), 'ruok', allowed)).toBe('imok')
    expect(fourLetterWord(source(), 'mntr', allowed)).toContain('conclave_znode_count')
    expect(fourLetterWord(source(), 'xxxx', allowed)).toBeUndefined()
  })

  it('always allows srvr, and isro in read-only mode (ZooKeeper: zkServer.sh needs them)', () => {
    expect([...allowedWords(['ruok'], false)].sort()).toEqual(['ruok', 'srvr'])
    expect([...allowedWords([], true)].sort()).toEqual(['isro', 'srvr'])
  })

  it('defaults to the words answered before the whitelist existed; * allows all', () => {
    expect([...allowedWords(undefined, false)].sort()).toEqual([...DEFAULT_WHITELIST].sort())
    expect(DEFAULT_WHITELIST).toEqual(['ruok', 'srvr', 'stat', 'mntr', 'isro', 'envi'])
    expect([...allowedWords(['*'], false)].sort()).toEqual([...FOUR_LETTER_WORDS].sort())
  })

  it('is a setting: 4lw.commands.whitelist in a key=value file, words checked', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-4lw-'))
    try {
      const file = join(dir, 'zoo.cfg')
      writeFileSync(file, '4lw.commands.whitelist=ruok, cons,dump\n')
      expect(parseConfig(readConfigFile(file)).fourLetterWordWhitelist).toEqual(['ruok', 'cons', 'dump'])
      writeFileSync(file, '4lw.commands.whitelist=*\n')
      expect(parseConfig(readConfigFile(file)).fourLetterWordWhitelist).toEqual(['*'])
      expect(() => parseConfig({ fourLetterWordWhitelist: ['ruok', 'kill'] })).toThrow(
        /fourLetterWordWhitelist/,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
