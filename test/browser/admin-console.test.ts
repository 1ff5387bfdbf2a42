/**
 * The web console served by a server's own admin port (adminConsole,
 * --admin-console; off by default): at /console/ the page loads, connects to
 * that server without any --allowed-origins (the admin port's origin is
 * allowed on its client port), browses and writes, and reports the server
 * through its admin port. Without the flag /console/ is 404; the flag
 * without --admin-port is a configuration error (exit 2); a foreign Host is
 * refused.
 */
import { spawnSync } from 'node:child_process'
import { request } from 'node:http'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '../../client/index.js'
import { chromiumMissing, closeAll, launchChromium } from '../helpers/browser.js'
import { type ConclaveProcess, startConclave } from '../helpers/conclave.js'
import { canRun } from '../helpers/prerequisites.js'
import { freePort, waitFor } from '../helpers/wait.js'

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'conclave.js')

function status(port: number, path: string, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: host === undefined ? {} : { host } },
      (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe.runIf(canRun('the admin port console in Chromium', chromiumMissing()))(
  'the console on the admin port',
  () => {
    let withConsole: ConclaveProcess
    let without: ConclaveProcess
    let adminPort: number
    let plainAdminPort: number
    let browser: Browser

    beforeAll(async () => {
      adminPort = await freePort()
      plainAdminPort = await freePort()
      withConsole = await startConclave({ extraArgs: ['--admin-port', String(adminPort), '--admin-console'] })
      without = await startConclave({ extraArgs: ['--admin-port', String(plainAdminPort)] })
      browser = await launchChromium()
    })

    afterAll(async () => {
      await closeAll()
      for (const s of [withConsole, without]) {
        await s?.stop()
        s?.remove()
      }
    })

    it('is off by default, needs the admin port, and refuses a foreign Host', async () => {
      await waitFor(() => status(plainAdminPort, '/livez').then((s) => s === 200), { what: 'the admin port' })
      expect(await status(plainAdminPort, '/console/')).toBe(404)
      expect(await status(adminPort, '/console')).toBe(301)
      expect(await status(adminPort, '/console/')).toBe(200)
      expect(await status(adminPort, '/console/api/config', 'attacker.example')).toBe(421)
      const r = spawnSync(
        process.execPath,
        [BIN, 'server', '--admin-console', '--data-dir', '/nonexistent'],
        {
          encoding: 'utf8',
        },
      )
      expect(r.status).toBe(2)
      expect(r.stderr).toMatch(/adminConsole \(got true\): needs adminPort/)
    })

    it('serves a page that connects to the server and works, with no --allowed-origins', async () => {
      const page = await browser.newPage()
      await page.goto(`http://127.0.0.1:${adminPort}/console/#tree`)
      await page.locator('#conn-status[data-state="connected"]').waitFor({ timeout: 15_000 })
      expect(await page.locator('#servers').inputValue()).toBe(`ws://127.0.0.1:${withConsole.port}`)
      await page.getByRole('button', { name: 'New child…' }).click()
      await page.getByLabel('Name').fill('made-on-the-admin-port')
      await page.getByRole('button', { name: 'Create' }).click()
      await page.locator('#notice', { hasText: 'Created /made-on-the-admin-port' }).waitFor()
      const zk = await Client.connect(withConsole.connectString)
      expect(await zk.exists('/made-on-the-admin-port')).not.toBeNull()
      await zk.close()
      await page.goto(`http://127.0.0.1:${adminPort}/console/#ensemble`)
      await page.locator('#ensemble-rows .mode', { hasText: 'standalone' }).waitFor()
      await page.locator('#ensemble-rows', { hasText: 'via admin port' }).waitFor()
    })
  },
)
