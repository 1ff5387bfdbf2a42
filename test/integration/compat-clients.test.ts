/**
 * Unchanged third-party clients against a real Conclave server process:
 * Python's kazoo (create/get/set/ls/delete, sequential, an ephemeral, a
 * watch, a Lock, a transaction) and Apache ZooKeeper's own zkCli.sh. Both
 * speak ZooKeeper's TCP framing on Conclave's client port. Skipped, with the
 * reason, where the Debian packages are not installed; under CI=true that
 * fails instead (.ci/run installs them; test/helpers/prerequisites.ts).
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { canRun, kazooMissing, ZKCLI, zkCliMissing } from '../helpers/prerequisites.js'

let server: ConclaveProcess

beforeAll(async () => {
  server = await startConclave()
})

afterAll(async () => {
  await server?.stop()
  server?.remove()
  await stopAllConclave()
})

describe.runIf(canRun('kazoo against Conclave (compat-clients.test.ts)', kazooMissing()))(
  'kazoo (python3-kazoo) against Conclave',
  () => {
    it('passes every check', () => {
      const script = fileURLToPath(new URL('./fixtures/kazoo-check.py', import.meta.url))
      const r = spawnSync('/usr/bin/python3', [script, `127.0.0.1:${server.port}`], {
        encoding: 'utf8',
        timeout: 60_000,
      })
      const lines = r.stdout.trim().split('\n')
      expect(
        lines.filter((l) => !l.startsWith('ok ')),
        r.stderr,
      ).toEqual([])
      expect(lines).toEqual([
        'ok crud',
        'ok sequential',
        'ok ephemeral',
        'ok watch',
        'ok lock',
        'ok transaction',
      ])
      expect(r.status).toBe(0)
    })
  },
)

function zkCli(...args: string[]): { out: string; status: number | null } {
  const r = spawnSync(ZKCLI, ['-server', `127.0.0.1:${server.port}`, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, JVMFLAGS: '-Xmx256m', ZOO_LOG4J_PROP: 'ERROR,CONSOLE' },
  })
  return { out: `${r.stdout}${r.stderr}`, status: r.status }
}

describe.runIf(canRun("ZooKeeper's zkCli.sh against Conclave (compat-clients.test.ts)", zkCliMissing()))(
  "Apache ZooKeeper's zkCli.sh against Conclave",
  () => {
    it('creates, reads, lists, updates and deletes', () => {
      expect(zkCli('create', '/zkcli', 'hello').out).toContain('Created /zkcli')
      expect(zkCli('get', '/zkcli').out).toContain('hello')
      expect(zkCli('create', '/zkcli/child', 'x').out).toContain('Created /zkcli/child')
      expect(zkCli('ls', '/zkcli').out).toContain('[child]')
      zkCli('set', '/zkcli', 'world')
      const stat = zkCli('stat', '/zkcli').out
      expect(stat).toContain('dataVersion = 1')
      expect(stat).toContain('numChildren = 1')
      zkCli('deleteall', '/zkcli')
      expect(zkCli('ls', '/').out).not.toContain('zkcli')
    })
  },
)
