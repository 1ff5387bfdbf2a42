/**
 * The browser build of the SDK (dist/browser/conclave.js, served by
 * `conclave console` at /conclave.js) loaded as an ES module in headless
 * Chromium, against a real server: connect over the page's own WebSocket,
 * create, getData, a one-shot watch fired by a change another client (in
 * Node) makes, a persistent recursive watch as an async iterator with
 * zxids, a Lock from the recipes with its fencing token, tcp:// refused as
 * Node-only; and the server's origin check seen from the browser: a server
 * that does not list the page's origin refuses the page's WebSocket.
 */
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import {
  type ConsoleProcess,
  chromiumMissing,
  closeAll,
  launchChromium,
  startConsole,
} from '../helpers/browser.js'
import { type ConclaveProcess, startConclave } from '../helpers/conclave.js'
import { canRun } from '../helpers/prerequisites.js'
import { freePort } from '../helpers/wait.js'

/**
 * Runs `body` (an async function's body, with `arg`) in the page. Page code is
 * text, not a function: vitest's transform would rewrite a function's
 * import() and add helpers the page does not have.
 */
function inPage(page: Page, body: string, arg?: unknown): Promise<unknown> {
  return page.evaluate(`(async (arg) => {\n${body}\n})(${JSON.stringify(arg ?? null)})`)
}

describe.runIf(canRun('the browser SDK in Chromium', chromiumMissing()))('the SDK bundle in Chromium', () => {
  let allowed: ConclaveProcess
  let refusing: ConclaveProcess
  let console_: ConsoleProcess
  let browser: Browser
  let page: Page
  let node: Client
  const errors: string[] = []

  beforeAll(async () => {
    const port = await freePort()
    allowed = await startConclave({ extraArgs: ['--allowed-origins', `http://127.0.0.1:${port}`] })
    refusing = await startConclave()
    console_ = await startConsole(['--port', String(port), '--servers', allowed.connectString])
    browser = await launchChromium()
    page = await browser.newPage()
    page.on('pageerror', (e) => errors.push(e.message))
    // A page of the console's origin without the app: the bundle is imported into it.
    await page.goto(`${console_.url}api/config`)
    node = await Client.connect(allowed.connectString)
  })

  afterAll(async () => {
    await node?.close().catch(() => {})
    await closeAll()
    for (const s of [allowed, refusing]) {
      await s?.stop()
      s?.remove()
    }
  })

  it('loads as an ES module and exports the SDK and the recipes', async () => {
    const names = (await inPage(
      page,
      `const sdk = await import('/conclave.js')
       globalThis.sdk = sdk
       return Object.keys(sdk).sort()`,
    )) as string[]
    for (const name of ['Client', 'ZkError', 'ErrorCode', 'Lock', 'LeaderElection', 'Queue', 'TreeCache'])
      expect(names).toContain(name)
    expect(errors).toEqual([])
  })

  it('creates, reads, watches and locks against a real server', async () => {
    const first = (await inPage(
      page,
      `const { Client } = globalThis.sdk
       const zk = await Client.connect(arg, { connectTimeoutMs: 5000 })
       globalThis.zk = zk
       const path = await zk.create('/from-browser', 'hello from Chromium')
       const { data, stat } = await zk.getData(path, { watch: (e) => { globalThis.fired = e } })
       // A persistent recursive watch, as an async iterator with the changes' zxids.
       const events = []
       globalThis.events = events
       const stream = zk.watch('/from-browser', { recursive: true })
       globalThis.stream = stream
       void (async () => { for await (const e of stream) events.push(e) })()
       return { path, text: new TextDecoder().decode(data), version: stat.version, session: zk.sessionId,
                state: zk.state, process: typeof globalThis.process }`,
      allowed.connectString,
    )) as Record<string, unknown>
    expect(first).toMatchObject({
      path: '/from-browser',
      text: 'hello from Chromium',
      version: 0,
      state: 'connected',
      process: 'undefined',
    })
    // The browser's session is a real one: Node sees its node and its data.
    expect(new TextDecoder().decode((await node.getData('/from-browser')).data)).toBe('hello from Chromium')

    // Changes made elsewhere fire the page's watches.
    const stat = await node.setData('/from-browser', 'changed in Node')
    await node.create('/from-browser/child', '')
    const handle = await page.waitForFunction(
      'globalThis.fired !== undefined && globalThis.events.length >= 2 ? { fired: globalThis.fired, events: globalThis.events } : undefined',
      undefined,
      { timeout: 10_000 },
    )
    const { fired, events } = (await handle.jsonValue()) as {
      fired: unknown
      events: { type: string; path: string; zxid: number }[]
    }
    expect(fired).toEqual({ type: 'dataChanged', path: '/from-browser' })
    expect(events.map((e) => [e.type, e.path])).toEqual([
      ['dataChanged', '/from-browser'],
      ['created', '/from-browser/child'],
    ])
    expect(events[0]!.zxid).toBe(stat.mzxid)

    // A recipe in the browser: a lock with its fencing token (the lock node's czxid).
    const lock = (await inPage(
      page,
      `const zk = globalThis.zk
       const lock = new globalThis.sdk.Lock(zk, '/locks/browser')
       const grant = await lock.acquire({ timeoutMs: 5000 })
       const [child] = await zk.getChildren('/locks/browser')
       const stat = await zk.exists('/locks/browser/' + child)
       await lock.release()
       await globalThis.stream.return()
       // The lock's directory is a container: the server may reap it once empty (NO_NODE: no children).
       const after = await zk.getChildren('/locks/browser').then(
         (c) => c.length,
         (e) => { if (globalThis.sdk.ZkError.is(e, globalThis.sdk.ErrorCode.NO_NODE)) return 0; throw e },
       )
       return { token: grant.fencingToken, czxid: stat.czxid, after }`,
    )) as { token: number; czxid: number; after: number }
    expect(lock.token).toBe(lock.czxid)
    expect(lock.after).toBe(0)
    expect(errors).toEqual([])
  })

  it('refuses tcp:// as Node-only, and a server that does not allow the origin refuses the page', async () => {
    const r = (await inPage(
      page,
      `const outcome = async (url) => {
         try {
           const zk = await globalThis.sdk.Client.connect(url, { connectTimeoutMs: 2000, reconnectDelayMs: 0 })
           await zk.close()
           return 'connected'
         } catch (err) {
           return err.code + ': ' + err.message
         }
       }
       const result = { refusing: await outcome(arg[0]), tcp: await outcome(arg[1]) }
       await globalThis.zk.close()
       return result`,
      [refusing.connectString, `tcp://127.0.0.1:${refusing.port}`],
    )) as { refusing: string; tcp: string }
    expect(r.refusing).toMatch(/^CONNECTION_LOSS/)
    expect(r.tcp).toMatch(/^CONNECTION_LOSS.*tcp:\/\/ \(ZooKeeper framing\) needs Node/)
  })
})
