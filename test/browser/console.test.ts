/**
 * The web console as a person uses it: headless Chromium (Debian's, driven by
 * playwright-core) against `conclave console` and a real 3-server ensemble
 * that lists the console's origin (members 1 and 2 with admin ports, member
 * 3 reported through its four-letter words):
 *
 * - the tree: keyboard navigation, data as JSON, an edit saved with
 *   compare-and-set that a second tab's live events see; pause, resume and
 *   filter there; a conflicting edit shows the other writer's value and a
 *   diff, then overwrites; invalid JSON cannot be saved; go to a path;
 *   create; recursive delete naming its count; export and import of a subtree;
 * - digest credentials open a node whose ACL needs them;
 * - the coordination view: a lock's holder and waiter with fencing tokens, an
 *   election's leader, a group's members and a queue's depth, and the holder
 *   and leader change when the holder's session is closed;
 * - the sessions view: sessions, where they are connected, their ephemerals;
 * - the ensemble view: roles and zxids, and the leader changes when the
 *   leader is killed (kill -9).
 *
 * Screenshots of the views go to a temporary directory, or to docs/console/
 * with CONCLAVE_CONSOLE_SCREENSHOTS=1 (how the documentation's are made).
 */
import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client, Perms } from '../../client/index.js'
import { GroupMembership, LeaderElection, Lock, Queue } from '../../recipes/index.js'
import {
  type ConsoleProcess,
  chromiumMissing,
  closeAll,
  launchChromium,
  startConsole,
} from '../helpers/browser.js'
import { type Ensemble, startEnsemble } from '../helpers/ensemble.js'
import { canRun } from '../helpers/prerequisites.js'
import { freePort, tempDir, waitFor } from '../helpers/wait.js'

const shotsTemp =
  process.env.CONCLAVE_CONSOLE_SCREENSHOTS === '1' ? undefined : tempDir('conclave-console-shots-')
const SCREENSHOTS = shotsTemp?.path ?? join(import.meta.dirname, '..', '..', 'docs', 'console')

/** Waits until the element matched by `selector` contains `text`. */
async function waitText(
  page: Page,
  selector: string,
  text: string | RegExp,
  timeout = 15_000,
): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor({ timeout })
}

async function shot(page: Page, name: string, fullPage = false): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage })
}

async function connected(page: Page): Promise<void> {
  await page.locator('#conn-status[data-state="connected"]').waitFor({ timeout: 15_000 })
}

