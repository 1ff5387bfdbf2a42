/**
 * TLS on the client port, end to end with real server processes and
 * certificates made here by openssl (test/helpers/certs.ts): one port
 * serves TLS and plaintext clients alike (the first byte tells them apart);
 * inside TLS, our SDK over wss:// and ZooKeeper's framing (kazoo with
 * use_ssl, zkCli.sh with Netty and zookeeper.client.secure) both work; a
 * verified client certificate gives an `x509:<subject>` identity that ACLs
 * use; certificates from another CA, expired ones and missing ones (need)
 * are refused, with the reason logged and told to WebSocket clients;
 * clientTlsOnly refuses plaintext; and new certificate files are used by new
 * connections without a restart, while a bad new file keeps the old one.
 *
 * Skipped with the reason without openssl (kazoo, zkCli.sh and keytool
 * each for their own test); under CI=true a missing one fails instead.
 */
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { ErrorCode } from '../../shared/errors.js'
import { Perms } from '../../shared/opcodes.js'
import { type Ca, type CertFiles, Pki } from '../helpers/certs.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import {
  canRun,
  kazooMissing,
  keytoolMissing,
  opensslMissing,
  ZK_NETTY_EXTRA_JARS,
  ZKCLI,
  zkCliMissing,
  zkNettyJarsMissing,
} from '../helpers/prerequisites.js'
import { waitFor } from '../helpers/wait.js'

const SUITE = 'TLS on the client port (client-tls.test.ts)'
const ready = canRun(SUITE, opensslMissing())

let pki: Pki
let ca: Ca
let otherCa: Ca
let serverCert: CertFiles
let clientA: CertFiles
let clientB: CertFiles
/** The files the server reads; the reload test replaces them. */
let liveCert: string
let liveKey: string
let server: ConclaveProcess

const pem = (f: string) => readFileSync(f, 'utf8')

function tlsOptions(client?: CertFiles): { ca: string; cert?: string; key?: string } {
  return client === undefined
    ? { ca: pem(ca.certFile) }
    : { ca: pem(ca.certFile), cert: pem(client.certFile), key: pem(client.keyFile) }
}

function wss(port: number): string {
  return `wss://127.0.0.1:${port}`
}

/** Opens a TLS connection to the port and returns the server certificate's CN, then closes. */
function serverCertCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: pem(ca.certFile) }, () => {
      const cn = s.getPeerCertificate().subject.CN
      s.destroy()
      resolve(Array.isArray(cn) ? cn.join(',') : String(cn))
    })
    s.once('error', reject)
  })
}

/** A four-letter word over TLS. */
function fourLetterWordTls(port: number, word: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const s = tlsConnect({ host: '127.0.0.1', port, ca: pem(ca.certFile) }, () => s.write(word))
    s.on('data', (c: Buffer) => chunks.push(c))
    s.once('end', () => resolve(Buffer.concat(chunks).toString()))
    s.once('error', reject)
  })
}

/** Client.connect's error message, or 'connected'. */
async function connectError(url: string, opts: Parameters<typeof Client.connect>[1]): Promise<string> {
  try {
    const zk = await Client.connect(url, { connectTimeoutMs: 3000, reconnectDelayMs: 0, ...opts })
    await zk.close()
    return 'connected'
  } catch (err) {
    return String((err as Error).message)
  }
}

async function startTlsServer(
  extra: string[],
  config: Record<string, unknown> = {},
): Promise<ConclaveProcess> {
  const file = pki.path(`server-${Math.random().toString(36).slice(2)}.json`)
  writeFileSync(file, JSON.stringify({ tlsReloadIntervalMs: 200, ...config }))
  return startConclave({ extraArgs: ['--config', file, '--log-level', 'info', ...extra] })
}

beforeAll(async () => {
  if (!ready) return
  pki = new Pki()
  ca = pki.ca('test')
  otherCa = pki.ca('other')
  serverCert = pki.leaf(ca, { cn: 'localhost', name: 'server' })
  clientA = pki.leaf(ca, { cn: 'client-a' })
  clientB = pki.leaf(ca, { cn: 'client-b' })
  liveCert = pki.path('live.pem')
  liveKey = pki.path('live.key')
  copyFileSync(serverCert.certFile, liveCert)
  copyFileSync(serverCert.keyFile, liveKey)
  server = await startTlsServer(['--tls-cert', liveCert, '--tls-key', liveKey, '--tls-ca', ca.certFile])
})

