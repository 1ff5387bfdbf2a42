/**
 * `conclave cluster` plans its members and the arguments each `conclave
 * server` child gets: ids, the shared servers list, ports, a data directory
 * each, and the flags handed on to every server (--tick-time,
 * --allowed-origins); the arguments parse as a valid server config.
 */
import { describe, expect, it } from 'vitest'
import { memberArgs, planCluster, serversFlag } from '../../../server/cli/cluster-command.js'
import { configInput } from '../../../server/cli/server-command.js'
import { parseConfig } from '../../../server/config.js'

describe('conclave cluster', () => {
  it('plans voters then observers on consecutive ports', () => {
    const members = planCluster(3, 1, 2181, 2888)
    expect(serversFlag(members)).toBe(
      '1=127.0.0.1:2888:2181,2=127.0.0.1:2889:2182,3=127.0.0.1:2890:2183,4=127.0.0.1:2891:2184:observer',
    )
  })

  it('hands --tick-time and --allowed-origins on to every server, and the result is a valid config', () => {
    const members = planCluster(3, 0, 2181, 2888)
    const flags = new Map<string, string | boolean>([
      ['tick-time', '500'],
      ['allowed-origins', 'https://app.example,https://ops.example'],
      ['size', '3'],
    ])
    const args = memberArgs(members[1]!, members, '/tmp/d', flags)
    expect(args.slice(0, 3)).toEqual(['server', '--id', '2'])
    expect(args).toContain('--allowed-origins')
    expect(args).not.toContain('--size')
    const config = parseConfig({ ...configInput(args.slice(1)), ensembleSecret: 'x'.repeat(16) })
    expect(config).toMatchObject({
      serverId: 2,
      clientPort: 2182,
      tickTime: 500,
      dataDir: '/tmp/d/node-2',
      allowedOrigins: ['https://app.example', 'https://ops.example'],
    })
    expect(config.servers).toHaveLength(3)
    expect(memberArgs(members[0]!, members, 'd', new Map())).not.toContain('--tick-time')
  })
})
