/**
 * Quorum TLS and peer authentication, end to end with real 3-server
 * ensembles and certificates made here by openssl: peers link over TLS with
 * mutual authentication (each checks the other's certificate against the
 * ensemble's CA, and its name when quorumTlsAllowedNames is set), with the
 * shared secret's HMAC challenge on top (the secret read from a file, never
 * on a command line) or without a secret at all; a peer whose certificate
 * another CA issued, or whose name is not allowed, is refused and the log
 * says so; a peer with a wrong shared secret is refused (plaintext links);
 * a renewed certificate is used for links made after it is written.
 *
 * Skipped with the reason without openssl; under CI=true that fails.
 */
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import { fourLetterWord } from '../../server/cli/status-command.js'
import { type Ca, type CertFiles, Pki } from '../helpers/certs.js'
import { type ConclaveProcess, startConclave, stopAllConclave } from '../helpers/conclave.js'
import { canRun, opensslMissing } from '../helpers/prerequisites.js'
import { freePort, waitFor } from '../helpers/wait.js'

const ready = canRun('quorum TLS (quorum-tls.test.ts)', opensslMissing())

let pki: Pki
let ca: Ca
let otherCa: Ca

interface MemberSpec {
  /** This member's quorum certificate; undefined: plaintext links. */
  cert?: CertFiles
  /** The CA it checks peers against (default: the ensemble's). */
  caFile?: string
  /** Its shared secret, written to a file given by --secret-file; undefined: none. */
  secret?: string
  /** Extra config file keys. */
  config?: Record<string, unknown>
}

interface Member {
  id: number
  clientPort: number
  peerPort: number
  proc: ConclaveProcess
}

/** Starts one process per spec (ids 1..n) on free ports; does not wait for the ensemble to form. */
async function startMembers(specs: MemberSpec[]): Promise<Member[]> {
  const ports: { client: number; peer: number }[] = []
  for (let i = 0; i < specs.length; i++) ports.push({ client: await freePort(), peer: await freePort() })
  const servers = ports.map((p, i) => `${i + 1}=127.0.0.1:${p.peer}:${p.client}`).join(',')
  return Promise.all(
    specs.map(async (spec, i) => {
      const id = i + 1
      const args = ['--id', String(id), '--servers', servers, '--log-level', 'info']
      const tag = `${id}-${Math.random().toString(36).slice(2)}`
      if (spec.cert !== undefined)
        args.push(
          '--quorum-tls-cert',
          spec.cert.certFile,
          '--quorum-tls-key',
          spec.cert.keyFile,
          '--quorum-tls-ca',
          spec.caFile ?? ca.certFile,
        )
      if (spec.secret !== undefined) {
        const file = pki.path(`secret-${tag}`)
        writeFileSync(file, `${spec.secret}\n`, { mode: 0o600 })
        args.push('--secret-file', file)
      }
      if (spec.config !== undefined) {
        const file = pki.path(`config-${tag}.json`)
        writeFileSync(file, JSON.stringify(spec.config))
        args.push('--config', file)
      }
      const proc = await startConclave({
        port: ports[i]!.client,
        tickTime: 200,
        extraArgs: args,
        // No secret from the environment: each member has exactly the one its spec gives.
        env: { CONCLAVE_SECRET: '' },
      })
      return { id, clientPort: ports[i]!.client, peerPort: ports[i]!.peer, proc }
    }),
  )
}

async function mode(m: Member): Promise<string> {
  const text = await fourLetterWord('127.0.0.1', m.clientPort, 'srvr', 1000).catch(() => '')
  return /Mode: (\w+)/.exec(text)?.[1] ?? 'down'
}

async function waitForModes(members: Member[], pattern: RegExp, what: string): Promise<void> {
  await waitFor(async () => (await Promise.all(members.map(mode))).every((m) => pattern.test(m)), {
    timeoutMs: 30_000,
    intervalMs: 100,
    what,
  })
}

async function stopMembers(members: Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.proc.stop()))
  for (const m of members) m.proc.remove()
}

/** Writes on one member and reads it back on another (after sync). */
async function replicates(from: Member, to: Member, path: string): Promise<void> {
  const a = await Client.connect(`ws://127.0.0.1:${from.clientPort}`)
  const b = await Client.connect(`ws://127.0.0.1:${to.clientPort}`)
  try {
    await a.create(path, 'replicated over TLS')
    await b.sync(path)
    expect(new TextDecoder().decode((await b.getData(path)).data)).toBe('replicated over TLS')
  } finally {
    await Promise.all([a.close(), b.close()])
  }
}

