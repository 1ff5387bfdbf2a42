/**
 * The shell's one link to the real SDK: opens a session with
 * client/index.ts's Client.connect. Kept apart (and loaded lazily by
 * shell.ts) so the shell's pure modules load without the SDK.
 * Invariant: the Client must satisfy ShellClient structurally, which the
 * type checker verifies here.
 */
import { Client } from '../index.js'
import type { ConnectFn, ShellClient } from './shell-client.js'

/** Connects with the real SDK. */
export const connectWithSdk: ConnectFn = async (servers, opts) => {
  const client: ShellClient = await Client.connect(servers.connectString, {
    sessionTimeoutMs: opts.sessionTimeoutMs,
    connectTimeoutMs: opts.connectTimeoutMs,
    ...(servers.chroot === undefined ? {} : { chroot: servers.chroot }),
  })
  return client
}