describe.runIf(canRun('the web console in Chromium', chromiumMissing()))('the web console', () => {
  let ensemble: Ensemble
  let console_: ConsoleProcess
  let browser: Browser
  let context: BrowserContext
  let zk: Client
  const clients: Client[] = []
  const pageErrors: string[] = []

  beforeAll(async () => {
    const consolePort = await freePort()
    const admin = [await freePort(), await freePort()]
    ensemble = await startEnsemble({
      size: 3,
      extraArgs: ['--allowed-origins', `http://127.0.0.1:${consolePort}`],
      memberArgs: (id) => (id <= 2 ? ['--admin-port', String(admin[id - 1])] : []),
    })
    console_ = await startConsole([
      '--port',
      String(consolePort),
      '--servers',
      ensemble.connectString,
      '--admin',
      admin.map((p) => `http://127.0.0.1:${p}`).join(','),
    ])
    browser = await launchChromium()
    context = await browser.newContext({ viewport: { width: 1280, height: 760 } })
    context.on('page', (p) => p.on('pageerror', (e) => pageErrors.push(e.message)))
    zk = await Client.connect(ensemble.connectString, { sessionTimeoutMs: 10_000 })
    clients.push(zk)
    await zk.create('/app', '')
    await zk.create('/app/config', '{"color":"blue","size":3}')
    await zk.create('/app/flags', 'beta=off')
  }, 90_000)

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {})
    await closeAll()
    await ensemble?.stop()
    shotsTemp?.remove()
  })

  it('browses with the keyboard, edits with compare-and-set, and a second tab sees the watch fire', async () => {
    const tree = await context.newPage()
    await tree.goto(`${console_.url}#tree`)
    await connected(tree)
    expect(console_.output()).not.toContain('refuses')

    // Keyboard: from the root, down to /app, open it, into its first child.
    await tree.locator('[role=treeitem][data-path="/"]').click()
    await tree.keyboard.press('ArrowDown')
    await waitText(tree, '#node-path', /^\/app$/)
    await tree.keyboard.press('ArrowRight')
    await tree.locator('[role=treeitem][data-path="/app/config"]').waitFor()
    expect(await tree.locator('[role=treeitem][data-path="/app"]').getAttribute('aria-expanded')).toBe('true')
    await tree.keyboard.press('ArrowRight')
    await waitText(tree, '#node-path', '/app/config')
    expect(await tree.locator('[role=treeitem][data-path="/app/config"]').getAttribute('aria-selected')).toBe(
      'true',
    )
    await tree.getByLabel('Show data as').selectOption('json')
    await waitText(tree, '#data-view', '"color": "blue"')
    await waitText(tree, '#stat-table tr[data-field="version"] td', /^0$/)

    // The second tab watches /app and below.
    const live = await context.newPage()
    await live.goto(`${console_.url}#live`)
    await connected(live)
    await live.getByLabel('Path', { exact: true }).fill('/app')
    await live.getByRole('button', { name: 'Start' }).click()
    await waitText(live, '#live-status', 'Watching /app and below')

    // Edit in the first tab: saved if the node is still at version 0.
    await tree.getByRole('button', { name: 'Edit' }).click()
    await tree.getByLabel('New value (json)').fill('{"color":"red","size":3}')
    await waitText(tree, '#editor-check', 'Valid JSON')
    await tree.getByRole('button', { name: 'Save (if still version 0)' }).click()
    await waitText(tree, '#notice', 'Saved /app/config: version 1')
    expect(new TextDecoder().decode((await zk.getData('/app/config')).data)).toBe('{"color":"red","size":3}')
    await waitText(live, '#live-events tr.ev-dataChanged', '/app/config')
    await shot(live, 'live')

    // Paused: events wait, counted; resumed, they show; the filter narrows by path.
    await live.getByRole('button', { name: 'Pause' }).click()
    await zk.setData('/app/flags', 'beta=on')
    await waitText(live, '#live-status', 'paused, 1 waiting')
    expect(await live.locator('#live-events tr', { hasText: '/app/flags' }).count()).toBe(0)
    await live.getByRole('button', { name: 'Resume' }).click()
    await waitText(live, '#live-events tr.ev-dataChanged', '/app/flags')
    await live.getByLabel('Path contains').fill('flags')
    await waitText(live, '#live-status', '2 events, 1 shown')
    await live.getByLabel('dataChanged').uncheck()
    await waitText(live, '#live-status', '2 events, 0 shown')

    // Invalid JSON cannot be saved.
    await tree.getByRole('button', { name: 'Edit' }).click()
    await tree.getByLabel('New value (json)').fill('{"color":')
    await waitText(tree, '#editor-check', /JSON/)
    expect(await tree.getByRole('button', { name: /^Save/ }).isDisabled()).toBe(true)

    // A conflict: another writer changes the node while this edit is open (based on version 1).
    await tree.getByLabel('New value (json)').fill('{"color":"yellow","size":3}')
    await zk.setData('/app/config', '{"color":"green","size":3}', 1)
    await tree.getByRole('button', { name: 'Save (if still version 1)' }).click()
    await tree.locator('#conflict').waitFor()
    await waitText(tree, '#conflict', 'now at version 2')
    await waitText(tree, '#their-value', '"color": "green"')
    await waitText(tree, '#conflict-diff .del', '"color": "green"')
    await waitText(tree, '#conflict-diff .add', '"color": "yellow"')
    await shot(tree, 'conflict')
    expect(new TextDecoder().decode((await zk.getData('/app/config')).data)).toContain('green')
    await tree.getByRole('button', { name: 'Overwrite with mine (if still version 2)' }).click()
    await waitText(tree, '#notice', 'Saved /app/config: version 3')
    expect(JSON.parse(new TextDecoder().decode((await zk.getData('/app/config')).data))).toEqual({
      color: 'yellow',
      size: 3,
    })
    await waitText(tree, '#data-view', '"color": "yellow"')
    await shot(tree, 'tree')
  })

  it('goes to a path, creates, deletes a subtree naming its count, exports and imports JSON', async () => {
    await zk.create('/app/tmp', '')
    await zk.create('/app/tmp/a', '')
    await zk.create('/app/tmp/a/b', '')
    await zk.create('/app/tmp/c', '')
    const page = await context.newPage()
    await page.goto(`${console_.url}#tree`)
    await connected(page)
    await page.getByLabel('Go to path').fill('/app/tmp')
    await page.getByLabel('Go to path').press('Enter')
    await waitText(page, '#node-path', '/app/tmp')
    expect(await page.locator('[role=treeitem][data-path="/app/tmp"]').getAttribute('aria-selected')).toBe(
      'true',
    )

    // Create a child.
    await page.getByRole('button', { name: 'New child…' }).click()
    await page.getByLabel('Name').fill('made-here')
    await page.getByLabel('Data', { exact: true }).fill('from the console')
    await page.getByRole('button', { name: 'Create' }).click()
    await waitText(page, '#notice', 'Created /app/tmp/made-here')
    expect(new TextDecoder().decode((await zk.getData('/app/tmp/made-here')).data)).toBe('from the console')

    // Recursive delete: the confirmation names the count.
    await page.getByLabel('Go to path').fill('/app/tmp')
    await page.getByLabel('Go to path').press('Enter')
    await waitText(page, '#node-path', /^\/app\/tmp$/)
    await page.getByRole('button', { name: 'Delete…' }).click()
    await waitText(page, '#delete-question', 'Delete /app/tmp and its 4 descendants: 5 nodes in all?')
    await page.getByRole('button', { name: 'Delete 5 nodes' }).click()
    await waitText(page, '#notice', 'Deleted 5 nodes (/app/tmp)')
    expect(await zk.exists('/app/tmp')).toBeNull()

    // A large directory is listed a page at a time; the "more" row loads the next page from the keyboard.
    await zk.create('/wide', '')
    await zk.multi(
      Array.from({ length: 150 }, (_, i) => ({
        op: 'create' as const,
        path: `/wide/n${String(i).padStart(3, '0')}`,
      })),
    )
    await page.getByLabel('Go to path').fill('/wide')
    await page.getByLabel('Go to path').press('Enter')
    await waitText(page, '#node-path', /^\/wide$/)
    await page.locator('[role=treeitem][data-path="/wide"]').click()
    await page.keyboard.press('ArrowRight')
    const more = page.locator('[role=treeitem].more', { hasText: 'Show 50 more (100 of 150 shown)' })
    await more.waitFor()
    expect(await page.locator('[role=treeitem][data-path^="/wide/"]').count()).toBe(100)
    await page.locator('[role=treeitem][data-path="/wide/n099"]').click()
    await page.keyboard.press('ArrowDown')
    await page.keyboard.press('Enter')
    await page.locator('[role=treeitem][data-path="/wide/n149"]').waitFor()
    expect(await page.locator('[role=treeitem][data-path^="/wide/"]').count()).toBe(150)
    await waitText(page, '#node-path', '/wide/n100')

    // Binary data as hex.
    await zk.create('/bin', new Uint8Array([0, 1, 0xfe, 0x41]))
    await page.getByLabel('Go to path').fill('/bin')
    await page.getByLabel('Go to path').press('Enter')
    await waitText(page, '#data-note', 'not UTF-8 text: shown as hex')
    await page.getByLabel('Show data as').selectOption('hex')
    await waitText(page, '#data-view', '00000000  00 01 fe 41')

    // Export /app, import the JSON as /copy.
    await page.getByLabel('Go to path').fill('/app')
    await page.getByLabel('Go to path').press('Enter')
    await waitText(page, '#node-path', /^\/app$/)
    await page.getByRole('button', { name: 'Export subtree' }).click()
    const exported = await page.getByLabel('Exported JSON').inputValue()
    const doc = JSON.parse(exported) as { path: string; root: { children: Record<string, { data: string }> } }
    expect(doc.path).toBe('/app')
    expect(Object.keys(doc.root.children).sort()).toEqual(['config', 'flags'])
    await page.getByRole('button', { name: 'Import JSON…' }).click()
    await page.getByLabel('JSON', { exact: true }).fill(exported)
    await page.getByLabel('Create it at').fill('/copy')
    await page.getByRole('button', { name: 'Import', exact: true }).click()
    await waitText(page, '#import-result', 'Imported into /copy: 3 created')
    expect(new TextDecoder().decode((await zk.getData('/copy/flags')).data)).toBe('beta=on')
    await page.close()
  })

  it('opens a node guarded by a digest ACL with the credentials', async () => {
    const digest = createHash('sha1').update('alice:s3cret').digest('base64')
    await zk.create('/secret', 'only for alice', {
      acl: [{ perms: Perms.ALL, id: { scheme: 'digest', id: `alice:${digest}` } }],
    })
    const page = await context.newPage()
    await page.goto(`${console_.url}#tree`)
    await connected(page)
    await page.getByLabel('Go to path').fill('/secret')
    await page.getByLabel('Go to path').press('Enter')
    await waitText(page, '#node-details', 'NO_AUTH')
    await page.getByLabel('Digest credentials').fill('alice:s3cret')
    await page.getByRole('button', { name: 'Connect', exact: true }).click()
    await waitText(page, '#notice', 'Authenticated as')
    await waitText(page, '#notice', 'digest:alice')
    await connected(page)
    await page.getByLabel('Go to path').fill('/secret')
    await page.getByLabel('Go to path').press('Enter')
    await waitText(page, '#data-view', 'only for alice')
    await waitText(page, '#acl-list', `digest:alice:${digest} — cdrwa`)
    await page.close()
  })

  it("shows a lock's holder and waiters, an election, a group and a queue, and follows the holder's session", async () => {
    const a = await Client.connect(ensemble.connectString, { sessionTimeoutMs: 10_000 })
    const b = await Client.connect(ensemble.connectString, { sessionTimeoutMs: 10_000 })
    clients.push(a, b)
    const lockA = new Lock(a, '/locks/orders')
    const grantA = await lockA.acquire()
    const waiting = new Lock(b, '/locks/orders').acquire({ timeoutMs: 30_000 })
    await new LeaderElection(a, '/election/billing', 'node-a').start()
    await new LeaderElection(b, '/election/billing', 'node-b').start()
    await new GroupMembership(a, '/services/api').join('api-1', '{"port":8080}')
    await new GroupMembership(b, '/services/api').join('api-2', '{"port":8081}')
    const q = new Queue(zk, '/queues/jobs')
    for (let i = 0; i < 3; i++) await q.put(`job ${i}`)

    const page = await context.newPage()
    await page.goto(`${console_.url}#coordination`)
    await connected(page)
    const lock = '#coord-results article[data-path="/locks/orders"]'
    await waitText(
      page,
      `${lock} .holder`,
      `Held by (session ${a.sessionId}), fencing token ${grantA.fencingToken}`,
    )
    await waitText(page, `${lock} ol`, `session ${b.sessionId}`)
    await waitText(page, '#coord-results article[data-path="/election/billing"] .leader', 'Leader: node-a')
    await waitText(page, '#coord-results article[data-path="/services/api"]', '2 members')
    await waitText(page, '#coord-results article[data-path="/queues/jobs"] .depth', 'Depth: 3')
    await shot(page, 'coordination', true)

    // The holder's session closes: the waiter holds the lock, node-b leads, one member is left.
    await a.close()
    const grantB = await waiting
    expect(grantB.fencingToken).toBeGreaterThan(grantA.fencingToken)
    await waitText(
      page,
      `${lock} .holder`,
      `Held by (session ${b.sessionId}), fencing token ${grantB.fencingToken}`,
    )
    await waitText(page, `${lock}`, 'No one waiting.')
    await waitText(page, '#coord-results article[data-path="/election/billing"] .leader', 'Leader: node-b')
    await waitText(page, '#coord-results article[data-path="/services/api"]', '1 member')
    await page.close()
  })

  it('lists sessions with where they are connected and their ephemerals', async () => {
    const page = await context.newPage()
    await page.goto(`${console_.url}#sessions`)
    await connected(page)
    const b = clients[2]!
    const row = `#sessions-rows tr[data-session="${b.sessionId}"]`
    await waitText(page, row, '/locks/orders/')
    await waitText(page, row, '/services/api/api-2')
    await waitText(page, row, '/election/billing/')
    await waitText(page, row, `${b.sessionTimeoutMs} ms`)
    await waitText(page, '#sessions-mine', "This console's session: 0x")
    await shot(page, 'sessions')
    await page.close()
  })

  it('shows the ensemble, and a new leader when the leader is killed', async () => {
    const page = await context.newPage()
    await page.goto(`${console_.url}#ensemble`)
    const leader = await ensemble.leader()
    const port = (id: number): number => ensemble.members.find((m) => m.id === id)!.clientPort
    await waitText(page, '#ensemble-summary', `Leader: 127.0.0.1:${port(leader)} (server ${leader})`)
    await waitText(page, '#ensemble-summary', '3 of 3 members answer')
    for (const m of ensemble.members) {
      const row = `#ensemble-rows tr[data-address="127.0.0.1:${m.clientPort}"]`
      await waitText(page, `${row} .mode`, m.id === leader ? 'leader' : 'follower')
      await waitText(page, row, m.id <= 2 ? 'via admin port' : 'via four-letter words')
    }
    // A few samples for the charts (one a second).
    await waitFor(
      async () =>
        ((await page.locator('svg.spark polyline').first().getAttribute('points')) ?? '').split(' ').length >=
        4,
      { timeoutMs: 15_000, what: 'four samples in a chart' },
    )
    await shot(page, 'ensemble')

    await ensemble.kill9(leader)
    const next = await ensemble.leader(30_000)
    expect(next).not.toBe(leader)
    await waitText(page, '#ensemble-summary', `Leader: 127.0.0.1:${port(next)} (server ${next})`, 30_000)
    await waitText(page, '#ensemble-summary', '2 of 3 members answer')
    await waitText(page, `#ensemble-rows tr[data-address="127.0.0.1:${port(leader)}"] .mode`, 'unreachable')
    // The console's own client is connected again (to a live member) with the same session.
    await connected(page)
    expect(pageErrors).toEqual([])
    await page.close()
  })
})