afterAll(async () => {
  await server?.stop()
  server?.remove()
  await stopAllConclave()
  pki?.remove()
})

describe.runIf(ready)('one port for TLS and plaintext clients', () => {
  it('serves the SDK over wss:// trusting the CA, without a client certificate (ip identity only)', async () => {
    const zk = await Client.connect(wss(server.port), { tls: tlsOptions() })
    try {
      await zk.create('/tls-plain-id', 'over tls')
      expect(new TextDecoder().decode((await zk.getData('/tls-plain-id')).data)).toBe('over tls')
      expect((await zk.whoAmI()).map((i) => i.scheme)).toEqual(['ip'])
    } finally {
      await zk.close()
    }
  })

  it('gives a client with a verified certificate the identity x509:<subject DN, RFC 2253>', async () => {
    const zk = await Client.connect(wss(server.port), { tls: tlsOptions(clientA) })
    try {
      expect(await zk.whoAmI()).toContainEqual({ scheme: 'x509', id: 'CN=client-a,O=Conclave Test' })
    } finally {
      await zk.close()
    }
  })

  it('still serves plaintext WebSocket, ZooKeeper framing and four-letter words on the same port', async () => {
    for (const url of [`ws://127.0.0.1:${server.port}`, `tcp://127.0.0.1:${server.port}`]) {
      const zk = await Client.connect(url)
      try {
        expect(await zk.exists('/tls-plain-id')).not.toBeNull()
      } finally {
        await zk.close()
      }
    }
    expect(await fourLetterWordTls(server.port, 'ruok')).toBe('imok')
  })

  it('refuses the SDK when it does not trust the server certificate, and says why', async () => {
    const why = await connectError(wss(server.port), { tls: { ca: pem(otherCa.certFile) } })
    expect(why).toMatch(/CONNECTION_LOSS.*(self-signed|unable to verify|certificate)/i)
  })
})

describe.runIf(ready)('client certificates and the x509 ACL scheme', () => {
  it('lets the client named in an x509 ACL in, and keeps another client and a client without a certificate out', async () => {
    const a = await Client.connect(wss(server.port), { tls: tlsOptions(clientA) })
    const b = await Client.connect(wss(server.port), { tls: tlsOptions(clientB) })
    const anon = await Client.connect(wss(server.port), { tls: tlsOptions() })
    try {
      await a.create('/x509-a', 'secret of a', {
        acl: [{ perms: Perms.ALL, id: { scheme: 'x509', id: clientA.dn } }],
      })
      expect(new TextDecoder().decode((await a.getData('/x509-a')).data)).toBe('secret of a')
      await expect(b.getData('/x509-a')).rejects.toMatchObject({ code: ErrorCode.NO_AUTH })
      await expect(anon.getData('/x509-a')).rejects.toMatchObject({ code: ErrorCode.NO_AUTH })
      await expect(b.setData('/x509-a', 'b was here')).rejects.toMatchObject({ code: ErrorCode.NO_AUTH })
      // The `auth` scheme expands to the creator's x509 id (an authenticated scheme, as in ZooKeeper).
      await b.create('/x509-b', 'b', { acl: [{ perms: Perms.ALL, id: { scheme: 'auth', id: '' } }] })
      expect((await b.getACL('/x509-b')).acl).toEqual([
        { perms: Perms.ALL, id: { scheme: 'x509', id: clientB.dn } },
      ])
      await expect(a.getData('/x509-b')).rejects.toMatchObject({ code: ErrorCode.NO_AUTH })
    } finally {
      await Promise.all([a.close(), b.close(), anon.close()])
    }
  })

  it('refuses a client certificate from another CA: the SDK is told why, and the server logs it', async () => {
    const foreign = pki.leaf(otherCa, { cn: 'foreign-client' })
    const why = await connectError(wss(server.port), { tls: tlsOptions(foreign) })
    expect(why).toMatch(/403 client certificate refused: unable to verify the first certificate/)
    await waitFor(
      () => /client certificate refused: unable to verify.*CN=foreign-client/.test(server.output()),
      {
        what: 'the refusal in the server log',
      },
    )
  })

  it('refuses an expired client certificate with "certificate has expired"', async () => {
    const expired = pki.leaf(ca, { cn: 'expired-client', expired: true })
    const why = await connectError(wss(server.port), { tls: tlsOptions(expired) })
    expect(why).toMatch(/403 client certificate refused: certificate has expired \(CERT_HAS_EXPIRED\)/)
    await waitFor(() => /certificate has expired.*CN=expired-client/.test(server.output()), {
      what: 'the refusal in the server log',
    })
  })
})

