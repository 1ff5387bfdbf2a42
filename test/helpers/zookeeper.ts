/**
 * Starts a real Apache ZooKeeper (Debian's `zookeeper` package) standalone on
 * a free 127.0.0.1 port with its own data dir: the oracle for differential
 * tests. `zookeeperAvailable()` says whether the package is installed
 * (`.ci/run` installs it). Ready means serving (`srvr` reports a Mode), not
 * just listening: a JVM that has opened its port may not answer a
 * ConnectRequest for a while, and a client's first attempt then waits out
 * its whole connect timeout (seen once as a 20 s shell test failure).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { zookeeperMissing } from './prerequisites.js'
import { freePort, tempDir, waitFor, waitForPort } from './wait.js'

const JAR = '/usr/share/java/zookeeper.jar'

/** The jar and Java are installed (prerequisites.ts's zookeeperMissing says which is not, and its apt package). */
export function zookeeperAvailable(): boolean {
  return zookeeperMissing() === undefined
}

export interface ZooKeeperProcess {
  port: number
  /** Its dataDir (snapshots and logs under version-2/). */
  dataDir: string
  connectString: string
  stop: () => Promise<void>
}

export async function startZooKeeper(opts: { tickTime?: number } = {}): Promise<ZooKeeperProcess> {
  const dir = tempDir('zk-oracle-')
  const port = await freePort()
  const cfg = join(dir.path, 'zoo.cfg')
  writeFileSync(
    cfg,
    [
      `tickTime=${opts.tickTime ?? 2000}`,
      `dataDir=${join(dir.path, 'data')}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      '4lw.commands.whitelist=*',
      'maxClientCnxns=0',
    ].join('\n'),
  )
  const child: ChildProcess = spawn(
    '/usr/bin/java',
    [
      '-Xmx512m',
      '-Dzookeeper.extendedTypesEnabled=true',
      // Room for exactly 1 MiB of data plus headers, as the contract (and Conclave) allows.
      '-Djute.maxbuffer=1200000',
      '-Dzookeeper.admin.enableServer=false',
      '-cp',
      `/etc/zookeeper/conf:${JAR}`,
      'org.apache.zookeeper.server.ZooKeeperServerMain',
      cfg,
    ],
    { stdio: 'ignore' },
  )
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()))
      child.kill('SIGKILL')
      await exited
    }
    dir.remove()
  }
  try {
    await waitForPort(port, 30_000)
    // waitFor retries a check that throws (a refused or cut connection).
    await waitFor(async () => (await fourLetterWord('127.0.0.1', port, 'srvr', 2000)).includes('Mode:'), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: `ZooKeeper on port ${port} to serve`,
    })
  } catch (err) {
    await stop()
    throw err
  }
  return { port, dataDir: join(dir.path, 'data'), connectString: `tcp://127.0.0.1:${port}`, stop }
}
