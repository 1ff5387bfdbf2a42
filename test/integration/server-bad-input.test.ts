/**
 * Bad input of every kind against a real server process: garbage bytes,
 * truncated packets, an unknown opcode, a huge length prefix, an invalid
 * path, 1 MiB + 1 of data, a bad ConnectRequest. Each gets a clear error
 * reply or a closed connection; the server and another session carry on,
 * and nothing is written.
 */
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errorNumber } from '../../shared/errors.js'
import { JuteWriter } from '../../shared/jute.js'
import { OpCode } from '../../shared/opcodes.js'
import { readResponseBody } from '../../shared/records.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { RawClient } from '../helpers/raw-client.js'

let server: ConclaveProcess
let healthy: RawClient
let xid = 1

beforeAll(async () => {
  server = await startConclave()
  healthy = await RawClient.session(server.port)
  healthy.sendRequest(xid, {
    op: OpCode.create,
    path: '/keep',
    data: new Uint8Array([1]),
    acl: OPEN,
    flags: 0,
    ttl: 0,
  })
  expect((await healthy.reply(xid++)).err).toBe(0)
})

afterAll(async () => {
  healthy?.close()
  await server?.stop()
  server?.remove()
  await stopAllConclave()
})

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }]

/** The healthy session still works, and the tree holds exactly what it wrote. */
async function stillHealthy(): Promise<void> {
  const x = xid++
  healthy.sendRequest(x, { op: OpCode.getChildren, path: '/', watch: false })
  const r = await healthy.reply(x)
  expect(r.err).toBe(0)
  const body = readResponseBody(r.body, OpCode.getChildren) as { children: string[] }
  expect(body.children.sort()).toEqual(['keep', 'zookeeper'])
}

describe('bad input', () => {
  it('closes a connection that sends garbage instead of a ConnectRequest', async () => {
    const c = await RawClient.connect(server.port)
    c.sendRaw(new Uint8Array([0, 0, 0, 5, 1, 2, 3, 4, 5]))
    await c.waitClosed()
    await stillHealthy()
  })

  it('closes a connection whose length prefix is huge, before buffering it', async () => {
    const c = await RawClient.session(server.port)
    c.sendRaw(new Uint8Array([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]))
    await c.waitClosed()
    await stillHealthy()
  })

  it('closes a connection that sends a truncated request', async () => {
    const c = await RawClient.session(server.port)
    const w = new JuteWriter()
    w.int(1).int(OpCode.create).ustring('/trunc') // no data, acl or flags
    c.sendPacket(w.finish())
    await c.waitClosed()
    await stillHealthy()
  })

  it('answers an unknown opcode with UNIMPLEMENTED and keeps the session', async () => {
    const c = await RawClient.session(server.port)
    const w = new JuteWriter()
    w.int(7).int(4242).int(0)
    c.sendPacket(w.finish())
    expect((await c.reply(7)).err).toBe(errorNumber('UNIMPLEMENTED'))
    c.sendRequest(8, { op: OpCode.exists, path: '/keep', watch: false })
    expect((await c.reply(8)).err).toBe(0)
    c.close()
    await stillHealthy()
  })

  it('answers invalid paths with BAD_ARGUMENTS for reads and writes, and writes nothing', async () => {
    const c = await RawClient.session(server.port)
    const bad = [
      '',
      'relative',
      '/a/',
      '/a//b',
      '/a/./b',
      '/a/../b',
      '/nul\u0000',
      '/ctl\u0001',
      '/sur\ud800x',
    ]
    let x = 100
    for (const path of bad) {
      c.sendRequest(x, { op: OpCode.create, path, data: new Uint8Array(0), acl: OPEN, flags: 0, ttl: 0 })
      expect((await c.reply(x++)).err, JSON.stringify(path)).toBe(errorNumber('BAD_ARGUMENTS'))
      c.sendRequest(x, { op: OpCode.getData, path, watch: false })
      expect((await c.reply(x++)).err, JSON.stringify(path)).toBe(errorNumber('BAD_ARGUMENTS'))
    }
    c.sendRequest(x, { op: OpCode.delete, path: '/', version: -1 })
    expect((await c.reply(x++)).err).toBe(errorNumber('BAD_ARGUMENTS'))
    c.close()
    await stillHealthy()
  })

  it('accepts exactly 1 MiB of data and refuses one byte more with BAD_ARGUMENTS', async () => {
    const c = await RawClient.session(server.port)
    const mib = 1024 * 1024
    c.sendRequest(1, {
      op: OpCode.create,
      path: '/big',
      data: new Uint8Array(mib + 1),
      acl: OPEN,
      flags: 0,
      ttl: 0,
    })
    expect((await c.reply(1)).err).toBe(errorNumber('BAD_ARGUMENTS'))
    c.sendRequest(2, {
      op: OpCode.create,
      path: '/big',
      data: new Uint8Array(mib),
      acl: OPEN,
      flags: 0,
      ttl: 0,
    })
    expect((await c.reply(2)).err).toBe(0)
    c.sendRequest(3, { op: OpCode.delete, path: '/big', version: -1 })
    expect((await c.reply(3)).err).toBe(0)
    c.close()
    await stillHealthy()
  })

  it('closes a connection that sends 2 MiB of data (over the frame limit)', async () => {
    const c = await RawClient.session(server.port)
    c.sendRequest(1, {
      op: OpCode.setData,
      path: '/keep',
      data: new Uint8Array(2 * 1024 * 1024),
      version: -1,
    })
    await c.waitClosed()
    await stillHealthy()
  })

  it('refuses to resume a session with a wrong password (timeOut 0, then closed)', async () => {
    const c = await RawClient.connect(server.port)
    const w = new JuteWriter()
    w.int(0).long(0n).int(10000).long(12345n).buffer(new Uint8Array(16)).bool(false)
    c.sendPacket(w.finish())
    await c.waitClosed()
    expect(c.packets.length).toBe(1)
    await stillHealthy()
  })

  it('answers a plain HTTP request with 426 and keeps running', async () => {
    // A plain socket, not RawClient: the answer is HTTP, not length-prefixed
    // frames, and every byte of it is kept until the server closes.
    const answer = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = []
      const s = connect(server.port, '127.0.0.1', () => {
        s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
      })
      s.on('data', (c: Buffer) => chunks.push(c))
      s.on('error', reject)
      s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')))
    })
    const [head, body] = answer.split('\r\n\r\n')
    const [statusLine, ...headerLines] = (head ?? '').split('\r\n')
    expect(statusLine).toBe('HTTP/1.1 426 Upgrade Required')
    expect(body).toBe('conclave: use a WebSocket or ZooKeeper TCP client on this port\n')
    expect(headerLines).toContain(`Content-Length: ${Buffer.byteLength(body ?? '')}`)
    await stillHealthy()
  })
})
