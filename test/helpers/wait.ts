/**
 * Test helpers: waiting for a condition with a deadline (never a bare sleep),
 * free ports on 127.0.0.1, temporary directories.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 20, what = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v) return v as NonNullable<T>
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/**
 * A port that was free a moment ago on 127.0.0.1.
 *
 * Ports come from 20000-32767, below Linux's ephemeral range (32768-60999):
 * a port the kernel picked for `listen(0)` is one it may also give, a moment
 * later, to an outgoing connection's source port (every client socket in a
 * test makes one), and then the server that was meant to bind it fails with
 * EADDRINUSE. Outside that range only another listener can take it; a random
 * start per process and a set of ports already handed out keep test files and
 * concurrent runs apart, and a bind check skips ports that are taken.
 */
const FIRST_PORT = 20_000
const PORT_SPAN = 12_768
const handedOut = new Set<number>()
let nextPort = FIRST_PORT + ((process.pid * 7919 + Math.floor(Math.random() * PORT_SPAN)) % PORT_SPAN)

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = nextPort
    nextPort = FIRST_PORT + ((nextPort - FIRST_PORT + 1 + Math.floor(Math.random() * 64)) % PORT_SPAN)
    if (handedOut.has(port)) continue
    if (await canBind(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error('freePort: no free port found in 200 attempts')
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

/** Resolves when something accepts TCP connections on the port. */
export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = new Socket()
        s.once('connect', () => {
          s.destroy()
          resolve(true)
        })
        s.once('error', () => resolve(false))
        s.connect(port, '127.0.0.1')
      }),
    { timeoutMs, intervalMs: 50, what: `port ${port}` },
  )
}

export function tempDir(prefix = 'conclave-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}
