/**
 * The SDK's reading of /zookeeper/config (client/ensemble-config.ts): the
 * client addresses of participants and observers in Conclave's and
 * ZooKeeper's forms (wildcard and port-only client addresses, IPv6, multi-
 * address quorum parts), every malformed input refused whole with a reason
 * and never a throw, the limit on servers; and planServerList, which decides
 * whether a configuration's addresses replace the list (issue 19).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Endpoint, parseConnectString } from '../../../client/connect-string.js'
import { parseEnsembleConfig, SERVERS_MAX } from '../../../client/ensemble-config.js'
import { planServerList } from '../../../client/membership-tracker.js'

const addrs = (text: string) => {
  const c = parseEnsembleConfig(text)
  if (c.kind !== 'servers') throw new Error(`expected servers, got ${JSON.stringify(c)}`)
  return c.addresses.map((a) => `${a.id}=${a.host}:${a.port}`)
}

describe('parseEnsembleConfig', () => {
  it("reads Conclave's /zookeeper/config: participants and observers, in id order, and the version", () => {
    const text =
      'server.2=127.0.0.1:7002:7002:participant;127.0.0.1:2182\n' +
      'server.1=127.0.0.1:7001:7001:participant;127.0.0.1:2181\n' +
      'server.4=127.0.0.1:7004:7004:observer;127.0.0.1:2184\n' +
      'version=1a00000003'
    expect(parseEnsembleConfig(new TextEncoder().encode(text))).toEqual({
      kind: 'servers',
      addresses: [
        { id: 1, host: '127.0.0.1', port: 2181 },
        { id: 2, host: '127.0.0.1', port: 2182 },
        { id: 4, host: '127.0.0.1', port: 2184 },
      ],
      version: 0x1a00000003,
    })
  })

  it("takes ZooKeeper's forms: a wildcard or port-only client address means the quorum host; no client address, no entry", () => {
    expect(
      addrs(
        [
          'server.1=zk1:2888:3888:participant;0.0.0.0:2181',
          'server.2=zk2:2888:3888;2182',
          'server.3=[fe80::3]:2888:3888:observer;[::]:2183',
          'server.4=zk4:2888:3888:participant',
          'server.5=zk5a:2888:3888|zk5b:2888:3888:participant;ZK5.example:2185',
          'group.1=1:2:3',
          'weight.1=1',
          '',
          'version=100000000',
        ].join('\n'),
      ),
    ).toEqual(['1=zk1:2181', '2=zk2:2182', '3=fe80::3:2183', '5=ZK5.example:2185'])
  })

  it('is empty for a standalone server (no configuration), and keeps one entry per address', () => {
    expect(parseEnsembleConfig(new Uint8Array(0))).toEqual({ kind: 'empty' })
    expect(parseEnsembleConfig(' \n ')).toEqual({ kind: 'empty' })
    expect(addrs('server.1=a:1:2;h:5\nserver.2=b:1:2;H:5')).toEqual(['1=h:5'])
  })

  it.each([
    ['not UTF-8', new Uint8Array([0xff, 0xfe, 0x41])],
    ['a stray line', 'server.1=a:1:2;h:1\nhello'],
    ['a line that is no server', 'clientPort=2181'],
    ['a repeated id', 'server.1=a:1:2;h:1\nserver.1=b:1:2;h:2'],
    ['a bad quorum part', 'server.1=a:1;h:1'],
    ['an unknown role', 'server.1=a:1:2:leader;h:1'],
    ['a port out of range', 'server.1=a:1:2;h:65536'],
    ['port 0', 'server.1=a:1:2;h:0'],
    ['a client address with no port', 'server.1=a:1:2;h'],
    ['an unclosed IPv6 bracket', 'server.1=a:1:2;[::1:5'],
    ['a bad version', 'server.1=a:1:2;h:1\nversion=zz'],
    ['no server at all', 'version=1'],
  ])('refuses %s as malformed, with a reason', (_what, data) => {
    const c = parseEnsembleConfig(data)
    expect(c.kind).toBe('malformed')
    if (c.kind === 'malformed') expect(c.why.length).toBeGreaterThan(0)
  })

  it(`refuses more than ${SERVERS_MAX} servers (the SDK's bound on its list)`, () => {
    const lines = (n: number) =>
      Array.from({ length: n }, (_, i) => `server.${i + 1}=h:1:2;h:${1000 + i}`).join('\n')
    expect(parseEnsembleConfig(lines(SERVERS_MAX)).kind).toBe('servers')
    expect(parseEnsembleConfig(lines(SERVERS_MAX + 1))).toMatchObject({
      kind: 'malformed',
      why: expect.stringContaining(`more than ${SERVERS_MAX}`),
    })
    expect(parseEnsembleConfig(lines(3), 2).kind).toBe('malformed')
  })

  it('never throws, whatever the bytes, and every address it gives has a host and a valid port', () => {
    const line = fc
      .tuple(
        fc.constantFrom('server.1=', 'server.2=', 'server.x=', 'version=', 'group.1=', ''),
        fc.string({ maxLength: 30 }),
        fc.constantFrom('', ';', ';h:', ';[::1]:', ';0.0.0.0:'),
        fc.oneof(fc.nat(70_000).map(String), fc.string({ maxLength: 5 })),
      )
      .map((p) => p.join(''))
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), (lines) => {
        const c = parseEnsembleConfig(lines.join('\n'))
        if (c.kind !== 'servers') return
        for (const a of c.addresses) {
          expect(a.host).not.toBe('')
          expect(a.port >= 1 && a.port <= 65535).toBe(true)
        }
      }),
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        parseEnsembleConfig(bytes)
      }),
    )
  })
})

describe('planServerList', () => {
  const given = (s: string): Endpoint[] => parseConnectString(s)
  const address = (id: number, host: string, port: number) => ({ id, host, port })
  const urls = (plan: ReturnType<typeof planServerList>) =>
    plan.kind === 'replace' ? plan.endpoints.map((e) => e.url).sort() : plan.kind

  it('adds the servers a one-server list did not name, reached like the connected one (scheme, path)', () => {
    const current = given('wss://127.0.0.1:2181/zk?x=1')
    const plan = planServerList({
      current,
      addresses: [address(1, '127.0.0.1', 2181), address(2, '127.0.0.1', 2182), address(3, '::1', 2183)],
      template: current[0]!,
      trusted: false,
      random: Math.random,
    })
    expect(urls(plan)).toEqual([
      'wss://127.0.0.1:2181/zk?x=1',
      'wss://127.0.0.1:2182/zk?x=1',
      'wss://[::1]:2183/zk?x=1',
    ])
    // The entry for the server already listed is the same object (as given).
    if (plan.kind === 'replace') expect(plan.endpoints).toContain(current[0])
    const tcp = given('tcp://zk1:2181')
    expect(
      urls(
        planServerList({
          current: tcp,
          addresses: [address(1, 'zk1', 2181), address(2, 'zk2', 2181)],
          template: tcp[0]!,
          trusted: false,
          random: Math.random,
        }),
      ),
    ).toEqual(['tcp://zk1:2181', 'tcp://zk2:2181'])
  })

  it('keeps the list when the config names none of its servers (other names, port mappings), unless trusted', () => {
    const current = given('ws://localhost:12181,ws://localhost:12182')
    const addresses = [address(1, 'zoo1', 2181), address(2, 'zoo2', 2181)]
    const opts = { current, addresses, template: current[0]!, random: Math.random }
    expect(planServerList({ ...opts, trusted: false }).kind).toBe('foreign')
    expect(urls(planServerList({ ...opts, trusted: true }))).toEqual(['ws://zoo1:2181/', 'ws://zoo2:2181/'])
  })

  it('says same for the same servers in another order, none for no address; drops a removed server', () => {
    const current = given('ws://a:1,ws://b:2,ws://c:3')
    const base = { current, template: current[0]!, trusted: false, random: Math.random }
    expect(
      planServerList({ ...base, addresses: [address(3, 'C', 3), address(1, 'a', 1), address(2, 'b', 2)] })
        .kind,
    ).toBe('same')
    expect(planServerList({ ...base, addresses: [] }).kind).toBe('none')
    expect(urls(planServerList({ ...base, addresses: [address(2, 'b', 2), address(3, 'c', 3)] }))).toEqual([
      'ws://b:2/',
      'ws://c:3/',
    ])
  })
})
