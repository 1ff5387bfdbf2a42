/**
 * ReloadingSecureContext: a TLS certificate, its key and (optionally) the CA
 * certificates to check the other end against, read from PEM files, as a
 * node:tls SecureContext that follows the files: their mtime, size and inode
 * are polled every `intervalMs`, and when they change the files are read
 * again and a new context is built for the connections made from then on
 * (connections already open keep theirs). ZooKeeper 3.9 reloads its key and
 * trust stores the same way.
 *
 * Invariants: `current()` is always a context that was built from files
 * that loaded completely and hold a certificate valid now, whose key
 * matches it. A change that does not load (a half-written file, a key that
 * does not match, an expired certificate) is logged once and the previous
 * context kept; the files are tried again at their next change. At startup
 * the same faults are a ConfigError naming the setting and the file.
 *
 * Imports node:fs, node:tls, node:crypto; takes a pino logger.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { createSecureContext, type SecureContext } from 'node:tls'
import type { Logger } from 'pino'
import { ConfigError, type ServerConfig } from '../config.js'
import { x509Subject } from './x509-identity.js'

/** The files, each with the name of the setting that gives it (for messages). */
export interface TlsFiles {
  cert: { setting: string; file: string }
  key: { setting: string; file: string }
  ca?: { setting: string; file: string } | undefined
}

interface Loaded {
  context: SecureContext
  stamp: string
  subject: string
  validTo: string
  validToMs: number
}

/** A load that failed, with the setting and file at fault in its message. */
class TlsFileError extends Error {}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

function entries(files: TlsFiles): { setting: string; file: string }[] {
  return files.ca === undefined ? [files.cert, files.key] : [files.cert, files.key, files.ca]
}

/** Builds the context from the files' contents (cert, key[, ca]); throws TlsFileError. */
function build(files: TlsFiles, text: string[], stamp: string, nowMs: number): Loaded {
  const [certPem, keyPem, caPem] = text as [string, string, string | undefined]
  const where = (f: { setting: string; file: string }) => `${f.setting} (${f.file})`
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(certPem)
  } catch (err) {
    throw new TlsFileError(`${where(files.cert)}: not a PEM certificate: ${(err as Error).message}`)
  }
  const validFromMs = Date.parse(leaf.validFrom)
  const validToMs = Date.parse(leaf.validTo)
  if (nowMs > validToMs)
    throw new TlsFileError(`${where(files.cert)}: the certificate expired on ${leaf.validTo}`)
  if (nowMs < validFromMs)
    throw new TlsFileError(`${where(files.cert)}: the certificate is not valid before ${leaf.validFrom}`)
  let matches: boolean
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(keyPem))
  } catch (err) {
    throw new TlsFileError(`${where(files.key)}: not a PEM private key: ${(err as Error).message}`)
  }
  if (!matches)
    throw new TlsFileError(
      `${where(files.key)}: the key does not match the certificate in ${files.cert.file}`,
    )
  if (caPem !== undefined) {
    const cas = caPem.match(CERT_BLOCK) ?? []
    if (cas.length === 0) throw new TlsFileError(`${where(files.ca!)}: holds no PEM certificate`)
    for (const pem of cas) {
      try {
        new X509Certificate(pem)
      } catch (err) {
        throw new TlsFileError(`${where(files.ca!)}: a certificate does not parse: ${(err as Error).message}`)
      }
    }
  }
  let context: SecureContext
  try {
    context = createSecureContext({
      cert: certPem,
      key: keyPem,
      minVersion: 'TLSv1.2',
      ...(caPem === undefined ? {} : { ca: caPem }),
    })
  } catch (err) {
    throw new TlsFileError(`${where(files.cert)}: ${(err as Error).message}`)
  }
  return { context, stamp, subject: x509Subject(leaf), validTo: leaf.validTo, validToMs }
}

export class ReloadingSecureContext {
  private loaded: Loaded
  /** The stamp of the last change that failed to load: logged once, not retried until the files change again. */
  private failedStamp = ''
  private expiredLogged = false
  private checking = false
  private readonly timer: NodeJS.Timeout