describe.runIf(ready)('certificate files reloaded without a restart', () => {
  it('uses a new certificate for new connections, keeps open sessions, and keeps the old one when a new file is bad', async () => {
    const open = await Client.connect(wss(server.port), { tls: tlsOptions() })
    try {
      expect(await serverCertCn(server.port)).toBe('localhost')
      const renewed = pki.leaf(ca, { cn: 'localhost-renewed', name: 'server-renewed' })
      // Replace both files atomically (write aside, rename), as a certificate manager does.
      copyFileSync(renewed.keyFile, `${liveKey}.new`)
      copyFileSync(renewed.certFile, `${liveCert}.new`)
      renameSync(`${liveKey}.new`, liveKey)
      renameSync(`${liveCert}.new`, liveCert)
      await waitFor(async () => (await serverCertCn(server.port)) === 'localhost-renewed', {
        what: 'new connections to get the renewed certificate',
      })
      expect(server.output()).toMatch(/TLS certificate reloaded; new connections use it/)
      await open.create('/tls-still-open', '')
      // A key that does not match the certificate: logged, and the renewed certificate stays in use.
      copyFileSync(clientA.keyFile, liveKey)
      const badFileLogged = (line: string) =>
        line.includes('TLS files changed but cannot be loaded') && line.includes('does not match')
      await waitFor(() => server.output().split('\n').some(badFileLogged), {
        what: 'the bad file to be logged',
      })
      expect(await serverCertCn(server.port)).toBe('localhost-renewed')
      const zk = await Client.connect(wss(server.port), { tls: tlsOptions() })
      await zk.close()
    } finally {
      await open.close()
    }
  })
})

