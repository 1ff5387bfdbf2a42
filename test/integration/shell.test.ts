/**
 * `conclave shell` against a real server: runShell in-process with captured
 * output, one `-c` command at a time and as scripted interactive sessions
 * through a PassThrough; tab completion through the live session. Runs
 * against every server in test/helpers/targets.ts (Apache ZooKeeper, the
 * oracle for zkCli's behaviour, over tcp://; Conclave once listed); a
 * target that cannot run is skipped, or fails under CI=true
 * (test/helpers/prerequisites.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServerList } from '../../client/shell/shell-client.js'
import { parseServerList } from '../../client/shell/shell-client.js'
import { ShellHistory } from '../../client/shell/shell-history.js'
import { connectWithSdk } from '../../client/shell/shell-sdk.js'
import { ShellSession } from '../../client/shell/shell-session.js'
import { type Target, type TargetInstance, targetCanRun, targets, targetTitle } from '../helpers/targets.js'
import { freePort } from '../helpers/wait.js'
import { runWithInput } from '../unit/shell/capture.js'

const PROMPT = /\[conclave: [^\]]+\(CONNECTED\) \d+\] /g

/** Runs, or skips with one line saying why (fails under CI=true), per test/helpers/prerequisites.ts. */
const canRunShell = (t: Target): boolean => targetCanRun(t, 'conclave shell (shell.test.ts)')

