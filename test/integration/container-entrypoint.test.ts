/**
 * The container image's entrypoint and health check, tested without a
 * container engine (docs/container.md; the image itself: container-podman.test.ts):
 *
 * - deploy/docker/entrypoint.sh run directly (under /bin/sh, as the image
 *   runs it) with CONCLAVE_* variables: the key=value configuration it
 *   writes for a standalone server, a positional and an explicit member
 *   list, an id from the pod ordinal, every setting, a secret file; the
 *   ensemble secret never written to the file; each configuration accepted
 *   by the server's own parser; every bad or missing value refused with one
 *   line naming the variable, and exit code 2.
 * - deploy/compose.yaml and deploy/k8s: every service's or pod's environment
 *   put through the entrypoint gives a configuration the server accepts, with
 *   the ids and member names the files mean (parsed with PyYAML: no YAML
 *   parser among the npm dependencies); the StatefulSet's rules (Parallel
 *   start, probes, PodDisruptionBudget, secret, claims) checked.
 * - Real servers started by the entrypoint (it execs node, so SIGTERM reaches
 *   the server): a standalone server and a 3-server ensemble on 127.0.0.1,
 *   written to and read with the SDK; deploy/docker/healthcheck.mjs healthy
 *   on a ready member, unhealthy on a stopped one and on one without a
 *   quorum (503), alive (livez) there; a member stopped by SIGTERM exits 0
 *   and the other two keep serving.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import { parseConfig, readConfigFile } from '../../server/config.js'
import { canRun, type Missing } from '../helpers/prerequisites.js'
import { freePort, tempDir, waitFor } from '../helpers/wait.js'

const ROOT = join(import.meta.dirname, '..', '..')
const ENTRYPOINT = join(ROOT, 'deploy', 'docker', 'entrypoint.sh')
const HEALTHCHECK = join(ROOT, 'deploy', 'docker', 'healthcheck.mjs')
const SECRET = 'entrypoint-test-secret'

const dir = tempDir('conclave-entrypoint-')
afterAll(() => dir.remove())

/** Only what a container's environment would hold besides the test's own variables. */
function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' }
  return { ...out, CONCLAVE_DATA_DIR: join(dir.path, 'data'), ...extra }
}

interface Ran {
  code: number | null
  stdout: string
  stderr: string
}