describe.runIf(ready)('clientTlsOnly and clientTlsClientAuth=need', () => {
  it('refuses plaintext clients (WebSocket told why; ZooKeeper framing and four-letter words closed) and serves TLS', async () => {
    const only = await startTlsServer([
      '--tls-cert',
      serverCert.certFile,
      '--tls-key',
      serverCert.keyFile,
      '--tls-only',
    ])
    try {
      expect(await connectError(`ws://127.0.0.1:${only.port}`, {})).toMatch(
        /403 this port takes only TLS \(clientTlsOnly\)/,
      )
      expect(await connectError(`tcp://127.0.0.1:${only.port}`, {})).toMatch(/CONNECTION_LOSS/)
      expect(
        await fourLetterWord('127.0.0.1', only.port, 'ruok', 2000).catch((err: Error) => err.message),
      ).not.toBe('imok')
      expect(await connectError(wss(only.port), { tls: tlsOptions() })).toBe('connected')
      expect(await fourLetterWordTls(only.port, 'ruok')).toBe('imok')
      await waitFor(() => /plaintext connection refused: this port takes only TLS/.test(only.output()), {
        what: 'the refusal in the log',
      })
    } finally {
      await only.stop()
      only.remove()
    }
  })

  it('refuses a client without a certificate when one is needed', async () => {
    const need = await startTlsServer(
      ['--tls-cert', serverCert.certFile, '--tls-key', serverCert.keyFile, '--tls-ca', ca.certFile],
      { clientTlsClientAuth: 'need' },
    )
    try {
      expect(await connectError(wss(need.port), { tls: tlsOptions() })).toMatch(
        /403 client certificate required \(clientTlsClientAuth=need\)/,
      )
      expect(await connectError(wss(need.port), { tls: tlsOptions(clientA) })).toBe('connected')
    } finally {
      await need.stop()
      need.remove()
    }
  })

  it('does not start with an expired server certificate, and says so', () => {
    const expired = pki.leaf(ca, { cn: 'localhost', name: 'server-expired', expired: true })
    const r = spawnSync(
      process.execPath,
      [
        'bin/conclave.js',
        'server',
        '--port',
        '0',
        '--data-dir',
        pki.path('never'),
        '--tls-cert',
        expired.certFile,
        '--tls-key',
        expired.keyFile,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    )
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(
      /clientTlsCertFile \(.*server-expired\.pem\): the certificate expired on Jan {1,2}2 00:00:00 2020 GMT/,
    )
  })
})

// ------------------------------------------------------------ ZooKeeper's own TLS clients

const KAZOO_TLS = `
import sys
from kazoo.client import KazooClient
from kazoo.security import make_acl
from kazoo.exceptions import NoAuthError
port, ca, cert, key, dn_a = sys.argv[1:6]
def client(certfile=None, keyfile=None):
    zk = KazooClient(hosts='127.0.0.1:' + port, use_ssl=True, ca=ca, certfile=certfile, keyfile=keyfile, timeout=10)
    zk.start(timeout=15)
    return zk
a = client(cert, key)
a.create('/kazoo-tls', b'over tls')
assert a.get('/kazoo-tls')[0] == b'over tls'
print('ok crud')
a.create('/kazoo-x509', b'a only', acl=[make_acl('x509', dn_a, all=True)])
assert a.get('/kazoo-x509')[0] == b'a only'
anon = client()
try:
    anon.get('/kazoo-x509')
    print('anonymous read allowed')
except NoAuthError:
    print('ok x509 acl')
anon.stop(); anon.close(); a.stop(); a.close()
`

describe.runIf(ready && canRun(`kazoo over TLS (${SUITE})`, kazooMissing()))(
  'kazoo with use_ssl=True',
  () => {
    it('speaks ZooKeeper framing inside TLS, with its certificate naming it in an x509 ACL', async () => {
      const child = spawn('/usr/bin/python3', [
        '-c',
        KAZOO_TLS,
        String(server.port),
        ca.certFile,
        clientA.certFile,
        clientA.keyFile,
        clientA.dn,
      ])
      let out = ''
      let err = ''
      child.stdout.on('data', (c: Buffer) => (out += c.toString()))
      child.stderr.on('data', (c: Buffer) => (err += c.toString()))
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
      const code = await new Promise<number | null>((r) => child.once('exit', r))
      clearTimeout(timer)
      expect(out.trim().split('\n'), err).toEqual(['ok crud', 'ok x509 acl'])
      expect(code).toBe(0)
    })
  },
)

describe.runIf(
  ready &&
    canRun(`zkCli.sh over TLS (${SUITE})`, zkCliMissing()) &&
    canRun(`zkCli.sh over TLS (${SUITE})`, keytoolMissing()) &&
    canRun(`zkCli.sh over TLS (${SUITE})`, zkNettyJarsMissing()),
)('zkCli.sh with zookeeper.client.secure=true and Netty', () => {
  it('creates and reads over TLS with a Java key store and trust store', () => {
    const stores = pki.javaStores(clientA, ca)
    const flags = [
      // zkCli.sh is unchanged; its class path is completed with the Netty jars Debian's manifest leaves out
      // (a later -cp wins over the script's own).
      `-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:${ZK_NETTY_EXTRA_JARS.join(':')}`,
      '-Xmx256m',
      '-Dzookeeper.client.secure=true',
      '-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty',
      `-Dzookeeper.ssl.keyStore.location=${stores.keyStore}`,
      `-Dzookeeper.ssl.keyStore.password=${stores.password}`,
      '-Dzookeeper.ssl.keyStore.type=PKCS12',
      `-Dzookeeper.ssl.trustStore.location=${stores.trustStore}`,
      `-Dzookeeper.ssl.trustStore.password=${stores.password}`,
      '-Dzookeeper.ssl.trustStore.type=PKCS12',
    ].join(' ')
    const zkCli = (...args: string[]) => {
      const r = spawnSync(ZKCLI, ['-server', `127.0.0.1:${server.port}`, ...args], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, CLIENT_JVMFLAGS: flags, ZOO_LOG4J_PROP: 'ERROR,CONSOLE' },
      })
      return `${r.stdout}${r.stderr}`
    }
    expect(zkCli('create', '/zkcli-tls', 'hello-tls')).toContain('Created /zkcli-tls')
    expect(zkCli('get', '/zkcli-tls')).toContain('hello-tls')
    // Its certificate is its identity: whoami lists x509 with the subject.
    expect(zkCli('whoami')).toContain(`x509: ${clientA.dn}`)
  })
})