  /** Loads the files now (throws ConfigError) and polls them every `intervalMs`. */
  constructor(
    private readonly files: TlsFiles,
    private readonly log: Logger,
    intervalMs: number,
  ) {
    const text: string[] = []
    let stamp = ''
    for (const f of entries(files)) {
      try {
        text.push(readFileSync(f.file, 'utf8'))
        stamp += stampOf(statSync(f.file))
      } catch (err) {
        throw new ConfigError(
          `${f.setting} (got ${JSON.stringify(f.file)}): cannot read it: ${(err as Error).message}`,
        )
      }
    }
    try {
      this.loaded = build(files, text, stamp, Date.now())
    } catch (err) {
      throw new ConfigError((err as Error).message)
    }
    log.info(
      { subject: this.loaded.subject, validTo: this.loaded.validTo, file: files.cert.file },
      'TLS certificate loaded',
    )
    this.timer = setInterval(() => void this.check(), intervalMs)
    this.timer.unref()
  }

  /** The context for a new connection. */
  current(): SecureContext {
    return this.loaded.context
  }

  /** The subject of the certificate in use (RFC 2253). */
  get subject(): string {
    return this.loaded.subject
  }

  /** Looks at the files once; reloads if they changed. Resolves when done (tests await it). */
  async check(): Promise<void> {
    if (this.checking) return
    this.checking = true
    try {
      await this.checkOnce()
    } finally {
      this.checking = false
    }
  }

  private async checkOnce(): Promise<void> {
    const all = entries(this.files)
    let stamp = ''
    try {
      for (const f of all) stamp += stampOf(await stat(f.file))
    } catch (err) {
      return this.failed(stamp || 'missing', `cannot read it: ${(err as Error).message}`)
    }
    if (stamp === this.loaded.stamp || stamp === this.failedStamp) return this.warnIfExpired()
    let text: string[]
    try {
      text = await Promise.all(all.map((f) => readFile(f.file, 'utf8')))
    } catch (err) {
      return this.failed(stamp, `cannot read it: ${(err as Error).message}`)
    }
    try {
      this.loaded = build(this.files, text, stamp, Date.now())
    } catch (err) {
      return this.failed(stamp, (err as Error).message)
    }
    this.failedStamp = ''
    this.expiredLogged = false
    this.log.info(
      { subject: this.loaded.subject, validTo: this.loaded.validTo, file: this.files.cert.file },
      'TLS certificate reloaded; new connections use it',
    )
  }

  private failed(stamp: string, reason: string): void {
    if (stamp === this.failedStamp) return
    this.failedStamp = stamp
    this.log.warn(
      { reason, file: this.files.cert.file, subject: this.loaded.subject },
      'TLS files changed but cannot be loaded; keeping the previous certificate',
    )
  }

  private warnIfExpired(): void {
    if (this.expiredLogged || Date.now() <= this.loaded.validToMs) return
    this.expiredLogged = true
    this.log.error(
      { subject: this.loaded.subject, validTo: this.loaded.validTo, file: this.files.cert.file },
      'the TLS certificate in use has expired; replace the file (it is reloaded without a restart)',
    )
  }

  close(): void {
    clearInterval(this.timer)
  }
}

interface FileStat {
  mtimeMs: number
  size: number
  ino: number
}

function stampOf(s: FileStat): string {
  return `${s.ino}:${s.size}:${s.mtimeMs};`
}

/** The client port's TLS files of a config, loaded (a ConfigError if they do not load); undefined without client TLS. */
export function clientTlsContext(config: ServerConfig, logger: Logger): ReloadingSecureContext | undefined {
  const { clientTlsCertFile: cert, clientTlsKeyFile: key, clientTlsCaFile: ca } = config
  if (cert === undefined || key === undefined) return undefined
  return new ReloadingSecureContext(
    {
      cert: { setting: 'clientTlsCertFile', file: cert },
      key: { setting: 'clientTlsKeyFile', file: key },
      ca: ca === undefined ? undefined : { setting: 'clientTlsCaFile', file: ca },
    },
    logger.child({ component: 'client-tls' }),
    config.tlsReloadIntervalMs,
  )
}

/** The quorum TLS files of a config, loaded (a ConfigError if they do not load); undefined without quorum TLS. */
export function quorumTlsContext(config: ServerConfig, logger: Logger): ReloadingSecureContext | undefined {
  const { quorumTlsCertFile: cert, quorumTlsKeyFile: key, quorumTlsCaFile: ca } = config
  if (cert === undefined || key === undefined || ca === undefined || config.servers.length <= 1)
    return undefined
  return new ReloadingSecureContext(
    {
      cert: { setting: 'quorumTlsCertFile', file: cert },
      key: { setting: 'quorumTlsKeyFile', file: key },
      ca: { setting: 'quorumTlsCaFile', file: ca },
    },
    logger.child({ component: 'quorum-tls' }),
    config.tlsReloadIntervalMs,
  )
}