function entrypoint(args: string[], extra: Record<string, string>): Ran {
  const r = spawnSync(ENTRYPOINT, args, { env: env(extra), encoding: 'utf8', timeout: 10_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function printConfig(extra: Record<string, string>): { text: string; lines: Record<string, string> } {
  const r = entrypoint(['print-config'], extra)
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  const lines: Record<string, string> = {}
  for (const line of r.stdout.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.indexOf('=')
    lines[line.slice(0, at)] = line.slice(at + 1)
  }
  return { text: r.stdout, lines }
}

let files = 0
/** The configuration as the server reads it (with the secret from the environment, as it does). */
function serverConfig(text: string, secret?: string) {
  const file = join(dir.path, `conclave-${++files}.cfg`)
  writeFileSync(file, text)
  const input = readConfigFile(file)
  if (secret !== undefined) input.ensembleSecret = secret
  return parseConfig(input)
}

const secretFile = join(dir.path, 'secret')
writeFileSync(secretFile, `${SECRET}\nsecond line ignored\n`, { mode: 0o600 })

describe('the configuration the entrypoint writes', () => {
  it('a standalone server: every address of the container, /data, the admin port on 8080', () => {
    const { text, lines } = printConfig({})
    expect(lines).toEqual({
      dataDir: join(dir.path, 'data'),
      clientPortAddress: '0.0.0.0',
      clientPort: '2181',
      adminPort: '8080',
      serverId: '1',
    })
    const c = serverConfig(text)
    expect(c.servers).toEqual([])
    expect(c.adminPort).toBe(8080)
  })

  it('members numbered in order; its own peer port on 0.0.0.0; the secret stays out of the file', () => {
    const { text, lines } = printConfig({
      CONCLAVE_SERVERS: 'conclave-1,conclave-2\n  conclave-3',
      CONCLAVE_ID: '2',
      CONCLAVE_SECRET: SECRET,
    })
    expect(lines['server.1']).toBe('conclave-1:2888:2181')
    expect(lines['server.2']).toBe('0.0.0.0:2888:2181')
    expect(lines['server.3']).toBe('conclave-3:2888:2181')
    expect(lines.serverId).toBe('2')
    expect(text).not.toContain(SECRET)
    expect(text).not.toMatch(/secret/i)
    const c = serverConfig(text, SECRET)
    expect(c.servers.map((s) => [s.id, s.host])).toEqual([
      [1, 'conclave-1'],
      [2, '0.0.0.0'],
      [3, 'conclave-3'],
    ])
    expect(c.ensembleSecret).toBe(SECRET)
  })

  it('explicit ids, ports and an observer; its client port from its own entry; the host kept on request', () => {
    const { text, lines } = printConfig({
      CONCLAVE_SERVERS: '10=a:3888:2191,20=b:3889:2192,30=c:3890:2193:observer',
      CONCLAVE_ID: '30',
      CONCLAVE_PEER_LISTEN_ADDRESS: '',
      CONCLAVE_SECRET_FILE: secretFile,
    })
    expect(lines['server.30']).toBe('c:3890:2193:observer')
    expect(lines.clientPort).toBe('2193')
    expect(lines.secretFile).toBe(secretFile)
    const c = serverConfig(text)
    expect(c.serverId).toBe(30)
    expect(c.servers.find((s) => s.id === 30)).toMatchObject({ host: 'c', observer: true })
    expect(c.ensembleSecret).toBe(SECRET)
  })

  it('CONCLAVE_ID=ordinal: the pod ordinal plus 1, from the host name or CONCLAVE_ORDINAL', () => {
    const servers = { CONCLAVE_SERVERS: 'a,b,c', CONCLAVE_SECRET: SECRET, CONCLAVE_ID: 'ordinal' }
    expect(printConfig({ ...servers, HOSTNAME: 'conclave-2' }).lines.serverId).toBe('3')
    expect(printConfig({ ...servers, HOSTNAME: 'my-app-conclave-0' }).lines.serverId).toBe('1')
    expect(printConfig({ ...servers, HOSTNAME: 'web', CONCLAVE_ORDINAL: '1' }).lines.serverId).toBe('2')
    const offset = printConfig({
      CONCLAVE_SERVERS: '5=a,6=b,7=c',
      CONCLAVE_SECRET: SECRET,
      CONCLAVE_ID: 'ordinal',
      HOSTNAME: 'conclave-1',
      CONCLAVE_ID_OFFSET: '5',
    })
    expect(offset.lines.serverId).toBe('6')
    expect(offset.lines['server.6']).toBe('0.0.0.0:2888:2181')
  })

  it('every setting, leading zeros read as decimal, and CONCLAVE_EXTRA_CONFIG', () => {
    const { text, lines } = printConfig({
      CONCLAVE_CLIENT_PORT: '3181',
      CONCLAVE_PEER_PORT: '3888',
      CONCLAVE_ADMIN_PORT: '0',
      CONCLAVE_CLIENT_ADDRESS: '127.0.0.1',
      CONCLAVE_TICK_TIME: '0500',
      CONCLAVE_INIT_LIMIT: '20',
      CONCLAVE_SYNC_LIMIT: '08',
      CONCLAVE_MIN_SESSION_TIMEOUT: '1000',
      CONCLAVE_MAX_SESSION_TIMEOUT: '30000',
      CONCLAVE_MAX_CLIENT_CNXNS: '0',
      CONCLAVE_SNAP_COUNT: '50000',
      CONCLAVE_SNAP_RETAIN_COUNT: '5',
      CONCLAVE_LOG_LEVEL: 'warn',
      CONCLAVE_READ_ONLY: 'true',
      CONCLAVE_LOCAL_SESSIONS: 'true',
      CONCLAVE_4LW_WHITELIST: 'ruok,srvr,mntr,cons',
      CONCLAVE_ALLOWED_ORIGINS: 'https://a.example,https://b.example',
      CONCLAVE_EXTRA_CONFIG: '# comment\n  globalOutstandingLimit = 2000\nsessionsMax=5000\n\n',
    })
    expect(lines).toMatchObject({ tickTime: '500', syncLimit: '8', clientPort: '3181', adminPort: '0' })
    const c = serverConfig(text)
    expect(c).toMatchObject({
      clientPort: 3181,
      clientPortAddress: '127.0.0.1',
      adminPort: 0,
      tickTime: 500,
      initLimit: 20,
      syncLimit: 8,
      minSessionTimeout: 1000,
      maxSessionTimeout: 30000,
      maxClientCnxns: 0,
      snapCount: 50000,
      snapRetainCount: 5,
      logLevel: 'warn',
      readOnlyMode: true,
      localSessions: true,
      localSessionsUpgrading: true,
      fourLetterWordWhitelist: ['ruok', 'srvr', 'mntr', 'cons'],
      allowedOrigins: ['https://a.example', 'https://b.example'],
      globalOutstandingLimit: 2000,
      sessionsMax: 5000,
    })
    // The peer port is the default of the member entries.
    expect(printConfig({ CONCLAVE_PEER_PORT: '3888', CONCLAVE_SERVERS: 'x' }).lines['server.1']).toBe(
      '0.0.0.0:3888:2181',
    )
  })

  const ensemble = { CONCLAVE_SERVERS: 'a,b,c', CONCLAVE_ID: '1', CONCLAVE_SECRET: SECRET }
  const refused: [string, Record<string, string>, RegExp][] = [
    [
      'an id that is not a number',
      { ...ensemble, CONCLAVE_ID: 'one' },
      /^CONCLAVE_ID \(got "one"\): expected a whole number from 1 to 254$/,
    ],
    [
      'an id past 254',
      { ...ensemble, CONCLAVE_ID: '255' },
      /CONCLAVE_ID \(got "255"\): expected a whole number from 1 to 254/,
    ],
    [
      'an id not in the list',
      { ...ensemble, CONCLAVE_ID: '4' },
      /CONCLAVE_ID \(got "4", server id 4\): not one of the ids in CONCLAVE_SERVERS \(1,2,3\)/,
    ],
    [
      'no id with several members',
      { ...ensemble, CONCLAVE_ID: '' },
      /CONCLAVE_ID is not set: with 3 servers in CONCLAVE_SERVERS/,
    ],
    [
      'an ensemble without a secret',
      { ...ensemble, CONCLAVE_SECRET: '' },
      /an ensemble \(3 servers in CONCLAVE_SERVERS\) needs a shared secret: set CONCLAVE_SECRET_FILE/,
    ],
    [
      'a short secret',
      { ...ensemble, CONCLAVE_SECRET: 'short' },
      /CONCLAVE_SECRET: the ensemble secret must be at least 8 characters \(got 5\)/,
    ],
    [
      'both secrets',
      { ...ensemble, CONCLAVE_SECRET_FILE: secretFile },
      /CONCLAVE_SECRET and CONCLAVE_SECRET_FILE are both set/,
    ],
    [
      'a missing secret file',
      { ...ensemble, CONCLAVE_SECRET: '', CONCLAVE_SECRET_FILE: '/nonexistent/secret' },
      /CONCLAVE_SECRET_FILE \(got "\/nonexistent\/secret"\): no such file/,
    ],
    [
      'some ids given, some not',
      { ...ensemble, CONCLAVE_SERVERS: '1=a,b' },
      /give every entry an id .* or none/,
    ],
    ['an id given twice', { ...ensemble, CONCLAVE_SERVERS: '1=a,1=b' }, /server id 1 is given twice/],
    [
      'a bad host',
      { ...ensemble, CONCLAVE_SERVERS: 'a,b/c' },
      /CONCLAVE_SERVERS entry "b\/c": expected \[id=\]host/,
    ],
    [
      'a port that is not a number',
      { ...ensemble, CONCLAVE_SERVERS: 'a:x,b' },
      /CONCLAVE_SERVERS entry "a:x": expected .*ports are numbers/,
    ],
    [
      'a port past 65535',
      { ...ensemble, CONCLAVE_SERVERS: 'a:2888:70000,b' },
      /CONCLAVE_SERVERS entry "a:2888:70000": client port \(got "70000"\)/,
    ],
    [
      'ordinal without one',
      { ...ensemble, CONCLAVE_ID: 'ordinal', HOSTNAME: 'web' },
      /CONCLAVE_ID=ordinal: the host name "web" does not end in -N/,
    ],
    [
      'an ordinal past the ids',
      { ...ensemble, CONCLAVE_ID: 'ordinal', HOSTNAME: 'c-300' },
      /ordinal 300 \+ CONCLAVE_ID_OFFSET 1 = 301, past the largest server id/,
    ],
    [
      'a tick time too short',
      { CONCLAVE_TICK_TIME: '5' },
      /^CONCLAVE_TICK_TIME \(got "5"\): expected a whole number from 10 to 60000$/,
    ],
    [
      'a negative number',
      { CONCLAVE_SNAP_COUNT: '-1' },
      /CONCLAVE_SNAP_COUNT \(got "-1"\): expected a whole number of at least 10/,
    ],
    [
      'a Kubernetes service link',
      { CONCLAVE_CLIENT_PORT: 'tcp://10.0.0.1:2181' },
      /CONCLAVE_CLIENT_PORT \(got "tcp:\/\/10\.0\.0\.1:2181"\).*Kubernetes service link variable: set enableServiceLinks: false/,
    ],
    [
      'a log level',
      { CONCLAVE_LOG_LEVEL: 'loud' },
      /CONCLAVE_LOG_LEVEL \(got "loud"\): expected trace, debug/,
    ],
    [
      'a log format',
      { CONCLAVE_LOG_FORMAT: 'xml' },
      /CONCLAVE_LOG_FORMAT \(got "xml"\): expected json, pretty or auto/,
    ],
    [
      'read-only mode',
      { CONCLAVE_READ_ONLY: 'yes' },
      /CONCLAVE_READ_ONLY \(got "yes"\): expected true or false/,
    ],
    [
      'local sessions',
      { CONCLAVE_LOCAL_SESSIONS: 'yes' },
      /CONCLAVE_LOCAL_SESSIONS \(got "yes"\): expected true or false/,
    ],
    [
      'a whitelist',
      { CONCLAVE_4LW_WHITELIST: 'ruok;rm -rf' },
      /CONCLAVE_4LW_WHITELIST \(got "ruok;rm -rf"\)/,
    ],
    [
      'an extra line without =',
      { CONCLAVE_EXTRA_CONFIG: 'tickTime' },
      /CONCLAVE_EXTRA_CONFIG line "tickTime": expected key=value/,
    ],
    [
      'an extra line repeating a variable',
      { CONCLAVE_TICK_TIME: '100', CONCLAVE_EXTRA_CONFIG: 'tickTime=200' },
      /tickTime is already set from its CONCLAVE_ variable/,
    ],
    [
      'an extra member',
      { CONCLAVE_EXTRA_CONFIG: 'server.4=d:2888:2181' },
      /server\.4 comes from CONCLAVE_SERVERS/,
    ],
    [
      'a data directory that cannot be made',
      { CONCLAVE_DATA_DIR: '/proc/conclave' },
      /CONCLAVE_DATA_DIR \(got "\/proc\/conclave"\): cannot create it/,
    ],
  ]
  it.each(refused)('refuses %s: one line naming the variable, exit 2', (_what, extra, message) => {
    const r = entrypoint(['print-config'], extra)
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(r.stderr.replace(/^conclave-entrypoint: /, '').trimEnd()).toMatch(message)
  })
})

// ------------------------------------------------------------ compose.yaml and the Kubernetes manifest

/** YAML files as JSON through PyYAML (anchors and merge keys resolved). */
function yamlMissing(): Missing | undefined {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import yaml'], { stdio: 'ignore' })
  return r.status === 0
    ? undefined
    : { what: 'PyYAML for /usr/bin/python3 (import yaml)', apt: 'python3-yaml' }
}
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, whose fields the tests check one by one
type Doc = any
function readYaml(file: string): Doc[] {
  const r = spawnSync(
    '/usr/bin/python3',
    ['-c', 'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', file],
    { encoding: 'utf8', timeout: 10_000 },
  )
  if (r.status !== 0) throw new Error(`cannot read ${file}: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

/** Compose's ${VAR:-default} with every VAR unset. */
const composeDefault = (v: unknown) => String(v).replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1')

describe.runIf(canRun('deploy/compose.yaml and deploy/k8s', yamlMissing()))('the deployment files', () => {
  it('compose.yaml: three members, each configured as the member its service is', () => {
    const [compose] = readYaml(join(ROOT, 'deploy', 'compose.yaml'))
    const names = Object.keys(compose!.services)
    expect(names).toEqual(['conclave-1', 'conclave-2', 'conclave-3'])
    const published = new Set<string>()
    for (const [i, name] of names.entries()) {
      const service = compose!.services[name]
      expect(service.hostname).toBe(name)
      expect(service.build.context).toBe('..')
      expect(service.volumes).toEqual([`${name}-data:/data`])
      expect(service.secrets).toEqual(['conclave_secret'])
      for (const p of service.ports.map(composeDefault)) published.add(p.split(':').slice(0, 2).join(':'))
      const vars = Object.fromEntries(
        Object.entries(service.environment).map(([k, v]) => [k, composeDefault(v)]),
      )
      expect(vars.CONCLAVE_SECRET_FILE).toBe('/run/secrets/conclave_secret')
      const { text, lines } = printConfig({ ...vars, CONCLAVE_SECRET_FILE: secretFile })
      expect(lines.serverId).toBe(String(i + 1))
      const c = serverConfig(text)
      expect(c.servers.map((s) => s.host)).toEqual(names.map((n) => (n === name ? '0.0.0.0' : n)))
      expect(c.ensembleSecret).toBe(SECRET)
    }
    expect(published.size).toBe(6) // a client and an admin port per member, none twice
    for (const p of published) expect(p).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(Object.keys(compose!.volumes)).toEqual(names.map((n) => `${n}-data`))
  })

  it('k8s: a StatefulSet whose pods configure themselves by ordinal, its Services and PodDisruptionBudget', () => {
    const k8s = join(ROOT, 'deploy', 'k8s')
    const [kustomization] = readYaml(join(k8s, 'kustomization.yaml'))
    const docs = (kustomization!.resources as string[]).flatMap((f) => readYaml(join(k8s, f)))
    const byKind = (kind: string) => docs.filter((d) => d.kind === kind)
    const [sts] = byKind('StatefulSet')
    const [pdb] = byKind('PodDisruptionBudget')
    const services = byKind('Service')
    const labels = sts!.spec.selector.matchLabels
    expect(sts!.spec.template.metadata.labels).toMatchObject(labels)
    expect(sts!.spec.podManagementPolicy).toBe('Parallel')
    const headless = services.find((s) => s.metadata.name === sts!.spec.serviceName)
    expect(headless?.spec).toMatchObject({
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: labels,
    })
    expect(
      services.some((s) => s.spec.clusterIP !== 'None' && s.spec.ports.some((p: Doc) => p.port === 2181)),
    ).toBe(true)
    expect(pdb!.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: labels } })

    const pod = sts!.spec.template.spec
    expect(pod.enableServiceLinks).toBe(false)
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001 })
    const [container] = pod.containers
    const ports = Object.fromEntries(container.ports.map((p: Doc) => [p.name, p.containerPort]))
    expect(ports).toEqual({ client: 2181, peer: 2888, admin: 8080 })
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' })
    expect(container.livenessProbe.httpGet).toEqual({ path: '/livez', port: 'admin' })
    const mounts = Object.fromEntries(container.volumeMounts.map((m: Doc) => [m.name, m.mountPath]))
    const claim = sts!.spec.volumeClaimTemplates[0]
    expect(mounts[claim.metadata.name]).toBe('/data')
    const secretVolume = pod.volumes.find((v: Doc) => v.secret !== undefined)
    const vars: Record<string, string> = Object.fromEntries(container.env.map((e: Doc) => [e.name, e.value]))
    expect(vars.CONCLAVE_SECRET_FILE).toBe(
      `${mounts[secretVolume.name]}/${secretVolume.secret.items[0].path}`,
    )
    expect(secretVolume.secret.defaultMode).toBe(0o440)
    // The root file system is read-only: the image's config file must be on a writable volume.
    const image = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    const configFile = /CONCLAVE_CONFIG_FILE=(\S+)/.exec(image)?.[1]
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true)
    expect(Object.values(mounts)).toContain(configFile!.replace(/\/[^/]+$/, ''))

    const replicas: number = sts!.spec.replicas
    expect(replicas).toBe(3)
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      const { text, lines } = printConfig({
        ...vars,
        HOSTNAME: `conclave-${ordinal}`,
        CONCLAVE_SECRET_FILE: secretFile,
      })
      expect(lines.serverId).toBe(String(ordinal + 1))
      const c = serverConfig(text)
      expect(c.servers.map((s) => s.host)).toEqual(
        Array.from({ length: replicas }, (_, k) =>
          k === ordinal ? '0.0.0.0' : `${sts!.metadata.name}-${k}.${sts!.spec.serviceName}`,
        ),
      )
    }
  })
})

// ------------------------------------------------------------ real servers

const children = new Set<ChildProcess>()
afterAll(async () => {
  // Each entrypoint leads its own process group: the whole group goes, even a server
  // the entrypoint failed to exec (and so did not replace it).
  for (const c of children) {
    try {
      process.kill(-c.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  await Promise.all([...children].map(exited))
})

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((r) => child.once('exit', (code) => r(code)))
}

interface Started {
  child: ChildProcess
  output: () => string
  /** SIGTERM; its exit code (SIGKILL after 15 s). */
  stop: () => Promise<number | null>
}

function start(extra: Record<string, string>): Started {
  const child = spawn(ENTRYPOINT, [], {
    env: env({
      CONCLAVE_HOME: ROOT,
      CONCLAVE_CLIENT_ADDRESS: '127.0.0.1',
      CONCLAVE_LOG_FORMAT: 'json',
      ...extra,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  children.add(child)
  const out: string[] = []
  child.stdout!.on('data', (c: Buffer) => out.push(c.toString()))
  child.stderr!.on('data', (c: Buffer) => out.push(c.toString()))
  return {
    child,
    output: () => out.join(''),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      const code = await exited(child)
      clearTimeout(timer)
      return code
    },
  }
}

function healthcheck(adminPort: number, extra: Record<string, string> = {}, args: string[] = []): Ran {
  const r = spawnSync(process.execPath, [HEALTHCHECK, ...args], {
    env: env({ CONCLAVE_ADMIN_PORT: String(adminPort), ...extra }),
    encoding: 'utf8',
    timeout: 15_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

async function healthy(adminPort: number, what: string, server?: Started): Promise<Ran> {
  return waitFor(
    () => {
      if (server !== undefined && server.child.exitCode !== null)
        throw new Error(`exited ${server.child.exitCode}:\n${server.output()}`)
      const r = healthcheck(adminPort)
      return r.code === 0 ? r : undefined
    },
    { timeoutMs: 30_000, intervalMs: 200, what },
  )
}

const text = (d: Uint8Array) => new TextDecoder().decode(d)

describe('servers started by the entrypoint, and the health check', () => {
  it('a standalone server: the config written, node exec-ed, healthy, SIGTERM exits 0', async () => {
    const [clientPort, adminPort] = [await freePort(), await freePort()]
    const configFile = join(dir.path, 'standalone', 'etc', 'conclave.cfg')
    const server = start({
      CONCLAVE_CLIENT_PORT: String(clientPort),
      CONCLAVE_ADMIN_PORT: String(adminPort),
      CONCLAVE_DATA_DIR: join(dir.path, 'standalone', 'data'),
      CONCLAVE_CONFIG_FILE: configFile,
      CONCLAVE_TICKTIME: '100', // a typo: warned about, not fatal
    })
    const ok = await healthy(adminPort, 'the standalone server ready', server)
    expect(ok.stdout).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${adminPort}/readyz: 200 .*"standalone"`))
    expect(healthcheck(adminPort, {}, ['livez']).code).toBe(0)
    expect(readConfigFile(configFile)).toMatchObject({ clientPort, adminPort, serverId: 1 })
    // exec: the entrypoint's process is now the server itself, so signals reach it.
    const cmdline = readFileSync(`/proc/${server.child.pid}/cmdline`, 'utf8').split('\0')
    expect(cmdline.slice(1, 5)).toEqual([join(ROOT, 'bin', 'conclave.js'), 'server', '--config', configFile])
    expect(server.output()).toContain(
      'conclave-entrypoint: warning: CONCLAVE_TICKTIME is not a variable this image reads',
    )
    const zk = await Client.connect(`ws://127.0.0.1:${clientPort}`, { sessionTimeoutMs: 4000 })
    await zk.create('/standalone', 'one')
    expect(text((await zk.getData('/standalone')).data)).toBe('one')
    await zk.close()
    expect(await server.stop()).toBe(0)
    expect(server.output()).toMatch(/"msg":"stopped"/)
    const down = healthcheck(adminPort)
    expect(down.code).toBe(1)
    expect(down.stdout).toMatch(/ECONNREFUSED/)
  })

  it('a 3-server ensemble: healthy members, one stopped, the others serving; no quorum, not ready', async () => {
    const ids = [1, 2, 3]
    const ports = await Promise.all(
      ids.map(async () => ({ client: await freePort(), peer: await freePort(), admin: await freePort() })),
    )
    const servers = ids
      .map((id) => `${id}=127.0.0.1:${ports[id - 1]!.peer}:${ports[id - 1]!.client}`)
      .join(',')
    const members = ids.map((id) =>
      start({
        CONCLAVE_ID: String(id),
        CONCLAVE_SERVERS: servers,
        CONCLAVE_PEER_LISTEN_ADDRESS: '127.0.0.1',
        CONCLAVE_ADMIN_PORT: String(ports[id - 1]!.admin),
        CONCLAVE_DATA_DIR: join(dir.path, `member-${id}`),
        CONCLAVE_CONFIG_FILE: join(dir.path, `member-${id}.cfg`),
        CONCLAVE_TICK_TIME: '200',
        // Two ways to the same secret.
        ...(id === 1 ? { CONCLAVE_SECRET_FILE: secretFile } : { CONCLAVE_SECRET: SECRET }),
      }),
    )
    const modes = new Map<number, string>()
    for (const id of ids) {
      const r = await healthy(ports[id - 1]!.admin, `member ${id} ready`, members[id - 1])
      modes.set(id, /"mode":"(\w+)"/.exec(r.stdout)?.[1] ?? '?')
    }
    expect([...modes.values()].sort()).toEqual(['follower', 'follower', 'leader'])
    const connect = ids.map((id) => `ws://127.0.0.1:${ports[id - 1]!.client}`).join(',')
    const zk = await Client.connect(connect, { sessionTimeoutMs: 6000 })
    try {
      await zk.create('/ensemble', 'before')

      // The leader goes: SIGTERM, exit 0; its health check fails; the others elect and serve.
      const leader = ids.find((id) => modes.get(id) === 'leader')!
      expect(await members[leader - 1]!.stop()).toBe(0)
      expect(healthcheck(ports[leader - 1]!.admin).code).toBe(1)
      await waitFor(async () => (await zk.setData('/ensemble', 'after')) !== undefined, {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: 'a write after the leader stopped',
      })
      expect(text((await zk.getData('/ensemble')).data)).toBe('after')
      const rest = ids.filter((id) => id !== leader)
      for (const id of rest) await healthy(ports[id - 1]!.admin, `member ${id} ready again`, members[id - 1])

      // One more goes: the last one is alive but not ready (503), the health check says so.
      expect(await members[rest[0]! - 1]!.stop()).toBe(0)
      const last = rest[1]!
      const notReady = await waitFor(
        () => {
          const r = healthcheck(ports[last - 1]!.admin)
          return r.code === 1 ? r : undefined
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the last member not ready' },
      )
      expect(notReady.stdout).toMatch(/readyz: 503 .*"not ready"/)
      expect(healthcheck(ports[last - 1]!.admin, { CONCLAVE_HEALTHCHECK: 'livez' }).code).toBe(0)
    } finally {
      await zk.close().catch(() => {})
      for (const m of members) expect(await m.stop()).toBe(0)
    }
  })

  it('the health check: unhealthy on no answer within its timeout, a bad endpoint, the admin port off', async () => {
    const silent: Server = createServer(() => {})
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    try {
      const port = (silent.address() as { port: number }).port
      const began = Date.now()
      const r = healthcheck(port, { CONCLAVE_HEALTHCHECK_TIMEOUT_MS: '300' })
      expect(r.code).toBe(1)
      expect(r.stdout).toMatch(/no answer within 300 ms/)
      expect(Date.now() - began).toBeLessThan(5_000)
    } finally {
      silent.close()
    }
    expect(healthcheck(8080, {}, ['metrics'])).toMatchObject({
      code: 1,
      stdout: expect.stringMatching(/unknown endpoint metrics/),
    })
    expect(healthcheck(0)).toMatchObject({ code: 1, stdout: expect.stringMatching(/admin port is off/) })
  })

  it('another command is run as it is (conclave …, sh …)', () => {
    const r = entrypoint(['conclave', 'server', '--help'], { CONCLAVE_HOME: ROOT })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^usage: conclave server/)
    expect(entrypoint(['sh', '-c', 'echo "$0" and more', 'plain'], {})).toMatchObject({
      code: 0,
      stdout: 'plain and more\n',
    })
  })
})
