/**
 * Prerequisites outside npm (Apache ZooKeeper, kazoo, zkCli.sh, openssl,
 * Node's standards WebSocket): whether a suite that needs one can run.
 *
 * Under CI=true a missing prerequisite FAILS the test file (an error naming
 * what is missing and the Debian package that provides it): CI installs
 * every one (.ci/run), so a skip there would hide a broken setup. Elsewhere
 * (a developer's machine) the suite is skipped, one line says what and why,
 * and the run ends with a summary of every skipped suite (skip-summary.ts,
 * vitest's globalSetup, collects the lines through the file named by
 * CONCLAVE_SKIPPED_FILE).
 *
 * Usage: `describe.runIf(canRun('kazoo against Conclave', kazooMissing()))(…)`.
 * Test-only: imports node:* freely; nothing from vitest (also usable from scripts).
 */
import { spawnSync } from 'node:child_process'
import { appendFileSync, existsSync } from 'node:fs'

/** What is not installed, and the Debian (apt) package that provides it. */
export interface Missing {
  what: string
  apt: string
}

export const CI = process.env.CI === 'true'

/** The environment variable naming the file skipped suites are listed in (set by skip-summary.ts). */
export const SKIPPED_FILE_ENV = 'CONCLAVE_SKIPPED_FILE'

export function describeMissing(m: Missing): string {
  return `${m.what} is missing (apt-get install ${m.apt})`
}

/**
 * True when `suite` can run (nothing `missing`). Otherwise: under CI=true,
 * throws; elsewhere prints one line, records it for the run's summary and
 * returns false (the caller skips the suite).
 */
export function canRun(suite: string, missing: Missing | undefined): boolean {
  if (missing === undefined) return true
  const why = describeMissing(missing)
  if (CI)
    throw new Error(
      `${suite} cannot run under CI=true: ${why}. CI must install it (.ci/run), not skip the suite.`,
    )
  skipped(suite, why)
  return false
}

/**
 * Says that `suite` is skipped and why (`why` names what is missing and its
 * apt package): one line now, and one in the run's summary. For suites that
 * check their prerequisites themselves and fail under CI=true on their own.
 */
export function skipped(suite: string, why: string): void {
  const line = `skipped: ${suite} (${why})`
  console.log(line)
  const file = process.env[SKIPPED_FILE_ENV]
  if (file === undefined) return
  try {
    appendFileSync(file, `${line}\n`)
  } catch {
    // The summary is a convenience; the line above was printed.
  }
}

// ------------------------------------------------------------ the prerequisites

const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar'
const JAVA = '/usr/bin/java'
export const ZKCLI = '/usr/share/zookeeper/bin/zkCli.sh'

function java(): Missing | undefined {
  return existsSync(JAVA) ? undefined : { what: `Java (${JAVA})`, apt: 'default-jre-headless' }
}

/** Apache ZooKeeper's server, run from Debian's jar with Java (the oracle of the differential tests). */
export function zookeeperMissing(): Missing | undefined {
  if (!existsSync(ZOOKEEPER_JAR)) return { what: `Apache ZooKeeper (${ZOOKEEPER_JAR})`, apt: 'zookeeper' }
  return java()
}

/** ZooKeeper's own command-line client. */
export function zkCliMissing(): Missing | undefined {
  if (!existsSync(ZKCLI)) return { what: `Apache ZooKeeper's zkCli.sh (${ZKCLI})`, apt: 'zookeeper' }
  return java()
}

let kazoo: Missing | undefined | null = null

/** Python's kazoo client for /usr/bin/python3. */
export function kazooMissing(): Missing | undefined {
  if (kazoo === null) {
    if (!existsSync('/usr/bin/python3')) kazoo = { what: 'Python 3 (/usr/bin/python3)', apt: 'python3' }
    else
      kazoo =
        spawnSync('/usr/bin/python3', ['-c', 'import kazoo'], { stdio: 'ignore' }).status === 0
          ? undefined
          : { what: 'kazoo for /usr/bin/python3 (import kazoo)', apt: 'python3-kazoo' }
  }
  return kazoo
}

/** The openssl command (makes the TLS tests' certificates). */
export function opensslMissing(): Missing | undefined {
  return spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0
    ? undefined
    : { what: 'openssl', apt: 'openssl' }
}

/**
 * The Netty jars ZooKeeper's TLS client needs beyond those Debian's
 * zookeeper.jar names in its manifest (netty-codec, netty-resolver): without
 * them ClientCnxnSocketNetty cannot load (NoClassDefFoundError:
 * io/netty/handler/codec/ByteToMessageDecoder) and zkCli.sh only reports
 * ConnectionLoss. The TLS tests put them on zkCli.sh's class path.
 */
export const ZK_NETTY_EXTRA_JARS = ['/usr/share/java/netty-codec.jar', '/usr/share/java/netty-resolver.jar']

export function zkNettyJarsMissing(): Missing | undefined {
  const missing = ZK_NETTY_EXTRA_JARS.filter((j) => !existsSync(j))
  return missing.length === 0 ? undefined : { what: `Netty (${missing.join(', ')})`, apt: 'libnetty-java' }
}

/** Java's keytool (makes the trust store ZooKeeper's TLS clients read). */
export function keytoolMissing(): Missing | undefined {
  return spawnSync('keytool', ['-help'], { stdio: 'ignore' }).status === 0
    ? undefined
    : { what: "Java's keytool", apt: 'default-jre-headless' }
}

/** Node's flag for its built-in (undici) WebSocket; Node 22+ has it without the flag. */
export const WHATWG_WS_FLAGS = ['--experimental-websocket', '--no-warnings']

/** Node's standards (WHATWG) WebSocket, in this Node with WHATWG_WS_FLAGS. */
export function whatwgWebSocketMissing(): Missing | undefined {
  const r = spawnSync(process.execPath, [
    ...WHATWG_WS_FLAGS,
    '-e',
    'process.exit(typeof WebSocket === "function" ? 0 : 1)',
  ])
  return r.status === 0
    ? undefined
    : {
        what: `Node's built-in WebSocket (node --experimental-websocket, Node 20.10 or later; this is ${process.version})`,
        apt: 'nodejs',
      }
}
