/**
 * Certificates for the TLS tests, made in the test by openssl: a CA, leaf
 * certificates it issues (for servers and clients; subject, SANs), expired
 * ones, and Java key and trust stores (PKCS12, the trust store by keytool)
 * for ZooKeeper's own clients. EC P-256 keys, so a whole PKI takes well
 * under a second. Everything lives in one temp directory (remove()).
 *
 * Test-only: imports node:* and runs openssl/keytool; nothing from vitest.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './wait.js'

export interface CertFiles {
  certFile: string
  keyFile: string
  /** The subject as ZooKeeper's x509 scheme (Java's RFC 2253 form) names it. */
  dn: string
}

export interface Ca extends CertFiles {
  name: string
}

export interface LeafOptions {
  /** Common name; the subject is `/O=<org>/CN=<cn>`, so its RFC 2253 form is `CN=<cn>,O=<org>`. */
  cn: string
  org?: string
  /** subjectAltName entries (`DNS:localhost`, `IP:127.0.0.1`); default: localhost and 127.0.0.1. */
  sans?: string[]
  /** Valid from 2020-01-01 to 2020-01-02: long expired. */
  expired?: boolean
  /** A file name stem (default: the CN). */
  name?: string
}

function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 30_000 })
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}${r.stdout}`)
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

export class Pki {
  readonly dir: string
  private readonly remover: () => void
  private serial = 1

  constructor() {
    const d = tempDir('conclave-pki-')
    this.dir = d.path
    this.remover = d.remove
  }

  path(name: string): string {
    return join(this.dir, name)
  }

  /** A self-signed CA. */
  ca(name: string, cn = `${name} CA`): Ca {
    const certFile = this.path(`${name}.ca.pem`)
    const keyFile = this.path(`${name}.ca.key`)
    run(
      'openssl',
      [
        'req',
        '-x509',
        ...EC,
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '3650',
        '-subj',
        `/O=Conclave Test/CN=${cn}`,
      ],
      this.dir,
    )
    return { name, certFile, keyFile, dn: `CN=${cn},O=Conclave Test` }
  }

  /** A leaf certificate issued by `ca`, for server and client use. */
  leaf(ca: Ca, opts: LeafOptions): CertFiles {
    const stem = opts.name ?? opts.cn
    const org = opts.org ?? 'Conclave Test'
    const keyFile = this.path(`${stem}.key`)
    const certFile = this.path(`${stem}.pem`)
    const csr = this.path(`${stem}.csr`)
    const ext = this.path(`${stem}.ext`)
    const sans = opts.sans ?? ['DNS:localhost', 'IP:127.0.0.1']
    writeFileSync(
      ext,
      [
        'basicConstraints=CA:FALSE',
        'keyUsage=digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
        '',
      ].join('\n'),
    )
    run(
      'openssl',
      ['req', ...EC, '-keyout', keyFile, '-out', csr, '-subj', `/O=${org}/CN=${opts.cn}`],
      this.dir,
    )
    // Unique per certificate (a reload must see a new one); an even number of hex digits (openssl ca wants bytes).
    const hex = `${(this.serial++).toString(16).padStart(4, '0')}${Date.now().toString(16)}`
    const serial = `0x${hex.length % 2 === 0 ? hex : `0${hex}`}`
    if (opts.expired) this.signExpired(ca, csr, certFile, ext, serial)
    else
      run(
        'openssl',
        [
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          ca.certFile,
          '-CAkey',
          ca.keyFile,
          '-set_serial',
          serial,
          '-out',
          certFile,
          '-days',
          '30',
          '-extfile',
          ext,
        ],
        this.dir,
      )
    return { certFile, keyFile, dn: `CN=${opts.cn},O=${org}` }
  }

  /** `openssl x509` cannot backdate; `openssl ca` can (-startdate/-enddate), with a throwaway database. */
  private signExpired(ca: Ca, csr: string, out: string, ext: string, serial: string): void {
    const db = this.path(`ca-db-${this.serial}`)
    mkdirSync(db, { recursive: true })
    writeFileSync(join(db, 'index.txt'), '')
    writeFileSync(join(db, 'serial'), `${serial.slice(2)}\n`)
    const conf = join(db, 'ca.cnf')
    writeFileSync(
      conf,
      [
        '[ca]',
        'default_ca = test',
        '[test]',
        `database = ${join(db, 'index.txt')}`,
        `new_certs_dir = ${db}`,
        `serial = ${join(db, 'serial')}`,
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        // Keep the CSR's subject order (O, then CN), as the other leaves have it.
        'preserve = yes',
        '[any]',
        'organizationName = optional',
        'commonName = supplied',
        '',
      ].join('\n'),
    )
    run(
      'openssl',
      [
        'ca',
        '-batch',
        '-config',
        conf,
        '-cert',
        ca.certFile,
        '-keyfile',
        ca.keyFile,
        '-in',
        csr,
        '-out',
        out,
        '-startdate',
        '20200101000000Z',
        '-enddate',
        '20200102000000Z',
        '-extfile',
        ext,
        '-notext',
      ],
      this.dir,
    )
  }

  /**
   * Java stores for ZooKeeper's clients: a PKCS12 key store holding the
   * leaf and its key (openssl), and a PKCS12 trust store holding the CA
   * (keytool: Java trusts only entries it marked as trusted certificates).
   */
  javaStores(
    leaf: CertFiles,
    ca: Ca,
    password = 'changeit',
  ): { keyStore: string; trustStore: string; password: string } {
    const stem = leaf.certFile.replace(/\.pem$/, '')
    const keyStore = `${stem}.keystore.p12`
    const trustStore = `${stem}.truststore.p12`
    run(
      'openssl',
      [
        'pkcs12',
        '-export',
        '-in',
        leaf.certFile,
        '-inkey',
        leaf.keyFile,
        '-name',
        'client',
        '-out',
        keyStore,
        '-passout',
        `pass:${password}`,
      ],
      this.dir,
    )
    run(
      'keytool',
      [
        '-importcert',
        '-noprompt',
        '-alias',
        'ca',
        '-file',
        ca.certFile,
        '-keystore',
        trustStore,
        '-storetype',
        'PKCS12',
        '-storepass',
        password,
      ],
      this.dir,
    )
    return { keyStore, trustStore, password }
  }

  remove(): void {
    this.remover()
  }
}
