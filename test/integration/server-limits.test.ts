/**
 * Limits past which a real server refuses, clearly, and carries on:
 * connections per IP (maxClientCnxns) and sessions in total (sessionsMax).
 * Packet size, data size and outstanding-request limits are covered in
 * server-bad-input.test.ts and the SDK suite.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { RawClient } from '../helpers/raw-client.js'
import { tempDir, waitFor } from '../helpers/wait.js'

const servers: ConclaveProcess[] = []
const dirs: { remove(): void }[] = []

afterAll(async () => {
  for (const s of servers) {
    await s.stop()
    s.remove()
  }
  for (const d of dirs) d.remove()
  await stopAllConclave()
})

describe('server limits', () => {
  it('refuses a connection past maxClientCnxns from one address, and logs why', async () => {
    const s = await startConclave({ extraArgs: ['--max-client-cnxns', '3'] })
    servers.push(s)
    const open = [
      await RawClient.session(s.port),
      await RawClient.session(s.port),
      await RawClient.session(s.port),
    ]
    const extra = await RawClient.connect(s.port)
    await extra.waitClosed()
    expect(s.output()).toContain('too many connections from')
    // The three sessions still work, and a slot frees up when one closes.
    open[0]!.sendRequest(1, { op: 3, path: '/', watch: false })
    expect((await open[0]!.reply(1)).err).toBe(0)
    open[1]!.close()
    const again = await waitFor(async () => RawClient.session(s.port).catch(() => undefined), {
      what: 'a free connection slot',
    })
    again.close()
    for (const c of open) c.close()
  })

  it('refuses a new session past sessionsMax, keeping the existing ones', async () => {
    const dir = tempDir('conclave-limits-')
    dirs.push(dir)
    const cfg = join(dir.path, 'conclave.json')
    writeFileSync(cfg, JSON.stringify({ sessionsMax: 2 }))
    const s = await startConclave({ extraArgs: ['--config', cfg] })
    servers.push(s)
    const a = await RawClient.session(s.port)
    const b = await RawClient.session(s.port)
    await expect(RawClient.session(s.port)).rejects.toThrow()
    await waitFor(() => s.output().includes('session limit reached'), { what: 'the refusal to be logged' })
    a.sendRequest(1, { op: 3, path: '/', watch: false })
    expect((await a.reply(1)).err).toBe(0)
    a.close()
    b.close()
  })

  it('rejects a bad configuration value naming the field, the value and what is expected (exit 2)', async () => {
    const r = await import('node:child_process').then(({ spawnSync }) =>
      spawnSync(process.execPath, ['bin/conclave.js', 'server', '--tick-time', 'soon'], { encoding: 'utf8' }),
    )
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/tickTime \(got "soon"\)/)
  })
})
