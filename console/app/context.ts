/**
 * What the views share: the current client (or null), the console server's
 * configuration, notices, and navigation between views. Browser only.
 */
import type { Client } from '../../client/index.js'

/** GET /api/config from the console server (server/console/console-server.ts). */
export interface ConsoleConfig {
  /** The connect string the console was started with. */
  servers: string
  /** This page's origin, which the servers must allow (allowedOrigins). */
  origin: string
  /** The members the console server reports on (ensemble, sessions), as host:port. */
  members: string[]
}

export interface View {
  /** The client changed: connected (a new Client) or gone (null). */
  setClient(zk: Client | null): void
  /** The view was shown (its tab chosen) or hidden. */
  setVisible(visible: boolean): void
}

export interface AppContext {
  config: ConsoleConfig
  client(): Client | null
  notify(text: string, kind?: 'info' | 'error'): void
  /** Shows a znode in the tree view. */
  showInTree(path: string): void
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { headers: { accept: 'application/json' } })
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
  return (await res.json()) as T
}
