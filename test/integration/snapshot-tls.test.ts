/**
 * `conclave snapshot save` over wss:// with a client certificate: the x509
 * identity a verified certificate gives is checked against the root's ACL
 * like a digest one. The client named in the ACL (ALL on /) gets the
 * snapshot; another verified client gets 403; `--auth x509` over plaintext
 * (no certificate to verify) gets 401; a server certificate the CLI does
 * not trust is a clear error. Needs openssl (test/helpers/certs.ts).
 */
import { existsSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client, OPEN_ACL_UNSAFE, Perms } from '../../client/index.js'
import { type Ca, type CertFiles, Pki } from '../helpers/certs.js'
import { runCliAsync as conclave } from '../helpers/cli.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { canRun, opensslMissing } from '../helpers/prerequisites.js'

const ready = canRun('snapshot save over TLS with client certificates', opensslMissing())

let pki: Pki
let ca: Ca
let otherCa: Ca
let clientA: CertFiles
let clientB: CertFiles
let server: ConclaveProcess | undefined

beforeAll(async () => {
  if (!ready) return
  pki = new Pki()
  ca = pki.ca('test')
  otherCa = pki.ca('other')
  const serverCert = pki.leaf(ca, { cn: 'localhost', name: 'server' })
  clientA = pki.leaf(ca, { cn: 'client-a' })
  clientB = pki.leaf(ca, { cn: 'client-b' })
  server = await startConclave({
    extraArgs: ['--tls-cert', serverCert.certFile, '--tls-key', serverCert.keyFile, '--tls-ca', ca.certFile],
  })
  const pem = (f: string) => readFileSync(f, 'utf8')
  const admin = await Client.connect(`wss://127.0.0.1:${server.port}`, {
    tls: { ca: pem(ca.certFile), cert: pem(clientA.certFile), key: pem(clientA.keyFile) },
  })
  await admin.create('/data', 'over tls')
  await admin.setACL('/', [
    { perms: Perms.ALL, id: { scheme: 'x509', id: clientA.dn } },
    { perms: Perms.ALL & ~Perms.ADMIN, id: OPEN_ACL_UNSAFE[0]!.id },
  ])
  await admin.close()
}, 60_000)

afterAll(async () => {
  await server?.stop()
  server?.remove()
  await stopAllConclave()
  pki?.remove()
})

describe.runIf(ready)('conclave snapshot save over wss:// with x509', () => {
  const save = (out: string, ...extra: string[]) =>
    conclave('snapshot', 'save', '--auth', 'x509', '-o', pki.path(out), '--tls-ca', ca.certFile, ...extra)

  it('gives the snapshot to the client certificate the root ACL names', async () => {
    const r = await save(
      'a.snap',
      '--server',
      `wss://127.0.0.1:${server!.port}`,
      '--tls-cert',
      clientA.certFile,
      '--tls-key',
      clientA.keyFile,
    )
    expect(r.stderr).not.toContain('refused')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/^saved .*a\.snap: zxid 0x[0-9a-f]+, digest [0-9a-f]+, \d+ znodes/)
    const inspect = await conclave('snapshot', 'inspect', pki.path('a.snap'), '--json')
    expect(JSON.parse(inspect.stdout).largestByData[0].path).toBe('/data')
  }, 60_000)

  it('refuses another verified certificate (403), x509 without TLS (401), and an untrusted server', async () => {
    const b = await save(
      'b.snap',
      '--server',
      `wss://127.0.0.1:${server!.port}`,
      '--tls-cert',
      clientB.certFile,
      '--tls-key',
      clientB.keyFile,
    )
    expect(b.status).toBe(1)
    expect(b.stderr).toContain('HTTP 403')
    expect(b.stderr).toContain(`x509:${clientB.dn} lacks READ, WRITE, CREATE, DELETE, ADMIN on /`)
    const plain = await save('p.snap', '--server', `ws://127.0.0.1:${server!.port}`)
    expect(plain.status).toBe(1)
    expect(plain.stderr).toContain('HTTP 401')
    expect(plain.stderr).toContain('x509 needs a TLS connection with a verified client certificate')
    const untrusted = await conclave(
      'snapshot',
      'save',
      '--auth',
      'x509',
      '-o',
      pki.path('u.snap'),
      '--server',
      `wss://127.0.0.1:${server!.port}`,
      '--tls-ca',
      otherCa.certFile,
      '--tls-cert',
      clientA.certFile,
      '--tls-key',
      clientA.keyFile,
    )
    expect(untrusted.status).toBe(1)
    expect(untrusted.stderr).toMatch(/cannot take a snapshot from wss:\/\/127\.0\.0\.1:\d+: .*certificate/)
    for (const f of ['b.snap', 'p.snap', 'u.snap']) expect(existsSync(pki.path(f))).toBe(false)
  }, 60_000)
})
