/**
 * runShell end to end against an in-memory client: -c exit codes (0, 1, 2),
 * connection failure, and a scripted interactive session through a
 * PassThrough, with its history file.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { runShell } from '../../../client/shell/shell.js'
import type { ConnectFn } from '../../../client/shell/shell-client.js'
import { tempDir, waitFor } from '../../helpers/wait.js'
import { Capture, runWithInput } from './capture.js'
import { FakeClient } from './fake-client.js'

function fakeConnect(): { connect: ConnectFn; clients: FakeClient[]; seen: string[] } {
  const clients: FakeClient[] = []
  const seen: string[] = []
  const connect: ConnectFn = async (servers) => {
    seen.push(servers.connectString)
    const c = new FakeClient()
    clients.push(c)
    return c
  }
  return { connect, clients, seen }
}

describe('runShell -c', () => {
  it('runs one command and exits 0', async () => {
    const f = fakeConnect()
    const r = await runWithInput(['tcp://h:1', '-c', 'create /a "x y"'], null, { connect: f.connect })
    expect(r).toEqual({ code: 0, out: 'Created /a\n', err: '' })
    expect(f.seen).toEqual(['tcp://h:1'])
    expect(f.clients[0]!.closed).toBe(true)
  })

  it('exits 1 on a command error, with the message on stderr', async () => {
    const r = await runWithInput(['-c', 'get /missing'], null, { connect: fakeConnect().connect })
    expect(r).toEqual({ code: 1, out: '', err: 'Node does not exist: /missing\n' })
  })

  it('exits 2 on a usage error, before connecting', async () => {
    const f = fakeConnect()
    const r = await runWithInput(['-c', 'get'], null, { connect: f.connect })
    expect(r.code).toBe(2)
    expect(r.err).toBe('missing argument\nusage: get [-s] [-w] path\n')
    expect(f.seen).toEqual([])
    expect((await runWithInput(['--frob'], null)).code).toBe(2)
  })

  it('prints help without connecting', async () => {
    const r = await runWithInput(['-c', 'help'], null, { connect: fakeConnect().connect })
    expect(r.code).toBe(0)
    expect(r.out).toContain('deleteall path')
  })

  it('exits 1 with a clear message when it cannot connect', async () => {
    const connect: ConnectFn = async () => {
      throw new Error('connect ECONNREFUSED')
    }
    const r = await runWithInput(['h:9', '-c', 'ls /'], null, { connect })
    expect(r).toEqual({ code: 1, out: '', err: 'Unable to connect to h:9: connect ECONNREFUSED\n' })
  })
})

describe('runShell interactive', () => {
  it('runs a script from its input and keeps a history file', async () => {
    const dir = tempDir('shell-run-')
    try {
      const historyFile = join(dir.path, 'hist')
      const script = ['create /s one', 'get /s', 'bogus', 'ls /', 'quit', 'ls /never']
      const r = await runWithInput([], script, { connect: fakeConnect().connect, historyFile })
      expect(r.code).toBe(0)
      const p = (n: number) => `[conclave: 127.0.0.1:2181(CONNECTED) ${n}] `
      expect(r.out).toBe(`${p(0)}Created /s\n${p(1)}one\n${p(2)}${p(3)}[s]\n${p(4)}\n`)
      expect(r.err).toBe("unknown command 'bogus' (try help)\n")
      expect(readFileSync(historyFile, 'utf8')).toBe('create /s one\nget /s\nbogus\nls /\nquit\n')
    } finally {
      dir.remove()
    }
  })

  it('ends at the end of its input', async () => {
    const r = await runWithInput([], ['create /z'], { connect: fakeConnect().connect })
    expect(r.code).toBe(0)
    expect(r.out).toContain('Created /z\n')
  })
})

describe('runShell on a terminal', () => {
  it('completes a path with tab and runs the completed line', async () => {
    const { connect, clients } = fakeConnect()
    const seeded: ConnectFn = async (servers, opts) => {
      const c = (await connect(servers, opts)) as FakeClient
      await c.create('/alpha', 'A')
      await c.create('/beta', 'B')
      return c
    }
    const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => input })
    const output = Object.assign(new Capture(), { isTTY: true, columns: 120, rows: 40 })
    const done = runShell([], { input, output, error: new Capture(), connect: seeded, historyFile: null })
    await waitFor(() => output.text.includes('(CONNECTED) 0]'), { what: 'first prompt' })
    input.write('get /al')
    input.write('\t')
    await waitFor(() => output.text.includes('get /alpha'), { what: 'completion' })
    input.write('\r')
    await waitFor(() => /\nA\r?\n/.test(output.text), { what: 'get output' })
    input.write('quit\r')
    expect(await done).toBe(0)
    expect(clients[0]!.closed).toBe(true)
  })
})
