/**
 * The TLS building blocks, with certificates made by openssl: the subject
 * of a certificate as the x509 ACL scheme names it (RFC 2253, as Java's
 * X500Principal.getName() writes it: most specific first, special
 * characters escaped), the names quorumTlsAllowedNames matches (subject, CN,
 * subjectAltNames), and ReloadingSecureContext: a clear ConfigError at
 * startup, a reload when the files change, and the previous context kept
 * (logged once) when a change does not load.
 *
 * Skipped with the reason without openssl; under CI=true that fails.
 */
import { X509Certificate } from 'node:crypto'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../../../server/config.js'
import { ReloadingSecureContext, type TlsFiles } from '../../../server/net/reloading-secure-context.js'
import { certificateNames, x509Subject } from '../../../server/net/x509-identity.js'
import { type Ca, type CertFiles, Pki } from '../../helpers/certs.js'
import { canRun, opensslMissing } from '../../helpers/prerequisites.js'
import { waitFor } from '../../helpers/wait.js'

const ready = canRun('TLS files and x509 names (tls-files.test.ts)', opensslMissing())

let pki: Pki
let ca: Ca

beforeAll(() => {
  if (!ready) return
  pki = new Pki()
  ca = pki.ca('unit')
})

afterAll(() => pki?.remove())

const cert = (c: CertFiles) => new X509Certificate(readFileSync(c.certFile))

/** A pino logger whose lines the test reads. */
function memoryLogger(): { log: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = []
  const log = pino({ level: 'info' }, { write: (s: string) => out.push(s) })
  return { log, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

function files(c: { certFile: string; keyFile: string }): TlsFiles {
  return {
    cert: { setting: 'clientTlsCertFile', file: c.certFile },
    key: { setting: 'clientTlsKeyFile', file: c.keyFile },
    ca: { setting: 'clientTlsCaFile', file: ca.certFile },
  }
}

describe.runIf(ready)('x509 names', () => {
  it('writes the subject most specific first, with RFC 2253 escapes, as Java does', () => {
    const c = pki.leaf(ca, { cn: 'client one', org: 'Acme, Inc.', name: 'acme' })
    expect(x509Subject(cert(c))).toBe('CN=client one,O=Acme\\, Inc.')
  })

  it('lists the subject, the CN and each subjectAltName as names', () => {
    const c = pki.leaf(ca, {
      cn: 'zk-1',
      sans: ['DNS:zk1.example', 'IP:10.0.0.1', 'URI:spiffe://conclave/zk-1'],
    })
    expect(certificateNames(cert(c))).toEqual([
      'CN=zk-1,O=Conclave Test',
      'zk-1',
      'zk1.example',
      '10.0.0.1',
      'spiffe://conclave/zk-1',
    ])
  })
})

describe.runIf(ready)('ReloadingSecureContext', () => {
  it('refuses to start on a missing file, a key that does not match, or an expired certificate, naming the setting', () => {
    const { log } = memoryLogger()
    const a = pki.leaf(ca, { cn: 'start-a' })
    const b = pki.leaf(ca, { cn: 'start-b' })
    const expired = pki.leaf(ca, { cn: 'start-expired', expired: true })
    const open = (f: TlsFiles) => new ReloadingSecureContext(f, log, 1000).close()
    expect(() => open(files({ certFile: pki.path('none.pem'), keyFile: a.keyFile }))).toThrow(
      /^clientTlsCertFile \(got ".*none\.pem"\): cannot read it: ENOENT/,
    )
    expect(() => open(files({ certFile: a.certFile, keyFile: b.keyFile }))).toThrow(ConfigError)
    expect(() => open(files({ certFile: a.certFile, keyFile: b.keyFile }))).toThrow(
      /^clientTlsKeyFile \(.*start-b\.key\): the key does not match the certificate/,
    )
    expect(() => open(files({ certFile: expired.certFile, keyFile: expired.keyFile }))).toThrow(
      /^clientTlsCertFile \(.*start-expired\.pem\): the certificate expired on Jan {1,2}2 00:00:00 2020 GMT/,
    )
    expect(() => open({ ...files(a), ca: { setting: 'clientTlsCaFile', file: a.keyFile } })).toThrow(
      /^clientTlsCaFile \(.*\): holds no PEM certificate/,
    )
  })

  it('reloads changed files, and keeps the previous context, logging once, when a change does not load', async () => {
    const { log, lines } = memoryLogger()
    const first = pki.leaf(ca, { cn: 'reload-1' })
    const second = pki.leaf(ca, { cn: 'reload-2' })
    const live = { certFile: pki.path('reload-live.pem'), keyFile: pki.path('reload-live.key') }
    copyFileSync(first.certFile, live.certFile)
    copyFileSync(first.keyFile, live.keyFile)
    const ctx = new ReloadingSecureContext(files(live), log, 3_600_000)
    try {
      const before = ctx.current()
      expect(ctx.subject).toBe('CN=reload-1,O=Conclave Test')
      await ctx.check()
      expect(ctx.current()).toBe(before)

      // Half a change: the new certificate without its key. Refused, logged once, old context kept.
      copyFileSync(second.certFile, live.certFile)
      await ctx.check()
      await ctx.check()
      expect(ctx.current()).toBe(before)
      const warnings = lines().filter(
        (l) => l.msg === 'TLS files changed but cannot be loaded; keeping the previous certificate',
      )
      expect(warnings).toHaveLength(1)
      expect(String(warnings[0]!.reason)).toMatch(/the key does not match/)

      // The key arrives: the change loads.
      copyFileSync(second.keyFile, live.keyFile)
      await ctx.check()
      expect(ctx.current()).not.toBe(before)
      expect(ctx.subject).toBe('CN=reload-2,O=Conclave Test')
      expect(lines().some((l) => l.msg === 'TLS certificate reloaded; new connections use it')).toBe(true)

      // Garbage in the certificate file: refused, the reloaded context stays.
      const reloaded = ctx.current()
      writeFileSync(live.certFile, 'not a certificate')
      await ctx.check()
      expect(ctx.current()).toBe(reloaded)
      expect(String(lines().at(-1)!.reason)).toMatch(/not a PEM certificate/)
    } finally {
      ctx.close()
    }
  })

  it('polls the files on its own every intervalMs', async () => {
    const { log } = memoryLogger()
    const first = pki.leaf(ca, { cn: 'poll-1' })
    const second = pki.leaf(ca, { cn: 'poll-2' })
    const live = { certFile: pki.path('poll-live.pem'), keyFile: pki.path('poll-live.key') }
    copyFileSync(first.certFile, live.certFile)
    copyFileSync(first.keyFile, live.keyFile)
    const ctx = new ReloadingSecureContext(files(live), log, 100)
    try {
      copyFileSync(second.keyFile, live.keyFile)
      copyFileSync(second.certFile, live.certFile)
      await waitFor(() => ctx.subject === 'CN=poll-2,O=Conclave Test', { what: 'the poll to reload' })
    } finally {
      ctx.close()
    }
  })
})
