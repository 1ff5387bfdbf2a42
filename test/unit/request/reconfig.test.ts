/**
 * The reconfig request's new configuration (server/request/reconfig.ts):
 * incremental and whole changes from the current config, the request's form,
 * ZooKeeper's line form (a joining line comes back verbatim), new servers and
 * new addresses, and the ids Conclave can run. The request path with real
 * processes: test/integration/reconfig.test.ts and reconfig-join.test.ts.
 */
import { describe, expect, it } from 'vitest'
import type { PeerSpec } from '../../../server/config.js'
import { staticMemberConfig } from '../../../server/config.js'
import { nextConfig, runnable } from '../../../server/request/reconfig.js'
import { OpCode } from '../../../shared/opcodes.js'
import type { ReconfigRequest } from '../../../shared/records.js'

const servers: PeerSpec[] = [1, 2, 3, 4].map((id) => ({
  id,
  host: '127.0.0.1',
  peerPort: 2000 + id,
  clientPort: 3000 + id,
  observer: id === 4,
}))
const current = staticMemberConfig(servers)
const line = (id: number, role: string, peer = 2000 + id, client = `127.0.0.1:${3000 + id}`) =>
  `server.${id}=127.0.0.1:${peer}:${peer}:${role};${client}`

function req(r: Partial<ReconfigRequest>): ReconfigRequest {
  return {
    op: OpCode.reconfig,
    joiningServers: '',
    leavingServers: '',
    newMembers: '',
    curConfigId: -1,
    ...r,
  }
}

function plan(r: Partial<ReconfigRequest>) {
  const asked = nextConfig(req(r), current)
  if ('err' in asked) return asked
  return runnable(asked)
}

describe('the new configuration of a reconfig', () => {
  it('removes, adds back, promotes and demotes', () => {
    const removed = plan({ leavingServers: '3' })
    expect(removed).toMatchObject({ voters: [1, 2], observers: [4] })
    const promoted = plan({ joiningServers: line(4, 'participant') })
    expect(promoted).toMatchObject({ voters: [1, 2, 3, 4], observers: [] })
    const demoted = plan({ joiningServers: line(1, 'observer'), leavingServers: '4' })
    expect(demoted).toMatchObject({ voters: [2, 3], observers: [1] })
    const whole = plan({ newMembers: [line(1, 'participant'), line(2, 'participant')].join(',') })
    expect(whole).toMatchObject({ voters: [1, 2], observers: [] })
  })

  it("writes every line in ZooKeeper's form: a client port alone listens on 0.0.0.0, the role defaults to participant", () => {
    const c = plan({ joiningServers: `server.4=127.0.0.1:2004:2004;3004` })
    expect('text' in c && c.text.split('\n')).toEqual([
      line(1, 'participant'),
      line(2, 'participant'),
      line(3, 'participant'),
      line(4, 'participant', 2004, '0.0.0.0:3004'),
    ])
  })

  it("keeps kazoo's joining observer line verbatim (distinct quorum and election ports, 0.0.0.0)", () => {
    const joining = 'server.100=0.0.0.0:41001:41002:observer;0.0.0.0:41003'
    const c = plan({ joiningServers: joining })
    expect(c).toMatchObject({ voters: [1, 2, 3], observers: [4, 100] })
    expect('text' in c && c.text.split('\n')).toContain(joining)
  })

  it('accepts new servers and new addresses: a new id, a known id moved, another client port', () => {
    for (const joining of [
      line(9, 'observer', 2009),
      line(9, 'participant', 2009),
      line(3, 'participant', 2999),
      'server.3=127.0.0.1:2003:2999:participant;127.0.0.1:3003',
      'server.3=10.0.0.3:2003:2003:participant;10.0.0.3:3003',
      line(3, 'participant', 2003, '127.0.0.1:3999'),
      'server.3=host-3.example.com:2003:2003:participant',
    ]) {
      const out = plan({ joiningServers: joining })
      expect(out, joining).toHaveProperty('text')
      expect((out as { text: string }).text.split('\n'), joining).toContain(joining)
    }
  })

  it('refuses a malformed request with BAD_ARGUMENTS and a reason', () => {
    for (const r of [
      { joiningServers: 'some thing' },
      { leavingServers: 'three' },
      { leavingServers: '9' },
      { leavingServers: '1,2,3' },
      { leavingServers: '3', newMembers: line(1, 'participant') },
      {},
      { newMembers: `${line(1, 'participant')},${line(1, 'observer')}` },
      { joiningServers: 'server.2=127.0.0.1:2002:2002:leader;127.0.0.1:3002' },
      { joiningServers: 'x'.repeat(70_000) },
    ]) {
      const out = plan(r)
      expect(out, JSON.stringify(r).slice(0, 80)).toMatchObject({ err: 'BAD_ARGUMENTS' })
      expect((out as { why: string }).why.length).toBeGreaterThan(5)
    }
  })

  it('refuses bad addresses and ids Conclave cannot run, with the server named', () => {
    for (const joining of [
      line(9, 'observer', 0),
      line(9, 'observer', 65536),
      'server.9=127.0.0.1:2009:x:observer;127.0.0.1:3009',
      'server.9=127.0.0.1:2009:2009:observer;127.0.0.1:http',
      'server.9=bad host:2009:2009:observer',
      'server.9=:2009:2009:observer',
      'server.9=127.0.0.1:2009:observer',
      line(255, 'observer'),
      line(999, 'participant'),
    ]) {
      const out = plan({ joiningServers: joining })
      expect(out, joining).toMatchObject({ err: 'BAD_ARGUMENTS' })
      expect((out as { why: string }).why).toMatch(/server\.\d/)
    }
  })
})
