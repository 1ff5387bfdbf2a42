/**
 * The browser build (scripts/build-browser.mjs): it bundles, the bundles hold
 * no Node built-in (not even the SDK's lazy Node transports) and no package,
 * the console and the browser entry type-check with the DOM's types
 * (console/tsconfig.json; tsconfig.json has no DOM), a program typed against
 * dist/browser/conclave.d.ts compiles, and the console's browser code imports
 * only the SDK's public entry, the recipes' entry, console/ and nothing of
 * the server.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../../helpers/wait.js'

const ROOT = join(import.meta.dirname, '..', '..', '..')
const TSC = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc')

interface Built {
  sdk: { file: string; bytes: number; inputs: string[] }
  app: { file: string; bytes: number; inputs: string[] }
}

function tsc(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [TSC, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

describe('the browser build', () => {
  it('bundles the SDK and the console with nothing from Node', { timeout: 60_000 }, async () => {
    const { buildBrowser } = (await import(join(ROOT, 'scripts', 'build-browser.mjs'))) as {
      buildBrowser(): Promise<Built>
    }
    const built = await buildBrowser()
    for (const b of [built.sdk, built.app]) {
      const text = readFileSync(b.file, 'utf8')
      // No Node built-in, not even as a string a lazy import would load.
      expect(text).not.toMatch(/["'`]node:[a-z]/)
      expect(b.inputs.filter((i) => i.includes('node_modules'))).toEqual([])
      // The Node transports are stubbed, not bundled.
      expect(b.inputs.filter((i) => /transport-(tcp|ws-node)\.ts$/.test(i))).toEqual([])
      expect(b.inputs.some((i) => i.endsWith('client/transport-ws.ts'))).toBe(true)
    }
    expect(built.sdk.inputs.some((i) => i.endsWith('recipes/lock.ts'))).toBe(true)
    expect(built.app.inputs.some((i) => i.startsWith('server/'))).toBe(false)
    const sdk = readFileSync(built.sdk.file, 'utf8')
    for (const name of [
      'Client',
      'ZkError',
      'Lock',
      'LeaderElection',
      'Queue',
      'GroupMembership',
      'TreeCache',
    ])
      expect(sdk).toMatch(new RegExp(`export \\{[^}]*\\b${name}\\b`))
    expect(built.sdk.bytes).toBeLessThan(400 * 1024)
    expect(built.app.bytes).toBeLessThan(400 * 1024)
  })

  it('fails a bundle that would take a Node built-in or a package', async () => {
    const { browserOnly } = (await import(join(ROOT, 'scripts', 'build-browser.mjs'))) as {
      browserOnly: unknown
    }
    const esbuild = await import('esbuild')
    const dir = tempDir('conclave-browser-refused-')
    try {
      for (const spec of ['node:fs', 'ws']) {
        const entry = join(dir.path, 'entry.ts')
        writeFileSync(entry, `import * as m from '${spec}'\nexport const x = m\n`)
        await expect(
          esbuild.build({
            entryPoints: [entry],
            bundle: true,
            write: false,
            logLevel: 'silent',
            plugins: [browserOnly as import('esbuild').Plugin],
          }),
        ).rejects.toThrow(`${spec} imported by`)
      }
    } finally {
      dir.remove()
    }
  })

  it('type-checks the console and the browser entry with the DOM types', { timeout: 120_000 }, () => {
    const r = tsc(['-p', 'console/tsconfig.json'])
    expect(r.output).toBe('')
    expect(r.status).toBe(0)
  })

  it('gives the bundle types a program can compile against', { timeout: 120_000 }, () => {
    const dir = tempDir('conclave-browser-types-')
    try {
      const file = join(dir.path, 'app.ts')
      const bundle = relative(dir.path, join(ROOT, 'dist', 'browser', 'conclave.js'))
      writeFileSync(
        file,
        `import { Client, Lock, type Stat, ZkError } from '${bundle}'\n` +
          'export async function run(): Promise<number> {\n' +
          "  const zk: Client = await Client.connect('ws://127.0.0.1:2181')\n" +
          "  const stat: Stat = await zk.setData('/a', 'x', 0)\n" +
          "  const { fencingToken } = await new Lock(zk, '/l').acquire({ timeoutMs: 1 })\n" +
          "  if (ZkError.is(undefined, 'NO_NODE')) return 0\n" +
          '  return stat.version + fencingToken\n' +
          '}\n' +
          "// @ts-expect-error: the types are real, not any\nexport const wrong: number = Client.connect('x')\n",
      )
      const r = tsc([
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        '--target',
        'es2022',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--lib',
        'es2022,dom',
        '--types',
        'node',
        '--typeRoots',
        join(ROOT, 'node_modules', '@types'),
        file,
      ])
      expect(r.output).toBe('')
      expect(r.status).toBe(0)
    } finally {
      dir.remove()
    }
  })

  it("keeps the console's browser code off the server and off node:*", () => {
    const problems: string[] = []
    const walk = (dir: string): void => {
      for (const name of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        const rel = join(dir, name.name)
        if (name.isDirectory()) walk(rel)
        else if (rel.endsWith('.ts')) {
          const text = readFileSync(join(ROOT, rel), 'utf8')
          for (const m of text.matchAll(/^\s*(?:import|export)\b[^;'"`]*?\bfrom\s*['"]([^'"]+)['"]/gm)) {
            const spec = m[1]!
            const target = spec.startsWith('.') ? relative(ROOT, join(ROOT, dirname(rel), spec)) : spec
            const ok =
              target === 'client/index.js' ||
              target === 'recipes/index.js' ||
              target.startsWith('console/') ||
              target.startsWith('shared/')
            if (!ok) problems.push(`${rel} imports ${spec}`)
          }
        }
      }
    }
    walk('console')
    walk('browser')
    expect(problems).toEqual([])
  })
})
