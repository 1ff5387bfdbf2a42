/**
 * Limits past which a real server refuses, clearly, and carries on:
 * connections per IP (maxClientCnxns) and sessions in total (sessionsMax);
 * and the ones past which it slows clients down instead: writes in flight
 * (globalOutstandingLimit) and its log's backlog (writeThrottleBytes); and
 * a reply too large for one packet (frameBytesMax), refused as an error
 * instead of breaking the client's connection, and a request too large,
 * refused by the SDK before it is sent; a tree past treeBytesMax refuses
 * writes that would grow it (QUOTA_EXCEEDED) and takes the rest.
 * Packet size, data size and outstanding-request limits are covered in
 * server-bad-input.test.ts and the SDK suite.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { Client } from '../../client/index.js'
import { Queue } from '../../recipes/index.js'
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

/** A server started with `config` as its JSON config file (and `opts`), stopped and removed after the file. */
async function startWithConfig(
  config: Record<string, unknown>,
  opts: { extraArgs?: string[]; env?: Record<string, string> } = {},
): Promise<ConclaveProcess> {
  const dir = tempDir('conclave-limits-')
  dirs.push(dir)
  const cfg = join(dir.path, 'conclave.json')
  writeFileSync(cfg, JSON.stringify(config))
  const s = await startConclave({ ...opts, extraArgs: ['--config', cfg, ...(opts.extraArgs ?? [])] })
  servers.push(s)
  return s
}

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
    const s = await startWithConfig({ sessionsMax: 2 })
    const a = await RawClient.session(s.port)
    const b = await RawClient.session(s.port)
    await expect(RawClient.session(s.port)).rejects.toThrow()
    await waitFor(() => s.output().includes('session limit reached'), { what: 'the refusal to be logged' })
    a.sendRequest(1, { op: 3, path: '/', watch: false })
    expect((await a.reply(1)).err).toBe(0)
    a.close()
    b.close()
  })

  it('past globalOutstandingLimit and writeThrottleBytes it defers and stops reading, then takes every write in order', async () => {
    // A log backlog of 256 KiB counts as behind: a few 100 KiB writes get there.
    const s = await startWithConfig(
      { globalOutstandingLimit: 16 },
      {
        extraArgs: ['--log-level', 'info'],
        env: {
          CONCLAVE_STORAGE_LIMITS: JSON.stringify({
            pendingBytesHighWater: 2 ** 16,
            writeThrottleBytes: 2 ** 18,
          }),
        },
      },
    )
    const sessions = await Promise.all(
      Array.from({ length: 4 }, () => Client.connect(s.connectString, { sessionTimeoutMs: 10_000 })),
    )
    try {
      await sessions[0]!.create('/thr', '')
      const data = (k: number, i: number) => `${k}:${i}:${'x'.repeat(100 * 1024)}`
      // 4 sessions x 40 writes of 100 KiB, all in flight at once: 160 > 16 in flight, 16 MB of log.
      const N = 40
      await Promise.all(
        sessions.map((zk, k) =>
          Promise.all(
            Array.from({ length: N }, (_, i) =>
              zk.create(`/thr/s${k}-`, data(k, i), { mode: 'persistentSequential' }),
            ),
          ),
        ),
      )
      const out = s.output()
      expect(out).toContain("this server's log is behind; deferring writes")
      expect(out).toContain('log caught up; proposing deferred writes')
      expect(out).toContain('too many writes in flight; not reading from clients')
      expect(out).toContain('reading from clients again')
      // Every write applied once, and each session's in the order it sent them.
      const children = await sessions[1]!.getChildren('/thr')
      expect(children.length).toBe(4 * N)
      for (let k = 0; k < 4; k++) {
        const mine = children
          .filter((c) => c.startsWith(`s${k}-`))
          .sort((a, b) => a.slice(-10).localeCompare(b.slice(-10)))
        const order = []
        for (const c of mine)
          order.push(new TextDecoder().decode((await sessions[2]!.getData(`/thr/${c}`)).data).split(':')[1])
        expect(order).toEqual(Array.from({ length: N }, (_, i) => String(i)))
      }
      const m = await waitFor(
        async () => {
          const r = await fetchMntr(s.port)
          return r.get('conclave_writes_in_flight') === '0' && r.get('conclave_reading_paused') === '0'
            ? r
            : undefined
        },
        { what: 'nothing left in flight' },
      )
      expect(m.get('conclave_writes_deferred')).toBe('0')
    } finally {
      for (const zk of sessions) await zk.close()
    }
  })

  it('answers a read whose reply would pass frameBytesMax with MARSHALLING_ERROR: no watch set, the connection kept', async () => {
    const limit = 64 * 1024
    const s = await startWithConfig({ frameBytesMax: limit })
    // The SDK's own limit is left at its default (larger): without the server's check it would take the reply.
    const zk = await Client.connect(s.connectString)
    const other = await Client.connect(s.connectString)
    try {
      await zk.create('/big')
      // 2,500 names of 30 characters: ~85 KB listed, over 64 KiB.
      const names = Array.from({ length: 2500 }, (_, i) => `member-${String(i).padStart(23, '0')}`)
      for (let i = 0; i < names.length; i += 250)
        await zk.multi(names.slice(i, i + 250).map((n) => ({ op: 'create' as const, path: `/big/${n}` })))
      const events: string[] = []
      const err = await zk.getChildren('/big', { watch: (e) => events.push(e.type) }).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'MARSHALLING_ERROR', path: '/big' })
      expect(String(err)).toContain('frameBytesMax')
      expect(zk.state).toBe('connected')
      // No watch was left on the server: a change, then a read on the same session (which a
      // notification would precede), and nothing has fired.
      await other.create('/big/extra')
      // /big's 2,500 children and the one just created: the read sees the change.
      expect((await zk.exists('/big'))?.numChildren).toBe(2501)
      expect(events).toEqual([])
      expect((await zk.getChildren('/')).includes('big')).toBe(true)
      // Every other reply path is bounded the same way: 2,000 ephemeral paths, ~90 KB.
      for (let i = 0; i < 2000; i += 250)
        await zk.multi(
          Array.from({ length: 250 }, (_, j) => ({
            op: 'create' as const,
            path: `/e-${String(i + j).padStart(36, '0')}`,
            mode: 'ephemeral' as const,
          })),
        )
      await expect(zk.getEphemerals()).rejects.toMatchObject({ code: 'MARSHALLING_ERROR' })
      expect(zk.state).toBe('connected')
      // Small enough again, the same read works and sets its watch.
      await zk.multi(names.slice(0, 1000).map((n) => ({ op: 'delete' as const, path: `/big/${n}` })))
      let watchFired!: (type: string) => void
      const fired = new Promise<string>((resolve) => {
        watchFired = resolve
      })
      const kids = await zk.getChildren('/big', { watch: (e) => watchFired(e.type) })
      expect(kids).toHaveLength(1501)
      await other.delete('/big/extra')
      expect(await fired).toBe('childrenChanged')
      expect(s.output()).toContain('reply larger than frameBytesMax')
    } finally {
      await zk.close()
      await other.close()
    }
  })

  it("fails a Queue's take with MARSHALLING_ERROR once the queue is too deep to list, without retrying", async () => {
    const s = await startWithConfig({ frameBytesMax: 64 * 1024 })
    const zk = await Client.connect(s.connectString, { frameBytesMax: 64 * 1024 })
    try {
      const q = new Queue(zk, '/jobs')
      // 17 bytes per item in a listing: 4,000 items are ~68 KB, over 64 KiB.
      for (let i = 0; i < 4000; i += 200)
        await Promise.all(Array.from({ length: 200 }, (_, j) => q.put(`job ${i + j}`)))
      // Counted, not timed: a retry would list again.
      const listings = vi.spyOn(zk, 'getChildren')
      await expect(q.take({ timeoutMs: 5000 })).rejects.toMatchObject({
        code: 'MARSHALLING_ERROR',
        path: '/jobs',
      })
      expect(listings).toHaveBeenCalledTimes(1)
      listings.mockRestore()
      expect(zk.state).toBe('connected')
    } finally {
      await zk.close()
    }
  })

  it("refuses a request over frameBytesMax in the SDK (BAD_ARGUMENTS, nothing sent), its own or the server's as learnt in the handshake, with or without exactly-once", async () => {
    const s = await startWithConfig({ frameBytesMax: 64 * 1024 })
    // The SDK's limit matches the server's: the request never leaves, the connection stays.
    const small = await Client.connect(s.connectString, { frameBytesMax: 64 * 1024 })
    // The SDK's limit is its default (larger), but it learns the server's in the handshake (sent,
    // the request would make the server drop the connection: CONNECTION_LOSS, outcome unknown).
    const learned = await Client.connect(s.connectString)
    // The SDK sends its handshake trailer with exactly-once off too (since paginated children),
    // so it learns the server's limit as well.
    const plain = await Client.connect(s.connectString, { exactlyOnce: false })
    try {
      const ops = Array.from({ length: 40 }, (_, i) => ({
        op: 'create' as const,
        path: `/m${i}`,
        data: new Uint8Array(2048),
      }))
      const refused = await small.multi(ops).catch((e: unknown) => e)
      expect(refused).toMatchObject({ code: 'BAD_ARGUMENTS' })
      expect(String(refused)).toMatch(/the request is \d+ bytes, more than frameBytesMax \(65536\)/)
      expect(small.state).toBe('connected')
      expect(await small.exists('/m0')).toBeNull()
      for (const zk of [learned, plain]) {
        const refusedToo = await zk.multi(ops).catch((e: unknown) => e)
        expect(refusedToo).toMatchObject({ code: 'BAD_ARGUMENTS' })
        expect(String(refusedToo)).toMatch(
          /the request is \d+ bytes, more than the server's frameBytesMax \(65536\)/,
        )
        expect(zk.state).toBe('connected')
      }
      expect(await plain.exists('/m0')).toBeNull()
    } finally {
      await small.close()
      await learned.close()
      await plain.close()
    }
  })

  it('past treeBytesMax refuses writes that would grow the tree (QUOTA_EXCEEDED) and takes every other', async () => {
    const max = 1024 * 1024
    const s = await startWithConfig({ treeBytesMax: max }, { extraArgs: ['--log-level', 'info'] })
    const zk = await Client.connect(s.connectString)
    try {
      await zk.create('/q')
      const data = new Uint8Array(8 * 1024)
      let created = 0
      let refused: unknown
      // ~8.5 KB each: the quota is reached after about 120 (bounded at 200).
      for (; created < 200; created++) {
        refused = await zk.create(`/q/n${created}`, data).catch((e: unknown) => e)
        if (refused !== undefined && typeof refused !== 'string') break
      }
      expect(refused).toMatchObject({ code: 'QUOTA_EXCEEDED', path: `/q/n${created}` })
      expect(created).toBeGreaterThan(100)
      expect(created).toBeLessThan(130)
      const m = await fetchMntr(s.port)
      expect(m.get('conclave_tree_bytes_max')).toBe(String(max))
      expect(Number(m.get('conclave_tree_bytes_estimate'))).toBeGreaterThanOrEqual(max)
      // Everything that would grow the tree is refused…
      await expect(zk.create('/q/more', data)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
      await expect(zk.create('/e', undefined, { mode: 'ephemeral' })).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
      })
      await expect(zk.setData('/q/n0', new Uint8Array(9 * 1024))).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
      })
      await expect(
        zk.multi([
          { op: 'delete', path: '/q/n1' },
          { op: 'create', path: '/q/n1', data },
        ]),
      ).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
      expect(await zk.exists('/q/n1')).not.toBeNull()
      // …and everything else goes on: reads, same-size and smaller writes, new sessions, deletes.
      expect((await zk.getData('/q/n0')).data).toHaveLength(8 * 1024)
      expect((await zk.setData('/q/n0', data)).version).toBe(1)
      expect((await zk.setData('/q/n0', new Uint8Array(10))).version).toBe(2)
      const other = await Client.connect(s.connectString)
      expect(await other.exists('/q')).not.toBeNull()
      await other.close()
      for (let i = 1; i <= 10; i++) await zk.delete(`/q/n${i}`)
      // Back under the limit: writes that grow the tree are taken again.
      await zk.create('/q/again', data)
      expect(s.output()).toContain('tree past treeBytesMax')
      expect(s.output()).toContain('tree back under treeBytesMax')
    } finally {
      await zk.close()
    }
  })

  it('rejects a bad configuration value naming the field, the value and what is expected (exit 2)', async () => {
    const r = await import('node:child_process').then(({ spawnSync }) =>
      spawnSync(process.execPath, ['bin/conclave.js', 'server', '--tick-time', 'soon'], { encoding: 'utf8' }),
    )
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/tickTime \(got "soon"\)/)
  })
})

/** The mntr four-letter word, as key → value. */
async function fetchMntr(port: number): Promise<Map<string, string>> {
  const { connect } = await import('node:net')
  const text = await new Promise<string>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write('mntr'))
    let buf = ''
    sock.on('data', (c) => (buf += c.toString()))
    sock.on('end', () => resolve(buf))
    sock.on('error', reject)
    sock.setTimeout(5000, () => sock.destroy(new Error('mntr timed out')))
  })
  return new Map(
    text
      .trim()
      .split('\n')
      .map((l) => l.split('\t') as [string, string]),
  )
}
