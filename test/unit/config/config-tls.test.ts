/**
 * The TLS and secret settings: every key validated with an error that names
 * it, the settings that only make sense together, the defaults, the flags
 * and the key=value file; the secret from a file (secretFile,
 * --secret-file), which way wins over which, and an ensemble that needs a
 * secret or quorum TLS.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { configInput } from '../../../server/cli/server-command.js'
import { ConfigError, parseConfig, readConfigFile } from '../../../server/config.js'

const dirs: string[] = []
let savedSecret: string | undefined

beforeEach(() => {
  savedSecret = process.env.CONCLAVE_SECRET
  delete process.env.CONCLAVE_SECRET
})

afterEach(() => {
  if (savedSecret === undefined) delete process.env.CONCLAVE_SECRET
  else process.env.CONCLAVE_SECRET = savedSecret
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function file(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-config-'))
  dirs.push(dir)
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}

const ENSEMBLE = [
  { id: 1, host: '127.0.0.1', peerPort: 2888, clientPort: 2181 },
  { id: 2, host: '127.0.0.1', peerPort: 2889, clientPort: 2182 },
  { id: 3, host: '127.0.0.1', peerPort: 2890, clientPort: 2183 },
]

function configError(input: Record<string, unknown>): string {
  try {
    parseConfig(input)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as Error).message
  }
  throw new Error('expected a ConfigError')
}

describe('secretFile and --secret-file', () => {
  it('reads the secret from the first line of the file', () => {
    const f = file('secret', 'from-the-file-123\nignored\n')
    expect(parseConfig({ secretFile: f }).ensembleSecret).toBe('from-the-file-123')
    expect(parseConfig(configInput(['--secret-file', f])).ensembleSecret).toBe('from-the-file-123')
  })

  it('refuses an unreadable file and a short secret, naming secretFile', () => {
    expect(configError({ secretFile: '/nonexistent/secret' })).toMatch(
      /^secretFile \(got "\/nonexistent\/secret"\): cannot read it: ENOENT/,
    )
    expect(configError({ secretFile: file('short', 'short\n') })).toMatch(
      /secretFile .*at least 8 characters/,
    )
  })

  it('refuses ensembleSecret and secretFile together in one source', () => {
    expect(
      configError({ ensembleSecret: 'a-secret-123', secretFile: file('s', 'another-secret\n') }),
    ).toMatch(/ensembleSecret and secretFile: give one of them, not both/)
  })

  it('lets a flag win over the config file, and the environment fill in only when neither gives one', () => {
    const fromFile = file('s', 'secret-in-a-file\n')
    const conf = file('conclave.json', JSON.stringify({ ensembleSecret: 'secret-in-config' }))
    expect(parseConfig(configInput(['--config', conf, '--secret-file', fromFile])).ensembleSecret).toBe(
      'secret-in-a-file',
    )
    const confFile = file('conclave2.json', JSON.stringify({ secretFile: fromFile }))
    expect(
      parseConfig(configInput(['--config', confFile, '--secret', 'secret-on-argv'])).ensembleSecret,
    ).toBe('secret-on-argv')
    process.env.CONCLAVE_SECRET = 'secret-in-the-env'
    expect(parseConfig(configInput(['--config', confFile])).ensembleSecret).toBe('secret-in-a-file')
    expect(parseConfig(configInput([])).ensembleSecret).toBe('secret-in-the-env')
  })

  it('needs a secret or quorum TLS for an ensemble', () => {
    expect(configError({ servers: ENSEMBLE })).toMatch(/an ensemble needs a shared secret .* or quorum TLS/)
    const c = parseConfig({
      servers: ENSEMBLE,
      quorumTlsCertFile: 'member.pem',
      quorumTlsKeyFile: 'member.key',
      quorumTlsCaFile: 'ca.pem',
    })
    expect(c.ensembleSecret).toBeUndefined()
  })
})

describe('client TLS settings', () => {
  it('is off by default; clientTlsClientAuth defaults to want with a CA and none without', () => {
    const off = parseConfig({})
    expect(off.clientTlsCertFile).toBeUndefined()
    expect(off.clientTlsOnly).toBe(false)
    expect(off.clientTlsClientAuth).toBe('none')
    expect(off.tlsReloadIntervalMs).toBe(10_000)
    const tls = { clientTlsCertFile: 's.pem', clientTlsKeyFile: 's.key' }
    expect(parseConfig(tls).clientTlsClientAuth).toBe('none')
    expect(parseConfig({ ...tls, clientTlsCaFile: 'ca.pem' }).clientTlsClientAuth).toBe('want')
    expect(
      parseConfig({ ...tls, clientTlsCaFile: 'ca.pem', clientTlsClientAuth: 'need' }).clientTlsClientAuth,
    ).toBe('need')
  })

  it('comes from flags and from a key=value file', () => {
    const c = parseConfig(
      configInput([
        '--tls-cert',
        's.pem',
        '--tls-key',
        's.key',
        '--tls-ca',
        'ca.pem',
        '--tls-client-auth',
        'need',
        '--tls-only',
      ]),
    )
    expect([
      c.clientTlsCertFile,
      c.clientTlsKeyFile,
      c.clientTlsCaFile,
      c.clientTlsClientAuth,
      c.clientTlsOnly,
    ]).toEqual(['s.pem', 's.key', 'ca.pem', 'need', true])
    const kv = file(
      'zoo.cfg',
      'clientTlsCertFile=/etc/conclave/s.pem\nclientTlsKeyFile=/etc/conclave/s.key\nclientTlsOnly=true\ntlsReloadIntervalMs=500\n',
    )
    const k = parseConfig(readConfigFile(kv))
    expect([k.clientTlsCertFile, k.clientTlsOnly, k.tlsReloadIntervalMs]).toEqual([
      '/etc/conclave/s.pem',
      true,
      500,
    ])
  })

  it('refuses settings that only make sense together, naming them', () => {
    expect(configError({ clientTlsCertFile: 's.pem' })).toMatch(
      /clientTlsCertFile and clientTlsKeyFile: give both/,
    )
    expect(configError({ clientTlsKeyFile: 's.key' })).toMatch(
      /clientTlsCertFile and clientTlsKeyFile: give both/,
    )
    expect(configError({ clientTlsOnly: true })).toMatch(
      /^clientTlsOnly \(got true\): needs clientTlsCertFile/,
    )
    expect(configError({ clientTlsCaFile: 'ca.pem' })).toMatch(/^clientTlsCaFile \(got "ca.pem"\): needs/)
    expect(
      configError({ clientTlsCertFile: 's.pem', clientTlsKeyFile: 's.key', clientTlsClientAuth: 'want' }),
    ).toMatch(/^clientTlsClientAuth \(got "want"\): client certificates need clientTlsCaFile/)
  })

  it('refuses wrong values, naming the field and the value', () => {
    expect(configError({ clientTlsClientAuth: 'always' })).toMatch(/^clientTlsClientAuth \(got "always"\)/)
    expect(configError({ clientTlsOnly: 'yes' })).toMatch(/^clientTlsOnly \(got "yes"\)/)
    expect(configError({ clientTlsCertFile: '' })).toMatch(/^clientTlsCertFile \(got ""\)/)
    expect(configError({ tlsReloadIntervalMs: 10 })).toMatch(/^tlsReloadIntervalMs \(got 10\)/)
    expect(configError({ tlsReloadIntervalMs: 7_200_000 })).toMatch(/^tlsReloadIntervalMs \(got 7200000\)/)
  })
})

describe('quorum TLS settings', () => {
  it('comes from flags, and quorumTlsAllowedNames from a comma list in a key=value file', () => {
    const c = parseConfig(
      configInput(['--quorum-tls-cert', 'm.pem', '--quorum-tls-key', 'm.key', '--quorum-tls-ca', 'ca.pem']),
    )
    expect([c.quorumTlsCertFile, c.quorumTlsKeyFile, c.quorumTlsCaFile, c.quorumTlsAllowedNames]).toEqual([
      'm.pem',
      'm.key',
      'ca.pem',
      [],
    ])
    const kv = file(
      'zoo.cfg',
      'quorumTlsCertFile=m.pem\nquorumTlsKeyFile=m.key\nquorumTlsCaFile=ca.pem\nquorumTlsAllowedNames=zk1.example, zk2.example\n',
    )
    expect(parseConfig(readConfigFile(kv)).quorumTlsAllowedNames).toEqual(['zk1.example', 'zk2.example'])
  })

  it('refuses some of the three files without the others, and allowed names without quorum TLS', () => {
    expect(configError({ quorumTlsCertFile: 'm.pem', quorumTlsKeyFile: 'm.key' })).toMatch(
      /quorumTlsCertFile, quorumTlsKeyFile and quorumTlsCaFile: give all three or none/,
    )
    expect(configError({ quorumTlsAllowedNames: ['zk1'] })).toMatch(
      /^quorumTlsAllowedNames: needs quorum TLS/,
    )
    expect(configError({ quorumTlsAllowedNames: 'zk1' })).toMatch(/^quorumTlsAllowedNames \(got "zk1"\)/)
  })
})