for (const target of targets)
  describe.runIf(canRunShell(target))(`conclave shell against ${targetTitle(target)}`, () => {
    let instance: TargetInstance | undefined
    let server: string
    // A generous connect timeout: a JVM that just started can take seconds on a loaded machine.
    const sh = (line: string) => runWithInput([server, '--connect-timeout', '20000', '-c', line], null)
    const script = async (lines: string[]) => {
      const r = await runWithInput([server, '--connect-timeout', '20000'], [...lines, 'quit'])
      return { ...r, out: r.out.replace(PROMPT, '') }
    }

    beforeAll(async () => {
      instance = await target.start()
      server = instance.connectString
    })
    afterAll(async () => {
      await instance?.stop()
    })

    it('creates, reads, writes, lists, stats and deletes', async () => {
      expect(await sh('create /crud "hello world"')).toEqual({ code: 0, out: 'Created /crud\n', err: '' })
      expect((await sh('get /crud')).out).toBe('hello world\n')
      expect((await sh('set -v 0 /crud bye')).code).toBe(0)
      const g = await sh('get -s /crud')
      expect(g.out).toMatch(/^bye\ncZxid = 0x[0-9a-f]+\nctime = \w{3} \w{3} \d{2} [\d:]{8} \S+ \d{4}\n/)
      expect(g.out).toContain('\ndataVersion = 1\n')
      expect(g.out).toContain('\nephemeralOwner = 0x0\ndataLength = 3\nnumChildren = 0\n')
      await sh('create /crud/a')
      await sh('create /crud/a/deep')
      await sh('create /crud/b')
      expect((await sh('ls /crud')).out).toBe('[a, b]\n')
      expect((await sh('ls -R /crud')).out).toBe('/crud\n/crud/a\n/crud/a/deep\n/crud/b\n')
      expect((await sh('stat /crud')).out).toMatch(/numChildren = 2\n$/)
      expect((await sh('getAllChildrenNumber /crud')).out).toBe('3\n')
      expect(await sh('delete /crud/b')).toEqual({ code: 0, out: '', err: '' })
      expect(await sh('delete /crud')).toEqual({ code: 1, out: '', err: 'Node not empty: /crud\n' })
      expect(await sh('deleteall /crud')).toEqual({ code: 0, out: '', err: '' })
      expect(await sh('stat /crud')).toEqual({ code: 1, out: '', err: 'Node does not exist: /crud\n' })
      expect(await sh('create -c /box')).toEqual({ code: 0, out: 'Created /box\n', err: '' })
      expect(await sh('create -t 60000 /ttl x')).toEqual({ code: 0, out: 'Created /ttl\n', err: '' })
      expect(await sh('create -s /box/q- x')).toEqual({
        code: 0,
        out: 'Created /box/q-0000000000\n',
        err: '',
      })
    })

    it('exits non-zero with a clear message when a -c command fails', async () => {
      expect(await sh('get /missing')).toEqual({ code: 1, out: '', err: 'Node does not exist: /missing\n' })
      await sh('create /dup')
      expect(await sh('create /dup')).toEqual({ code: 1, out: '', err: 'Node already exists: /dup\n' })
      expect(await sh('set -v 9 /dup x')).toEqual({
        code: 1,
        out: '',
        err: 'version No is not valid : /dup\n',
      })
      const usage = await sh('set /dup')
      expect(usage.code).toBe(2)
      expect(usage.err).toContain('usage: set [-s] [-v version] path data')
    })

    it('exits non-zero when it cannot connect', async () => {
      const port = await freePort()
      const r = await runWithInput(
        [`tcp://127.0.0.1:${port}`, '--connect-timeout', '1500', '-c', 'ls /'],
        null,
      )
      expect(r.code).toBe(1)
      expect(r.err).toBe(
        `Unable to connect to 127.0.0.1:${port}: no session established within 1500 ms (is a server listening there?)\n`,
      )
    })

    it("shows the session's ephemerals, and removes them when it ends", async () => {
      const r = await script([
        'create /eph-parent',
        'create -e /eph-parent/e1 x',
        'create -e -s /eph-parent/s-',
        'getEphemerals /eph-parent',
      ])
      expect(r.err).toBe('')
      expect(r.out).toContain(
        'Created /eph-parent/e1\nCreated /eph-parent/s-0000000001\n[/eph-parent/e1, /eph-parent/s-0000000001]\n',
      )
      expect((await sh('ls /eph-parent')).out).toBe('[]\n')
    })

    it('runs a scripted interactive session with the expected output', async () => {
      const r = await runWithInput(
        [server],
        [
          'create /script "a b"',
          "set /script 'c d'",
          'get /script',
          'ls /script',
          'nonsense',
          'delete /script',
          'quit',
        ],
      )
      expect(r.code).toBe(0)
      const host = server.replace(/^\w+:\/\//, '')
      const p = (n: number) => `[conclave: ${host}(CONNECTED) ${n}] `
      expect(r.out).toBe(`${p(0)}Created /script\n${p(1)}${p(2)}c d\n${p(3)}[]\n${p(4)}${p(5)}${p(6)}\n`)
      expect(r.err).toBe("unknown command 'nonsense' (try help)\n")
    })

    it('prints watch events as they arrive', async () => {
      await sh('create /watched 0')
      const r = await script([
        'get -w /watched',
        'set /watched 1',
        'addWatch /watched',
        'create /watched/kid',
        'sync /',
      ])
      expect(r.err).toBe('')
      expect(r.out).toContain(
        'WATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/watched\n',
      )
      expect(r.out).toContain('WatchedEvent state:SyncConnected type:NodeCreated path:/watched/kid\n')
      expect(r.out).toContain('Sync is OK\n')
    })

    it('sets and prints ACLs, and authenticates', async () => {
      await sh('create /acl x')
      expect((await sh('getAcl /acl')).out).toBe("'world,'anyone\n: cdrwa\n")
      expect((await sh('setAcl /acl world:anyone:r')).code).toBe(0)
      expect((await sh('getAcl /acl')).out).toBe("'world,'anyone\n: r\n")
      expect(await sh('set /acl y')).toEqual({ code: 1, out: '', err: 'Insufficient permission : /acl\n' })
      const r = await script([
        'addauth digest alice:secret',
        'create /acl-auth x auth::cdrwa',
        'getAcl /acl-auth',
        'whoami',
      ])
      expect(r.err).toBe('')
      expect(r.out).toMatch(/'digest,'alice:[A-Za-z0-9+/=]+\n: cdrwa\n/)
      expect(r.out).toContain('Auth scheme: User\n')
      expect(r.out).toContain('digest: alice\n')
    })

    it('completes paths through the live session', async () => {
      for (const p of ['/comp', '/comp/alpha', '/comp/alps', '/comp/beta']) await sh(`create ${p}`)
      const servers: ServerList = parseServerList(server)
      const session = new ShellSession({
        servers,
        connect: connectWithSdk,
        connectOptions: { sessionTimeoutMs: 10_000, connectTimeoutMs: 5_000 },
        out: () => {},
        err: () => {},
        history: new ShellHistory(null),
        announceStates: false,
      })
      await session.open()
      try {
        expect(await session.complete('get /comp/al')).toEqual([['/comp/alpha', '/comp/alps'], '/comp/al'])
        expect(await session.complete('ls -s /co')).toEqual([['/comp'], '/co'])
        expect(await session.complete('get /comp/zz')).toEqual([[], '/comp/zz'])
        expect(await session.complete('get /nowhere/x')).toEqual([[], '/nowhere/x'])
        expect(await session.complete('getA')).toEqual([['getAcl', 'getAllChildrenNumber'], 'getA'])
      } finally {
        await session.close()
      }
    })
  })