/** The CN of the certificate a peer port presents (our client certificate: one the CA issued). */
function peerPortCn(port: number, client: CertFiles): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect(
      {
        host: '127.0.0.1',
        port,
        ca: readFileSync(ca.certFile),
        cert: readFileSync(client.certFile),
        key: readFileSync(client.keyFile),
        checkServerIdentity: () => undefined,
      },
      () => {
        const cn = s.getPeerCertificate().subject.CN
        s.destroy()
        resolve(String(cn))
      },
    )
    s.once('error', reject)
  })
}

beforeAll(() => {
  if (!ready) return
  pki = new Pki()
  ca = pki.ca('ensemble')
  otherCa = pki.ca('rogue')
})

afterAll(async () => {
  await stopAllConclave()
  pki?.remove()
})

describe.runIf(ready)('quorum TLS', () => {
  it('runs a 3-server ensemble over mutually authenticated TLS with the secret from a file, and picks up a renewed certificate for new links', async () => {
    const certs = [1, 2, 3].map((id) => pki.leaf(ca, { cn: `member-${id}` }))
    // Member 1 reads its certificate from files the test replaces later.
    const live = { certFile: pki.path('member-1-live.pem'), keyFile: pki.path('member-1-live.key'), dn: '' }
    copyFileSync(certs[0]!.certFile, live.certFile)
    copyFileSync(certs[0]!.keyFile, live.keyFile)
    const members = await startMembers([
      { cert: live, secret: 'quorum-tls-secret', config: { tlsReloadIntervalMs: 200 } },
      { cert: certs[1]!, secret: 'quorum-tls-secret' },
      { cert: certs[2]!, secret: 'quorum-tls-secret' },
    ])
    try {
      await waitForModes(members, /^(leader|follower)$/, 'the TLS ensemble to form')
      await replicates(members[0]!, members[2]!, '/quorum-tls')
      // The peer port speaks TLS and presents the member's certificate.
      expect(await peerPortCn(members[0]!.peerPort, certs[2]!)).toBe('member-1')
      for (const m of members) {
        expect(m.proc.output()).toMatch(/"component":"quorum-tls".*"msg":"TLS certificate loaded"/)
        // The secret came from a file: no warning about a secret on the command line.
        expect(m.proc.output()).not.toMatch(/given on the command line/)
        expect(m.proc.child.spawnargs.join(' ')).not.toContain('quorum-tls-secret')
      }

      const renewed = pki.leaf(ca, { cn: 'member-1-renewed' })
      copyFileSync(renewed.keyFile, `${live.keyFile}.new`)
      copyFileSync(renewed.certFile, `${live.certFile}.new`)
      renameSync(`${live.keyFile}.new`, live.keyFile)
      renameSync(`${live.certFile}.new`, live.certFile)
      await waitFor(async () => (await peerPortCn(members[0]!.peerPort, certs[2]!)) === 'member-1-renewed', {
        what: 'member 1 to present its renewed certificate',
      })
      // New links use it: restart member 2 and 3 in turn, and the ensemble still works through member 1.
      for (const m of [members[1]!, members[2]!]) {
        await m.proc.restart()
        await waitForModes(
          members,
          /^(leader|follower)$/,
          `the ensemble to re-form after member ${m.id} restarted`,
        )
      }
      await replicates(members[2]!, members[0]!, '/quorum-tls-renewed')
    } finally {
      await stopMembers(members)
    }
  })

  it('authenticates peers by certificate alone when there is no shared secret, and warns about session passwords', async () => {
    const certs = [1, 2, 3].map((id) => pki.leaf(ca, { cn: `nosecret-${id}` }))
    const members = await startMembers(certs.map((cert) => ({ cert })))
    try {
      await waitForModes(members, /^(leader|follower)$/, 'the ensemble without a secret to form')
      await replicates(members[1]!, members[0]!, '/quorum-tls-no-secret')
      expect(members[0]!.proc.output()).toMatch(/no ensembleSecret: quorum TLS authenticates the peers/)
    } finally {
      await stopMembers(members)
    }
  })

  it('refuses a peer whose certificate another CA issued, and says so in the log', async () => {
    const certs = [pki.leaf(ca, { cn: 'ca-1' }), pki.leaf(ca, { cn: 'ca-2' })]
    const rogue = pki.leaf(otherCa, { cn: 'rogue-3' })
    const members = await startMembers([
      { cert: certs[0]!, secret: 'shared-secret-1' },
      { cert: certs[1]!, secret: 'shared-secret-1' },
      // It even trusts our CA and knows the secret: its own certificate is what gives it away.
      { cert: rogue, caFile: ca.certFile, secret: 'shared-secret-1' },
    ])
    try {
      await waitForModes(members.slice(0, 2), /^(leader|follower)$/, 'members 1 and 2 to form a quorum')
      const refused = /peer certificate refused: unable to verify the first certificate.*subject CN=rogue-3/
      await waitFor(
        () => refused.test(members[0]!.proc.output()) && refused.test(members[1]!.proc.output()),
        {
          what: 'members 1 and 2 to log the refused certificate',
        },
      )
      expect(await mode(members[2]!)).not.toMatch(/leader|follower/)
    } finally {
      await stopMembers(members)
    }
  })

  it('refuses a peer whose certificate carries none of quorumTlsAllowedNames', async () => {
    const allowed = { quorumTlsAllowedNames: ['member-a', 'member-b', 'member-c'] }
    const members = await startMembers([
      { cert: pki.leaf(ca, { cn: 'member-a' }), secret: 'shared-secret-2', config: allowed },
      // Allowed by its subjectAltName, not its CN.
      {
        cert: pki.leaf(ca, { cn: 'host-b', sans: ['DNS:member-b', 'IP:127.0.0.1'] }),
        secret: 'shared-secret-2',
        config: allowed,
      },
      { cert: pki.leaf(ca, { cn: 'intruder' }), secret: 'shared-secret-2', config: allowed },
    ])
    try {
      await waitForModes(members.slice(0, 2), /^(leader|follower)$/, 'members 1 and 2 to form a quorum')
      await waitFor(
        () =>
          /none of its names \(CN=intruder,O=Conclave Test; intruder;.*is in quorumTlsAllowedNames/.test(
            members[0]!.proc.output(),
          ),
        { what: 'member 1 to log the refused name' },
      )
      expect(await mode(members[2]!)).not.toMatch(/leader|follower/)
    } finally {
      await stopMembers(members)
    }
  })
})

describe.runIf(ready)('the shared secret', () => {
  it('refuses a peer with a wrong shared secret (plaintext links), and says so in the log', async () => {
    const members = await startMembers([
      { secret: 'right-secret-0001' },
      { secret: 'right-secret-0001' },
      { secret: 'wrong-secret-0002' },
    ])
    try {
      await waitForModes(members.slice(0, 2), /^(leader|follower)$/, 'members 1 and 2 to form a quorum')
      const refused = /"reason":"server 3 does not know the ensemble secret"/
      await waitFor(
        () => refused.test(members[0]!.proc.output()) && refused.test(members[1]!.proc.output()),
        {
          what: 'members 1 and 2 to log the wrong secret',
        },
      )
      expect(await mode(members[2]!)).not.toMatch(/leader|follower/)
      await replicates(members[0]!, members[1]!, '/right-secret')
    } finally {
      await stopMembers(members)
    }
  })

  it('refuses a wrong shared secret inside quorum TLS too (the HMAC runs on top of the certificates)', async () => {
    const members = await startMembers([
      { cert: pki.leaf(ca, { cn: 'both-1' }), secret: 'right-secret-0003' },
      { cert: pki.leaf(ca, { cn: 'both-2' }), secret: 'right-secret-0003' },
      { cert: pki.leaf(ca, { cn: 'both-3' }), secret: 'wrong-secret-0004' },
    ])
    try {
      await waitForModes(members.slice(0, 2), /^(leader|follower)$/, 'members 1 and 2 to form a quorum')
      await waitFor(() => /server 3 does not know the ensemble secret/.test(members[0]!.proc.output()), {
        what: 'member 1 to log the wrong secret',
      })
      expect(await mode(members[2]!)).not.toMatch(/leader|follower/)
    } finally {
      await stopMembers(members)
    }
  })

  it('warns when the secret is given on the command line', async () => {
    const proc = await startConclave({ extraArgs: ['--secret', 'visible-in-ps-0001'] })
    try {
      await waitFor(
        () => /the ensemble secret was given on the command line \(--secret\)/.test(proc.output()),
        {
          what: 'the warning',
        },
      )
    } finally {
      await proc.stop()
      proc.remove()
    }
  })
})
